// The TUF client's conditional fetch of timestamp.json
// (ClientConfig::conditional_timestamp): the validators of the stored bytes
// are sent, a "not modified" answer reuses those bytes (still checked for
// expiry), and validators that belong to other bytes are never sent. The
// repository is one `berth fleet init` writes (ota/tuf/repository.hpp),
// behind a fetcher that plays an HTTP server with ETags.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "ota/tuf/client.hpp"
#include "ota/tuf/crypto.hpp"
#include "ota/tuf/metadata.hpp"
#include "ota/tuf/repository.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/tests/tmpdir.hpp"

using util::cat;

namespace {

constexpr int64_t kNow = 1764547200;  // the repository's signing time

/// file:// underneath; the ETag of a file is its sha256 in quotes.
class EtagFetcher : public ota::tuf::Fetcher {
public:
    util::Result<std::optional<std::string>> fetch(const std::string &url, size_t max_bytes) override {
        full.push_back(url);
        return files_.fetch(url, max_bytes);
    }
    util::Result<ota::tuf::Conditional> fetch_if_changed(const std::string &url, size_t max_bytes,
                                                         const ota::tuf::Validators &have) override {
        sent.push_back(have);
        ota::tuf::Conditional c;
        auto body = TRY(files_.fetch(url, max_bytes));
        std::string etag = body ? cat('"', *ota::tuf::hash_hex("sha256", *body), '"') : std::string();
        if (body && !have.etag.empty() && have.etag == etag) {
            c.not_modified = true;
            return c;
        }
        full.push_back(url);
        c.body = std::move(body);
        c.validators.etag = etag;
        return c;
    }
    std::vector<std::string> full;               ///< URLs answered with a body
    std::vector<ota::tuf::Validators> sent;      ///< what each conditional fetch sent

private:
    ota::tuf::FileFetcher files_;
};

struct Device {
    TempDir tmp;
    std::string repo = tmp / "repo", meta = tmp / "metadata";
    EtagFetcher fetcher;
    ota::tuf::ClientConfig config;
    Device() {
        // Default periods: the timestamp expires after a day, the others later.
        REQUIRE(ota::tuf::Repository::init({repo, tmp / "keys", {}}, {}, kNow));
        REQUIRE(ota::tuf::init_trusted_root(meta, *util::read_file(repo + "/metadata/1.root.json")));
        config.conditional_timestamp = true;
        config.clock = [] { return kNow + 60; };
    }
    util::Status refresh() {
        auto c = ota::tuf::Client::open(meta, "file://" + repo + "/metadata", fetcher, config);
        if (!c) return std::move(c).error();
        return c->refresh();
    }
};

bool fetched_timestamp(const std::vector<std::string> &urls) {
    for (const auto &u : urls)
        if (u.ends_with("/timestamp.json")) return true;
    return false;
}

}  // namespace

TEST_CASE("an unchanged timestamp.json is not fetched again: the stored bytes are reused") {
    Device d;
    REQUIRE(d.refresh());
    REQUIRE(fetched_timestamp(d.fetcher.full));
    REQUIRE(d.fetcher.sent.size() == 1);
    CHECK(d.fetcher.sent[0].empty());  // nothing stored yet: an ordinary GET
    auto stored = util::read_file(d.meta + "/timestamp.json");
    d.fetcher.full.clear();
    auto st = d.refresh();
    INFO((st ? std::string() : st.error().message()));
    REQUIRE(st);
    REQUIRE(d.fetcher.sent.size() == 2);
    CHECK(d.fetcher.sent[1].etag == cat('"', *ota::tuf::hash_hex("sha256", *stored), '"'));
    CHECK(!fetched_timestamp(d.fetcher.full));
    CHECK(*util::read_file(d.meta + "/timestamp.json") == *stored);
}

bool probed_root(const std::vector<std::string> &urls) {
    for (const auto &u : urls)
        if (u.ends_with(".root.json")) return true;
    return false;
}

