// Capabilities: name table, parsing errors, and real applies in forked
// children as root (bounding/effective drops, inheritable never leaking into
// an exec, ambient surviving a switch to a non-root uid).
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <fcntl.h>

#include <catch2/catch.hpp>

#include "runtime/security.hpp"
#include "security_test_util.hpp"
#include "util/file.hpp"
#include "util/process.hpp"

namespace sec = rt::security;
using util::json::Value;

namespace {

constexpr uint64_t bit(int cap) { return uint64_t{1} << cap; }

/// This process's bounding set (a container host may already lack some caps).
uint64_t own_bounding() { return cap_mask(util::read_file("/proc/self/status").value_or(""), "CapBnd"); }

/// The caps of this process's bounding set, except those listed.
std::vector<std::string> bounding_except(std::initializer_list<std::string> drop) {
    std::vector<std::string> out;
    uint64_t bnd = own_bounding();
    for (auto &n : sec::known_capabilities())
        if ((bnd & bit(sec::capability_from_name(n))) && std::find(drop.begin(), drop.end(), n) == drop.end())
            out.push_back(n);
    return out;
}

struct ExecResult {
    int status = -1;
    std::string output;
};

/// Forks; the child runs `prepare` (returns 0 on success), then execs
/// `/bin/sh -c 'grep Cap /proc/self/status'` with stdout on a pipe.
template <typename F>
ExecResult run_sh_after(F prepare) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return {};
    pid_t pid = fork();
    if (pid == 0) {
        int rc = prepare();
        if (rc != 0) _exit(rc);
        dup2(p[1], 1);
        execl("/bin/sh", "sh", "-c", "grep Cap /proc/self/status", static_cast<char *>(nullptr));
        _exit(127);
    }
    close(p[1]);
    ExecResult r;
    r.output = util::read_all(p[0]).value_or("");
    close(p[0]);
    waitpid(pid, &r.status, 0);
    return r;
}

}  // namespace

TEST_CASE("capability names map to numbers both ways", "[security][caps]") {
    CHECK(sec::capability_from_name("CAP_CHOWN") == CAP_CHOWN);
    CHECK(sec::capability_from_name("CAP_SYS_ADMIN") == CAP_SYS_ADMIN);
    CHECK(sec::capability_from_name("CAP_CHECKPOINT_RESTORE") == 40);
    CHECK(sec::capability_from_name("CAP_FOO") == -1);
    CHECK(sec::capability_from_name("cap_chown") == -1);
    CHECK(sec::capability_name(CAP_NET_RAW) == "CAP_NET_RAW");
    auto known = sec::known_capabilities();
    CHECK(known.size() == static_cast<size_t>(sec::last_cap() + 1));
    for (const auto &n : known) CHECK(sec::capability_name(sec::capability_from_name(n)) == n);
    std::string text = util::read_file("/proc/sys/kernel/cap_last_cap").value_or("");
    CHECK(sec::last_cap() == util::parse_int<int>(util::trim(text)).value_or(-2));
}

TEST_CASE("parse_capabilities reads all five sets", "[security][caps]") {
    Value v = {{"bounding", {"CAP_CHOWN", "CAP_KILL"}}, {"effective", {"CAP_KILL"}}, {"inheritable", Value::array()},
               {"permitted", {"CAP_KILL", "CAP_KILL"}}, {"ambient", {"CAP_NET_RAW"}}};
    auto caps = sec::parse_capabilities(&v);
    REQUIRE(caps.ok());
    CHECK(caps->bounding == std::vector<int>{CAP_CHOWN, CAP_KILL});
    CHECK(caps->effective == std::vector<int>{CAP_KILL});
    CHECK(caps->inheritable.empty());
    CHECK(caps->permitted == std::vector<int>{CAP_KILL});  // duplicates folded
    CHECK(caps->ambient == std::vector<int>{CAP_NET_RAW});

    auto none = sec::parse_capabilities(nullptr);
    REQUIRE(none.ok());
    CHECK(none->bounding.empty());
}

