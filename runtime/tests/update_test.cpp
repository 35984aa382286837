// Unit tests of runtime/update (runc's update flags, size parsing, merging)
// and of the default spec of `berth spec`.
#include <catch2/catch.hpp>

#include "runtime/cgroup.hpp"
#include "runtime/features.hpp"
#include "runtime/update.hpp"

TEST_CASE("parse_bytes takes runc's sizes", "[update]") {
    CHECK(*rt::parse_bytes("1024") == 1024);
    CHECK(*rt::parse_bytes("512k") == 512 * 1024);
    CHECK(*rt::parse_bytes("512K") == 512 * 1024);
    CHECK(*rt::parse_bytes("64m") == 64LL << 20);
    CHECK(*rt::parse_bytes("64MiB") == 64LL << 20);
    CHECK(*rt::parse_bytes("2gb") == 2LL << 30);
    CHECK(*rt::parse_bytes("1.5m") == (3LL << 20) / 2);
    CHECK(*rt::parse_bytes("100b") == 100);
    CHECK(*rt::parse_bytes("-1", true) == -1);
    CHECK(!rt::parse_bytes("-1"));
    CHECK(!rt::parse_bytes(""));
    CHECK(!rt::parse_bytes("k"));
    CHECK(!rt::parse_bytes("12x"));
    CHECK(!rt::parse_bytes("1.2.3m"));
    CHECK(!rt::parse_bytes("99999999999999999999"));
    CHECK(!rt::parse_bytes("9999999999p"));
}

TEST_CASE("resources_patch turns flags into linux.resources", "[update]") {
    auto p = rt::resources_patch({{"memory", "512k"},
                                  {"memory-swap", "-1"},
                                  {"cpu-quota", "50000"},
                                  {"cpu-period", "100000"},
                                  {"cpuset-cpus", "0-1"},
                                  {"pids-limit", "10"},
                                  {"blkio-weight", "500"}});
    REQUIRE(p);
    CHECK((*p)["memory"]["limit"] == 524288);
    CHECK((*p)["memory"]["swap"] == -1);
    CHECK((*p)["cpu"]["quota"] == 50000);
    CHECK((*p)["cpu"]["period"] == 100000);
    CHECK((*p)["cpu"]["cpus"] == "0-1");
    CHECK((*p)["pids"]["limit"] == 10);
    CHECK((*p)["blockIO"]["weight"] == 500);
    // What parse_resources makes of it is what the cgroup gets.
    auto r = rt::cgroup::parse_resources(&*p);
    REQUIRE(r);
    CHECK(r->memory_limit == 524288);
    CHECK(r->pids_limit == 10);
    CHECK(r->cpu_quota == 50000);

    auto bad = rt::resources_patch({{"cpu-shares", "-5"}});
    REQUIRE(!bad);
    CHECK_THAT(bad.error().message(), Catch::Contains("--cpu-shares"));
    auto unknown = rt::resources_patch({{"bogus", "1"}});
    CHECK(!unknown);
    auto bad_mem = rt::resources_patch({{"memory", "lots"}});
    REQUIRE(!bad_mem);
    CHECK_THAT(bad_mem.error().message(), Catch::Contains("--memory"));
}

TEST_CASE("merge_json merges objects and replaces the rest", "[update]") {
    auto base = *util::json::parse(R"({"memory":{"limit":1,"swap":2},"pids":{"limit":5},"devices":[{"allow":false}]})", "b");
    auto patch = *util::json::parse(R"({"memory":{"limit":9},"cpu":{"shares":3},"devices":[]})", "p");
    rt::merge_json(base, patch);
    CHECK(base["memory"]["limit"] == 9);
    CHECK(base["memory"]["swap"] == 2);
    CHECK(base["pids"]["limit"] == 5);
    CHECK(base["cpu"]["shares"] == 3);
    CHECK(base["devices"].empty());
}

TEST_CASE("default_spec is runc's example, and its rootless variant", "[spec]") {
    auto s = rt::default_spec(false, 0, 0);
    CHECK(s["ociVersion"] == rt::kOciVersionMax);
    CHECK(s["process"]["args"][0] == "sh");
    CHECK(s["process"]["terminal"] == true);
    CHECK(s["root"]["path"] == "rootfs");
    CHECK(s["linux"]["resources"]["devices"][0]["allow"] == false);
    bool has_net = false, has_user = false;
    for (const auto &n : s["linux"]["namespaces"]) {
        has_net |= n["type"] == "network";
        has_user |= n["type"] == "user";
    }
    CHECK(has_net);
    CHECK(!has_user);
    CHECK(!s["process"]["capabilities"].contains("inheritable"));  // never leaks into exec

    auto r = rt::default_spec(true, 1000, 1001);
    CHECK(r["linux"]["uidMappings"][0]["hostID"] == 1000);
    CHECK(r["linux"]["gidMappings"][0]["hostID"] == 1001);
    CHECK(r["linux"]["uidMappings"][0]["containerID"] == 0);
    CHECK(!r["linux"].contains("resources"));
    has_net = has_user = false;
    for (const auto &n : r["linux"]["namespaces"]) {
        has_net |= n["type"] == "network";
        has_user |= n["type"] == "user";
    }
    CHECK(!has_net);
    CHECK(has_user);
    for (const auto &m : r["mounts"]) {
        if (m["destination"] == "/sys") CHECK(m["type"] == "none");
        if (m.contains("options"))
            for (const auto &o : m["options"]) CHECK(o.get<std::string>().rfind("gid=", 0) != 0);
    }
}