TEST_CASE("a not-modified timestamp makes no N+1.root.json probe") {
    Device d;
    REQUIRE(d.refresh());
    REQUIRE(probed_root(d.fetcher.full));  // the first refresh has no validators: the spec's order
    d.fetcher.full.clear();
    REQUIRE(d.refresh());
    CHECK(d.fetcher.sent.size() == 2);
    CHECK(d.fetcher.full.empty());  // neither the root probe nor a timestamp body
}

TEST_CASE("a changed timestamp is preceded by the root probe: a rotated root is followed") {
    Device d;
    REQUIRE(d.refresh());
    {
        auto repo = ota::tuf::Repository::open({d.repo, d.tmp / "keys", {}});
        REQUIRE(repo);
        ota::tuf::RotateOptions o;
        o.role = "timestamp";
        REQUIRE(repo->rotate(o, kNow));
    }
    d.fetcher.full.clear();
    auto st = d.refresh();
    INFO((st ? std::string() : st.error().message()));
    REQUIRE(st);
    CHECK(probed_root(d.fetcher.full));
    auto root = ota::tuf::parse_envelope(*util::read_file(d.meta + "/root.json"), "root", "root");
    REQUIRE(root);
    CHECK(root->signed_value["version"] == 2);
}

TEST_CASE("a root expired while the timestamp is unchanged is still refused") {
    Device d;
    REQUIRE(d.refresh());
    d.config.clock = [] { return kNow + 400 * 86400; };  // past the root's year
    auto st = d.refresh();
    REQUIRE(!st);
    CHECK(st.error().message().starts_with("root version 1 expired"));
}

TEST_CASE("a timestamp reused after a not-modified answer is still checked for expiry") {
    Device d;
    REQUIRE(d.refresh());
    d.config.clock = [] { return kNow + 86400 + 60; };  // a day later: only the timestamp expired
    auto st = d.refresh();
    REQUIRE(!st);
    CHECK(st.error().message() == "timestamp version 1 expired at 2025-12-02T00:00:00Z");
    REQUIRE(d.fetcher.sent.size() == 2);
    CHECK(!d.fetcher.sent[1].empty());  // it was the not-modified answer's
}

TEST_CASE("validators stored for other bytes than the trusted timestamp are not sent") {
    Device d;
    REQUIRE(d.refresh());
    auto text = util::read_file(d.meta + "/timestamp.validators");
    REQUIRE(text);
    auto lines = util::split(*text, '\n');
    REQUIRE(lines.size() >= 3);
    lines[0] = std::string(64, '0');  // as if timestamp.json had been replaced since
    REQUIRE(util::atomic_write_file(d.meta + "/timestamp.validators", util::join(lines, "\n")));
    REQUIRE(d.refresh());
    REQUIRE(d.fetcher.sent.size() == 2);
    CHECK(d.fetcher.sent[1].empty());
    CHECK(fetched_timestamp(d.fetcher.full));
}

TEST_CASE("without conditional_timestamp no validators are kept or sent") {
    Device d;
    d.config.conditional_timestamp = false;
    REQUIRE(d.refresh());
    REQUIRE(d.refresh());
    CHECK(!util::path_exists(d.meta + "/timestamp.validators"));
    for (const auto &v : d.fetcher.sent) CHECK(v.empty());
}

TEST_CASE("validators are kept only for a file that had not changed for 2 s when the server answered") {
    using ota::tuf::validators_settled;
    CHECK(validators_settled("Tue, 01 Dec 2026 09:24:14 GMT", "Tue, 01 Dec 2026 09:24:16 GMT"));
    CHECK(!validators_settled("Tue, 01 Dec 2026 09:24:15 GMT", "Tue, 01 Dec 2026 09:24:16 GMT"));
    CHECK(!validators_settled("Tue, 01 Dec 2026 09:24:16 GMT", "Tue, 01 Dec 2026 09:24:16 GMT"));
    CHECK(!validators_settled("Tue, 01 Dec 2026 09:24:14 GMT", ""));  // no date: unknown
    CHECK(!validators_settled("yesterday", "Tue, 01 Dec 2026 09:24:16 GMT"));
    CHECK(validators_settled("", ""));  // an ETag alone (the content's)
}
