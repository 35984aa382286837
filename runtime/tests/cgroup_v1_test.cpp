// v1 controllers against a temporary directory (youki style): the files the
// kernel would offer are created, set_*_v1 writes them, the test reads them
// back: file names and value conversions, memsw ordering, swap without
// accounting, cpuset initialised from the parent, device rules as
// devices.allow/deny lines. Also a V1 and a hybrid Manager over a fake tree.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <initializer_list>
#include <string>

#include "runtime/cgroup.hpp"
#include "runtime/cgroup_backend.hpp"
#include "util/file.hpp"
#include "runtime/tests/cgroup_test_util.hpp"
#include "util/tests/tmpdir.hpp"

using namespace rt::cgroup;

TEST_CASE("v1 memory: files and values", "[cgroup]") {
    TempDir t;
    touch(t.path, {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
                   "memory.kmem.tcp.limit_in_bytes", "memory.swappiness", "memory.oom_control", "memory.use_hierarchy"});
    Resources r;
    r.memory_limit = 1 << 20;
    r.memory_swap = 2 << 20;
    r.memory_reservation = 512 << 10;
    r.memory_kernel_tcp = 4096;
    r.memory_swappiness = 30;
    r.memory_disable_oom_killer = true;
    r.memory_use_hierarchy = true;
    auto st = set_memory_v1(t.path, r);
    INFO(msg(st));
    REQUIRE(st.ok());
    CHECK(rd(t.path, "memory.limit_in_bytes") == "1048576");
    CHECK(rd(t.path, "memory.memsw.limit_in_bytes") == "2097152");
    CHECK(rd(t.path, "memory.soft_limit_in_bytes") == "524288");
    CHECK(rd(t.path, "memory.kmem.tcp.limit_in_bytes") == "4096");
    CHECK(rd(t.path, "memory.swappiness") == "30");
    CHECK(rd(t.path, "memory.oom_control") == "1");
    CHECK(rd(t.path, "memory.use_hierarchy") == "1");

    Resources unl;
    unl.memory_limit = -1;
    unl.memory_swap = -1;
    REQUIRE(set_memory_v1(t.path, unl).ok());
    CHECK(rd(t.path, "memory.limit_in_bytes") == "-1");
    CHECK(rd(t.path, "memory.memsw.limit_in_bytes") == "-1");

    Resources bad;
    bad.memory_limit = 4 << 20;
    bad.memory_swap = 1 << 20;
    CHECK_THAT(msg(set_memory_v1(t.path, bad)), Catch::Contains("memory.swap"));
}

TEST_CASE("v1 memory: swap without swap accounting", "[cgroup]") {
    TempDir t;
    touch(t.path, {"memory.limit_in_bytes"});
    Resources r;
    r.memory_limit = 1 << 20;
    r.memory_swap = 2 << 20;
    CHECK_THAT(msg(set_memory_v1(t.path, r)), Catch::Contains("swap accounting"));
    r.memory_swap = -1;  // unlimited swap needs no accounting: skipped
    REQUIRE(set_memory_v1(t.path, r).ok());
    CHECK(rd(t.path, "memory.limit_in_bytes") == "1048576");
    r.memory_swap = 1 << 20;  // equal to the limit: nothing beyond memory asked
    REQUIRE(set_memory_v1(t.path, r).ok());
}

TEST_CASE("v1 cpu: shares, cfs, rt, burst, idle", "[cgroup]") {
    TempDir t;
    touch(t.path, {"cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.cfs_burst_us", "cpu.rt_period_us",
                   "cpu.rt_runtime_us", "cpu.idle"});
    Resources r;
    r.cpu_shares = 512;
    r.cpu_quota = 20000;
    r.cpu_period = 50000;
    r.cpu_burst = 1000;
    r.cpu_realtime_period = 1000000;
    r.cpu_realtime_runtime = 950000;
    r.cpu_idle = 1;
    REQUIRE(set_cpu_v1(t.path, r).ok());
    CHECK(rd(t.path, "cpu.shares") == "512");
    CHECK(rd(t.path, "cpu.cfs_quota_us") == "20000");
    CHECK(rd(t.path, "cpu.cfs_period_us") == "50000");
    CHECK(rd(t.path, "cpu.cfs_burst_us") == "1000");
    CHECK(rd(t.path, "cpu.rt_period_us") == "1000000");
    CHECK(rd(t.path, "cpu.rt_runtime_us") == "950000");
    CHECK(rd(t.path, "cpu.idle") == "1");
    Resources unl;
    unl.cpu_quota = -1;
    REQUIRE(set_cpu_v1(t.path, unl).ok());
    CHECK(rd(t.path, "cpu.cfs_quota_us") == "-1");
}

