// The fleet controller's TUF repository writer (ota/tuf/repository.hpp):
// what init, release, refresh, rotate and delegate write, checked with
// berth's TUF client over file paths and with crypto.hpp's verification;
// every refused command (bad input, missing or wrong keys, downgrades)
// leaves the repository byte for byte as it was; a write that fails at any
// step leaves a repository clients still read.
#include <stdlib.h>

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "ota/tuf/client.hpp"
#include "ota/tuf/repository.hpp"
#include "util/dir.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

using util::cat;
using namespace ota::tuf;

namespace {

const int64_t kNow = int64_t(time(nullptr));

struct Scratch {
    std::string path;
    Scratch() {
        std::string tmpl = "/tmp/berth-fleet-repo-XXXXXX";
        path = mkdtemp(tmpl.data());
    }
    ~Scratch() { (void)util::remove_tree(path); }
    Scratch(const Scratch &) = delete;
    Scratch &operator=(const Scratch &) = delete;
};

/// A scratch repository at <scratch>/repo with its keys at <scratch>/repo.keys.
struct Repo {
    Scratch s;
    RepoPaths paths{util::path_join(s.path, "repo"), "", ""};
    std::string dir() const { return paths.dir; }
    std::string keys() const { return paths.dir + ".keys"; }

    explicit Repo(InitOptions o = {}) { REQUIRE_OK(Repository::init(paths, o, kNow)); }
    Repository open() const {
        auto r = Repository::open(paths);
        INFO((r ? std::string() : r.error().message()));
        REQUIRE(r);
        return std::move(r).value();
    }
    static void REQUIRE_OK(const util::Status &st) {
        INFO((st ? std::string() : st.error().message()));
        REQUIRE(st);
    }
};

std::string manifest(uint64_t version, const std::string &name = "app") {
    return cat(R"({"version": )", version, R"(, "name": ")", name,
               R"(", "containers": [{"name": "app", "image": "localhost:5000/app@sha256:)", std::string(64, 'a'), R"("}]})",
               "\n");
}

/// Every file under `dir` (relative path -> content): what "nothing changed" compares.
std::map<std::string, std::string> tree(const std::string &dir, const std::string &rel = "") {
    std::map<std::string, std::string> out;
    auto names = util::list_dir(util::path_join(dir, rel));
    if (!names) return out;
    for (const auto &n : *names) {
        auto r = rel.empty() ? n : util::path_join(rel, n);
        struct stat st;
        if (lstat(util::path_join(dir, r).c_str(), &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) out.merge(tree(dir, r));
        else out[r] = *util::read_file(util::path_join(dir, r));
    }
    return out;
}

/// A device's client of the repository, over file paths, with the clock at `now`.
struct Device {
    Scratch s;
    std::string meta = util::path_join(s.path, "meta"), targets = util::path_join(s.path, "targets");
    FileFetcher fetcher;
    std::string repo;

    explicit Device(const std::string &repo_dir, const std::string &root_file = "") : repo(repo_dir) {
        auto root = util::read_file(root_file.empty() ? util::path_join(repo, "metadata/1.root.json") : root_file);
        REQUIRE(root);
        Repo::REQUIRE_OK(init_trusted_root(meta, *root));
        Repo::REQUIRE_OK(util::mkdir_p(targets));
    }
    /// Refreshes and returns the channel's manifest (nullopt: not listed), or the error.
    util::Result<std::optional<std::string>> channel(const std::string &name, int64_t now = kNow) {
        ClientConfig c;
        c.clock = [now] { return now; };
        auto client = TRY(Client::open(meta, util::path_join(repo, "metadata"), fetcher, c));
        TRY(client.refresh());
        return client.get_target(TRY(channel_target(name)), util::path_join(repo, "targets"), targets);
    }
    std::optional<std::string> require_channel(const std::string &name, int64_t now = kNow) {
        auto r = channel(name, now);
        INFO((r ? std::string() : r.error().message()));
        REQUIRE(r);
        return *r;
    }
};

template <typename T> std::string error_of(const util::Result<T> &r) { return r ? std::string("(succeeded)") : r.error().message(); }

util::json::Value signed_of(const std::string &file) {
    auto v = util::json::parse(*util::read_file(file), file);
    REQUIRE(v);
    return (*v)["signed"];
}

}  // namespace

