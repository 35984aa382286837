// The cgroup manager for real, on this host's cgroups ([root]): create in
// every hierarchy, limits that read back, a child moved in, frozen and thawed,
// listed, killed by destroy; a child OOM-killed by a tiny memory limit; and
// destroy of a frozen cgroup. Skips when not root or when the host has no
// v1/hybrid layout (a pure v2 host is covered by the temp-dir tests).
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <string>

#include "runtime/cgroup.hpp"
#include "runtime/cgroup_backend.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

using namespace rt::cgroup;

namespace {

bool skip_unless_root_v1() {
    if (geteuid() != 0) {
        WARN("skipped: needs root");
        return true;
    }
    auto mode = detect_mode();
    if (!mode || *mode == Mode::V2) {
        WARN("skipped: host cgroups are not v1 or hybrid");
        return true;
    }
    return false;
}

/// A forked child that waits for a byte on a pipe, then runs `body`.
struct Kid {
    pid_t pid = -1;
    int go = -1;
    explicit Kid(std::function<void()> body) {
        int p[2];
        REQUIRE(pipe2(p, O_CLOEXEC) == 0);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            char c;
            close(p[1]);
            if (read(p[0], &c, 1) != 1) _exit(3);
            body();
            _exit(0);
        }
        close(p[0]);
        go = p[1];
    }
    void start() {
        REQUIRE(write(go, "x", 1) == 1);
        close(go);
        go = -1;
    }
    /// Exit status from waitpid.
    int wait() {
        int st = 0;
        REQUIRE(waitpid(pid, &st, 0) == pid);
        pid = -1;
        return st;
    }
    ~Kid() {
        if (go >= 0) close(go);
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
};

bool dir_exists(const std::string &p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string read_back(const std::string &dir, const char *file) { return read_value(dir, file).value_or("<unreadable>"); }

std::string dir_of(const Manager &m, const std::string &name) {
    for (const auto &[n, d] : m.dirs()) {
        if (n == name) return d;
    }
    return {};
}

std::string unique_id(const char *what) { return util::cat("cgtest-", what, '-', getpid()); }

}  // namespace

TEST_CASE("hybrid/v1 manager: create, limits, move, freeze, list, destroy", "[root][cgroup]") {
    if (skip_unless_root_v1()) return;
    auto m = open_manager("", unique_id("life"));
    REQUIRE(m.ok());
    Manager &mgr = **m;
    auto guard = util::ScopeGuard([&] { (void)mgr.destroy(); });
    REQUIRE(mgr.create().ok());
    for (const auto &[name, dir] : mgr.dirs()) {
        INFO(dir);
        CHECK(dir_exists(dir));
    }
    bool hybrid = mgr.mode() == Mode::Hybrid;
    if (hybrid) CHECK(dir_exists("/sys/fs/cgroup/unified" + mgr.path()));

    Resources r;
    r.memory_limit = 64 << 20;
    r.memory_swap = 64 << 20;
    r.pids_limit = 50;
    r.cpu_shares = 512;
    r.cpu_quota = 50000;
    r.cpu_period = 100000;
    auto st = mgr.set(r);
    INFO((st.ok() ? std::string() : st.error().message()));
    REQUIRE(st.ok());
    CHECK(read_back(dir_of(mgr, "memory"), "memory.limit_in_bytes") == "67108864");
    CHECK(read_back(dir_of(mgr, "pids"), "pids.max") == "50");
    CHECK(read_back(dir_of(mgr, "cpu"), "cpu.shares") == "512");
    CHECK(read_back(dir_of(mgr, "cpu"), "cpu.cfs_quota_us") == "50000");
    CHECK(read_back(dir_of(mgr, "cpu"), "cpu.cfs_period_us") == "100000");

    Kid kid([] {
        for (;;) pause();
    });
    REQUIRE(mgr.add_process(kid.pid).ok());
    kid.start();
    auto pids = mgr.pids();
    REQUIRE(pids.ok());
    CHECK(std::find(pids->begin(), pids->end(), kid.pid) != pids->end());
    std::string cg = util::read_file(util::cat("/proc/", kid.pid, "/cgroup")).value_or("");
    CHECK(cg.find(util::cat(":memory:", mgr.path(), "\n")) != std::string::npos);
    if (hybrid) CHECK(cg.find(util::cat("0::", mgr.path(), "\n")) != std::string::npos);

    REQUIRE(mgr.freeze().ok());
    CHECK(mgr.frozen().value_or(false));
    CHECK(read_back(dir_of(mgr, "freezer"), "freezer.state") == "FROZEN");
    REQUIRE(mgr.thaw().ok());
    CHECK_FALSE(mgr.frozen().value_or(true));

    auto stats = mgr.stats();
    REQUIRE(stats.ok());
    CHECK(stats->pids_current == 1);
    CHECK(stats->memory_limit == 64u << 20);

    auto d = mgr.destroy();
    INFO((d.ok() ? std::string() : d.error().message()));
    REQUIRE(d.ok());
    int status = kid.wait();
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    for (const auto &[name, dir] : mgr.dirs()) {
        INFO(dir);
        CHECK_FALSE(dir_exists(dir));
    }
    CHECK(mgr.destroy().ok());  // already gone
    guard.dismiss();
}

TEST_CASE("a child over a tiny memory limit is OOM-killed and destroy cleans up", "[root][cgroup]") {
    if (skip_unless_root_v1()) return;
    auto m = open_manager("/berth-test/" + unique_id("oom"), "oom");
    REQUIRE(m.ok());
    Manager &mgr = **m;
    auto guard = util::ScopeGuard([&] {
        (void)mgr.destroy();
        for (const auto &[name, dir] : mgr.dirs()) rmdir(util::dirname(dir).c_str());
    });
    REQUIRE(mgr.create().ok());
    Resources r;
    r.memory_limit = 8 << 20;
    r.memory_swap = 8 << 20;
    REQUIRE(mgr.set(r).ok());
    Kid kid([] {
        for (size_t i = 0; i < 256; ++i) {
            char *p = static_cast<char *>(malloc(1 << 20));
            if (p) memset(p, 1, 1 << 20);
        }
        _exit(0);
    });
    REQUIRE(mgr.add_process(kid.pid).ok());
    kid.start();
    int status = kid.wait();
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    auto stats = mgr.stats();
    REQUIRE(stats.ok());
    CHECK(stats->oom_kills >= 1);
    REQUIRE(mgr.destroy().ok());
    for (const auto &[name, dir] : mgr.dirs()) {
        INFO(dir);
        CHECK_FALSE(dir_exists(dir));
    }
}

TEST_CASE("destroy kills a frozen cgroup with a forking child", "[root][cgroup]") {
    if (skip_unless_root_v1()) return;
    auto m = open_manager("", unique_id("frozen"));
    REQUIRE(m.ok());
    Manager &mgr = **m;
    auto guard = util::ScopeGuard([&] { (void)mgr.destroy(); });
    REQUIRE(mgr.create().ok());
    Kid kid([] {
        for (int i = 0; i < 5; ++i) {
            if (fork() == 0) {
                for (;;) pause();
            }
        }
        for (;;) pause();
    });
    REQUIRE(mgr.add_process(kid.pid).ok());
    kid.start();
    for (int i = 0; i < 200 && mgr.pids().value_or({}).size() < 6; ++i) usleep(5000);
    CHECK(mgr.pids().value_or({}).size() == 6);
    REQUIRE(mgr.freeze().ok());
    auto d = mgr.destroy();
    INFO((d.ok() ? std::string() : d.error().message()));
    REQUIRE(d.ok());
    int status = kid.wait();
    CHECK(WIFSIGNALED(status));
    for (const auto &[name, dir] : mgr.dirs()) CHECK_FALSE(dir_exists(dir));
    guard.dismiss();
}

TEST_CASE("every v1 field this host offers is written and reads back", "[root][cgroup]") {
    if (skip_unless_root_v1()) return;
    auto m = open_manager("", unique_id("fields"));
    REQUIRE(m.ok());
    Manager &mgr = **m;
    auto guard = util::ScopeGuard([&] { (void)mgr.destroy(); });
    REQUIRE(mgr.create().ok());
    auto v = util::json::parse(R"({
      "memory": {"limit": 33554432, "swap": 67108864, "reservation": 16777216, "swappiness": 20,
                 "kernelTCP": 8388608, "disableOOMKiller": true, "useHierarchy": true},
      "cpu": {"shares": 256, "quota": 10000, "period": 50000, "burst": 1000, "idle": 0, "cpus": "0", "mems": "0"},
      "pids": {"limit": 20},
      "blockIO": {"weight": 200},
      "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    })", "test");
    REQUIRE(v.ok());
    auto r = parse_resources(&*v);
    REQUIRE(r.ok());
    auto st = mgr.set(*r);
    INFO((st.ok() ? std::string() : st.error().message()));
    REQUIRE(st.ok());
    std::string mem = dir_of(mgr, "memory"), cpu = dir_of(mgr, "cpu"), cs = dir_of(mgr, "cpuset");
    CHECK(read_back(mem, "memory.limit_in_bytes") == "33554432");
    CHECK(read_back(mem, "memory.memsw.limit_in_bytes") == "67108864");
    CHECK(read_back(mem, "memory.soft_limit_in_bytes") == "16777216");
    CHECK(read_back(mem, "memory.swappiness") == "20");
    CHECK(read_back(mem, "memory.kmem.tcp.limit_in_bytes") == "8388608");
    CHECK(read_keyed(mem, "memory.oom_control", "oom_kill_disable").value_or(std::nullopt) == 1u);
    CHECK(read_back(cpu, "cpu.shares") == "256");
    CHECK(read_back(cpu, "cpu.cfs_quota_us") == "10000");
    CHECK(read_back(cpu, "cpu.cfs_period_us") == "50000");
    CHECK(read_back(cpu, "cpu.cfs_burst_us") == "1000");
    CHECK(read_back(cpu, "cpu.idle") == "0");  // idle 1 would force the weight to the minimum
    CHECK(read_back(cs, "cpuset.cpus") == "0");
    CHECK(read_back(cs, "cpuset.mems") == "0");
    CHECK(read_back(dir_of(mgr, "pids"), "pids.max") == "20");
    CHECK(read_back(dir_of(mgr, "blkio"), "blkio.bfq.weight").find("200") != std::string::npos);
    CHECK(read_back(dir_of(mgr, "devices"), "devices.list") == "c 1:3 rwm");

    // An update that raises the memory limit above the old memsw must still apply (memsw first).
    Resources up;
    up.memory_limit = 128 << 20;
    up.memory_swap = 256 << 20;
    st = mgr.set(up);
    INFO((st.ok() ? std::string() : st.error().message()));
    REQUIRE(st.ok());
    CHECK(read_back(mem, "memory.limit_in_bytes") == "134217728");
    CHECK(read_back(mem, "memory.memsw.limit_in_bytes") == "268435456");
    REQUIRE(mgr.destroy().ok());
    for (const auto &[name, dir] : mgr.dirs()) CHECK_FALSE(dir_exists(dir));
    guard.dismiss();
}

// The default parent ("/berth") is created once and kept: creating and
// removing it in every hierarchy on each run/delete cost about 0.3-0.5 ms a
// start on a v1 host (bench/start_time.sh).
TEST_CASE("destroy keeps berth's default parent cgroup", "[root][cgroup]") {
    if (skip_unless_root_v1()) return;
    auto m = open_manager("", unique_id("keep-parent"));
    REQUIRE(m.ok());
    Manager &mgr = **m;
    auto guard = util::ScopeGuard([&] { (void)mgr.destroy(); });
    REQUIRE(mgr.create().ok());
    REQUIRE(mgr.destroy().ok());
    for (const auto &[name, dir] : mgr.dirs()) {
        INFO(dir);
        CHECK_FALSE(dir_exists(dir));
        CHECK(dir_exists(util::dirname(dir)));
    }
}
