// Image config -> runtime config: users from the image's /etc/passwd and
// /etc/group (and what an image may put there instead of a file),
// Entrypoint/Cmd/Env/WorkingDir, Volumes, StopSignal, Labels, and the
// confinement every image-mode container gets: devices, pids, seccomp; and
// what an update manifest adds (cwd, user, capabilities, devices, memory,
// cpu, pids, network, named volumes, extra mounts).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "image/config.hpp"
#include "util/file.hpp"
#include "util/tests/tmpdir.hpp"

using namespace img;

namespace {
const char *kConfig = R"({"architecture":"arm","variant":"v7","os":"linux",
 "config":{"User":"app","Env":["PATH=/app/bin:/bin","A=1"],"Entrypoint":["/app/run"],"Cmd":["--serve"],
  "WorkingDir":"/app","Volumes":{"/data":{}},"StopSignal":"SIGINT","Labels":{"version":"2.0"}},
 "rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}})";
}

TEST_CASE("image config parsing", "[config]") {
    auto c = parse_image_config(kConfig);
    REQUIRE(c);
    CHECK(c->platform.str() == "linux/arm/v7");
    CHECK(c->diff_ids.size() == 1);
    CHECK(c->user == "app");
    CHECK(c->volumes == std::vector<std::string>{"/data"});
    CHECK(c->labels.at("version") == "2.0");
    CHECK_FALSE(parse_image_config("{\"config\":{}}"));
    CHECK_FALSE(parse_image_config("{\"rootfs\":{\"diff_ids\":[\"md5:x\"]}}"));
    CHECK_FALSE(parse_image_config("{\"rootfs\":{},\"config\":{\"Cmd\":\"sh\"}}"));
}

TEST_CASE("users resolved in the image's passwd and group", "[config]") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "etc"));
    REQUIRE(util::atomic_write_file(t / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"));
    REQUIRE(util::atomic_write_file(t / "etc/group", "root:x:0:\napp:x:1001:\nstaff:x:50:app,other\naudio:x:29:other\n"));
    auto fd = util::open_file(t.path, O_RDONLY | O_DIRECTORY);
    REQUIRE(fd);
    auto u = resolve_user(fd->get(), "app");
    REQUIRE(u);
    CHECK(u->uid == 1000);
    CHECK(u->gid == 1001);
    CHECK(u->home == "/home/app");
    CHECK(u->additional_gids == std::vector<uint32_t>{50});
    CHECK(resolve_user(fd->get(), "app:staff")->gid == 50);
    CHECK(resolve_user(fd->get(), "1000")->uid == 1000);
    CHECK(resolve_user(fd->get(), "4242:4343")->gid == 4343);
    CHECK(resolve_user(fd->get(), "")->uid == 0);
    CHECK_FALSE(resolve_user(fd->get(), "nobody"));
    CHECK_FALSE(resolve_user(fd->get(), "app:nogroup"));
    // A hostile image whose /etc/passwd is a symlink to the host's: read inside the rootfs only.
    TempDir h;
    REQUIRE(util::mkdir_p(h / "etc"));
    REQUIRE(symlink("/etc/passwd", (h / "etc/passwd").c_str()) == 0);
    auto hfd = util::open_file(h.path, O_RDONLY | O_DIRECTORY);
    CHECK_FALSE(resolve_user(hfd->get(), "root"));  // the host has root; the image has no passwd
}

TEST_CASE("runtime config from the image config", "[config]") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "rootfs/etc"));
    REQUIRE(util::atomic_write_file(t / "rootfs/etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n"));
    auto fd = util::open_file(t / "rootfs", O_RDONLY | O_DIRECTORY);
    auto c = parse_image_config(kConfig);
    RuntimeConfigOptions o;
    o.volumes_dir = t / "volumes";
    o.volume_prefix = "web";
    o.extra_env = {"A=2"};
    auto r = runtime_config(*c, fd->get(), o);
    REQUIRE(r);
    auto &v = *r;
    CHECK(v["process"]["args"] == util::json::Value::array({"/app/run", "--serve"}));
    CHECK(v["process"]["user"]["uid"] == 1000);
    CHECK(v["process"]["cwd"] == "/app");
    auto env = v["process"]["env"];
    CHECK(std::find(env.begin(), env.end(), "PATH=/app/bin:/bin") != env.end());
    CHECK(std::find(env.begin(), env.end(), "A=2") != env.end());
    CHECK(std::find(env.begin(), env.end(), "A=1") == env.end());
    CHECK(std::find(env.begin(), env.end(), "HOME=/home/app") != env.end());
    CHECK(v["process"]["capabilities"]["bounding"].size() == 11);
    CHECK(v["annotations"]["org.opencontainers.image.stopSignal"] == "SIGINT");
    CHECK(v["annotations"]["version"] == "2.0");
    bool vol = false;
    for (auto &m : v["mounts"])
        if (m["destination"] == "/data") {
            vol = true;
            CHECK(m["source"] == t / "volumes/.image/web/data");
        }
    CHECK(vol);
    CHECK(util::path_exists(t / "volumes/.image/web/data"));
    CHECK(v["linux"]["namespaces"].size() == 5);
    CHECK(v["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO");
    CHECK(v["linux"]["maskedPaths"].size() == 11);
    o.args = {"/bin/sh"};
    CHECK(runtime_config(*c, fd->get(), o)->at("process").at("args") == util::json::Value::array({"/app/run", "/bin/sh"}));
}

