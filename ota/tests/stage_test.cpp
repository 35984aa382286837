// Staging an app revision against a local store (images written into the
// store by the test, no registry): the manifest's options in each bundle's
// config.json, named volumes and notify directories, bundles kept on a
// second staging, all or nothing on a failing container, a missing device
// or a full disk, and remove_revision_bundles. Needs root (the rootfs mounts).
#include <catch2/catch.hpp>

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include "image/pull.hpp"
#include "image/stage.hpp"
#include "image/store.hpp"
#include "image/tests/tar_builder.hpp"
#include "ota/stage.hpp"
#include "util/dir.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/tests/tmpdir.hpp"

using namespace ota;
namespace json = util::json;

namespace {

std::string desc(std::string_view mt, const std::string &data) {
    return "{\"mediaType\":\"" + std::string(mt) + "\",\"digest\":\"" + img::Digest::of(data).str() +
           "\",\"size\":" + std::to_string(data.size()) + "}";
}

/// A device root on its own tmpfs (so a test can fill it), a store in it
/// and an accept-anything policy; every mount under it is gone at the end.
struct Device {
    TempDir t;
    util::DeviceRoot root{t / "root"};
    img::Policy policy = *img::Policy::parse(R"({"default":[{"type":"insecureAcceptAnything"}]})", "policy");
    std::vector<std::string> notes;

    explicit Device(const char *size = "64m") {
        REQUIRE(util::mkdir_p(root.dir()));
        REQUIRE(::mount("tmpfs", root.dir().c_str(), "tmpfs", 0, (std::string("size=") + size).c_str()) == 0);
        REQUIRE(img::Store::open(root.store()));
    }
    ~Device() {
        if (auto names = util::list_dir(root.containers()))
            for (const auto &n : *names) (void)::umount2((root.container(n) + "/rootfs").c_str(), MNT_DETACH);
        (void)::umount2(root.dir().c_str(), MNT_DETACH);
    }

    /// Stores a one-layer image ("/bin/app", `files` and an /etc/passwd
    /// with root and svc) under repository `repo` and returns its pinned reference.
    std::string image(const std::string &repo, const std::vector<std::pair<std::string, std::string>> &files = {},
                      const std::string &config_extra = "", const std::function<void(TarBuilder &)> &more = {}) {
        TarBuilder l;
        l.dir("etc").file("etc/passwd", "root:x:0:0::/root:/bin/sh\nsvc:x:2000:2001::/srv:/bin/sh\n");
        l.file("bin/app", "#!/bin/sh\n", TarBuilder::Opts(0755));
        for (const auto &[p, d] : files) l.file(p, d);
        if (more) more(l);
        std::string layer = l.finish();
        std::string cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/app\"],"
                          "\"WorkingDir\":\"/img\"" + config_extra + "},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" +
                          img::Digest::of(layer).str() + "\"]}}";
        std::string m = "{\"schemaVersion\":2,\"mediaType\":\"" + std::string(img::media::kOciManifest) +
                        "\",\"config\":" + desc(img::media::kOciConfig, cfg) + ",\"layers\":[" +
                        desc(img::media::kOciLayer, layer) + "]}";
        auto s = img::Store::open(root.store());
        REQUIRE(s);
        for (const auto &b : {layer, cfg, m}) REQUIRE(s->put_blob(img::Digest::of(b), b));
        std::string ref = "reg.example/" + repo + "@" + img::Digest::of(m).str();
        REQUIRE(s->set_ref(img::store_ref_name(*img::Reference::parse(ref)), img::Digest::of(m)));
        return ref;
    }

    StageContext context() {
        StageContext ctx;
        ctx.root = root;
        ctx.policy = &policy;
        ctx.platform = *img::Platform::parse("linux/amd64");
        ctx.open_registry = [](const img::Reference &r) -> util::Result<img::Registry> {
            return util::Error::msg("no registry in this test (" + r.str() + ")");
        };
        ctx.note = [this](std::string_view e, std::string_view d) { notes.push_back(std::string(e) + " " + std::string(d)); };
        ctx.run_dir = t / "run";
        return ctx;
    }