TEST_CASE("v1 cpuset: empty cpus/mems come from the parent", "[cgroup]") {
    TempDir t;
    touch(t.path, {"cpuset.cpus"}, "0-3\n");
    touch(t.path, {"cpuset.mems"}, "0\n");
    touch(t / "a", {"cpuset.cpus", "cpuset.mems"});
    touch(t / "a/b", {"cpuset.cpus", "cpuset.mems"});
    REQUIRE(set_cpuset_v1(t.path, t / "a/b", Resources{}).ok());
    CHECK(rd(t / "a", "cpuset.cpus") == "0-3");
    CHECK(rd(t / "a/b", "cpuset.cpus") == "0-3");
    CHECK(rd(t / "a/b", "cpuset.mems") == "0");
    Resources r;
    r.cpu_cpus = "1";
    REQUIRE(set_cpuset_v1(t.path, t / "a/b", r).ok());
    CHECK(rd(t / "a/b", "cpuset.cpus") == "1");
    CHECK(rd(t / "a", "cpuset.cpus") == "0-3");
}

TEST_CASE("v1 pids, hugetlb, net_cls, net_prio", "[cgroup]") {
    TempDir t;
    touch(t.path, {"pids.max", "hugetlb.2MB.limit_in_bytes", "net_cls.classid", "net_prio.ifpriomap"});
    Resources r;
    r.pids_limit = 10;
    r.hugepage_limits = {{"2MB", 4194304}};
    r.network_class_id = 0x100001;
    r.network_priorities = {{"eth0", 7}};
    REQUIRE(set_pids_v1(t.path, r).ok());
    REQUIRE(set_hugetlb_v1(t.path, r).ok());
    REQUIRE(set_net_cls_v1(t.path, r).ok());
    REQUIRE(set_net_prio_v1(t.path, r).ok());
    CHECK(rd(t.path, "pids.max") == "10");
    CHECK(rd(t.path, "hugetlb.2MB.limit_in_bytes") == "4194304");
    CHECK(rd(t.path, "net_cls.classid") == "1048577");
    CHECK(rd(t.path, "net_prio.ifpriomap") == "eth0 7");
    r.pids_limit = -1;
    REQUIRE(set_pids_v1(t.path, r).ok());
    CHECK(rd(t.path, "pids.max") == "max");
    r.hugepage_limits = {{"1GB", 1}};
    CHECK_THAT(msg(set_hugetlb_v1(t.path, r)), Catch::Contains("hugetlb.1GB.limit_in_bytes"));
}