namespace {

/// The runtime config of kConfig over an empty rootfs.
util::json::Value plain_runtime_config() {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "rootfs/etc"));
    REQUIRE(util::atomic_write_file(t / "rootfs/etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n"));
    auto fd = util::open_file(t / "rootfs", O_RDONLY | O_DIRECTORY);
    REQUIRE(fd);
    auto r = runtime_config(*parse_image_config(kConfig), fd->get(), RuntimeConfigOptions());
    REQUIRE(r);
    return *r;
}

/// The seccomp rules naming `syscall`.
std::vector<util::json::Value> rules_for(const util::json::Value &seccomp, const std::string &syscall) {
    std::vector<util::json::Value> out;
    for (const auto &r : seccomp["syscalls"])
        for (const auto &n : r["names"])
            if (n == syscall) out.push_back(r);
    return out;
}

/// Runs resolve_user in a child so that a read that blocks is a failure,
/// not a hung test: true when it returned an error within 10 seconds.
bool refused_without_blocking(int rootfd, const char *user) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(resolve_user(rootfd, user) ? 1 : 0);
    for (int i = 0; i < 1000; ++i) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        timespec ts{0, 10 * 1000 * 1000};
        nanosleep(&ts, nullptr);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return false;
}

}  // namespace

TEST_CASE("image-mode config denies every device but the default ones", "[config]") {
    auto v = plain_runtime_config();
    const auto &devices = v["linux"]["resources"]["devices"];
    REQUIRE(devices.size() > 1);
    CHECK(devices[0]["allow"] == false);
    CHECK(devices[0]["access"] == "rwm");
    CHECK_FALSE(devices[0].contains("type"));
    bool null_allowed = false;
    for (const auto &d : devices) {
        if (!d.value("allow", false)) continue;
        std::string type = d.value("type", "a");
        CHECK(type != "a");  // nothing re-allows everything
        if (type == "b") CHECK(d.value("access", "") == "m");  // no block device is usable
        if (type == "c" && d.value("major", -1) == 1 && d.value("minor", -1) == 3) null_allowed = true;
    }
    CHECK(null_allowed);
    CHECK_FALSE(v["linux"].contains("devices"));
}

TEST_CASE("image volumes on /proc, /sys, /dev or the root are refused", "[config]") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "rootfs/etc"));
    REQUIRE(util::atomic_write_file(t / "rootfs/etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n"));
    auto fd = util::open_file(t / "rootfs", O_RDONLY | O_DIRECTORY);
    REQUIRE(fd);
    RuntimeConfigOptions o;
    o.volumes_dir = t / "volumes";
    o.volume_prefix = "v";
    auto with_volume = [&](const std::string &dest) {
        auto c = parse_image_config(kConfig);
        REQUIRE(c);
        c->volumes = {dest};
        return runtime_config(*c, fd->get(), o);
    };
    for (const char *bad : {"/proc", "/proc/sys/kernel", "/sys", "/sys/fs/cgroup", "/dev", "/dev/shm", "/",
                            "//proc/./self", "/data/../../proc/1", "proc/sys", "/x/.."}) {
        INFO(bad);
        auto r = with_volume(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("volume") != std::string::npos);
    }
    for (const char *good : {"/data", "/var/lib/app", "/processes", "/system", "/devices"}) {
        INFO(good);
        CHECK(with_volume(good));
    }
}