    bool has_bundle(const std::string &id) const { return util::path_exists(root.container(id)); }
    json::Value config(const std::string &id) const {
        auto text = util::read_file(root.container(id) + "/config.json");
        REQUIRE(text);
        return *json::parse(*text, "config.json");
    }
};

/// The bundles left under containers/ (image.json and friends aside).
size_t bundles(const Device &d) {
    auto names = util::list_dir(d.root.containers());
    return names ? names->size() : 0;
}

bool is_root() { return geteuid() == 0; }

#define NEEDS_ROOT()                          \
    if (!is_root()) {                         \
        WARN("skipped: needs root (mounts)"); \
        return;                               \
    }

ContainerSpec spec(const std::string &name, const std::string &image) {
    ContainerSpec c;
    c.name = name;
    c.image = image;
    return c;
}

Revision revision(uint64_t version, std::vector<ContainerSpec> containers) {
    Revision r;
    r.version = version;
    r.name = "test";
    r.containers = std::move(containers);
    r.digest = "sha256:" + std::string(64, static_cast<char>('0' + version % 10));
    return r;
}

/// A one-container revision (`a`, version `v`, a health check of `kind`), staged.
Revision staged_one(Device &d, uint64_t v, HealthKind kind = HealthKind::None) {
    ContainerSpec a = spec("a", d.image("a"));
    a.health.kind = kind;
    Revision rev = revision(v, {a});
    REQUIRE(stage_revision(rev, d.context()));
    return rev;
}

/// The error of staging `rev`, which must fail.
std::string stage_error(Device &d, const Revision &rev) {
    auto st = stage_revision(rev, d.context());
    REQUIRE_FALSE(st);
    return st.error().message();
}

bool has(const json::Value &list, const std::string &s) { return std::find(list.begin(), list.end(), s) != list.end(); }

json::Value mount_at(const json::Value &config, const std::string &dest) {
    for (const auto &m : config["mounts"])
        if (m["destination"] == dest) return m;
    return json::Value();
}

bool has_namespace(const json::Value &config, const std::string &type) {
    for (const auto &n : config["linux"]["namespaces"])
        if (n["type"] == type) return true;
    return false;
}

}  // namespace

