// The TUF client against the repositories of tuf_vectors/ (made with tuf-js
// by tuf_vectors/generate.mjs): each test case is one behaviour of the
// specification's client workflow or one attack of its threat list, run
// step by step with the metadata directory kept between steps, and checked
// for the outcome and the one-line error it names.
#include <stdlib.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "ota/tuf/client.hpp"
#include "ota/tuf/crypto.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

using util::cat;

namespace {

const std::string kVectors = TUF_VECTORS;

struct ScratchDir {
    std::string path;
    ScratchDir() {
        std::string tmpl = "/tmp/berth-tuf-XXXXXX";
        path = mkdtemp(tmpl.data());
    }
    ~ScratchDir() { (void)util::remove_tree(path); }
    ScratchDir(const ScratchDir &) = delete;
    ScratchDir &operator=(const ScratchDir &) = delete;
};

std::string field(const util::json::Value &v, const char *key) {
    return v.contains(key) && v[key].is_string() ? v[key].get<std::string>() : std::string();
}

void check_target(ota::tuf::Client &client, const util::json::Value &t, const std::string &step_dir, const std::string &target_dir) {
    std::string name = field(t, "name"), expect = field(t, "expect");
    INFO("target " << name << ", expected " << expect);
    auto found = client.find_target(name);
    if (expect == "missing") {
        INFO((found ? std::string() : found.error().message()));
        REQUIRE(found);
        CHECK(!*found);
        return;
    }
    util::Status st = found ? util::ok() : util::Status(found.error());
    if (st && !*found) st = util::Error::msg("not found");
    if (st) st = client.download_target(**found, "file://" + step_dir + "/targets", target_dir);
    if (expect == "error") {
        REQUIRE(!st);
        CHECK_THAT(st.error().message(), Catch::Contains(field(t, "error")));
        return;
    }
    INFO((st ? std::string() : st.error().message()));
    REQUIRE(st);
    auto body = util::read_file(util::path_join(target_dir, ota::tuf::Client::target_file_name(**found)));
    REQUIRE(body);
    CHECK(*ota::tuf::hash_hex("sha256", *body) == field(t, "sha256"));
    auto cached = client.is_cached(**found, target_dir);
    REQUIRE(cached);
    CHECK(*cached);
}

/// Runs every step of case `name`; the metadata directory persists between steps.
void run_case(const std::string &name) {
    std::string dir = util::path_join(kVectors, name);
    auto spec = util::json::parse(*util::read_file(util::path_join(dir, "case.json")), "case.json");
    REQUIRE(spec);
    ScratchDir scratch;
    std::string meta = scratch.path + "/metadata";
    REQUIRE(ota::tuf::init_trusted_root(meta, *util::read_file(util::path_join(dir, "root.json"))));
    const auto &steps = (*spec)["steps"];
    for (size_t i = 0; i < steps.size(); i++) {
        const auto &step = steps[i];
        std::string step_dir = cat(dir, "/step", i + 1);
        INFO("step " << i + 1);
        ota::tuf::FileFetcher fetcher;
        auto client = ota::tuf::Client::open(meta, "file://" + step_dir + "/metadata", fetcher);
        REQUIRE(client);
        auto st = client->refresh();
        if (field(step, "expect") == "error") {
            REQUIRE(!st);
            CHECK_THAT(st.error().message(), Catch::Contains(field(step, "error")));
            continue;
        }
        INFO((st ? std::string() : st.error().message()));
        REQUIRE(st);
        if (step.contains("rootVersion")) {
            auto version = step["rootVersion"].get<uint64_t>();
            CHECK(client->root().version == version);
            // Stored as the exact bytes served.
            CHECK(*util::read_file(meta + "/root.json") == *util::read_file(cat(step_dir, "/metadata/", version, ".root.json")));
        }
        if (step.contains("targets"))
            for (const auto &t : step["targets"]) check_target(*client, t, step_dir, scratch.path + "/targets");
        if (step.contains("metadataFiles")) {
            auto names = util::list_dir(meta);
            REQUIRE(names);
            std::sort(names->begin(), names->end());
            std::vector<std::string> want;
            for (const auto &n : step["metadataFiles"]) want.push_back(n.get<std::string>());
            CHECK(*names == want);
        }
    }
}

}  // namespace