TEST_CASE("image-mode config limits the number of processes", "[config]") {
    auto v = plain_runtime_config();
    CHECK(v["linux"]["resources"]["pids"]["limit"] == 2048);
}

TEST_CASE("default seccomp refuses namespace flags on clone and makes clone3 ENOSYS", "[config][seccomp]") {
    auto s = default_seccomp();
    CHECK(s["defaultAction"] == "SCMP_ACT_ERRNO");
    CHECK(s["defaultErrnoRet"] == ENOSYS);
    // clone: allowed only with no namespace flag; each namespace flag EPERM.
    auto clone = rules_for(s, "clone");
    REQUIRE_FALSE(clone.empty());
    bool plain_allowed = false;
    std::vector<uint64_t> refused_flags;
    for (const auto &r : clone) {
        REQUIRE(r["args"].size() == 1);
        const auto &a = r["args"][0];
        CHECK(a["index"] == 0);
        CHECK(a["op"] == "SCMP_CMP_MASKED_EQ");
        if (r["action"] == "SCMP_ACT_ALLOW") {
            plain_allowed = true;
            CHECK(a["valueTwo"] == 0);
            const uint64_t all[] = {CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS,    CLONE_NEWPID,
                                    CLONE_NEWUTS,  CLONE_NEWIPC, CLONE_NEWCGROUP};
            for (uint64_t f : all) CHECK((a["value"].get<uint64_t>() & f) == f);
        } else {
            CHECK(r["action"] == "SCMP_ACT_ERRNO");
            CHECK(r["errnoRet"] == EPERM);
            CHECK(a["value"] == a["valueTwo"]);
            refused_flags.push_back(a["value"].get<uint64_t>());
        }
    }
    CHECK(plain_allowed);
    CHECK(std::find(refused_flags.begin(), refused_flags.end(), uint64_t(CLONE_NEWUSER)) != refused_flags.end());
    CHECK(refused_flags.size() == 7);
    auto clone3 = rules_for(s, "clone3");
    REQUIRE(clone3.size() == 1);
    CHECK(clone3[0]["action"] == "SCMP_ACT_ERRNO");
    CHECK(clone3[0]["errnoRet"] == ENOSYS);
    // The first rule naming a syscall: EPERM for the refused ones, ALLOW for what every program needs.
    const std::pair<const char *, bool> first_rules[] = {
        {"unshare", false}, {"setns", false},  {"mount", false},  {"keyctl", false},      {"bpf", false},
        {"ptrace", false},  {"init_module", false}, {"pivot_root", false}, {"read", true}, {"execve", true},
        {"fork", true},     {"vfork", true},   {"openat", true},  {"exit_group", true},   {"wait4", true},
        {"socket", true}};
    for (auto [name, allowed] : first_rules) {
        INFO(name);
        auto r = rules_for(s, name);
        REQUIRE_FALSE(r.empty());
        CHECK(r[0]["action"] == (allowed ? "SCMP_ACT_ALLOW" : "SCMP_ACT_ERRNO"));
        if (!allowed) CHECK(r[0]["errnoRet"] == EPERM);
    }
    CHECK(rules_for(s, "io_uring_setup").empty());  // not allowed: the default, ENOSYS
}

TEST_CASE("a fifo at /etc/passwd or /etc/group is refused without blocking", "[config]") {
    for (const char *file : {"etc/passwd", "etc/group"}) {
        TempDir t;
        REQUIRE(util::mkdir_p(t / "etc"));
        REQUIRE(util::atomic_write_file(t / "etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n"));
        REQUIRE(util::atomic_write_file(t / "etc/group", "app:x:1000:\n"));
        REQUIRE(unlink((t / file).c_str()) == 0);
        REQUIRE(mkfifo((t / file).c_str(), 0644) == 0);
        auto fd = util::open_file(t.path, O_RDONLY | O_DIRECTORY);
        REQUIRE(fd);
        INFO(file);
        CHECK(refused_without_blocking(fd->get(), "app"));
    }
}