TEST_CASE("a two-container revision stages both bundles with the manifest's options", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    ContainerSpec web = spec("web", d.image("web"));
    web.args = {"--port", "8080"};
    web.env = {"MODE=prod"};
    web.workdir = "/srv/www";
    web.user = "svc";
    web.capabilities = {"CAP_NET_ADMIN"};
    web.memory_bytes = 32ull << 20;
    web.cpu_millis = 250;
    web.pids = 100;
    web.volumes = {{"content", "/srv/www/data", false}, {"certs", "/etc/certs", true}};
    ContainerSpec db = spec("db", d.image("db"));
    db.network = NetworkMode::Host;
    db.devices = {{"/dev/null", "rw"}};
    db.depends_on = {};
    Revision rev = revision(3, {db, web});
    REQUIRE(stage_revision(rev, d.context()));

    REQUIRE(d.has_bundle("web.r3"));
    REQUIRE(d.has_bundle("db.r3"));
    auto w = d.config("web.r3");
    CHECK(w["process"]["args"] == json::Value::array({"--port", "8080"}));
    CHECK(w["process"]["cwd"] == "/srv/www");
    CHECK(w["process"]["user"]["uid"] == 2000);
    CHECK(w["process"]["user"]["gid"] == 2001);
    CHECK(has(w["process"]["env"], "MODE=prod"));
    CHECK(has(w["process"]["capabilities"]["bounding"], "CAP_NET_ADMIN"));
    CHECK(has(w["process"]["capabilities"]["effective"], "CAP_NET_ADMIN"));
    CHECK(w["linux"]["resources"]["memory"]["limit"] == (32ull << 20));
    CHECK(w["linux"]["resources"]["cpu"]["quota"] == 25000);
    CHECK(w["linux"]["resources"]["pids"]["limit"] == 100);
    CHECK(has_namespace(w, "network"));
    CHECK(mount_at(w, "/srv/www/data")["source"] == d.root.volumes() + "/content");
    CHECK(has(mount_at(w, "/etc/certs")["options"], "ro"));
    CHECK(util::path_exists(d.root.volumes() + "/content"));
    CHECK(util::path_exists(d.root.volumes() + "/certs"));
    CHECK(w["annotations"][kRevisionAnnotation] == "3");
    CHECK(w["annotations"][kAppAnnotation] == "web");
    CHECK(w["annotations"][kRevisionDigestAnnotation] == rev.digest);
    CHECK(w["hostname"] == "web");

    auto b = d.config("db.r3");
    CHECK_FALSE(has_namespace(b, "network"));
    CHECK(b["process"]["cwd"] == "/img");  // the image's
    CHECK(b["process"]["args"] == json::Value::array({"/bin/app"}));
    CHECK(b["linux"]["resources"]["pids"]["limit"] == 2048);
    REQUIRE(b["linux"]["devices"].size() == 1);
    CHECK(b["linux"]["devices"][0]["path"] == "/dev/null");
    CHECK(b["linux"]["devices"][0]["major"] == 1);
    CHECK(b["linux"]["devices"][0]["minor"] == 3);
    const auto &rules = b["linux"]["resources"]["devices"];
    CHECK(rules[rules.size() - 1]["access"] == "rw");
    CHECK(b["annotations"][kAppAnnotation] == "db");
    CHECK(b["annotations"][img::kImageAnnotation] == db.image);
    REQUIRE(remove_revision_bundles(rev, d.root));
}

TEST_CASE("a ready check gets the notify directory and NOTIFY_SOCKET", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision rev = staged_one(d, 1, HealthKind::Ready);
    std::string dir = notify_dir(d.context().run_dir, "a.r1");
    CHECK(util::path_exists(dir));
    auto c = d.config("a.r1");
    auto m = mount_at(c, "/run/berth-notify");
    REQUIRE(m.is_object());
    CHECK(m["source"] == dir);
    CHECK(m["type"] == "bind");
    CHECK(has(c["process"]["env"], std::string("NOTIFY_SOCKET=") + kNotifySocketInContainer));
    REQUIRE(remove_revision_bundles(rev, d.root));
}

TEST_CASE("a kept bundle gets its notify directory back (after a reboot emptied the run directory)", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision rev = staged_one(d, 1, HealthKind::Ready);
    auto ctx = d.context();
    REQUIRE(util::remove_tree(ctx.run_dir));
    REQUIRE(stage_revision(rev, ctx));
    CHECK(util::path_exists(notify_dir(ctx.run_dir, "a.r1")));
    REQUIRE(remove_revision_bundles(rev, d.root));
}

TEST_CASE("a kept bundle gets its rootfs mounted again (after a reboot unmounted it)", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision rev = staged_one(d, 1);
    std::string rootfs = d.root.container("a.r1") + "/rootfs";
    REQUIRE(util::atomic_write_file(rootfs + "/written", "kept"));
    REQUIRE(::umount2(rootfs.c_str(), 0) == 0);
    REQUIRE_FALSE(util::path_exists(rootfs + "/bin/app"));
    REQUIRE(stage_revision(rev, d.context()));
    CHECK(util::path_exists(rootfs + "/bin/app"));
    CHECK(util::read_file(rootfs + "/written").value_or("") == "kept");
    REQUIRE(remove_revision_bundles(rev, d.root));
}

