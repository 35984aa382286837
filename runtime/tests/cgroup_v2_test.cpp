// cgroup v2 controllers against a temporary directory: this host has no full
// v2 hierarchy, so memory/cpu/io/pids/hugetlb/unified are checked by reading
// back the files set_*_v2 writes, with the runc/crun conversions
// (shares -> weight, memory+swap -> swap.max, blkio weight -> io.weight),
// unified key validation, controller enabling, and a V2 Manager over a fake
// tree (create, set, add_process, freeze via cgroup.events, destroy).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>

#include "runtime/cgroup.hpp"
#include "runtime/cgroup_backend.hpp"
#include "util/file.hpp"
#include "runtime/tests/cgroup_test_util.hpp"
#include "util/tests/tmpdir.hpp"

using namespace rt::cgroup;

TEST_CASE("shares -> cpu.weight uses runc's and crun's formula", "[cgroup]") {
    CHECK(shares_to_weight(0) == 0);        // unset
    CHECK(shares_to_weight(2) == 1);
    CHECK(shares_to_weight(1024) == 39);    // 1 + (1022 * 9999) / 262142
    CHECK(shares_to_weight(512) == 20);
    CHECK(shares_to_weight(262144) == 10000);
    CHECK(shares_to_weight(1) == 1);        // clamped
    CHECK(shares_to_weight(1000000) == 10000);
}

TEST_CASE("blkio weight -> io.weight", "[cgroup]") {
    CHECK(blkio_weight_to_io_weight(10) == 1);
    CHECK(blkio_weight_to_io_weight(1000) == 10000);
    CHECK(blkio_weight_to_io_weight(500) == 1 + 490 * 9999 / 990);
}

TEST_CASE("memory.swap (memory+swap) -> memory.swap.max (swap only)", "[cgroup]") {
    CHECK(swap_to_v2(-1, 1 << 20).value_or(7) == -1);
    CHECK(swap_to_v2(3 << 20, 1 << 20).value_or(7) == 2 << 20);
    CHECK(swap_to_v2(1 << 20, 1 << 20).value_or(7) == 0);
    CHECK(swap_to_v2(0, -1).value_or(7) == -1);
    CHECK(swap_to_v2(0, 1 << 20).value_or(7) == 0);
    CHECK_FALSE(swap_to_v2(1 << 20, 2 << 20).ok());  // below the memory limit
    CHECK_FALSE(swap_to_v2(1 << 20, std::nullopt).ok());
    CHECK_FALSE(swap_to_v2(1 << 20, -1).ok());
}

TEST_CASE("v2 memory: max, low, swap.max", "[cgroup]") {
    TempDir t;
    touch(t.path, {"memory.max", "memory.low", "memory.swap.max"});
    touch(t.path, {"memory.current"}, "4096\n");
    Resources r;
    r.memory_limit = 1 << 20;
    r.memory_swap = 3 << 20;
    r.memory_reservation = 1 << 19;
    REQUIRE(set_memory_v2(t.path, r).ok());
    CHECK(rd(t.path, "memory.max") == "1048576");
    CHECK(rd(t.path, "memory.swap.max") == "2097152");
    CHECK(rd(t.path, "memory.low") == "524288");
    Resources unl;
    unl.memory_limit = -1;
    unl.memory_swap = -1;
    REQUIRE(set_memory_v2(t.path, unl).ok());
    CHECK(rd(t.path, "memory.max") == "max");
    CHECK(rd(t.path, "memory.swap.max") == "max");
    Resources chk;  // checkBeforeUpdate refuses a limit below the current usage
    chk.memory_limit = 1024;
    chk.memory_check_before_update = true;
    CHECK_THAT(msg(set_memory_v2(t.path, chk)), Catch::Contains("below the current usage"));
    Resources bad;
    bad.memory_limit = 2 << 20;
    bad.memory_swap = 1 << 20;
    CHECK_THAT(msg(set_memory_v2(t.path, bad)), Catch::Contains("memory.swap"));
}

