// rlimits, personality and the LSM fields: parsing with errors that name the
// entry, and real applies in forked children.
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/utsname.h>

#include <catch2/catch.hpp>

#include "runtime/security.hpp"
#include "security_test_util.hpp"
#include "util/file.hpp"

namespace sec = rt::security;
using util::json::Value;

TEST_CASE("parse_rlimits accepts every RLIMIT name", "[security][rlimits]") {
    const std::pair<const char *, int> names[] = {
        {"RLIMIT_AS", RLIMIT_AS},         {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_CPU", RLIMIT_CPU},
        {"RLIMIT_DATA", RLIMIT_DATA},     {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
        {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
        {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
        {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},   {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
        {"RLIMIT_STACK", RLIMIT_STACK},
    };
    Value list = Value::array();
    for (auto [name, _] : names) list.push_back({{"type", name}, {"soft", 10}, {"hard", 20}});
    list[0]["hard"] = UINT64_MAX;  // RLIM_INFINITY
    auto r = sec::parse_rlimits(&list);
    REQUIRE(r.ok());
    REQUIRE(r->size() == std::size(names));
    for (size_t i = 0; i < r->size(); i++) {
        CHECK((*r)[i].resource == names[i].second);
        CHECK((*r)[i].soft == 10);
    }
    CHECK((*r)[0].hard == RLIM_INFINITY);
    CHECK(sec::parse_rlimits(nullptr)->empty());
}

TEST_CASE("parse_rlimits errors name the entry", "[security][rlimits]") {
    auto err = [](Value v) {
        auto r = sec::parse_rlimits(&v);
        return r.ok() ? std::string("(parsed)") : r.error().message();
    };
    CHECK(err(Value::array({{{"type", "RLIMIT_NOFILE"}, {"soft", 1}, {"hard", 2}},
                            {{"type", "RLIMIT_FOO"}, {"soft", 1}, {"hard", 2}}})) ==
          "`process.rlimits[1].type`: unknown resource limit `RLIMIT_FOO`: Invalid argument");
    CHECK(err(Value::array({{{"type", "RLIMIT_NOFILE"}, {"soft", 2048}, {"hard", 1024}}})) ==
          "`process.rlimits[0]`: soft limit 2048 is above the hard limit 1024 for RLIMIT_NOFILE: Invalid argument");
    CHECK_THAT(err(Value::array({{{"type", "RLIMIT_NOFILE"}, {"soft", 1}, {"hard", 2}},
                                 {{"type", "RLIMIT_NOFILE"}, {"soft", 1}, {"hard", 2}}})),
               Catch::StartsWith("`process.rlimits[1].type`: duplicate RLIMIT_NOFILE"));
    CHECK_THAT(err(Value::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 2}}})),
               Catch::StartsWith("`process.rlimits[0].soft`: missing"));
    CHECK_THAT(err(Value::array({{{"type", "RLIMIT_NOFILE"}, {"soft", -1}, {"hard", 2}}})),
               Catch::StartsWith("`process.rlimits[0].soft`: must not be negative"));
    CHECK_THAT(err(Value::array({{{"soft", 1}, {"hard", 2}}})), Catch::StartsWith("`process.rlimits[0].type`: missing"));
    CHECK_THAT(err(Value::object()), Catch::StartsWith("`process.rlimits`: expected an array"));
}

TEST_CASE("apply_rlimits sets the limits", "[security][rlimits]") {
    Value list = Value::array({{{"type", "RLIMIT_NOFILE"}, {"soft", 100}, {"hard", 200}},
                               {{"type", "RLIMIT_CORE"}, {"soft", 0}, {"hard", 0}}});
    auto limits = sec::parse_rlimits(&list);
    REQUIRE(limits.ok());
    int st = run_in_child([&] {
        if (!sec::apply_rlimits(*limits).ok()) return 1;
        rlimit r{};
        getrlimit(RLIMIT_NOFILE, &r);
        if (r.rlim_cur != 100 || r.rlim_max != 200) return 2;
        getrlimit(RLIMIT_CORE, &r);
        if (r.rlim_cur != 0 || r.rlim_max != 0) return 3;
        return 0;
    });
    CHECK(exited_with(st, 0));

    // Raising a hard limit above the current one needs CAP_SYS_RESOURCE: the error names the limit.
    Value raise = Value::array({{{"type", "RLIMIT_NOFILE"}, {"soft", 10}, {"hard", 300}}});
    auto up = sec::parse_rlimits(&raise);
    REQUIRE(up.ok());
    auto f = failure_in_child(
        [] {
            rlimit low{50, 50};
            if (setrlimit(RLIMIT_NOFILE, &low) != 0) return 1;
            if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 2;
            return 0;
        },
        [&] { return sec::apply_rlimits(*up); });
    CHECK(exited_with(f.status, 0));
    CHECK(f.message == "setrlimit RLIMIT_NOFILE (soft 10, hard 300): Operation not permitted");
}

TEST_CASE("personality parses domains and flags", "[security][personality]") {
    Value v = {{"domain", "LINUX32"}, {"flags", {"ADDR_NO_RANDOMIZE", "UNAME26"}}};
    auto p = sec::parse_personality(&v);
    REQUIRE(p.ok());
    REQUIRE(p->has_value());
    CHECK(**p == (static_cast<unsigned long>(PER_LINUX32) | ADDR_NO_RANDOMIZE | UNAME26));
    Value linux = {{"domain", "LINUX"}};
    CHECK(sec::parse_personality(&linux)->value() == PER_LINUX);
    CHECK_FALSE(sec::parse_personality(nullptr)->has_value());

    Value bad = {{"domain", "BSD"}};
    auto e = sec::parse_personality(&bad);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().message() == "`linux.personality.domain`: unknown domain `BSD`: Invalid argument");
    Value bad_flag = {{"domain", "LINUX"}, {"flags", {"FAST"}}};
    auto e2 = sec::parse_personality(&bad_flag);
    REQUIRE_FALSE(e2.ok());
    CHECK(e2.error().message() == "`linux.personality.flags[0]`: unknown personality flag `FAST`: Invalid argument");
    Value missing = Value::object();
    CHECK_FALSE(sec::parse_personality(&missing).ok());
}