TEST_CASE("a mounted kept bundle reached through a symlinked device root is not mounted twice", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision rev = staged_one(d, 1);
    REQUIRE(::symlink(d.root.dir().c_str(), (d.t / "link").c_str()) == 0);
    auto ctx = d.context();
    ctx.root = util::DeviceRoot(d.t / "link");
    REQUIRE(stage_revision(rev, ctx));
    std::string rootfs = d.root.container("a.r1") + "/rootfs";
    REQUIRE(::umount2(rootfs.c_str(), 0) == 0);
    CHECK_FALSE(util::path_exists(rootfs + "/bin/app"));  // it was mounted once only
    REQUIRE(remove_revision_bundles(rev, d.root));
}

TEST_CASE("a container without a ready check gets no notify mount", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision rev = staged_one(d, 1);
    auto c = d.config("a.r1");
    CHECK_FALSE(mount_at(c, "/run/berth-notify").is_object());
    for (const auto &e : c["process"]["env"]) CHECK(e.get<std::string>().rfind("NOTIFY_SOCKET=", 0) != 0);
    CHECK_FALSE(util::path_exists(notify_dir(d.context().run_dir, "a.r1")));
    REQUIRE(remove_revision_bundles(rev, d.root));
}

TEST_CASE("an image missing from the store and registry fails naming the container, leaving no bundle", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    ContainerSpec ready = spec("first", d.image("first"));
    ready.health.kind = HealthKind::Ready;
    ContainerSpec missing = spec("second", "reg.example/gone@sha256:" + std::string(64, 'a'));
    Revision rev = revision(2, {ready, missing});
    auto ctx = d.context();
    std::string err = stage_error(d, rev);
    CHECK(err.rfind("stage `second`: ", 0) == 0);
    CHECK(bundles(d) == 0);
    CHECK_FALSE(util::path_exists(notify_dir(ctx.run_dir, "first.r2")));
}

TEST_CASE("a missing device fails naming its field before anything is staged", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    ContainerSpec a = spec("a", d.image("a"));
    ContainerSpec b = spec("b", d.image("b"));
    b.devices = {{"/dev/null", "rwm"}, {"/dev/berth-no-such-device", "rwm"}};
    b.index = 1;  // second in the document, first to start
    Revision rev = revision(1, {b, a});
    auto st = stage_revision(rev, d.context());
    REQUIRE_FALSE(st);
    INFO(st.error().message());
    CHECK(st.error().message().find("stage `b`") != std::string::npos);
    CHECK(st.error().message().find("containers[1].devices[1]") != std::string::npos);
    CHECK(st.error().code == ENOENT);
    CHECK(bundles(d) == 0);
}

TEST_CASE("a device path that is no device node is refused", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    ContainerSpec a = spec("a", d.image("a"));
    a.devices = {{"/etc/hostname", "r"}};
    auto st = stage_revision(revision(1, {a}), d.context());
    REQUIRE_FALSE(st);
    CHECK(st.error().message().find("containers[0].devices[0]") != std::string::npos);
    CHECK(st.error().message().find("not a device node") != std::string::npos);
}

TEST_CASE("staging a revision again keeps its bundles", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision rev = staged_one(d, 4);
    REQUIRE(util::atomic_write_file(d.root.container("a.r4") + "/marker", "x"));
    d.notes.clear();
    REQUIRE(stage_revision(rev, d.context()));
    CHECK(util::path_exists(d.root.container("a.r4") + "/marker"));
    CHECK(std::find(d.notes.begin(), d.notes.end(), "kept a.r4") != d.notes.end());
    REQUIRE(remove_revision_bundles(rev, d.root));
}