TEST_CASE("a device at /etc/group is refused", "[config][root]") {
    if (geteuid() != 0) {
        WARN("skipped: needs root for mknod");
        return;
    }
    TempDir t;
    REQUIRE(util::mkdir_p(t / "etc"));
    REQUIRE(util::atomic_write_file(t / "etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n"));
    REQUIRE(mknod((t / "etc/group").c_str(), S_IFCHR | 0644, makedev(1, 3)) == 0);  // /dev/null
    auto fd = util::open_file(t.path, O_RDONLY | O_DIRECTORY);
    REQUIRE(fd);
    auto r = resolve_user(fd->get(), "app");
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("/etc/group") != std::string::npos);
    CHECK(refused_without_blocking(fd->get(), "app"));
}

TEST_CASE("an /etc/passwd larger than the bound is refused", "[config]") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "etc"));
    std::string big = "app:x:1000:1000::/home/app:/bin/sh\n";
    big += std::string(size_t(5) << 20, '#');
    REQUIRE(util::atomic_write_file(t / "etc/passwd", big));
    auto fd = util::open_file(t.path, O_RDONLY | O_DIRECTORY);
    auto r = resolve_user(fd->get(), "app");
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("/etc/passwd") != std::string::npos);
}

namespace {

/// The runtime config of kConfig over a rootfs with an `app` (1000) and an
/// `svc` (2000, group 2001) user, with `o`.
util::Result<util::json::Value> manifest_runtime_config(const RuntimeConfigOptions &o) {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "rootfs/etc"));
    REQUIRE(util::atomic_write_file(t / "rootfs/etc/passwd",
                                    "app:x:1000:1000::/home/app:/bin/sh\nsvc:x:2000:2001::/srv:/bin/sh\n"));
    auto fd = util::open_file(t / "rootfs", O_RDONLY | O_DIRECTORY);
    REQUIRE(fd);
    return runtime_config(*parse_image_config(kConfig), fd->get(), o);
}

/// The mount at `dest`, or null.
util::json::Value mount_at(const util::json::Value &config, const std::string &dest) {
    for (const auto &m : config["mounts"])
        if (m["destination"] == dest) return m;
    return util::json::Value();
}

bool has(const util::json::Value &list, const std::string &s) { return std::find(list.begin(), list.end(), s) != list.end(); }

}  // namespace

TEST_CASE("a working directory override replaces the image's", "[config][manifest]") {
    RuntimeConfigOptions o;
    o.cwd = "/srv/data";
    auto v = manifest_runtime_config(o);
    REQUIRE(v);
    CHECK((*v)["process"]["cwd"] == "/srv/data");
    o.cwd = "relative";
    CHECK_FALSE(manifest_runtime_config(o));
}

TEST_CASE("a user override is resolved in the image's passwd", "[config][manifest]") {
    RuntimeConfigOptions o;
    o.user = "svc";
    auto v = manifest_runtime_config(o);
    REQUIRE(v);
    CHECK((*v)["process"]["user"]["uid"] == 2000);
    CHECK((*v)["process"]["user"]["gid"] == 2001);
    CHECK(has((*v)["process"]["env"], "HOME=/srv"));
    o.user = "4242:4343";
    v = manifest_runtime_config(o);
    REQUIRE(v);
    CHECK((*v)["process"]["user"]["uid"] == 4242);
    CHECK((*v)["process"]["user"]["gid"] == 4343);
    o.user = "nobody-here";
    auto bad = manifest_runtime_config(o);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message().find("nobody-here") != std::string::npos);
}

TEST_CASE("extra capabilities are added to the default set, once", "[config][manifest]") {
    RuntimeConfigOptions o;
    o.extra_capabilities = {"CAP_NET_ADMIN", "CAP_CHOWN", "CAP_NET_ADMIN"};
    auto v = manifest_runtime_config(o);
    REQUIRE(v);
    for (const char *set : {"bounding", "effective", "permitted"}) {
        INFO(set);
        const auto &caps = (*v)["process"]["capabilities"][set];
        CHECK(caps.size() == default_capabilities().size() + 1);
        CHECK(has(caps, "CAP_NET_ADMIN"));
        for (const auto &d : default_capabilities()) CHECK(has(caps, d));
    }
}