TEST_CASE("ecdsa-sha2-nistp256 keys verify; a listed target downloads, an unlisted one is not found") { run_case("basic-ecdsa"); }
TEST_CASE("ed25519 keys verify") { run_case("basic-ed25519"); }
TEST_CASE("rsassa-pss-sha256 keys verify") { run_case("basic-rsa"); }
TEST_CASE("consistent snapshots fetch N.snapshot.json, N.targets.json and hash-prefixed targets") { run_case("consistent-snapshot"); }
TEST_CASE("canonical json of escapes, control characters, non-ASCII and key order verifies") { run_case("canonical-json-tricky"); }

TEST_CASE("the root chain is followed, each root signed by the old and the new threshold") { run_case("root-rotation"); }
TEST_CASE("a new root not signed by the trusted root is refused") { run_case("root-rotation-not-signed-by-old-root"); }
TEST_CASE("a new root below its own threshold is refused") { run_case("root-rotation-own-threshold-not-met"); }
TEST_CASE("N.root.json holding another version is refused") { run_case("root-rotation-wrong-version"); }

TEST_CASE("an expired root is refused") { run_case("expired-root"); }
TEST_CASE("an expired timestamp is refused (freeze)") { run_case("expired-timestamp"); }
TEST_CASE("an expired snapshot is refused (freeze)") { run_case("expired-snapshot"); }
TEST_CASE("an expired targets is refused (freeze)") { run_case("expired-targets"); }

TEST_CASE("a timestamp older than the trusted one is refused (rollback)") { run_case("rollback-timestamp"); }
TEST_CASE("a timestamp naming an older snapshot is refused (rollback)") { run_case("rollback-snapshot-version-in-timestamp"); }
TEST_CASE("a snapshot naming an older targets is refused (rollback)") { run_case("rollback-targets-version-in-snapshot"); }
TEST_CASE("a snapshot dropping a role it listed is refused (rollback)") { run_case("rollback-snapshot-drops-role"); }
TEST_CASE("a timestamp of the stored version is not taken even with new content") { run_case("timestamp-same-version-new-content"); }
TEST_CASE("a timestamp key rotation recovers from a fast-forwarded timestamp") { run_case("fast-forward-recovery"); }
TEST_CASE("without a key rotation a fast-forwarded timestamp keeps guarding") { run_case("fast-forward-without-rotation"); }

TEST_CASE("a snapshot not matching the hash in timestamp is refused") { run_case("snapshot-hash-mismatch"); }
TEST_CASE("a snapshot longer than timestamp says is refused") { run_case("snapshot-oversize"); }
TEST_CASE("a snapshot of another version than timestamp names is refused") { run_case("snapshot-version-mismatch"); }
TEST_CASE("a snapshot hashed only with an unknown algorithm is refused") { run_case("snapshot-unknown-hash"); }
TEST_CASE("a targets of another version than snapshot names is refused (mix-and-match)") { run_case("mix-and-match-targets"); }
TEST_CASE("a targets not matching the hash in snapshot is refused") { run_case("targets-hash-mismatch"); }
TEST_CASE("a targets longer than snapshot says is refused") { run_case("targets-oversize"); }
TEST_CASE("a timestamp over the size cap is refused (endless data)") { run_case("timestamp-oversize"); }

TEST_CASE("a target not matching its hash is refused (arbitrary software)") { run_case("target-hash-mismatch"); }
TEST_CASE("a target longer than its length is refused (endless data)") { run_case("target-oversize"); }
TEST_CASE("a target listed with an unknown hash algorithm is refused") { run_case("target-unknown-hash"); }