TEST_CASE("a failure keeps the bundles this call did not make", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision old = staged_one(d, 5);
    // The same revision with two more containers: b stages, c is missing.
    Revision rev = old;
    rev.containers.push_back(spec("b", d.image("b")));
    rev.containers.push_back(spec("c", "reg.example/gone@sha256:" + std::string(64, 'b')));
    std::string err = stage_error(d, rev);
    CHECK(err.rfind("stage `c`: ", 0) == 0);
    CHECK(d.has_bundle("a.r5"));
    CHECK(util::path_exists(d.root.container("a.r5") + "/config.json"));
    CHECK_FALSE(d.has_bundle("b.r5"));
    CHECK_FALSE(d.has_bundle("c.r5"));
    REQUIRE(remove_revision_bundles(old, d.root));
}

TEST_CASE("a partial bundle left by a crash is rebuilt", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision rev = revision(6, {spec("a", d.image("a"))});
    REQUIRE(util::mkdir_p(d.root.container("a.r6") + "/rootfs"));  // no config.json: create_bundle never finished
    REQUIRE(stage_revision(rev, d.context()));
    CHECK(util::path_exists(d.root.container("a.r6") + "/config.json"));
    CHECK(util::path_exists(d.root.container("a.r6") + "/rootfs/bin/app"));
    REQUIRE(remove_revision_bundles(rev, d.root));
}

TEST_CASE("a bundle of another document of the same version is refused, not reused", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision first = staged_one(d, 7);
    Revision other = first;
    other.digest = "sha256:" + std::string(64, 'f');
    std::string err = stage_error(d, other);
    CHECK(err.find("stage `a`") != std::string::npos);
    CHECK(err.find("another document") != std::string::npos);
    CHECK(d.has_bundle("a.r7"));  // still the first one's
    REQUIRE(remove_revision_bundles(first, d.root));
}

TEST_CASE("named volumes exist before staging and survive a failure and the removal", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    REQUIRE(util::mkdir_p(d.root.volumes() + "/data"));
    REQUIRE(util::atomic_write_file(d.root.volumes() + "/data/keep", "precious"));
    ContainerSpec a = spec("a", d.image("a"));
    a.volumes = {{"data", "/data", false}, {"fresh", "/fresh", false}};
    Revision rev = revision(8, {a});
    REQUIRE(stage_revision(rev, d.context()));
    REQUIRE(remove_revision_bundles(rev, d.root));
    CHECK(bundles(d) == 0);
    CHECK(util::read_file(d.root.volumes() + "/data/keep").value_or("") == "precious");
    CHECK(util::path_exists(d.root.volumes() + "/fresh"));
    // A failing staging leaves them too.
    rev.containers.push_back(spec("b", "reg.example/gone@sha256:" + std::string(64, 'c')));
    REQUIRE_FALSE(stage_revision(rev, d.context()));
    CHECK(util::read_file(d.root.volumes() + "/data/keep").value_or("") == "precious");
    CHECK(util::path_exists(d.root.volumes() + "/fresh"));
}

TEST_CASE("a volume name that is not one path component is refused before any directory is made", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    ContainerSpec a = spec("a", d.image("a"));
    a.volumes = {{"../escape", "/data", false}};
    std::string err = stage_error(d, revision(1, {a}));
    CHECK(err.find("stage `a`") != std::string::npos);
    CHECK(err.find("../escape") != std::string::npos);
    CHECK_FALSE(util::path_exists(d.root.dir() + "/escape"));
    CHECK(bundles(d) == 0);
}

namespace {
struct stat stat_of(const std::string &path) {
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st;
}
}  // namespace

TEST_CASE("a new named volume takes the owner and mode of the image's directory at its path", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    ContainerSpec a = spec("a", d.image("a", {}, "", [](TarBuilder &l) {
        l.dir("srv", TarBuilder::Opts(0755)).dir("srv/data", TarBuilder::Opts(0750, 1234, 4321));
    }));
    a.volumes = {{"data", "/srv/data", false}};
    REQUIRE(stage_revision(revision(1, {a}), d.context()));
    auto st = stat_of(d.root.volumes() + "/data");
    CHECK(st.st_uid == 1234);
    CHECK(st.st_gid == 4321);
    CHECK((st.st_mode & 07777) == 0750);
}