TEST_CASE("a device becomes a node and an allow rule after the deny-all", "[config][manifest]") {
    RuntimeConfigOptions o;
    o.devices.push_back(DeviceNode{"/dev/ttyUSB0", 'c', 188, 0, "rw", 0660});
    auto v = manifest_runtime_config(o);
    REQUIRE(v);
    const auto &nodes = (*v)["linux"]["devices"];
    REQUIRE(nodes.size() == 1);
    CHECK(nodes[0]["path"] == "/dev/ttyUSB0");
    CHECK(nodes[0]["type"] == "c");
    CHECK(nodes[0]["major"] == 188);
    CHECK(nodes[0]["minor"] == 0);
    CHECK(nodes[0]["fileMode"] == 0660);
    const auto &rules = (*v)["linux"]["resources"]["devices"];
    CHECK(rules[0]["allow"] == false);  // the deny-all stays first
    const auto &last = rules[rules.size() - 1];
    CHECK(last["allow"] == true);
    CHECK(last["type"] == "c");
    CHECK(last["major"] == 188);
    CHECK(last["minor"] == 0);
    CHECK(last["access"] == "rw");
    CHECK(rules.size() == manifest_runtime_config(RuntimeConfigOptions())->at("linux").at("resources").at("devices").size() + 1);
}

TEST_CASE("a block device gets a block rule", "[config][manifest]") {
    RuntimeConfigOptions o;
    o.devices.push_back(DeviceNode{"/dev/sdb", 'b', 8, 16, "r", 0600});
    auto v = manifest_runtime_config(o);
    REQUIRE(v);
    CHECK((*v)["linux"]["devices"][0]["type"] == "b");
    const auto &rules = (*v)["linux"]["resources"]["devices"];
    CHECK(rules[rules.size() - 1]["type"] == "b");
    CHECK(rules[rules.size() - 1]["access"] == "r");
}

TEST_CASE("a device outside /dev, of another type or with other permissions is refused", "[config][manifest]") {
    RuntimeConfigOptions o;
    for (const auto &d : {DeviceNode{"/etc/ttyUSB0", 'c', 188, 0, "rw", 0660}, DeviceNode{"/dev/../etc/x", 'c', 1, 3, "rw", 0666},
                          DeviceNode{"/dev/", 'c', 1, 3, "rw", 0666}, DeviceNode{"dev/null", 'c', 1, 3, "rw", 0666},
                          DeviceNode{"/dev/null", 'p', 1, 3, "rw", 0666}, DeviceNode{"/dev/null", 'c', 1, 3, "", 0666},
                          DeviceNode{"/dev/null", 'c', 1, 3, "rwx", 0666}}) {
        INFO(d.path << " " << d.type << " " << d.permissions);
        o.devices = {d};
        auto r = manifest_runtime_config(o);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("device") != std::string::npos);
    }
}

TEST_CASE("a memory limit sets linux.resources.memory.limit", "[config][manifest]") {
    RuntimeConfigOptions o;
    CHECK_FALSE(manifest_runtime_config(o)->at("linux").at("resources").contains("memory"));
    o.memory_limit = 64ull << 20;
    auto v = manifest_runtime_config(o);
    REQUIRE(v);
    CHECK((*v)["linux"]["resources"]["memory"]["limit"] == (64ull << 20));
}

TEST_CASE("cpu millis become a quota over a 100 ms period", "[config][manifest]") {
    RuntimeConfigOptions o;
    CHECK_FALSE(manifest_runtime_config(o)->at("linux").at("resources").contains("cpu"));
    o.cpu_millis = 500;
    auto v = manifest_runtime_config(o);
    REQUIRE(v);
    CHECK((*v)["linux"]["resources"]["cpu"]["period"] == 100000);
    CHECK((*v)["linux"]["resources"]["cpu"]["quota"] == 50000);
    o.cpu_millis = 2500;
    CHECK(manifest_runtime_config(o)->at("linux").at("resources").at("cpu").at("quota") == 250000);
}

