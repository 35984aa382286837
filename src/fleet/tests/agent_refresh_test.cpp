// One refresh of the fleet agent (refresh.hpp) against the TUF client's
// test repositories (ota/tests/tuf_vectors, made with tuf-js): the channel
// manifest comes back verified, the trusted root is installed from the
// device's pinned one, an expired repository is refused, an unreachable one
// is told apart, a pushed timestamp that does not verify fetches nothing,
// and the child process hands the same result back on the loop, or is
// killed at its timeout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "fleet/refresh.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/tests/tmpdir.hpp"

using fleet::RefreshResult;
using Outcome = fleet::RefreshResult::Outcome;

namespace {

const std::string kVectors = TUF_VECTORS;

fleet::RefreshSettings settings(const TempDir &s, const std::string &vector) {
    fleet::RefreshSettings r;
    r.metadata_dir = s.path + "/metadata";
    r.trusted_root = kVectors + "/" + vector + "/root.json";
    r.targets_dir = s.path + "/targets";
    r.metadata_url = "file://" + kVectors + "/" + vector + "/step1/metadata";
    r.targets_url = "file://" + kVectors + "/" + vector + "/step1/targets";
    r.target = "channels/stable/manifest.json";
    return r;
}

const std::string kManifest = "{\"version\": 1, \"channel\": \"stable\"}\n";

/// A TCP listener on 127.0.0.1 that never answers (connections wait in its backlog).
struct Silent {
    util::UniqueFd fd;
    int port = 0;
    Silent() {
        fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd.get(), 16) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr *>(&a), &len) == 0);
        port = ntohs(a.sin_port);
    }
};

std::optional<RefreshResult> run_child(util::EventLoop &loop, fleet::Refresher &r, std::string pushed, int64_t max_ms) {
    std::optional<RefreshResult> got;
    r.start(std::move(pushed), [&](RefreshResult res) { got = std::move(res); });
    int64_t end = util::monotonic_ms() + max_ms;
    while (!got && util::monotonic_ms() < end) REQUIRE(loop.run_once(100));
    return got;
}

}  // namespace

TEST_CASE("a refresh returns the channel's manifest, verified, and installs the pinned root first") {
    TempDir s;
    ota::tuf::FileFetcher f;
    auto r = fleet::run_refresh(settings(s, "consistent-snapshot"), {}, f);
    INFO(r.error);
    REQUIRE(r.ok());
    CHECK(r.timestamp_version == 4);
    REQUIRE(r.target);
    CHECK(r.target->manifest == kManifest);
    CHECK(r.target->custom.is_null());
    CHECK(*util::read_file(s.path + "/metadata/root.json") == *util::read_file(kVectors + "/consistent-snapshot/root.json"));
}

TEST_CASE("a channel the repository does not list gives no target") {
    TempDir s;
    auto set = settings(s, "consistent-snapshot");
    set.target = "channels/beta/manifest.json";
    ota::tuf::FileFetcher f;
    auto r = fleet::run_refresh(set, {}, f);
    REQUIRE(r.ok());
    CHECK(!r.target);
}

TEST_CASE("without a pinned root nothing is trusted: refused") {
    TempDir s;
    auto set = settings(s, "consistent-snapshot");
    set.trusted_root = s.path + "/nothing.json";
    ota::tuf::FileFetcher f;
    auto r = fleet::run_refresh(set, {}, f);
    CHECK(r.outcome == Outcome::Refused);
    CHECK_THAT(r.error, Catch::Contains("trusted root") && Catch::Contains("nothing.json"));
}

TEST_CASE("an expired timestamp (a frozen mirror) is refused with the reason") {
    TempDir s;
    ota::tuf::FileFetcher f;
    auto r = fleet::run_refresh(settings(s, "expired-timestamp"), {}, f);
    CHECK(r.outcome == Outcome::Refused);
    CHECK_THAT(r.error, Catch::Contains("timestamp version 1 expired"));
}

TEST_CASE("a repository that cannot be reached is unreachable, not refused") {
    TempDir s;
    Silent closed;
    auto set = settings(s, "consistent-snapshot");
    int port = closed.port;
    closed.fd.reset();  // nothing listens there now: connection refused
    set.metadata_url = util::cat("http://127.0.0.1:", port, "/metadata");
    ota::tuf::UrlFetcher f;
    auto r = fleet::run_refresh(set, {}, f);
    CHECK(r.outcome == Outcome::Unreachable);
}