TEST_CASE("v1 blkio: weight (cfq and bfq), devices, throttles", "[cgroup]") {
    TempDir t;
    touch(t.path, {"blkio.weight", "blkio.leaf_weight", "blkio.weight_device", "blkio.leaf_weight_device",
                   "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                   "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"});
    Resources r;
    r.blkio_weight = 500;
    r.blkio_leaf_weight = 300;
    r.blkio_weight_device = {WeightDevice{8, 0, 600, 200}};
    r.blkio_throttle_read_bps = {{8, 0, 1000}};
    r.blkio_throttle_write_bps = {{8, 16, 2000}};
    r.blkio_throttle_read_iops = {{8, 0, 30}};
    r.blkio_throttle_write_iops = {{8, 0, 40}};
    REQUIRE(set_blkio_v1(t.path, r).ok());
    CHECK(rd(t.path, "blkio.weight") == "500");
    CHECK(rd(t.path, "blkio.leaf_weight") == "300");
    CHECK(rd(t.path, "blkio.weight_device") == "8:0 600");
    CHECK(rd(t.path, "blkio.leaf_weight_device") == "8:0 200");
    CHECK(rd(t.path, "blkio.throttle.read_bps_device") == "8:0 1000");
    CHECK(rd(t.path, "blkio.throttle.write_bps_device") == "8:16 2000");
    CHECK(rd(t.path, "blkio.throttle.read_iops_device") == "8:0 30");
    CHECK(rd(t.path, "blkio.throttle.write_iops_device") == "8:0 40");

    TempDir b;  // BFQ-only kernels (this host's) have blkio.bfq.*
    touch(b.path, {"blkio.bfq.weight", "blkio.bfq.weight_device"});
    Resources w;
    w.blkio_weight = 250;
    w.blkio_weight_device = {WeightDevice{8, 0, 100, std::nullopt}};
    REQUIRE(set_blkio_v1(b.path, w).ok());
    CHECK(rd(b.path, "blkio.bfq.weight") == "250");
    CHECK(rd(b.path, "blkio.bfq.weight_device") == "8:0 100");
}

TEST_CASE("v1 devices: rules become devices.allow/deny lines", "[cgroup]") {
    std::vector<DeviceRule> rules = {
        {false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 3, "rwm"}, {true, 'c', 136, -1, "rw"},
        {true, 'b', -1, -1, "m"},    {false, 'c', 1, 5, "w"},  {true, 'a', 4, -1, "r"},
        {true, 'a', -1, -1, "rwm"},
    };
    auto lines = device_rules_v1(rules);
    using P = std::pair<std::string, std::string>;
    std::vector<P> want = {
        {"devices.deny", "a"},          {"devices.allow", "c 1:3 rwm"}, {"devices.allow", "c 136:* rw"},
        {"devices.allow", "b *:* m"},   {"devices.deny", "c 1:5 w"},    {"devices.allow", "b 4:* r"},
        {"devices.allow", "c 4:* r"},   {"devices.allow", "a"},
    };
    CHECK(lines == want);

    TempDir t;
    touch(t.path, {"devices.allow", "devices.deny"});
    Resources r;
    r.devices = {{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 3, "rwm"}};
    REQUIRE(set_devices_v1(t.path, r).ok());
    CHECK(rd(t.path, "devices.deny") == "a");
    CHECK(rd(t.path, "devices.allow") == "c 1:3 rwm");
}

TEST_CASE("a write the kernel would refuse names file and value", "[cgroup]") {
    TempDir t;
    auto st = write_value(t.path, "pids.max", "10");
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message(), Catch::Contains("pids.max"));
}

namespace {

/// A v1 tree as the kernel would show it once our cgroup exists.
void fake_v1_tree(const TempDir &t, const std::string &path, bool with_unified) {
    touch(t / "memory" + path, {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "cgroup.procs"});
    touch(t / "cpu" + path, {"cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cgroup.procs"});
    touch(t / "pids" + path, {"pids.max", "cgroup.procs"});
    touch(t / "freezer" + path, {"freezer.state", "cgroup.procs"});
    touch(t / "devices" + path, {"devices.allow", "devices.deny", "cgroup.procs"});
    if (with_unified) {
        touch(t / "unified", {"cgroup.controllers"}, "hugetlb\n");
        touch(t / "unified", {"cgroup.subtree_control"});
        touch(t / "unified" + util::dirname(path), {"cgroup.subtree_control"});
        touch(t / "unified" + path, {"cgroup.controllers"}, "hugetlb\n");
        touch(t / "unified" + path, {"hugetlb.2MB.max", "memory.high", "cgroup.procs"});
    }
}

}  // namespace

TEST_CASE("hybrid manager over a fake tree routes v1 and unified-only controllers", "[cgroup]") {
    TempDir t;
    fake_v1_tree(t, "/berth/c1", true);
    ManagerOptions o;
    o.root = t.path;
    REQUIRE(detect_mode(t.path).value_or(Mode::V1) == Mode::Hybrid);
    auto m = open_manager("", "c1", o);
    REQUIRE(m.ok());
    CHECK((*m)->mode() == Mode::Hybrid);
    CHECK((*m)->path() == "/berth/c1");
    CHECK((*m)->dirs().size() == 6);  // five v1 hierarchies and the unified tree
    Resources r;
    r.memory_limit = 1 << 20;
    r.cpu_shares = 100;
    r.pids_limit = 7;
    r.hugepage_limits = {{"2MB", 2097152}};
    r.devices = {{false, 'a', -1, -1, "rwm"}};
    r.unified = {{"memory.high", "900000"}};
    auto st = (*m)->set(r);
    INFO(msg(st));
    REQUIRE(st.ok());
    CHECK(rd(t / "memory/berth/c1", "memory.limit_in_bytes") == "1048576");
    CHECK(rd(t / "cpu/berth/c1", "cpu.shares") == "100");
    CHECK(rd(t / "pids/berth/c1", "pids.max") == "7");
    CHECK(rd(t / "devices/berth/c1", "devices.deny") == "a");
    CHECK(rd(t / "unified/berth/c1", "hugetlb.2MB.max") == "2097152");  // no v1 hugetlb: unified
    CHECK(rd(t / "unified/berth/c1", "memory.high") == "900000");
    CHECK(rd(t / "unified", "cgroup.subtree_control") == "+hugetlb");
    REQUIRE((*m)->add_process(4242).ok());
    CHECK(rd(t / "memory/berth/c1", "cgroup.procs") == "4242");
    CHECK(rd(t / "unified/berth/c1", "cgroup.procs") == "4242");

    // exec --cgroup memory:sub --cgroup other: per-controller sub-cgroups.
    auto sub = parse_sub_cgroups({"memory:sub", "/other"});
    REQUIRE(sub.ok());
    CHECK(msg((*m)->add_process(4243, *sub)).find("does not exist") != std::string::npos);
    touch(t / "memory/berth/c1/sub", {"cgroup.procs"});
    for (const char *c : {"cpu", "pids", "devices", "freezer", "unified"}) touch(t / c + "/berth/c1/other", {"cgroup.procs"});
    auto st2 = (*m)->add_process(4243, *sub);
    INFO(msg(st2));
    REQUIRE(st2.ok());
    CHECK(rd(t / "memory/berth/c1/sub", "cgroup.procs") == "4243");
    CHECK(rd(t / "pids/berth/c1/other", "cgroup.procs") == "4243");
    CHECK(rd(t / "unified/berth/c1/other", "cgroup.procs") == "4243");

    Resources net;
    net.network_class_id = 1;
    CHECK_THAT(msg((*m)->set(net)), Catch::Contains("`net_cls` cgroup controller is not mounted"));
}

TEST_CASE("v1 manager without a unified tree refuses `unified`", "[cgroup]") {
    TempDir t;
    fake_v1_tree(t, "/x/y", false);
    ManagerOptions o;
    o.root = t.path;
    auto m = open_manager("/x/y", "id", o);
    REQUIRE(m.ok());
    CHECK((*m)->mode() == Mode::V1);
    Resources r;
    r.unified = {{"memory.high", "1"}};
    CHECK_THAT(msg((*m)->set(r)), Catch::Contains("no cgroup2"));
    r.unified.clear();
    r.hugepage_limits = {{"2MB", 1}};
    CHECK_THAT(msg((*m)->set(r)), Catch::Contains("`hugetlb` cgroup controller is not mounted"));
}

TEST_CASE("exec --cgroup values", "[cgroup]") {
    auto one = parse_sub_cgroups({"cpu,memory:a/b"});
    REQUIRE(one.ok());
    CHECK(*one == std::vector<std::pair<std::string, std::string>>{{"cpu", "a/b"}, {"memory", "a/b"}});
    CHECK(parse_sub_cgroups({"x"})->front() == std::pair<std::string, std::string>{"", "x"});
    for (const char *bad : {"../up", "memory:a/../../b", "memory:", "/"})
        CHECK_FALSE(parse_sub_cgroups({bad}).ok());
    CHECK_FALSE(parse_sub_cgroups({"memory:a", "memory:b"}).ok());
}

TEST_CASE("co-mounted v1 controllers reached through symlinks are one hierarchy", "[cgroup]") {
    TempDir t;
    touch(t / "cpu,cpuacct/berth/c2", {"cpu.shares", "cgroup.procs"});
    touch(t / "memory/berth/c2", {"memory.limit_in_bytes", "cgroup.procs"});
    REQUIRE(symlink("cpu,cpuacct", (t / "cpu").c_str()) == 0);
    REQUIRE(symlink("cpu,cpuacct", (t / "cpuacct").c_str()) == 0);
    touch(t.path, {"pids"});  // a regular file named like a controller is no hierarchy
    ManagerOptions o;
    o.root = t.path;
    o.mode = Mode::V1;
    auto m = open_manager("", "c2", o);
    REQUIRE(m.ok());
    auto dirs = (*m)->dirs();
    REQUIRE(dirs.size() == 2);
    CHECK(dirs[0].first == "cpu,cpuacct");
    CHECK(dirs[1].first == "memory");
    Resources r;
    r.cpu_shares = 100;
    REQUIRE((*m)->set(r).ok());
    CHECK(rd(t / "cpu,cpuacct/berth/c2", "cpu.shares") == "100");
    REQUIRE((*m)->add_process(4242).ok());
    CHECK(rd(t / "cpu,cpuacct/berth/c2", "cgroup.procs") == "4242");
}

// A paused container on a hybrid host whose kernel has no cgroup.kill (5.10):
// its tasks are held by the v1 freezer, so a cgroup2 freeze of the unified
// tree never reports `frozen 1`. destroy must not wait out that freeze's
// timeout (5 s a container, seen on Debian 11's kernel): the v1 freezer is
// the one that freezes (frozen, SIGKILLed, thawed).
TEST_CASE("hybrid destroy without cgroup.kill leaves the freezing to the v1 freezer", "[cgroup]") {
    TempDir t;
    fake_v1_tree(t, "/berth/c3", true);
    REQUIRE(write_value(t / "freezer/berth/c3", "freezer.state", "FROZEN").ok());
    touch(t / "unified/berth/c3", {"cgroup.freeze"}, "0\n");
    touch(t / "unified/berth/c3", {"cgroup.events"}, "populated 1\nfrozen 0\n");  // and stays so
    ManagerOptions o;
    o.root = t.path;
    auto m = open_manager("", "c3", o);
    REQUIRE(m.ok());
    REQUIRE((*m)->mode() == Mode::Hybrid);
    auto t0 = std::chrono::steady_clock::now();
    (void)(*m)->destroy();  // the fake directories hold files: their rmdir fails, the kill is what counts
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    CHECK(took.count() < 2000);
    CHECK(rd(t / "freezer/berth/c3", "freezer.state") == "THAWED");
    CHECK(rd(t / "unified/berth/c3", "cgroup.freeze") == "0");
}