TEST_CASE("init writes a repository a client trusts, with every private key outside it") {
    Repo r;
    auto files = tree(r.dir());
    for (const char *f : {"metadata/root.json", "metadata/1.root.json", "metadata/1.targets.json", "metadata/1.snapshot.json",
                          "metadata/timestamp.json", "fleet.json"})
        CHECK(files.count(f));
    for (const auto &[name, content] : files) CHECK(content.find("PRIVATE KEY") == std::string::npos);
    auto keys = tree(r.keys());
    CHECK(keys.size() == 4);
    for (const auto &[name, content] : keys) {
        CHECK(content.starts_with("-----BEGIN PRIVATE KEY-----"));
        struct stat st;
        REQUIRE(stat(util::path_join(r.keys(), name).c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
    }
    auto root = signed_of(util::path_join(r.dir(), "metadata/root.json"));
    CHECK(root["consistent_snapshot"] == true);
    for (const char *role : {"root", "targets", "snapshot", "timestamp"}) {
        auto id = root["roles"][role]["keyids"][0].get<std::string>();
        CHECK(util::path_exists(util::path_join(r.keys(), cat(std::string(role), "/", id, ".pem"))));
        CHECK(root["keys"][id]["scheme"] == "ecdsa-sha2-nistp256");
    }
    Device d(r.dir());
    CHECK(d.require_channel("stable") == std::nullopt);
}

TEST_CASE("ed25519 and rsassa-pss-sha256 keys sign what the client verifies") {
    InitOptions o;
    o.key_type = KeyType::Ed25519;
    Repo r(o);
    auto root = signed_of(util::path_join(r.dir(), "metadata/root.json"));
    CHECK(root["keys"].begin().value()["scheme"] == "ed25519");
    REQUIRE(r.open().release("stable", manifest(1), {}, kNow));
    Device d(r.dir());
    CHECK(d.require_channel("stable") == manifest(1));
    // One RSA role (3072-bit key generation takes a second or more).
    REQUIRE(r.open().rotate({"timestamp", KeyType::RsaPss, {}, {}}, kNow));
    root = signed_of(util::path_join(r.dir(), "metadata/root.json"));
    auto id = root["roles"]["timestamp"]["keyids"][0].get<std::string>();
    CHECK(root["keys"][id]["scheme"] == "rsassa-pss-sha256");
    REQUIRE(r.open().release("stable", manifest(2), {}, kNow));
    CHECK(d.require_channel("stable") == manifest(2));
    // The key file reads back as the same key.
    auto k = PrivateKey::from_pem(*util::read_file(util::path_join(r.keys(), cat("timestamp/", id, ".pem"))));
    REQUIRE(k);
    CHECK(k->keyid() == id);
    CHECK(public_key_from_pem(k->public_pem())->identity() == k->public_key().identity());
}

TEST_CASE("init takes thresholds and expiry periods") {
    InitOptions o;
    o.roles["root"] = {3, 2};
    o.roles["timestamp"] = {2, 2};
    REQUIRE(o.expiry.set("timestamp", 3600));
    Repo r(o);
    auto root = signed_of(util::path_join(r.dir(), "metadata/root.json"));
    CHECK(root["roles"]["root"]["keyids"].size() == 3);
    CHECK(root["roles"]["root"]["threshold"] == 2);
    CHECK(root["roles"]["timestamp"]["threshold"] == 2);
    auto ts = util::json::parse(*util::read_file(util::path_join(r.dir(), "metadata/timestamp.json")), "ts");
    CHECK((*ts)["signatures"].size() == 2);
    CHECK(*parse_expiry((*ts)["signed"]["expires"].get<std::string>()) == kNow + 3600);
    Device d(r.dir());
    CHECK(d.channel("stable"));
    // An hour later the timestamp has expired for the device.
    CHECK_THAT(error_of(d.channel("stable", kNow + 3601)), Catch::Contains("timestamp version 1 expired"));
}

TEST_CASE("init refuses a directory that holds a repository and a bad threshold, writing nothing") {
    Repo r;
    auto before = tree(r.dir());
    auto again = Repository::init(r.paths, {}, kNow);
    CHECK_THAT(error_of(again), Catch::Contains("already holds a repository"));
    CHECK(tree(r.dir()) == before);

    Scratch s;
    InitOptions o;
    o.roles["targets"] = {1, 2};
    auto bad = Repository::init({util::path_join(s.path, "r"), "", ""}, o, kNow);
    CHECK_THAT(error_of(bad), Catch::Contains("threshold 2 of 1 keys"));
    CHECK(tree(s.path).empty());
}

TEST_CASE("release publishes the manifest's exact bytes as a hash-prefixed target and bumps the chain") {
    Repo r;
    auto repo = r.open();
    auto target = repo.release("stable", manifest(3), {}, kNow);
    REQUIRE(target);
    CHECK(*target == "channels/stable/manifest.json");
    CHECK(repo.version_of("targets") == 2);
    CHECK(repo.version_of("snapshot") == 2);
    CHECK(repo.version_of("timestamp") == 2);
    CHECK(repo.version_of("root") == 1);
    auto sha = *hash_hex("sha256", manifest(3));
    CHECK(util::read_file(util::path_join(r.dir(), cat("targets/channels/stable/", sha, ".manifest.json"))).value_or("") ==
          manifest(3));
    auto targets = signed_of(util::path_join(r.dir(), "metadata/2.targets.json"));
    CHECK(targets["targets"]["channels/stable/manifest.json"]["length"] == manifest(3).size());
    Device d(r.dir());
    CHECK(d.require_channel("stable") == manifest(3));
    CHECK(d.require_channel("beta") == std::nullopt);
}

TEST_CASE("release refuses bad input with one line and changes nothing") {
    Repo r;
    REQUIRE(r.open().release("stable", manifest(5), {}, kNow));
    auto before = tree(r.dir());
    auto stranger = *PrivateKey::generate(KeyType::Ecdsa);
    struct Case {
        const char *what, *channel;
        std::string manifest;
        std::vector<PrivateKey> keys;
        const char *error;
    };
    const Case cases[] = {
        {"a downgrade", "stable", manifest(4), {}, "channel `stable` is at version 5: manifest version 4 is not above it"},
        {"the same version", "stable", manifest(5, "other"), {}, "is at version 5: manifest version 5"},
        {"a malformed manifest", "stable", "{\"version\": 6,", {}, "manifest"},
        {"a manifest without containers' images", "stable", R"({"version": 6, "name": "x", "containers": [{"name": "a"}]})", {},
         "image"},
        {"a channel with a slash", "a/b", manifest(6), {}, "channel name `a/b` is not one segment"},
        {"a channel `..`", "..", manifest(6), {}, "channel name `..` is not one segment"},
        {"an empty channel", "", manifest(6), {}, "channel name `` is not one segment"},
        {"a team key for an undelegated channel", "stable", manifest(6), {stranger}, "is not delegated"},
    };
    for (const auto &c : cases) {
        INFO(c.what);
        auto repo = r.open();
        auto st = repo.release(c.channel, c.manifest, c.keys, kNow);
        CHECK_THAT(error_of(st), Catch::Contains(c.error));
        CHECK(error_of(st).find('\n') == std::string::npos);
        CHECK(tree(r.dir()) == before);
    }
}

TEST_CASE("release without the targets key, or with a foreign one in its place, changes nothing") {
    Repo r;
    auto before = tree(r.dir());
    auto targets_dir = util::path_join(r.keys(), "targets");
    auto keys = tree(targets_dir);
    REQUIRE(util::remove_tree(targets_dir));
    auto st = r.open().release("stable", manifest(1), {}, kNow);
    CHECK_THAT(error_of(st), Catch::Contains("signing targets with the keys in"));
    CHECK(tree(r.dir()) == before);

    // A key of another role copied in does not sign for targets.
    REQUIRE(util::mkdir_p(targets_dir, 0700));
    auto ts = tree(util::path_join(r.keys(), "timestamp"));
    REQUIRE(util::atomic_write_file(util::path_join(targets_dir, ts.begin()->first), ts.begin()->second, 0600));
    st = r.open().release("stable", manifest(1), {}, kNow);
    CHECK_THAT(error_of(st), Catch::Contains("signing targets"));
    CHECK(tree(r.dir()) == before);
}

TEST_CASE("a release that fails at any write leaves metadata clients read, and the next release works") {
    Repo r;
    REQUIRE(r.open().release("stable", manifest(1), {}, kNow));
    Device d(r.dir());
    REQUIRE(d.require_channel("stable") == manifest(1));
    uint64_t version = 2;
    for (int nth = 1;; nth++) {
        INFO("atomic_write.rename fails at its hit " << nth);
        util::failpoint_arm("atomic_write.rename", util::FailAction::Error, nth);
        auto st = r.open().release("stable", manifest(version), {}, kNow);
        util::failpoint_clear();
        // The device sees the old release or the new one, never an error.
        auto got = d.require_channel("stable");
        if (st) {
            CHECK(got == manifest(version));
            CHECK(nth > 4);  // the target, targets, snapshot and timestamp were each cut once
            break;
        }
        CHECK((got == manifest(version - 1) || got == manifest(version)));
        if (got == manifest(version)) version++;
        REQUIRE(nth < 20);
    }
    // And the repository goes on.
    REQUIRE(r.open().release("stable", manifest(version + 1), {}, kNow));
    CHECK(d.require_channel("stable") == manifest(version + 1));
}

TEST_CASE("refresh re-signs timestamp (and snapshot) only when they near their expiry") {
    Repo r;
    {
        auto repo = r.open();
        auto done = repo.refresh(std::nullopt, kNow + 3600);
        REQUIRE(done);
        CHECK(done->resigned.empty());
        CHECK(done->warnings.empty());
    }
    Device d(r.dir());
    REQUIRE(d.channel("stable"));
    // 13 hours on, the 1-day timestamp is past half its life; the 7-day snapshot is not.
    {
        auto repo = r.open();
        auto done = repo.refresh(std::nullopt, kNow + 13 * 3600);
        REQUIRE(done);
        CHECK(done->resigned == std::vector<std::string>{"timestamp 2"});
        CHECK(repo.version_of("snapshot") == 1);
    }
    CHECK(d.channel("stable", kNow + 30 * 3600));  // the old one expired at +24h
    // Four days on, the snapshot too.
    {
        auto repo = r.open();
        auto done = repo.refresh(std::nullopt, kNow + 4 * 86400);
        REQUIRE(done);
        CHECK(done->resigned == std::vector<std::string>{"snapshot 2", "timestamp 3"});
    }
    CHECK(d.channel("stable", kNow + 4 * 86400 + 3600));
    // --within: everything expiring within it.
    auto done = r.open().refresh(int64_t(365) * 86400, kNow + 4 * 86400);
    REQUIRE(done);
    CHECK(done->resigned == std::vector<std::string>{"targets 2", "snapshot 3", "timestamp 4"});
    REQUIRE(done->warnings.size() == 1);
    CHECK_THAT(done->warnings[0], Catch::Contains("root version 1 expires at"));
}

TEST_CASE("refresh re-signs a role whose signatures no longer meet the root's threshold") {
    Repo r;
    auto ts_file = util::path_join(r.dir(), "metadata/timestamp.json");
    auto old_ts = *util::read_file(ts_file);
    REQUIRE(r.open().rotate({"timestamp", {}, {}, {}}, kNow));
    // As if the rotation stopped after writing the root: the old timestamp is back.
    REQUIRE(util::atomic_write_file(ts_file, old_ts));
    Device d(r.dir());
    CHECK_THAT(error_of(d.channel("stable")), Catch::Contains("timestamp"));
    auto done = r.open().refresh(std::nullopt, kNow);
    REQUIRE(done);
    CHECK(done->resigned == std::vector<std::string>{"timestamp 2"});  // one above the timestamp on disk
    CHECK(d.channel("stable"));
}

TEST_CASE("after a rotation cut short past N.root.json, the next refresh goes on from root version N") {
    Repo r;
    REQUIRE(r.open().release("stable", manifest(1), {}, kNow));
    auto meta = util::path_join(r.dir(), "metadata");
    auto root1 = *util::read_file(util::path_join(meta, "root.json"));
    auto ts1 = *util::read_file(util::path_join(meta, "timestamp.json"));
    REQUIRE(r.open().rotate({"targets", {}, {}, {}}, kNow));
    // As if cut right after 2.root.json: root.json and timestamp.json are the old ones.
    REQUIRE(util::atomic_write_file(util::path_join(meta, "root.json"), root1));
    REQUIRE(util::atomic_write_file(util::path_join(meta, "timestamp.json"), ts1));
    Device d(r.dir());
    CHECK_THAT(error_of(d.channel("stable")), Catch::Contains("targets"));  // root 2, targets signed by the old key
    auto done = r.open().refresh(std::nullopt, kNow);
    REQUIRE(done);
    CHECK(done->resigned == std::vector<std::string>{"targets 3", "snapshot 3", "timestamp 3"});
    CHECK(*util::read_file(util::path_join(meta, "root.json")) == *util::read_file(util::path_join(meta, "2.root.json")));
    CHECK(d.require_channel("stable") == manifest(1));
    REQUIRE(r.open().rotate({"root", {}, {}, {}}, kNow));
    CHECK(util::path_exists(util::path_join(meta, "3.root.json")));
    CHECK(d.require_channel("stable") == manifest(1));
}

TEST_CASE("a rotation that fails at any write is made whole by the next refresh") {
    for (const char *role : {"targets", "root"}) {
        Repo r;
        REQUIRE(r.open().release("stable", manifest(1), {}, kNow));
        Device d(r.dir());
        REQUIRE(d.require_channel("stable") == manifest(1));
        for (int nth = 1;; nth++) {
            INFO(role << ": atomic_write.rename fails at its hit " << nth);
            util::failpoint_arm("atomic_write.rename", util::FailAction::Error, nth);
            auto st = r.open().rotate({role, {}, {}, {}}, kNow);
            util::failpoint_clear();
            auto done = r.open().refresh(std::nullopt, kNow);
            INFO(error_of(done));
            REQUIRE(done);
            CHECK(d.require_channel("stable") == manifest(1));
            if (st) break;
            REQUIRE(nth < 20);
        }
    }
}

TEST_CASE("rotating root writes a version signed by the old and the new root keys") {
    Repo r;
    REQUIRE(r.open().release("stable", manifest(1), {}, kNow));
    Device d(r.dir());
    REQUIRE(d.channel("stable"));
    auto old_root = signed_of(util::path_join(r.dir(), "metadata/1.root.json"));
    auto old_id = old_root["roles"]["root"]["keyids"][0].get<std::string>();
    auto ids = r.open().rotate({"root", {}, 2u, 2u}, kNow);
    REQUIRE(ids);
    CHECK(ids->size() == 2);
    auto bytes = *util::read_file(util::path_join(r.dir(), "metadata/2.root.json"));
    CHECK(*util::read_file(util::path_join(r.dir(), "metadata/root.json")) == bytes);
    auto env = *parse_envelope(bytes, "root", "root 2");
    auto v1 = *parse_root(*parse_envelope(*util::read_file(util::path_join(r.dir(), "metadata/1.root.json")), "root", "1"));
    auto v2 = *parse_root(env);
    CHECK(verify_threshold(env, v1.keys, v1.roles.at("root"), "by v1"));
    CHECK(verify_threshold(env, v2.keys, v2.roles.at("root"), "by v2"));
    CHECK(v2.roles.at("root").threshold == 2);
    CHECK(!v2.keys.count(old_id));
    CHECK(util::path_exists(util::path_join(r.keys(), cat("root/", old_id, ".pem.retired"))));
    CHECK(d.require_channel("stable") == manifest(1));
    // The next rotation needs two of the two new keys.
    REQUIRE(r.open().rotate({"snapshot", KeyType::Ed25519, {}, {}}, kNow));
    CHECK(d.require_channel("stable") == manifest(1));
}

TEST_CASE("rotate refuses without the current root keys and changes nothing") {
    Repo r;
    auto before = tree(r.dir());
    REQUIRE(::rename(util::path_join(r.keys(), "root").c_str(), util::path_join(r.keys(), "offline").c_str()) == 0);
    auto st = r.open().rotate({"targets", {}, {}, {}}, kNow);
    CHECK_THAT(error_of(st), Catch::Contains("rotating needs 1 of the root keys, 0 found in"));
    CHECK(tree(r.dir()) == before);
    // With --root-key-dir pointing at them, it works.
    RepoPaths p = r.paths;
    p.root_key_dir = util::path_join(r.keys(), "offline");
    auto repo = Repository::open(p);
    REQUIRE(repo);
    CHECK(repo->rotate({"targets", {}, {}, {}}, kNow));
    CHECK(repo->version_of("root") == 2);
}

TEST_CASE("a delegated role signs only its channels, with the team's key") {
    Repo r;
    auto team = *PrivateKey::generate(KeyType::Ecdsa);
    auto other = *PrivateKey::generate(KeyType::Ecdsa);
    DelegateOptions o{"team-a", {"channels/team-a-*/*"}, {*public_key_from_pem(team.public_pem())}, 1, false};
    REQUIRE(r.open().delegate(o, kNow));
    auto before = tree(r.dir());
    CHECK_THAT(error_of(r.open().release("team-a-edge", manifest(1), {}, kNow)),
               Catch::Contains("channel `team-a-edge` is delegated to role `team-a`: give that role's key with --key"));
    CHECK_THAT(error_of(r.open().release("team-a-edge", manifest(1), {other}, kNow)),
               Catch::Contains("is not a key of role `team-a`"));
    CHECK_THAT(error_of(r.open().release("stable", manifest(1), {team}, kNow)), Catch::Contains("is not delegated"));
    CHECK(tree(r.dir()) == before);

    {
        auto repo = r.open();
        REQUIRE(repo.release("team-a-edge", manifest(1), {team}, kNow));
        CHECK(repo.version_of("team-a") == 1);
        CHECK(repo.version_of("targets") == 2);  // the delegation; the release did not touch targets
    }
    CHECK(util::path_exists(util::path_join(r.dir(), "metadata/1.team-a.json")));
    Device d(r.dir());
    CHECK(d.require_channel("team-a-edge") == manifest(1));
    CHECK_THAT(error_of(r.open().release("team-a-edge", manifest(1), {team}, kNow)), Catch::Contains("not above it"));
    REQUIRE(r.open().release("team-a-edge", manifest(2), {team}, kNow));
    CHECK(d.require_channel("team-a-edge") == manifest(2));
}

TEST_CASE("a release into a delegated role without its key waits, unpublished, until the team signs it") {
    Repo r;
    auto team = *PrivateKey::generate(KeyType::Ecdsa);
    auto other = *PrivateKey::generate(KeyType::Ecdsa);
    REQUIRE(r.open().delegate({"team-a", {"channels/team-a/*"}, {team.public_key()}, 1, false}, kNow));
    auto served = tree(util::path_join(r.dir(), "metadata"));
    CHECK_THAT(error_of(r.open().release("team-a", manifest(1), {}, kNow, {}, "team-b")),
               Catch::Contains("role `team-b` is not one trusted for channel `team-a` (`team-a`)"));
    CHECK_THAT(error_of(r.open().release("stable", manifest(1), {}, kNow, {}, "team-a")),
               Catch::Contains("is not delegated: the targets role signs it, --role is not used"));
    {
        auto repo = r.open();
        REQUIRE(repo.release("team-a", manifest(1), {}, kNow, {}, "team-a"));
        REQUIRE(repo.pending().size() == 1);
        CHECK_THAT(repo.pending()[0], Catch::Contains("role `team-a` (" + team.keyid().substr(0, 16) + " of 1 needed)"));
    }
    CHECK(tree(util::path_join(r.dir(), "metadata")) == served);  // nothing a device reads changed
    CHECK(util::path_exists(util::path_join(r.dir(), "staged/team-a.json")));
    Device d(r.dir());
    CHECK_THAT(error_of(d.channel("team-a")), Catch::Contains("delegated role `team-a`: not listed in snapshot"));
    // Another change waits for it; a key that is not the team's signs nothing.
    CHECK_THAT(error_of(r.open().release("team-a", manifest(2), {team}, kNow)), Catch::Contains("berth fleet sign"));
    {
        auto repo = r.open();
        REQUIRE(repo.sign_staged({other}, kNow));
        CHECK(repo.pending().size() == 1);
    }
    CHECK(tree(util::path_join(r.dir(), "metadata")) == served);
    REQUIRE(r.open().sign_staged({team}, kNow));
    CHECK(!util::path_exists(util::path_join(r.dir(), "staged")));
    CHECK(d.require_channel("team-a") == manifest(1));
}

TEST_CASE("a staged release takes the team's signature made elsewhere over its payload") {
    Repo r;
    auto team = *PrivateKey::generate(KeyType::Ed25519);
    auto other = *PrivateKey::generate(KeyType::Ed25519);
    REQUIRE(r.open().delegate({"team-a", {"channels/team-a/*"}, {team.public_key()}, 1, false}, kNow));
    REQUIRE(r.open().release("team-a", manifest(1), {}, kNow, {}, "team-a"));
    auto payload = r.open().staged_payload("team-a");
    REQUIRE(payload);
    CHECK_THAT(error_of(r.open().staged_payload("team-b")), Catch::Contains("not part of the staged change"));
    auto forged = r.open().add_staged_signature("team-a", *other.sign(*payload), kNow);
    REQUIRE(!forged);
    CHECK_THAT(forged.error().message(), Catch::Contains("does not verify with any key of role `team-a`"));
    REQUIRE(r.open().add_staged_signature("team-a", *team.sign(*payload), kNow));
    Device d(r.dir());
    CHECK(d.require_channel("team-a") == manifest(1));
}

TEST_CASE("a delegated role with threshold 2 needs two distinct team keys") {
    Repo r;
    auto k1 = *PrivateKey::generate(KeyType::Ecdsa), k2 = *PrivateKey::generate(KeyType::Ed25519);
    DelegateOptions o{"ops", {"channels/ops/*"}, {k1.public_key(), k2.public_key()}, 2, true};
    REQUIRE(r.open().delegate(o, kNow));
    auto before = tree(r.dir());
    CHECK_THAT(error_of(r.open().release("ops", manifest(1), {k1}, kNow)), Catch::Contains("role `ops` needs 2 keys, 1 given"));
    CHECK_THAT(error_of(r.open().release("ops", manifest(1), {k1, k1}, kNow)), Catch::Contains("needs 2 keys, 1 given"));
    CHECK(tree(r.dir()) == before);
    REQUIRE(r.open().release("ops", manifest(1), {k1, k2, k1}, kNow));
    auto env = util::json::parse(*util::read_file(util::path_join(r.dir(), "metadata/1.ops.json")), "ops");
    CHECK((*env)["signatures"].size() == 2);
    Device d(r.dir());
    CHECK(d.require_channel("ops") == manifest(1));
}

TEST_CASE("refresh re-signs a delegated role near its expiry with the team's key, and warns without it") {
    Repo r;
    auto team = *PrivateKey::generate(KeyType::Ecdsa);
    REQUIRE(r.open().delegate({"team-a", {"channels/team-a/*"}, {team.public_key()}, 1, false}, kNow));
    REQUIRE(r.open().release("team-a", manifest(1), {team}, kNow));
    int64_t later = kNow + 50 * 86400;  // past half of the 90-day period
    auto done = r.open().refresh(std::nullopt, later);
    REQUIRE(done);
    REQUIRE(done->warnings.size() == 1);
    CHECK_THAT(done->warnings[0], Catch::Contains("role `team-a` version 1 expires at"));
    CHECK(std::find(done->resigned.begin(), done->resigned.end(), "team-a 2") == done->resigned.end());
    done = r.open().refresh(std::nullopt, later, {team});
    REQUIRE(done);
    CHECK(done->warnings.empty());
    CHECK(done->resigned.front() == "team-a 2");
    // A device 99 days on (past the first version's 90 days) still reads
    // the channel, once the timer has kept timestamp and snapshot fresh.
    REQUIRE(r.open().refresh(std::nullopt, kNow + 99 * 86400));
    Device d(r.dir());
    CHECK(d.require_channel("team-a", kNow + 99 * 86400 + 3600) == manifest(1));
}

TEST_CASE("delegate refuses bad roles, paths and keys, changing nothing") {
    Repo r;
    auto key = *public_key_from_pem(PrivateKey::generate(KeyType::Ecdsa)->public_pem());
    auto before = tree(r.dir());
    struct Case {
        DelegateOptions o;
        const char *error;
    };
    const Case cases[] = {
        {{"targets", {"channels/*/*"}, {key}, 1, false}, "role name `targets` is not one segment"},
        {{"a/b", {"channels/*/*"}, {key}, 1, false}, "role name `a/b` is not one segment"},
        {{"..", {"channels/*/*"}, {key}, 1, false}, "role name `..` is not one segment"},
        {{"team", {}, {key}, 1, false}, "at least one --paths"},
        {{"team", {"/abs"}, {key}, 1, false}, "is empty or absolute"},
        {{"team", {"channels/*/*"}, {}, 1, false}, "at least one --key"},
        {{"team", {"channels/*/*"}, {key}, 2, false}, "threshold 2 of 1 keys"},
        {{"team", {"channels/*/*"}, {key, key}, 1, false}, "is given twice"},
    };
    for (const auto &c : cases) {
        INFO(c.error);
        CHECK_THAT(error_of(r.open().delegate(c.o, kNow)), Catch::Contains(c.error));
        CHECK(tree(r.dir()) == before);
    }
}

TEST_CASE("keys round-trip through PEM with the same key id, and public keys give their type") {
    for (auto type : {KeyType::Ecdsa, KeyType::Ed25519}) {  // RSA: in the test above (its keys are slow to make)
        INFO(key_type_name(type));
        auto k = PrivateKey::generate(type);
        REQUIRE(k);
        auto back = PrivateKey::from_pem(k->pem());
        REQUIRE(back);
        CHECK(back->keyid() == k->keyid());
        auto pub = public_key_from_pem(k->public_pem());
        REQUIRE(pub);
        CHECK(pub->identity() == k->public_key().identity());
        auto sig = k->sign("data");
        REQUIRE(sig);
        CHECK(verify_signature(*pub, "data", *sig));
        CHECK(!verify_signature(*pub, "datA", *sig));
    }
    CHECK_THAT(error_of(PrivateKey::from_pem("nonsense")), Catch::Contains("not an unencrypted PEM private key"));
    CHECK_THAT(error_of(parse_key_type("dsa")), Catch::Contains("unknown key type `dsa`"));
    CHECK(*parse_duration("90d") == 90 * 86400);
    CHECK(*parse_duration("12h") == 12 * 3600);
    CHECK(!parse_duration("12"));
    CHECK(!parse_duration("-1d"));
}