TEST_CASE("v2 cpu: weight, max, burst, idle; realtime refused", "[cgroup]") {
    TempDir t;
    touch(t.path, {"cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle"});
    Resources r;
    r.cpu_shares = 1024;
    r.cpu_quota = 50000;
    r.cpu_period = 100000;
    r.cpu_burst = 2000;
    r.cpu_idle = 0;
    REQUIRE(set_cpu_v2(t.path, r).ok());
    CHECK(rd(t.path, "cpu.weight") == "39");
    CHECK(rd(t.path, "cpu.max") == "50000 100000");
    CHECK(rd(t.path, "cpu.max.burst") == "2000");
    CHECK(rd(t.path, "cpu.idle") == "0");
    Resources q;
    q.cpu_quota = -1;
    q.cpu_period = 20000;
    REQUIRE(set_cpu_v2(t.path, q).ok());
    CHECK(rd(t.path, "cpu.max") == "max 20000");
    Resources only;
    only.cpu_quota = 30000;
    REQUIRE(set_cpu_v2(t.path, only).ok());
    CHECK(rd(t.path, "cpu.max") == "30000");
    Resources rt;
    rt.cpu_realtime_runtime = 100;
    CHECK_THAT(msg(set_cpu_v2(t.path, rt)), Catch::Contains("realtime"));
}

TEST_CASE("v2 cpuset, pids, hugetlb", "[cgroup]") {
    TempDir t;
    touch(t.path, {"cpuset.cpus", "cpuset.mems", "pids.max", "hugetlb.2MB.max", "hugetlb.1GB.max"});
    Resources r;
    r.cpu_cpus = "0-1";
    r.cpu_mems = "0";
    r.pids_limit = 0;
    r.hugepage_limits = {{"2MB", 4194304}, {"1GB", 0}};
    REQUIRE(set_cpuset_v2(t.path, r).ok());
    REQUIRE(set_pids_v2(t.path, r).ok());
    REQUIRE(set_hugetlb_v2(t.path, r).ok());
    CHECK(rd(t.path, "cpuset.cpus") == "0-1");
    CHECK(rd(t.path, "cpuset.mems") == "0");
    CHECK(rd(t.path, "pids.max") == "max");
    CHECK(rd(t.path, "hugetlb.2MB.max") == "4194304");
    CHECK(rd(t.path, "hugetlb.1GB.max") == "0");
}

TEST_CASE("v2 io: weight (converted, or bfq as is), io.max", "[cgroup]") {
    TempDir t;
    touch(t.path, {"io.weight", "io.max"});
    Resources r;
    r.blkio_weight = 1000;
    r.blkio_throttle_write_iops = {{8, 0, 40}};
    REQUIRE(set_io_v2(t.path, r).ok());
    CHECK(rd(t.path, "io.weight") == "10000");
    CHECK(rd(t.path, "io.max") == "8:0 wiops=40");
    Resources d;
    d.blkio_weight_device = {WeightDevice{8, 16, 10, std::nullopt}};
    d.blkio_throttle_read_bps = {{8, 0, 0}};
    REQUIRE(set_io_v2(t.path, d).ok());
    CHECK(rd(t.path, "io.weight") == "8:16 1");
    CHECK(rd(t.path, "io.max") == "8:0 rbps=max");

    TempDir b;
    touch(b.path, {"io.bfq.weight"});
    Resources w;
    w.blkio_weight = 300;
    REQUIRE(set_io_v2(b.path, w).ok());
    CHECK(rd(b.path, "io.bfq.weight") == "300");
}

TEST_CASE("v2 unified: keys written as given, bad names refused", "[cgroup]") {
    TempDir t;
    touch(t.path, {"memory.high", "cgroup.freeze"});
    Resources r;
    r.unified = {{"memory.high", "12345"}, {"cgroup.freeze", "0"}};
    REQUIRE(set_unified_v2(t.path, r).ok());
    CHECK(rd(t.path, "memory.high") == "12345");
    for (const char *bad : {"../memory.max", "a/b", "..", ".", "", "cgroup.procs", "cgroup.subtree_control"}) {
        INFO(bad);
        CHECK_FALSE(check_unified_key(bad).ok());
    }
    Resources esc;
    esc.unified = {{"memory.high", "1"}, {"../../etc/passwd", "x"}};
    CHECK_THAT(msg(set_unified_v2(t.path, esc)), Catch::Contains("not a cgroup file name"));
    CHECK(rd(t.path, "memory.high") == "12345");  // nothing written when one key is bad
    Resources missing;
    missing.unified = {{"io.latency", "8:0 target=1"}};
    CHECK_THAT(msg(set_unified_v2(t.path, missing)), Catch::Contains("`io` controller"));
}