TEST_CASE("apply_personality LINUX32 changes uname's machine", "[security][personality]") {
    utsname before{};
    uname(&before);
    if (std::string(before.machine) != "x86_64" && std::string(before.machine) != "aarch64") {
        WARN("skipped: LINUX32 check written for 64-bit hosts, this is " << before.machine);
        return;
    }
    Value v = {{"domain", "LINUX32"}};
    auto p = sec::parse_personality(&v);
    REQUIRE(p.ok());
    int st = run_in_child([&] {
        if (!sec::apply_personality(**p).ok()) return 1;
        if (personality(0xffffffff) != PER_LINUX32) return 2;
        utsname u{};
        uname(&u);
        std::string m = u.machine;
        return (m == "i686" || m == "armv8l") ? 0 : 3;
    });
    CHECK(exited_with(st, 0));
}

TEST_CASE("LSM fields are refused without the LSM", "[security][lsm]") {
    Value spec = {{"process", {{"apparmorProfile", "berth-default"}, {"selinuxLabel", ""}}},
                  {"linux", {{"mountLabel", ""}}}};
    sec::LsmSupport none;
    auto r = sec::parse_lsm(spec, none);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() ==
          "`process.apparmorProfile`: profile `berth-default` requested but AppArmor is not enabled on this kernel: "
          "Invalid argument");

    sec::LsmSupport apparmor{true, false};
    auto ok = sec::parse_lsm(spec, apparmor);
    REQUIRE(ok.ok());
    CHECK(ok->apparmor_profile == "berth-default");

    Value se = {{"process", {{"selinuxLabel", "system_u:system_r:container_t:s0"}}}};
    auto r2 = sec::parse_lsm(se, apparmor);
    REQUIRE_FALSE(r2.ok());
    CHECK_THAT(r2.error().message(), Catch::StartsWith("`process.selinuxLabel`: label `system_u:system_r:container_t:s0`"));
    Value ml = {{"linux", {{"mountLabel", "system_u:object_r:container_file_t:s0"}}}};
    auto r3 = sec::parse_lsm(ml, apparmor);
    REQUIRE_FALSE(r3.ok());
    CHECK_THAT(r3.error().message(), Catch::StartsWith("`linux.mountLabel`:"));
    auto r4 = sec::parse_lsm(ml, sec::LsmSupport{false, true});
    REQUIRE(r4.ok());
    CHECK(sec::mount_label_option(*r4) == "context=\"system_u:object_r:container_file_t:s0\"");

    Value wrong = {{"process", {{"apparmorProfile", 3}}}};
    auto r5 = sec::parse_lsm(wrong, apparmor);
    REQUIRE_FALSE(r5.ok());
    CHECK_THAT(r5.error().message(), Catch::StartsWith("`process.apparmorProfile`: expected a string"));

    // Empty fields are fine anywhere, and applying them does nothing.
    Value empty = {{"process", {{"apparmorProfile", ""}}}};
    auto e = sec::parse_lsm(empty, none);
    REQUIRE(e.ok());
    CHECK(sec::apply_lsm(*e).ok());
}

TEST_CASE("detect_lsm_support matches the kernel", "[security][lsm]") {
    auto s = sec::detect_lsm_support();
    bool aa = util::read_file("/sys/module/apparmor/parameters/enabled").value_or("N").starts_with("Y");
    CHECK(s.apparmor == aa);
    CHECK(s.selinux == (access("/sys/fs/selinux/enforce", F_OK) == 0));
    if (!s.apparmor) {
        Value spec = {{"process", {{"apparmorProfile", "x"}}}};
        CHECK_FALSE(sec::parse_lsm(spec).ok());
    }
}
