// parse_resources over every linux.resources field of runtime-spec 1.2,
// errors that name the field, merge_resources, resolve_path (default,
// relative, `..`, systemd slices) and detect_mode on temporary trees.
#include <fcntl.h>

#include <catch2/catch.hpp>
#include <string>

#include "runtime/cgroup.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/tests/tmpdir.hpp"

using namespace rt::cgroup;

namespace {

Resources parse_ok(const std::string &text) {
    auto v = util::json::parse(text, "test");
    REQUIRE(v.ok());
    auto r = parse_resources(&*v);
    INFO((r.ok() ? std::string() : r.error().message()));
    REQUIRE(r.ok());
    return *r;
}

std::string parse_err(const std::string &text) {
    auto v = util::json::parse(text, "test");
    REQUIRE(v.ok());
    auto r = parse_resources(&*v);
    REQUIRE_FALSE(r.ok());
    return r.error().message();
}

}  // namespace

TEST_CASE("parse_resources reads every field", "[cgroup]") {
    Resources r = parse_ok(R"({
      "memory": {"limit": 1048576, "reservation": 524288, "swap": 2097152, "kernel": -1, "kernelTCP": 65536,
                 "swappiness": 10, "disableOOMKiller": true, "useHierarchy": true, "checkBeforeUpdate": true},
      "cpu": {"shares": 1024, "quota": 50000, "burst": 1000, "period": 100000, "realtimeRuntime": 950,
              "realtimePeriod": 1000, "cpus": "0-1", "mems": "0", "idle": 1},
      "pids": {"limit": 32},
      "blockIO": {"weight": 500, "leafWeight": 300,
                  "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 200}],
                  "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                  "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 2000}],
                  "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 30}],
                  "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 40}]},
      "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
      "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
      "unified": {"memory.high": "1000000", "io.latency": "8:0 target=10"},
      "rdma": {"mlx5_1": {"hcaHandles": 3}}
    })");
    CHECK(r.memory_limit == 1048576);
    CHECK(r.memory_reservation == 524288);
    CHECK(r.memory_swap == 2097152);
    CHECK(r.memory_kernel == -1);
    CHECK(r.memory_kernel_tcp == 65536);
    CHECK(r.memory_swappiness == 10u);
    CHECK(r.memory_disable_oom_killer == true);
    CHECK(r.memory_use_hierarchy == true);
    CHECK(r.memory_check_before_update == true);
    CHECK(r.cpu_shares == 1024u);
    CHECK(r.cpu_quota == 50000);
    CHECK(r.cpu_burst == 1000u);
    CHECK(r.cpu_period == 100000u);
    CHECK(r.cpu_realtime_runtime == 950);
    CHECK(r.cpu_realtime_period == 1000u);
    CHECK(r.cpu_cpus == "0-1");
    CHECK(r.cpu_mems == "0");
    CHECK(r.cpu_idle == 1);
    CHECK(r.pids_limit == 32);
    CHECK(r.blkio_weight == 500);
    CHECK(r.blkio_leaf_weight == 300);
    REQUIRE(r.blkio_weight_device.size() == 1);
    CHECK(r.blkio_weight_device[0].major == 8);
    CHECK(r.blkio_weight_device[0].weight == 600);
    CHECK(r.blkio_weight_device[0].leaf_weight == 200);
    REQUIRE(r.blkio_throttle_read_bps.size() == 1);
    CHECK(r.blkio_throttle_read_bps[0].rate == 1000u);
    REQUIRE(r.blkio_throttle_write_bps.size() == 1);
    CHECK(r.blkio_throttle_write_bps[0].minor == 16);
    CHECK(r.blkio_throttle_read_iops[0].rate == 30u);
    CHECK(r.blkio_throttle_write_iops[0].rate == 40u);
    REQUIRE(r.hugepage_limits.size() == 1);
    CHECK(r.hugepage_limits[0].page_size == "2MB");
    CHECK(r.hugepage_limits[0].limit == 4194304u);
    REQUIRE(r.devices.size() == 2);
    CHECK_FALSE(r.devices[0].allow);
    CHECK(r.devices[0].type == 'a');
    CHECK(r.devices[0].major == -1);
    CHECK(r.devices[1].allow);
    CHECK(r.devices[1].type == 'c');
    CHECK(r.devices[1].major == 1);
    CHECK(r.devices[1].minor == 3);
    CHECK(r.devices[1].access == "rw");
    CHECK(r.network_class_id == 1048577u);
    REQUIRE(r.network_priorities.size() == 1);
    CHECK(r.network_priorities[0].first == "eth0");
    CHECK(r.network_priorities[0].second == 5u);
    REQUIRE(r.unified.size() == 2);
    CHECK(r.unified[0].first == "memory.high");
    CHECK(r.unified[1].second == "8:0 target=10");
}

TEST_CASE("parse_resources: absent means no limits", "[cgroup]") {
    auto r = parse_resources(nullptr);
    REQUIRE(r.ok());
    CHECK_FALSE(r->memory_limit);
    CHECK(r->devices.empty());
    Resources e = parse_ok("{}");
    CHECK_FALSE(e.pids_limit);
}