TEST_CASE("a threshold of 2 met by two keys verifies") { run_case("threshold-met"); }
TEST_CASE("a threshold of 2 with one signature is refused") { run_case("threshold-not-met"); }
TEST_CASE("one key's signature listed twice is refused") { run_case("duplicate-signatures"); }
TEST_CASE("a signature listed twice is refused even when the threshold is met") { run_case("duplicate-signatures-threshold-met"); }
TEST_CASE("one key listed under two key ids counts once") { run_case("duplicate-key-ids"); }
TEST_CASE("a signature that does not verify is refused") { run_case("wrong-signature"); }
TEST_CASE("metadata signed by a key its role does not list is refused") { run_case("signed-by-wrong-key"); }

TEST_CASE("of two delegations trusted for a path the first listed wins") { run_case("delegation-order"); }
TEST_CASE("a non-terminating delegation lacking the target passes on to the next") { run_case("delegation-non-terminating"); }
TEST_CASE("a terminating delegation lacking the target ends the search") { run_case("delegation-terminating"); }
TEST_CASE("delegation paths match segment by segment with shell globs") { run_case("delegation-paths-glob"); }
TEST_CASE("a delegation by path_hash_prefixes is followed") { run_case("delegation-hash-prefix"); }
TEST_CASE("a delegation cycle ends the search") { run_case("delegation-cycle"); }
TEST_CASE("a delegated role signed by an unlisted key is refused") { run_case("delegation-bad-signature"); }
TEST_CASE("role names are percent-encoded in URLs and stored under safe file names") { run_case("delegation-unusual-role-names"); }
TEST_CASE("the delegation walk stops after 32 roles") { run_case("delegation-too-deep"); }

TEST_CASE("hash bins (succinct_roles): the target is looked up in the bin its path hash names") { run_case("succinct-bins"); }
TEST_CASE("hash bins of bit_length 1 are bins-0 and bins-1") { run_case("succinct-bins-one-bit"); }
TEST_CASE("hash bin names are zero-padded to the width of the last bin") { run_case("succinct-bins-padded"); }
TEST_CASE("a bin listing a target of another bin is not trusted for it") { run_case("succinct-wrong-bin"); }
TEST_CASE("a bin signed by a key the succinct delegation does not list is refused") { run_case("succinct-bin-bad-signature"); }

TEST_CASE("expiry is checked against the clock at the start of the update") {
    ScratchDir scratch;
    std::string dir = util::path_join(kVectors, "basic-ecdsa");
    std::string meta = scratch.path + "/metadata";
    REQUIRE(ota::tuf::init_trusted_root(meta, *util::read_file(dir + "/root.json")));
    ota::tuf::FileFetcher fetcher;
    ota::tuf::ClientConfig late;
    late.clock = [] { return *ota::tuf::parse_expiry("2099-01-01T00:00:00Z"); };  // the instant everything expires
    auto client = ota::tuf::Client::open(meta, "file://" + dir + "/step1/metadata", fetcher, late);
    REQUIRE(client);
    auto st = client->refresh();
    REQUIRE(!st);
    CHECK(st.error().message() == "root version 1 expired at 2099-01-01T00:00:00Z");
    ota::tuf::ClientConfig early;
    early.clock = [] { return *ota::tuf::parse_expiry("2098-12-31T23:59:59Z"); };
    client = ota::tuf::Client::open(meta, "file://" + dir + "/step1/metadata", fetcher, early);
    REQUIRE(client);
    CHECK(client->refresh());
}

TEST_CASE("a client without a trusted root refuses to start") {
    ScratchDir scratch;
    ota::tuf::FileFetcher fetcher;
    auto client = ota::tuf::Client::open(scratch.path, "file:///nonexistent", fetcher);
    REQUIRE(!client);
    CHECK_THAT(client.error().message(), Catch::Contains("no trusted root.json"));
}