TEST_CASE("parse_capabilities errors name the field", "[security][caps]") {
    Value bad = {{"bounding", {"CAP_CHOWN", "CAP_KILL", "CAP_FOO"}}};
    auto r = sec::parse_capabilities(&bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "`process.capabilities.bounding[2]`: unknown capability `CAP_FOO`: Invalid argument");

    Value wrong_type = {{"effective", "CAP_CHOWN"}};
    auto r2 = sec::parse_capabilities(&wrong_type);
    REQUIRE_FALSE(r2.ok());
    CHECK_THAT(r2.error().message(), Catch::Contains("`process.capabilities.effective`"));

    Value not_object = Value::array();
    CHECK_FALSE(sec::parse_capabilities(&not_object).ok());
}

TEST_CASE("apply_capabilities drops CAP_CHOWN from bounding and effective", "[security][caps][root]") {
    if (geteuid() != 0) {
        WARN("skipped: needs root");
        return;
    }
    std::string file = util::cat("/tmp/berth-caps-test-", getpid());
    int fd = open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    close(fd);
    util::ScopeGuard rm([&] { unlink(file.c_str()); });

    auto names = bounding_except({"CAP_CHOWN"});
    Value spec = {{"bounding", names}, {"effective", names}, {"permitted", names}, {"inheritable", Value::array()},
                  {"ambient", Value::array()}};
    auto caps = sec::parse_capabilities(&spec);
    REQUIRE(caps.ok());

    // In the child itself: chown is refused and /proc/self/status agrees.
    int st = run_in_child([&] {
        if (auto a = sec::apply_capabilities(*caps); !a.ok()) {
            fprintf(stderr, "apply: %s\n", a.error().message().c_str());
            return 10;
        }
        if (chown(file.c_str(), 1234, 1234) == 0 || errno != EPERM) return 11;
        auto status = util::read_file("/proc/self/status");
        if (!status.ok()) return 12;
        if (cap_mask(*status, "CapBnd") & bit(CAP_CHOWN)) return 13;
        if (cap_mask(*status, "CapEff") & bit(CAP_CHOWN)) return 14;
        if (!(cap_mask(*status, "CapEff") & bit(CAP_FOWNER))) return 15;
        if (cap_mask(*status, "CapInh") != 0) return 16;
        return 0;
    });
    INFO("child status " << st);
    CHECK(exited_with(st, 0));
    struct stat sb {};
    REQUIRE(stat(file.c_str(), &sb) == 0);
    CHECK(sb.st_uid == 0);

    // After an exec: the shell has no CAP_CHOWN anywhere and nothing inheritable.
    auto r = run_sh_after([&] {
        // A leaky parent: something inheritable before apply must not survive it.
        cap_t c = cap_get_proc();
        cap_value_t raw = CAP_NET_RAW;
        cap_set_flag(c, CAP_INHERITABLE, 1, &raw, CAP_SET);
        if (cap_set_proc(c) != 0) return 20;
        cap_free(c);
        return sec::apply_capabilities(*caps).ok() ? 0 : 21;
    });
    INFO(r.output);
    REQUIRE(exited_with(r.status, 0));
    CHECK(cap_mask(r.output, "CapInh") == 0);
    CHECK(cap_mask(r.output, "CapAmb") == 0);
    CHECK(cap_mask(r.output, "CapBnd") == (own_bounding() & ~bit(CAP_CHOWN)));
    CHECK(cap_mask(r.output, "CapEff") == (own_bounding() & ~bit(CAP_CHOWN)));
}