TEST_CASE("a pushed timestamp signed by the timestamp key is followed by the refresh") {
    TempDir s;
    ota::tuf::FileFetcher f;
    auto pushed = util::read_file(kVectors + "/consistent-snapshot/step1/metadata/timestamp.json");
    REQUIRE(pushed);
    auto r = fleet::run_refresh(settings(s, "consistent-snapshot"), *pushed, f);
    INFO(r.error);
    CHECK(r.ok());
}

TEST_CASE("a pushed timestamp whose signature does not verify fetches nothing") {
    TempDir s;
    auto pushed = util::read_file(kVectors + "/consistent-snapshot/step1/metadata/timestamp.json");
    REQUIRE(pushed);
    std::string forged = *pushed;
    auto at = forged.find("\"version\": 4");
    REQUIRE(at != std::string::npos);
    forged.replace(at, 12, "\"version\": 9");
    struct Counting : ota::tuf::Fetcher {
        int fetches = 0;
        util::Result<std::optional<std::string>> fetch(const std::string &, size_t) override {
            fetches++;
            return std::optional<std::string>();
        }
    } f;
    auto r = fleet::run_refresh(settings(s, "consistent-snapshot"), forged, f);
    CHECK(r.outcome == Outcome::PushRejected);
    CHECK_THAT(r.error, Catch::Contains("pushed timestamp") && Catch::Contains("signatures verify"));
    CHECK(f.fetches == 0);
    r = fleet::run_refresh(settings(s, "consistent-snapshot"), "not json at all", f);
    CHECK(r.outcome == Outcome::PushRejected);
    CHECK(f.fetches == 0);
}

TEST_CASE("the child's result survives the pipe byte for byte") {
    RefreshResult r;
    r.timestamp_version = 7;
    r.target = fleet::ChannelTarget{util::json::Value::object(), std::string("{\"v\":1}\n\xff\x00 tail", 13)};
    r.target->custom["boards"] = util::json::Value::array({"a", "b"});
    auto back = fleet::decode_result(fleet::encode_result(r));
    REQUIRE(back);
    CHECK(back->ok());
    CHECK(back->timestamp_version == 7);
    REQUIRE(back->target);
    CHECK(back->target->manifest == r.target->manifest);
    CHECK(back->target->custom == r.target->custom);

    RefreshResult bad;
    bad.outcome = Outcome::Refused;
    bad.error = "timestamp version 1 expired";
    back = fleet::decode_result(fleet::encode_result(bad));
    REQUIRE(back);
    CHECK(back->outcome == Outcome::Refused);
    CHECK(back->error == bad.error);
    CHECK(!back->target);
    CHECK(!fleet::decode_result("no newline"));
}

TEST_CASE("the child process refreshes and hands the result back on the loop") {
    TempDir s;
    auto loop = util::EventLoop::create();
    REQUIRE(loop);
    auto r = fleet::child_refresher(**loop, settings(s, "consistent-snapshot"), {}, 30000, {});
    auto got = run_child(**loop, *r, {}, 30000);
    REQUIRE(got);
    INFO(got->error);
    REQUIRE(got->ok());
    REQUIRE(got->target);
    CHECK(got->target->manifest == kManifest);
    // A second refresh reuses the child machinery (one at a time).
    got = run_child(**loop, *r, {}, 30000);
    REQUIRE(got);
    CHECK(got->ok());
}

TEST_CASE("a refresh child that hangs is killed at its timeout") {
    TempDir s;
    Silent silent;
    auto set = settings(s, "consistent-snapshot");
    set.metadata_url = util::cat("http://127.0.0.1:", silent.port, "/metadata");
    auto loop = util::EventLoop::create();
    REQUIRE(loop);
    auto r = fleet::child_refresher(**loop, set, {}, 300, {});
    int64_t t0 = util::monotonic_ms();
    auto got = run_child(**loop, *r, {}, 10000);
    REQUIRE(got);
    CHECK(got->outcome == Outcome::Unreachable);
    CHECK_THAT(got->error, Catch::Contains("did not finish"));
    CHECK(util::monotonic_ms() - t0 < 5000);
}