TEST_CASE("init refuses a root not signed by its own keys") {
    ScratchDir scratch;
    auto root = *util::read_file(util::path_join(kVectors, "basic-ecdsa/root.json"));
    auto at = root.find("\"version\": 1");
    REQUIRE(at != std::string::npos);
    root.replace(at, 12, "\"version\": 2");
    auto st = ota::tuf::init_trusted_root(scratch.path + "/m", root);
    REQUIRE(!st);
    CHECK_THAT(st.error().message(), Catch::Contains("trusted root: 0 of 1 required signatures"));
    CHECK(!util::path_exists(scratch.path + "/m/root.json"));
}

TEST_CASE("a channel names its manifest target; a channel name is one plain segment") {
    CHECK(*ota::tuf::channel_target("stable") == "channels/stable/manifest.json");
    for (const char *bad : {"", ".", "..", "a/b", "st able", "x\n"}) {
        auto t = ota::tuf::channel_target(bad);
        REQUIRE(!t);
        CHECK_THAT(t.error().message(), Catch::Contains("is not one segment"));
    }
}

TEST_CASE("get_target hands on the verified bytes, from the target directory once cached") {
    ScratchDir scratch;
    std::string dir = util::path_join(kVectors, "basic-ecdsa");
    std::string meta = scratch.path + "/metadata", targets = scratch.path + "/targets";
    REQUIRE(ota::tuf::init_trusted_root(meta, *util::read_file(dir + "/root.json")));
    ota::tuf::FileFetcher fetcher;
    auto client = ota::tuf::Client::open(meta, "file://" + dir + "/step1/metadata", fetcher);
    REQUIRE(client);
    auto path = *ota::tuf::channel_target("stable");
    auto first = client->get_target(path, "file://" + dir + "/step1/targets", targets);
    REQUIRE(first);
    REQUIRE(*first);
    CHECK(**first == *util::read_file(dir + "/step1/targets/" + path));
    // The repository is gone: the cached copy serves.
    auto again = client->get_target(path, "file:///nonexistent", targets);
    REQUIRE(again);
    CHECK(**again == **first);
    // A cached copy changed on disk is not handed on: it is fetched again, and here that fails.
    REQUIRE(util::atomic_write_file(targets + "/channels%2Fstable%2Fmanifest.json", "{\"version\": 99}"));
    auto tampered = client->get_target(path, "file:///nonexistent", targets);
    REQUIRE(!tampered);
    CHECK_THAT(tampered.error().message(), Catch::Contains("not found"));
    auto none = client->get_target("channels/none/manifest.json", "file:///nonexistent", targets);
    REQUIRE(none);
    CHECK(!*none);
}

TEST_CASE("a refresh waits for another holder of the metadata directory") {
    ScratchDir scratch;
    std::string dir = util::path_join(kVectors, "basic-ecdsa");
    std::string meta = scratch.path + "/metadata";
    REQUIRE(ota::tuf::init_trusted_root(meta, *util::read_file(dir + "/root.json")));
    // Another process's client, as far as flock is concerned: its own open directory.
    int other = open(meta.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(other >= 0);
    REQUIRE(flock(other, LOCK_EX) == 0);
    ota::tuf::FileFetcher fetcher;
    auto client = ota::tuf::Client::open(meta, "file://" + dir + "/step1/metadata", fetcher);
    REQUIRE(client);
    std::atomic<bool> done{false};
    util::Status result;
    std::thread t([&] {
        result = client->refresh();
        done = true;
    });
    // While the other holder keeps the lock, nothing is fetched or stored.
    for (int i = 0; i < 20 && !done; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(!done);
    CHECK(!util::path_exists(meta + "/timestamp.json"));
    flock(other, LOCK_UN);
    close(other);
    t.join();
    CHECK(done);
    CHECK(result);
    CHECK(util::path_exists(meta + "/timestamp.json"));
}