TEST_CASE("apply_capabilities with a small set after setuid keeps ambient caps across exec",
          "[security][caps][root]") {
    if (geteuid() != 0) {
        WARN("skipped: needs root");
        return;
    }
    Value spec = {{"bounding", {"CAP_NET_RAW", "CAP_KILL"}},  {"effective", {"CAP_NET_RAW"}},
                  {"permitted", {"CAP_NET_RAW"}},             {"inheritable", {"CAP_NET_RAW"}},
                  {"ambient", {"CAP_NET_RAW"}}};
    auto caps = sec::parse_capabilities(&spec);
    REQUIRE(caps.ok());
    auto r = run_sh_after([&] {
        if (!sec::keep_capabilities_across_setuid().ok()) return 30;
        if (setgid(1000) != 0 || setuid(1000) != 0) return 31;
        return sec::apply_capabilities(*caps).ok() ? 0 : 32;
    });
    INFO(r.output);
    REQUIRE(exited_with(r.status, 0));
    CHECK(cap_mask(r.output, "CapBnd") == (bit(CAP_NET_RAW) | bit(CAP_KILL)));
    CHECK(cap_mask(r.output, "CapAmb") == bit(CAP_NET_RAW));
    CHECK(cap_mask(r.output, "CapEff") == bit(CAP_NET_RAW));
    CHECK(cap_mask(r.output, "CapInh") == bit(CAP_NET_RAW));

    // Without ambient, a non-root exec has no capabilities at all.
    spec["ambient"] = Value::array();
    spec["inheritable"] = Value::array();
    auto caps2 = sec::parse_capabilities(&spec);
    REQUIRE(caps2.ok());
    auto r2 = run_sh_after([&] {
        if (!sec::keep_capabilities_across_setuid().ok()) return 30;
        if (setgid(1000) != 0 || setuid(1000) != 0) return 31;
        return sec::apply_capabilities(*caps2).ok() ? 0 : 32;
    });
    INFO(r2.output);
    REQUIRE(exited_with(r2.status, 0));
    CHECK(cap_mask(r2.output, "CapEff") == 0);
    CHECK(cap_mask(r2.output, "CapPrm") == 0);
    CHECK(cap_mask(r2.output, "CapInh") == 0);
}

TEST_CASE("apply_capabilities names a capability the runtime does not hold", "[security][caps][root]") {
    if (geteuid() != 0) {
        WARN("skipped: needs root");
        return;
    }
    Value spec = {{"bounding", {"CAP_KILL", "CAP_NET_RAW"}}, {"permitted", {"CAP_KILL", "CAP_NET_RAW"}},
                  {"effective", {"CAP_NET_RAW"}}};
    auto caps = sec::parse_capabilities(&spec);
    REQUIRE(caps.ok());
    auto f = failure_in_child(
        [] {
            // Lose CAP_NET_RAW first, as a runtime inside a restricted container would.
            if (prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0) != 0) return 1;
            cap_t c = cap_get_proc();
            cap_value_t raw = CAP_NET_RAW;
            cap_set_flag(c, CAP_PERMITTED, 1, &raw, CAP_CLEAR);
            cap_set_flag(c, CAP_EFFECTIVE, 1, &raw, CAP_CLEAR);
            int rc = cap_set_proc(c) != 0 ? 2 : 0;
            cap_free(c);
            return rc;
        },
        [&] { return sec::apply_capabilities(*caps); });
    CHECK(exited_with(f.status, 0));
    CHECK(f.message == "apply capabilities: the runtime does not hold CAP_NET_RAW (not in its permitted set): "
                 "Operation not permitted");
}

TEST_CASE("apply_capabilities with empty sets leaves nothing", "[security][caps][root]") {
    if (geteuid() != 0) {
        WARN("skipped: needs root");
        return;
    }
    auto caps = sec::parse_capabilities(nullptr);
    REQUIRE(caps.ok());
    auto r = run_sh_after([&] { return sec::apply_capabilities(*caps).ok() ? 0 : 40; });
    INFO(r.output);
    REQUIRE(exited_with(r.status, 0));
    for (const char *k : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) CHECK(cap_mask(r.output, k) == 0);
}
