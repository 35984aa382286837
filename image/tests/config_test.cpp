// Image config -> runtime config: users from the image's /etc/passwd and
// /etc/group (and what an image may put there instead of a file),
// Entrypoint/Cmd/Env/WorkingDir, Volumes, StopSignal, Labels, and the
// confinement every image-mode container gets: devices, pids, seccomp.
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
            CHECK(m["source"] == t / "volumes/web_data");
        }
    CHECK(vol);
    CHECK(util::path_exists(t / "volumes/web_data"));
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