TEST_CASE("parse_resources errors name the field", "[cgroup]") {
    CHECK_THAT(parse_err(R"({"memory": {"limit": "1G"}})"), Catch::Contains("linux.resources.memory.limit"));
    CHECK_THAT(parse_err(R"({"memory": {"swappiness": 101}})"), Catch::Contains("linux.resources.memory.swappiness"));
    CHECK_THAT(parse_err(R"({"memory": {"limit": -5}})"), Catch::Contains("memory.limit"));
    CHECK_THAT(parse_err(R"({"cpu": {"shares": -1}})"), Catch::Contains("linux.resources.cpu.shares"));
    CHECK_THAT(parse_err(R"({"cpu": {"cpus": 3}})"), Catch::Contains("linux.resources.cpu.cpus"));
    CHECK_THAT(parse_err(R"({"cpu": {"idle": 2}})"), Catch::Contains("linux.resources.cpu.idle"));
    CHECK_THAT(parse_err(R"({"pids": {"limit": true}})"), Catch::Contains("linux.resources.pids.limit"));
    CHECK_THAT(parse_err(R"({"blockIO": {"weight": 5}})"), Catch::Contains("linux.resources.blockIO.weight"));
    CHECK_THAT(parse_err(R"({"blockIO": {"weight": 70000}})"), Catch::Contains("blockIO.weight"));
    CHECK_THAT(parse_err(R"({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}})"),
               Catch::Contains("linux.resources.blockIO.throttleReadBpsDevice[0]"));
    CHECK_THAT(parse_err(R"({"hugepageLimits": [{"pageSize": "2XB", "limit": 1}]})"),
               Catch::Contains("linux.resources.hugepageLimits[0].pageSize"));
    CHECK_THAT(parse_err(R"({"devices": [{"allow": true}, {"type": "c"}]})"),
               Catch::Contains("linux.resources.devices[1].allow"));
    CHECK_THAT(parse_err(R"({"devices": [{"allow": true, "type": "x"}]})"),
               Catch::Contains("linux.resources.devices[0].type"));
    CHECK_THAT(parse_err(R"({"devices": [{"allow": true, "access": "rwx"}]})"),
               Catch::Contains("linux.resources.devices[0].access"));
    CHECK_THAT(parse_err(R"({"devices": {"allow": true}})"), Catch::Contains("linux.resources.devices"));
    CHECK_THAT(parse_err(R"({"network": {"classID": 4294967296}})"), Catch::Contains("linux.resources.network.classID"));
    CHECK_THAT(parse_err(R"({"unified": {"memory.high": 5}})"), Catch::Contains("linux.resources.unified.memory.high"));
    CHECK_THAT(parse_err(R"([])"), Catch::Contains("linux.resources"));
}

TEST_CASE("merge_resources: set fields replace, unset ones keep", "[cgroup]") {
    Resources base = parse_ok(R"({"memory": {"limit": 100}, "pids": {"limit": 5}, "cpu": {"cpus": "0"}})");
    Resources upd = parse_ok(R"({"memory": {"limit": 200}, "cpu": {"shares": 10}})");
    merge_resources(base, upd);
    CHECK(base.memory_limit == 200);
    CHECK(base.pids_limit == 5);
    CHECK(base.cpu_shares == 10u);
    CHECK(base.cpu_cpus == "0");
}

TEST_CASE("resolve_path: default, absolute, relative, `..` refused", "[cgroup]") {
    CHECK(resolve_path("", "web").value_or("") == "/berth/web");
    CHECK(resolve_path("/a//b/./c/", "web").value_or("") == "/a/b/c");
    CHECK(resolve_path("a/b", "web").value_or("") == "/a/b");
    CHECK_FALSE(resolve_path("/a/../../etc", "web").ok());
    CHECK_FALSE(resolve_path("/", "web").ok());
}

TEST_CASE("resolve_path: systemd slice:prefix:name maps to systemd's directory", "[cgroup]") {
    CHECK(resolve_path("system.slice:docker:abc", "x", true).value_or("") == "/system.slice/docker-abc.scope");
    CHECK(resolve_path("machine-app-web.slice:libpod:123", "x", true).value_or("") ==
          "/machine.slice/machine-app.slice/machine-app-web.slice/libpod-123.scope");
    CHECK(resolve_path(":berth:", "id1", true).value_or("") == "/system.slice/berth-id1.scope");
    CHECK(resolve_path("-.slice:p:n", "x", true).value_or("") == "/p-n.scope");
    CHECK(resolve_path("", "id2", true).value_or("") == "/system.slice/berth-id2.scope");
    CHECK_FALSE(resolve_path("/not/a/slice", "x", true).ok());
    CHECK_FALSE(resolve_path("bad:p:n", "x", true).ok());
    CHECK_FALSE(resolve_path("a--b.slice:p:n", "x", true).ok());
}

TEST_CASE("detect_mode on temporary trees", "[cgroup]") {
    TempDir v2;
    REQUIRE(util::write_all(util::open_file(v2 / "cgroup.controllers", O_WRONLY | O_CREAT, 0644)->get(), "cpu").ok());
    CHECK(detect_mode(v2.path).value_or(Mode::V1) == Mode::V2);

    TempDir hy;
    REQUIRE(util::mkdir_p(hy / "memory").ok());
    REQUIRE(util::mkdir_p(hy / "unified").ok());
    REQUIRE(util::open_file(hy / "unified/cgroup.controllers", O_WRONLY | O_CREAT, 0644).ok());
    CHECK(detect_mode(hy.path).value_or(Mode::V1) == Mode::Hybrid);

    TempDir v1;
    REQUIRE(util::mkdir_p(v1 / "memory").ok());
    CHECK(detect_mode(v1.path).value_or(Mode::V2) == Mode::V1);
    CHECK_FALSE(detect_mode(v1 / "absent").ok());
    CHECK(std::string(mode_name(Mode::Hybrid)) == "hybrid");
}