TEST_CASE("a pids limit override replaces the default", "[config][manifest]") {
    RuntimeConfigOptions o;
    o.pids_limit = 64;
    CHECK(manifest_runtime_config(o)->at("linux").at("resources").at("pids").at("limit") == 64);
}

TEST_CASE("host network drops the network namespace; the others stay", "[config][manifest]") {
    auto types = [](const util::json::Value &v) {
        std::vector<std::string> out;
        for (const auto &n : v["linux"]["namespaces"]) out.push_back(n["type"].get<std::string>());
        return out;
    };
    RuntimeConfigOptions o;
    CHECK(types(*manifest_runtime_config(o)) == std::vector<std::string>{"pid", "ipc", "uts", "mount", "network"});
    o.host_network = true;
    CHECK(types(*manifest_runtime_config(o)) == std::vector<std::string>{"pid", "ipc", "uts", "mount"});
}

TEST_CASE("named volumes bind volumes_dir/<name>, read-write or read-only", "[config][manifest]") {
    TempDir t;
    RuntimeConfigOptions o;
    o.volumes_dir = t / "volumes";
    o.named_volumes = {{"db", "/var/lib/db", false}, {"certs", "/etc/certs", true}};
    auto v = manifest_runtime_config(o);
    REQUIRE(v);
    auto db = mount_at(*v, "/var/lib/db");
    REQUIRE(db.is_object());
    CHECK(db["type"] == "bind");
    CHECK(db["source"] == t / "volumes/db");
    CHECK(has(db["options"], "rw"));
    auto certs = mount_at(*v, "/etc/certs");
    REQUIRE(certs.is_object());
    CHECK(certs["source"] == t / "volumes/certs");
    CHECK(has(certs["options"], "ro"));
    CHECK_FALSE(has(certs["options"], "rw"));
}

TEST_CASE("a named volume replaces the image volume at its path", "[config][manifest]") {
    TempDir t;
    RuntimeConfigOptions o;
    o.volumes_dir = t / "volumes";
    o.volume_prefix = "web";
    o.named_volumes = {{"shared", "/data", false}};
    auto v = manifest_runtime_config(o);
    REQUIRE(v);
    int at_data = 0;
    for (const auto &m : (*v)["mounts"])
        if (m["destination"] == "/data") {
            at_data++;
            CHECK(m["source"] == t / "volumes/shared");
        }
    CHECK(at_data == 1);
    CHECK_FALSE(util::path_exists(t / "volumes/.image/web/data"));
}

TEST_CASE("named volumes with a bad name or destination are refused", "[config][manifest]") {
    TempDir t;
    RuntimeConfigOptions o;
    o.volumes_dir = t / "volumes";
    for (const char *name : {"", ".", "..", "a/b", "../x"}) {
        INFO(name);
        o.named_volumes = {{name, "/data", false}};
        CHECK_FALSE(manifest_runtime_config(o));
    }
    for (const char *dest : {"/", "/proc/sys", "/dev", "/sys/x", "relative/../../proc", "data"}) {
        INFO(dest);
        o.named_volumes = {{"ok", dest, false}};
        auto r = manifest_runtime_config(o);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("ok") != std::string::npos);
    }
    o.named_volumes = {{"ok", "/data", false}};
    o.volumes_dir.clear();
    CHECK_FALSE(manifest_runtime_config(o));
}

TEST_CASE("extra mounts bind the caller's directories", "[config][manifest]") {
    RuntimeConfigOptions o;
    o.extra_mounts = {{"/run/berth/notify/web.r1", "/run/berth-notify", false}};
    auto v = manifest_runtime_config(o);
    REQUIRE(v);
    auto m = mount_at(*v, "/run/berth-notify");
    REQUIRE(m.is_object());
    CHECK(m["type"] == "bind");
    CHECK(m["source"] == "/run/berth/notify/web.r1");
    o.extra_mounts = {{"relative", "/x", false}};
    CHECK_FALSE(manifest_runtime_config(o));
    o.extra_mounts = {{"/tmp", "/proc/1", false}};
    CHECK_FALSE(manifest_runtime_config(o));
}