TEST_CASE("v2 enable_controllers writes +ctrl from the root down", "[cgroup]") {
    TempDir t;
    touch(t.path, {"cgroup.controllers"}, "cpu memory pids\n");
    touch(t.path, {"cgroup.subtree_control"});
    touch(t / "a", {"cgroup.subtree_control"}, "memory\n");
    REQUIRE(util::mkdir_p(t / "a/b/c").ok());
    touch(t / "a/b", {"cgroup.subtree_control"});
    REQUIRE(enable_controllers_v2(t.path, t / "a/b/c").ok());
    // One write per controller: a plain file keeps the last.
    CHECK(rd(t.path, "cgroup.subtree_control") == "+pids");
    CHECK(rd(t / "a", "cgroup.subtree_control") == "+pids");  // memory was there; cpu then pids written
    CHECK(rd(t / "a/b", "cgroup.subtree_control") == "+pids");
}

TEST_CASE("V2 manager over a fake tree", "[cgroup]") {
    TempDir t;
    touch(t.path, {"cgroup.controllers"}, "cpu memory pids io hugetlb cpuset\n");
    touch(t.path, {"cgroup.subtree_control"});
    ManagerOptions o;
    o.root = t.path;
    REQUIRE(detect_mode(t.path).value_or(Mode::V1) == Mode::V2);
    auto m = open_manager("/pod/c2", "c2", o);
    REQUIRE(m.ok());
    Manager &mgr = **m;
    CHECK(mgr.mode() == Mode::V2);
    touch(t / "pod", {"cgroup.subtree_control"});
    REQUIRE(mgr.create().ok());
    CHECK(rd(t / "pod", "cgroup.subtree_control") == "+cpuset");  // last of the list enabled
    std::string d = t / "pod/c2";
    touch(d, {"cgroup.controllers"}, "cpu memory pids\n");
    touch(d, {"memory.max", "memory.swap.max", "cpu.weight", "cpu.max", "pids.max", "cgroup.procs", "cgroup.freeze"});
    Resources r;
    r.memory_limit = 1 << 20;
    r.cpu_shares = 2;
    r.pids_limit = 3;
    auto st = mgr.set(r);
    INFO(msg(st));
    REQUIRE(st.ok());
    CHECK(rd(d, "memory.max") == "1048576");
    CHECK(rd(d, "cpu.weight") == "1");
    CHECK(rd(d, "pids.max") == "3");
    Resources io;
    io.blkio_weight = 100;
    CHECK_THAT(msg(mgr.set(io)), Catch::Contains("`io` controller is not available"));
    REQUIRE(mgr.add_process(77).ok());
    CHECK(rd(d, "cgroup.procs") == "77");
    // exec --cgroup on one hierarchy: one path, whatever controllers name it.
    touch(d + "/sub", {"cgroup.procs"});
    REQUIRE(mgr.add_process(78, *parse_sub_cgroups({"memory,pids:sub"})).ok());
    CHECK(rd(d + "/sub", "cgroup.procs") == "78");
    CHECK_THAT(msg(mgr.add_process(79, *parse_sub_cgroups({"memory:sub", "pids:other"}))),
               Catch::Contains("cgroup v2 has one hierarchy"));
    touch(d, {"cgroup.events"}, "populated 1\nfrozen 1\n");
    REQUIRE(mgr.freeze().ok());
    CHECK(rd(d, "cgroup.freeze") == "1");
    CHECK(mgr.frozen().value_or(false));
}

TEST_CASE("kill_all_v2: cgroup.kill when present, else SIGKILL each listed pid", "[cgroup]") {
    pid_t kid = fork();
    REQUIRE(kid >= 0);
    if (kid == 0) {
        for (;;) pause();
    }
    TempDir t;
    touch(t.path, {"cgroup.procs"}, std::to_string(kid).c_str());
    touch(t.path, {"cgroup.kill"});
    REQUIRE(kill_all_v2(t.path).ok());
    CHECK(rd(t.path, "cgroup.kill") == "1");
    CHECK(waitpid(kid, nullptr, WNOHANG) == 0);  // the fake cgroup.kill kills nobody
    REQUIRE(unlink((t / "cgroup.kill").c_str()) == 0);
    REQUIRE(kill_all_v2(t.path).ok());
    int status = 0;
    REQUIRE(waitpid(kid, &status, 0) == kid);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
}