TEST_CASE("a new named volume at a path the image lacks is the container user's", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    ContainerSpec a = spec("a", d.image("a"));
    a.user = "svc";
    a.volumes = {{"fresh", "/fresh", false}};
    REQUIRE(stage_revision(revision(1, {a}), d.context()));
    auto st = stat_of(d.root.volumes() + "/fresh");
    CHECK(st.st_uid == 2000);
    CHECK(st.st_gid == 2001);
}

TEST_CASE("an existing named volume keeps its owner and mode", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    REQUIRE(util::mkdir_p(d.root.volumes() + "/old", 0700));
    ContainerSpec a = spec("a", d.image("a"));
    a.user = "svc";
    a.volumes = {{"old", "/old", false}};
    REQUIRE(stage_revision(revision(1, {a}), d.context()));
    auto st = stat_of(d.root.volumes() + "/old");
    CHECK(st.st_uid == 0);
    CHECK((st.st_mode & 07777) == 0700);
}

TEST_CASE("remove_revision_bundles removes mounted bundles and accepts missing ones", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision rev = revision(9, {spec("a", d.image("a")), spec("b", d.image("b"))});
    REQUIRE(stage_revision(rev, d.context()));
    auto store = img::Store::open(d.root.store());
    REQUIRE(store);
    REQUIRE(img::remove_bundle(*store, "b.r9"));  // one gone already
    REQUIRE(remove_revision_bundles(rev, d.root));
    CHECK(bundles(d) == 0);
    std::string mountinfo = util::read_file("/proc/self/mountinfo").value_or("");
    CHECK(mountinfo.find(d.root.containers()) == std::string::npos);
    REQUIRE(remove_revision_bundles(rev, d.root));  // nothing left: fine
}

TEST_CASE("an image volume of a manifest container is kept under the container's name", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision rev = revision(10, {spec("a", d.image("a", {}, ",\"Volumes\":{\"/state\":{}}"))});
    REQUIRE(stage_revision(rev, d.context()));
    CHECK(mount_at(d.config("a.r10"), "/state")["source"] == d.root.volumes() + "/.image/a/state");
    REQUIRE(remove_revision_bundles(rev, d.root));
    CHECK(util::path_exists(d.root.volumes() + "/.image/a/state"));
}

TEST_CASE("a failure after a bundle is staged removes it (failpoint)", "[stage][root]") {
    NEEDS_ROOT();
    Device d;
    Revision rev = revision(11, {spec("a", d.image("a")), spec("b", d.image("b"))});
    util::failpoint_arm("ota.stage.bundle", util::FailAction::Error, 2);
    auto st = stage_revision(rev, d.context());
    util::failpoint_clear();
    REQUIRE_FALSE(st);
    CHECK(st.error().message().rfind("stage `b`: ", 0) == 0);
    CHECK(bundles(d) == 0);
}

TEST_CASE("a full disk while staging removes the partial bundles", "[stage][root]") {
    NEEDS_ROOT();
    Device d("6m");
    // A 4 MiB layer (random: no compression helps) fits as a blob but not
    // unpacked beside it.
    std::string big(4 << 20, '\0');
    {
        auto fd = util::open_file("/dev/urandom", O_RDONLY | O_CLOEXEC);
        REQUIRE(fd);
        REQUIRE(::read(fd->get(), big.data(), big.size()) == static_cast<ssize_t>(big.size()));
    }
    std::string small = d.image("small");
    std::string huge = d.image("huge", {{"big", big}});
    Revision rev = revision(12, {spec("small", small), spec("huge", huge)});
    auto st = stage_revision(rev, d.context());
    REQUIRE_FALSE(st);
    INFO(st.error().message());
    CHECK(st.error().message().rfind("stage `huge`: ", 0) == 0);
    CHECK(st.error().code == ENOSPC);
    CHECK(bundles(d) == 0);
}