TEST_CASE("manifest options keep the image-mode confinement", "[config][manifest]") {
    TempDir t;
    RuntimeConfigOptions o;
    o.volumes_dir = t / "volumes";
    o.extra_capabilities = {"CAP_NET_ADMIN"};
    o.devices.push_back(DeviceNode{"/dev/ttyUSB0", 'c', 188, 0, "rwm", 0660});
    o.named_volumes = {{"db", "/db", false}};
    o.host_network = true;
    auto v = manifest_runtime_config(o);
    REQUIRE(v);
    CHECK((*v)["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO");
    CHECK((*v)["linux"]["resources"]["devices"][0]["allow"] == false);
    CHECK((*v)["process"]["noNewPrivileges"] == true);
    CHECK(has(mount_at(*v, "/db")["options"], "nodev"));
    CHECK(has(mount_at(*v, "/dev/shm")["options"], "nodev"));
}

TEST_CASE("an image volume and a named volume never share a directory", "[config][manifest]") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "rootfs/etc"));
    REQUIRE(util::atomic_write_file(t / "rootfs/etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n"));
    auto fd = util::open_file(t / "rootfs", O_RDONLY | O_DIRECTORY);
    auto c = parse_image_config(kConfig);  // an image volume at /data
    RuntimeConfigOptions o;
    o.volumes_dir = t / "volumes";
    o.volume_prefix = "web";
    // The name the image volume of web's /data once had.
    o.named_volumes = {{"web_data", "/other", false}};
    auto r = runtime_config(*c, fd->get(), o);
    REQUIRE(r);
    std::string image_src, named_src;
    for (auto &m : (*r)["mounts"]) {
        if (m["destination"] == "/data") image_src = m["source"].get<std::string>();
        if (m["destination"] == "/other") named_src = m["source"].get<std::string>();
    }
    CHECK(named_src == t / "volumes/web_data");
    CHECK_FALSE(image_src.empty());
    CHECK(image_src != named_src);
    // Two containers' image volumes either: web's /a_b and web_a's /b.
    CHECK(volume_dir(t / "volumes", "web", "/a_b") != volume_dir(t / "volumes", "web_a", "/b"));
}

TEST_CASE("an image volume kept under its legacy name moves, the old name a link to it", "[config]") {
    TempDir t;
    const std::string vols = t / "volumes";
    REQUIRE(util::mkdir_p(vols + "/web_data"));
    REQUIRE(util::atomic_write_file(vols + "/web_data/f", "kept\n"));
    REQUIRE(migrate_legacy_volume(vols, "web", "/data"));
    CHECK(util::read_file(vols + "/.image/web/data/f").value_or("") == "kept\n");
    struct stat st;
    REQUIRE(::lstat((vols + "/web_data").c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK(util::read_file(vols + "/web_data/f").value_or("") == "kept\n");  // a bundle made before binds this
    REQUIRE(migrate_legacy_volume(vols, "web", "/data"));  // again: nothing to do
    CHECK(util::read_file(vols + "/.image/web/data/f").value_or("") == "kept\n");
    // Without a legacy directory nothing is made.
    REQUIRE(migrate_legacy_volume(vols, "db", "/data"));
    CHECK_FALSE(util::path_exists(vols + "/db_data"));
    CHECK_FALSE(util::path_exists(vols + "/.image/db"));
}

TEST_CASE("an image volume move cut short by a crash is finished by the next call", "[config]") {
    TempDir t;
    const std::string vols = t / "volumes";
    // The state after the rename, before the link took the old name.
    REQUIRE(util::mkdir_p(vols + "/.image/web/data"));
    REQUIRE(util::atomic_write_file(vols + "/.image/web/data/f", "kept\n"));
    REQUIRE(::symlink(".image/web/data", (vols + "/.image/web/.data.legacy").c_str()) == 0);
    REQUIRE(migrate_legacy_volume(vols, "web", "/data"));
    CHECK(util::read_file(vols + "/web_data/f").value_or("") == "kept\n");
    CHECK_FALSE(util::path_exists(vols + "/.image/web/.data.legacy"));
}

TEST_CASE("named volume names starting with a dot are refused (.image holds image volumes)", "[config]") {
    CHECK_FALSE(valid_volume_name(".image"));
    CHECK_FALSE(valid_volume_name(".."));
    CHECK(valid_volume_name("web_data"));
}
