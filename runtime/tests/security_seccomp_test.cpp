// seccomp: parsing (every action, operator, architecture and flag; errors
// naming the field) and real filters loaded in forked children: errnoRet,
// argument conditions, kill/trap/trace/log actions, default errno, and
// SCMP_ACT_NOTIFY with the listener fd sent to a real unix socket.
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>

#include <catch2/catch.hpp>

#include "runtime/security.hpp"
#include "security_test_util.hpp"
#include "util/file.hpp"

namespace sec = rt::security;
using util::json::Value;

namespace {

Value rule(std::vector<std::string> names, std::string action, Value extra = Value::object()) {
    Value r = {{"names", names}, {"action", action}};
    for (auto it = extra.begin(); it != extra.end(); ++it) r[it.key()] = it.value();
    return r;
}

Value profile(std::string default_action, Value rules) {
    return {{"defaultAction", default_action}, {"syscalls", rules}};
}

std::string compile_error(const Value &p) {
    auto r = sec::compile_seccomp(&p);
    if (r.ok()) return "(compiled)";
    return r.error().message();
}

/// Compiles `p`, and in a forked child sets no_new_privs, loads it and runs `body`.
template <typename F>
int run_filtered(const Value &p, F body) {
    auto f = sec::compile_seccomp(&p);
    if (!f.ok()) {
        FAIL(f.error().message());
        return -1;
    }
    return run_in_child([&] {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 100;
        if (!(*f)->load().ok()) return 101;
        return body();
    });
}

}  // namespace

TEST_CASE("no seccomp object gives no filter", "[security][seccomp]") {
    auto r = sec::compile_seccomp(nullptr);
    REQUIRE(r.ok());
    CHECK(*r == nullptr);
}

TEST_CASE("features list every action, operator, arch and flag", "[security][seccomp]") {
    Value f = sec::seccomp_features();
    CHECK(f["enabled"] == true);
    for (const char *a : {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                          "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"})
        CHECK(std::find(f["actions"].begin(), f["actions"].end(), a) != f["actions"].end());
    CHECK(f["operators"].size() == 7);
    for (const char *a : {"SCMP_ARCH_X86_64", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64", "SCMP_ARCH_X86"})
        CHECK(std::find(f["archs"].begin(), f["archs"].end(), a) != f["archs"].end());
    CHECK(f["knownFlags"].size() == 4);
    // This kernel (6.x) supports all four.
    CHECK(f["supportedFlags"].size() <= f["knownFlags"].size());
    CHECK(std::find(f["supportedFlags"].begin(), f["supportedFlags"].end(), "SECCOMP_FILTER_FLAG_TSYNC") !=
          f["supportedFlags"].end());
}

TEST_CASE("every advertised action, operator, arch and flag compiles", "[security][seccomp]") {
    Value f = sec::seccomp_features();
    for (const auto &a : f["actions"]) {
        std::string action = a.get<std::string>();
        Value p = profile("SCMP_ACT_ALLOW", Value::array({rule({"getcwd"}, action)}));
        if (action == "SCMP_ACT_NOTIFY") p["listenerPath"] = "/run/none.sock";
        INFO(action);
        CHECK(compile_error(p) == "(compiled)");
    }
    for (const auto &o : f["operators"]) {
        Value args = Value::array({{{"index", 1}, {"value", 2}, {"valueTwo", 2}, {"op", o}}});
        Value p = profile("SCMP_ACT_ALLOW", Value::array({rule({"getcwd"}, "SCMP_ACT_ERRNO", {{"args", args}})}));
        INFO(o.get<std::string>());
        CHECK(compile_error(p) == "(compiled)");
    }
    for (const auto &a : f["archs"]) {
        Value p = profile("SCMP_ACT_ALLOW", Value::array({rule({"getcwd", "socket"}, "SCMP_ACT_ERRNO")}));
        p["architectures"] = Value::array({a});
        INFO(a.get<std::string>());
        CHECK(compile_error(p) == "(compiled)");
    }
    Value multi = profile("SCMP_ACT_ERRNO", Value::array({rule({"read", "write", "socketcall", "arm_fadvise64_64"},
                                                                "SCMP_ACT_ALLOW")}));
    multi["architectures"] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
                              "SCMP_ARCH_AARCH64"};
    CHECK(compile_error(multi) == "(compiled)");
    for (const auto &fl : f["supportedFlags"]) {
        Value p = profile("SCMP_ACT_ALLOW", Value::array({rule({"getcwd"}, "SCMP_ACT_ERRNO")}));
        p["flags"] = Value::array({fl});
        INFO(fl.get<std::string>());
        CHECK(compile_error(p) == "(compiled)");
    }
}

TEST_CASE("seccomp errors name the field", "[security][seccomp]") {
    Value ok_rule = rule({"getcwd"}, "SCMP_ACT_ERRNO");
    CHECK(compile_error(profile("SCMP_ACT_NOPE", Value::array())) ==
          "`linux.seccomp.defaultAction`: unknown action `SCMP_ACT_NOPE`: Invalid argument");
    CHECK(compile_error(profile("SCMP_ACT_ALLOW", Value::array({ok_rule, rule({"mkdir"}, "SCMP_ACT_FOO")}))) ==
          "`linux.seccomp.syscalls[1].action`: unknown action `SCMP_ACT_FOO`: Invalid argument");
    Value bad_op = rule({"mkdir"}, "SCMP_ACT_ERRNO",
                        {{"args", Value::array({{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_ABOUT"}}})}});
    CHECK(compile_error(profile("SCMP_ACT_ALLOW", Value::array({bad_op}))) ==
          "`linux.seccomp.syscalls[0].args[0].op`: unknown operator `SCMP_CMP_ABOUT`: Invalid argument");
    Value bad_index = rule({"mkdir"}, "SCMP_ACT_ERRNO",
                           {{"args", Value::array({{{"index", 6}, {"value", 1}, {"op", "SCMP_CMP_EQ"}}})}});
    CHECK_THAT(compile_error(profile("SCMP_ACT_ALLOW", Value::array({bad_index}))),
               Catch::StartsWith("`linux.seccomp.syscalls[0].args[0].index`: must be below 6"));
    Value no_value = rule({"mkdir"}, "SCMP_ACT_ERRNO", {{"args", Value::array({{{"index", 0}, {"op", "SCMP_CMP_EQ"}}})}});
    CHECK_THAT(compile_error(profile("SCMP_ACT_ALLOW", Value::array({no_value}))),
               Catch::StartsWith("`linux.seccomp.syscalls[0].args[0].value`: missing"));

    Value arch = profile("SCMP_ACT_ALLOW", Value::array());
    arch["architectures"] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"};
    CHECK(compile_error(arch) == "`linux.seccomp.architectures[1]`: unknown architecture `SCMP_ARCH_VAX`: Invalid argument");

    Value flag = profile("SCMP_ACT_ALLOW", Value::array());
    flag["flags"] = {"SECCOMP_FILTER_FLAG_FAST"};
    CHECK(compile_error(flag) == "`linux.seccomp.flags[0]`: unknown flag `SECCOMP_FILTER_FLAG_FAST`: Invalid argument");

    CHECK_THAT(compile_error(profile("SCMP_ACT_ALLOW", Value::array({rule({"mkdir"}, "SCMP_ACT_ALLOW",
                                                                           {{"errnoRet", 5}})}))),
               Catch::StartsWith("`linux.seccomp.syscalls[0].errnoRet`: only valid with SCMP_ACT_ERRNO"));
    CHECK_THAT(compile_error(profile("SCMP_ACT_ALLOW", Value::array({rule({"mkdir"}, "SCMP_ACT_NOTIFY")}))),
               Catch::StartsWith("`linux.seccomp.listenerPath`: required"));
    CHECK_THAT(compile_error(profile("SCMP_ACT_NOTIFY", Value::array())),
               Catch::StartsWith("`linux.seccomp.defaultAction`: SCMP_ACT_NOTIFY cannot be"));
    CHECK_THAT(compile_error(Value{{"syscalls", Value::array()}}), Catch::StartsWith("`linux.seccomp.defaultAction`: missing"));
    CHECK_THAT(compile_error(profile("SCMP_ACT_ALLOW", Value::array({"mkdir"}))),
               Catch::StartsWith("`linux.seccomp.syscalls[0]`: expected an object"));
    CHECK_THAT(compile_error(profile("SCMP_ACT_ALLOW", Value::array({rule({"mkdir"}, "SCMP_ACT_ERRNO",
                                                                           {{"errnoRet", -1}})}))),
               Catch::StartsWith("`linux.seccomp.syscalls[0].errnoRet`: must not be negative"));
}

TEST_CASE("errnoRet is what the filtered syscall returns", "[security][seccomp]") {
    Value p = profile("SCMP_ACT_ALLOW", Value::array({rule({"no_such_syscall_xyz", "getcwd"}, "SCMP_ACT_ERRNO"),
                                                      rule({"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO", {{"errnoRet", EXDEV}})}));
    int st = run_filtered(p, [] {
        char buf[256];
        if (syscall(SYS_getcwd, buf, sizeof buf) != -1 || errno != EPERM) return 1;  // default errnoRet is EPERM
        if (mkdir("/tmp/berth-seccomp-never", 0700) == 0 || errno != EXDEV) return 2;
        if (getpid() <= 0) return 3;  // everything else still works
        return 0;
    });
    CHECK(exited_with(st, 0));
    // Without the filter, getcwd works (the test can fail).
    char buf[256];
    CHECK(getcwd(buf, sizeof buf) != nullptr);
}

TEST_CASE("argument conditions select the calls", "[security][seccomp]") {
    // personality(0xffffffff) only queries; deny one specific persona.
    Value eq = rule({"personality"}, "SCMP_ACT_ERRNO",
                    {{"errnoRet", ENOTBLK}, {"args", Value::array({{{"index", 0}, {"value", PER_LINUX32}, {"op", "SCMP_CMP_EQ"}}})}});
    int st = run_filtered(profile("SCMP_ACT_ALLOW", Value::array({eq})), [] {
        if (personality(0xffffffff) < 0) return 1;
        if (personality(PER_LINUX32) != -1 || errno != ENOTBLK) return 2;
        if (personality(PER_LINUX) < 0) return 3;
        return 0;
    });
    CHECK(exited_with(st, 0));

    struct Case {
        const char *op;
        uint64_t value, value_two;
        unsigned long probe;
        bool denied;
    };
    const Case cases[] = {
        {"SCMP_CMP_NE", 0xffffffff, 0, PER_LINUX, true},      {"SCMP_CMP_NE", 0xffffffff, 0, 0xffffffff, false},
        {"SCMP_CMP_LT", 0x100, 0, PER_LINUX, true},           {"SCMP_CMP_LT", 0x100, 0, 0xffffffff, false},
        {"SCMP_CMP_LE", PER_LINUX32, 0, PER_LINUX32, true},   {"SCMP_CMP_LE", PER_LINUX32, 0, 0xffffffff, false},
        {"SCMP_CMP_GE", PER_LINUX32, 0, PER_LINUX32, true},   {"SCMP_CMP_GE", PER_LINUX32, 0, PER_LINUX, false},
        {"SCMP_CMP_GT", PER_LINUX32, 0, 0xffffffff, true},    {"SCMP_CMP_GT", PER_LINUX32, 0, PER_LINUX32, false},
        {"SCMP_CMP_MASKED_EQ", 0xff, PER_LINUX32, PER_LINUX32, true},
        {"SCMP_CMP_MASKED_EQ", 0xff, PER_LINUX32, 0xffffffff, false},
    };
    for (const auto &c : cases) {
        Value args = Value::array({{{"index", 0}, {"value", c.value}, {"valueTwo", c.value_two}, {"op", c.op}}});
        Value r = rule({"personality"}, "SCMP_ACT_ERRNO", {{"errnoRet", EXDEV}, {"args", args}});
        int s = run_filtered(profile("SCMP_ACT_ALLOW", Value::array({r})), [&] {
            long ret = syscall(SYS_personality, c.probe);
            bool denied = ret == -1 && errno == EXDEV;
            return denied == c.denied ? 0 : 1;
        });
        INFO(c.op << " probe " << c.probe);
        CHECK(exited_with(s, 0));
    }

    // Two conditions on the same index are ORed (separate rules), as runc does.
    Value two = rule({"personality"}, "SCMP_ACT_ERRNO",
                     {{"errnoRet", EXDEV},
                      {"args", Value::array({{{"index", 0}, {"value", PER_LINUX32}, {"op", "SCMP_CMP_EQ"}},
                                             {{"index", 0}, {"value", 0x1234}, {"op", "SCMP_CMP_EQ"}}})}});
    st = run_filtered(profile("SCMP_ACT_ALLOW", Value::array({two})), [] {
        if (syscall(SYS_personality, PER_LINUX32) != -1 || errno != EXDEV) return 1;
        if (syscall(SYS_personality, 0x1234) != -1 || errno != EXDEV) return 2;
        if (syscall(SYS_personality, 0xffffffff) < 0) return 3;
        return 0;
    });
    CHECK(exited_with(st, 0));
}

TEST_CASE("kill, trap, trace, log and default errno actions", "[security][seccomp]") {
    for (const char *kill : {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"}) {
        int st = run_filtered(profile("SCMP_ACT_ALLOW", Value::array({rule({"getppid"}, kill)})), [] {
            syscall(SYS_getppid);
            return 0;
        });
        INFO(kill);
        CHECK(WIFSIGNALED(st));
        CHECK(WTERMSIG(st) == SIGSYS);
    }

    // Default kill: anything not on the allow list kills the child.
    Value allow = profile("SCMP_ACT_KILL_PROCESS", Value::array({rule({"exit_group", "exit", "getpid"}, "SCMP_ACT_ALLOW")}));
    int st = run_filtered(allow, [] {
        syscall(SYS_getpid);
        syscall(SYS_getppid);
        return 0;
    });
    CHECK(WIFSIGNALED(st));
    CHECK(WTERMSIG(st) == SIGSYS);
    st = run_filtered(allow, [] { return syscall(SYS_getpid) > 0 ? 0 : 1; });
    CHECK(exited_with(st, 0));

    // Default errno with defaultErrnoRet.
    Value def = profile("SCMP_ACT_ERRNO", Value::array({rule({"exit_group", "exit"}, "SCMP_ACT_ALLOW")}));
    def["defaultErrnoRet"] = ENOSYS;
    st = run_filtered(def, [] { return syscall(SYS_getppid) == -1 && errno == ENOSYS ? 0 : 1; });
    CHECK(exited_with(st, 0));

    // TRACE without a tracer: the kernel fails the call with ENOSYS.
    st = run_filtered(profile("SCMP_ACT_ALLOW", Value::array({rule({"getppid"}, "SCMP_ACT_TRACE")})),
                      [] { return syscall(SYS_getppid) == -1 && errno == ENOSYS ? 0 : 1; });
    CHECK(exited_with(st, 0));

    // LOG allows.
    st = run_filtered(profile("SCMP_ACT_ALLOW", Value::array({rule({"getppid"}, "SCMP_ACT_LOG")})),
                      [] { return syscall(SYS_getppid) > 0 ? 0 : 1; });
    CHECK(exited_with(st, 0));

    // A rule equal to the default action is dropped, not an error.
    st = run_filtered(profile("SCMP_ACT_ALLOW", Value::array({rule({"getppid"}, "SCMP_ACT_ALLOW")})),
                      [] { return syscall(SYS_getppid) > 0 ? 0 : 1; });
    CHECK(exited_with(st, 0));
}

TEST_CASE("flags are passed to the kernel", "[security][seccomp]") {
    Value p = profile("SCMP_ACT_ALLOW", Value::array({rule({"getcwd"}, "SCMP_ACT_ERRNO", {{"errnoRet", EXDEV}})}));
    p["flags"] = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
    Value f = sec::seccomp_features();
    for (const auto &fl : p["flags"])
        if (std::find(f["supportedFlags"].begin(), f["supportedFlags"].end(), fl) == f["supportedFlags"].end()) {
            WARN("skipped: kernel lacks " << fl.get<std::string>());
            return;
        }
    int st = run_filtered(p, [] {
        char buf[64];
        return syscall(SYS_getcwd, buf, sizeof buf) == -1 && errno == EXDEV ? 0 : 1;
    });
    CHECK(exited_with(st, 0));
}

TEST_CASE("load without no_new_privs or CAP_SYS_ADMIN is refused clearly", "[security][seccomp][root]") {
    if (geteuid() != 0) {
        WARN("skipped: needs root to drop to another uid");
        return;
    }
    Value empty = profile("SCMP_ACT_ALLOW", Value::array());
    auto f = sec::compile_seccomp(&empty);
    REQUIRE(f.ok());
    auto fail = failure_in_child([] { return setgid(65534) != 0 || setuid(65534) != 0 ? 1 : 0; },
                                 [&] { return (*f)->load(); });
    CHECK(exited_with(fail.status, 0));
    CHECK(fail.code == EACCES);
    CHECK_THAT(fail.message, Catch::Contains("needs no_new_privs or CAP_SYS_ADMIN"));
}

TEST_CASE("SCMP_ACT_NOTIFY sends the listener fd and the agent answers", "[security][seccomp]") {
    std::string dir = util::cat("/tmp/berth-notify-", getpid());
    REQUIRE(mkdir(dir.c_str(), 0700) == 0);
    std::string path = dir + "/agent.sock";
    util::ScopeGuard cleanup([&] {
        unlink(path.c_str());
        rmdir(dir.c_str());
    });
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, path.c_str());
    REQUIRE(bind(listener, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    REQUIRE(listen(listener, 1) == 0);

    Value p = profile("SCMP_ACT_ALLOW", Value::array({rule({"getppid"}, "SCMP_ACT_NOTIFY")}));
    p["listenerPath"] = path;
    p["listenerMetadata"] = "hello";
    auto f = sec::compile_seccomp(&p);
    REQUIRE(f.ok());
    REQUIRE((*f)->uses_notify());
    CHECK((*f)->listener_path() == path);
    CHECK((*f)->listener_metadata() == "hello");

    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(100);
        if (!(*f)->load().ok()) _exit(101);
        int nfd = (*f)->take_notify_fd();
        if (nfd < 0) _exit(102);
        Value state = {{"ociVersion", "1.2.0"}, {"id", "notify-test"}, {"status", "creating"}, {"pid", getpid()}};
        if (!sec::send_seccomp_listener_fd((*f)->listener_path(), (*f)->listener_metadata(), nfd, getpid(), state).ok())
            _exit(103);
        close(nfd);
        // The agent answers EXDEV for this call.
        _exit(syscall(SYS_getppid) == -1 && errno == EXDEV ? 0 : 104);
    }
    int conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    close(listener);
    REQUIRE(conn >= 0);
    char buf[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    iovec iov{buf, sizeof buf};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
    REQUIRE(n > 0);
    cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    REQUIRE(cm != nullptr);
    REQUIRE(cm->cmsg_type == SCM_RIGHTS);
    int nfd;
    memcpy(&nfd, CMSG_DATA(cm), sizeof nfd);
    // The rest of the payload, if it came in pieces.
    std::string payload(buf, static_cast<size_t>(n));
    payload += util::read_all(conn).value_or("");
    close(conn);
    auto msg = util::json::parse(payload, "state");
    REQUIRE(msg.ok());
    CHECK((*msg)["fds"] == Value::array({"seccompFd"}));
    CHECK((*msg)["pid"] == pid);
    CHECK((*msg)["metadata"] == "hello");
    CHECK((*msg)["state"]["id"] == "notify-test");
    CHECK((*msg)["ociVersion"] == "1.2.0");

    seccomp_notif req{};
    REQUIRE(ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, &req) == 0);
    CHECK(req.pid == static_cast<uint32_t>(pid));
    CHECK(req.data.nr == SYS_getppid);
    seccomp_notif_resp resp{};
    resp.id = req.id;
    resp.error = -EXDEV;
    REQUIRE(ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0);
    close(nfd);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(exited_with(st, 0));
}

TEST_CASE("enosys tool makes the new syscalls fail with ENOSYS", "[security][seccomp][enosys]") {
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(len > 0);
    self[len] = 0;
    std::string tool = util::dirname(self) + "/enosys";
    if (access(tool.c_str(), X_OK) != 0) {
        WARN("skipped: " << tool << " not built");
        return;
    }
    auto run = [&](std::vector<std::string> argv, bool quiet = false) {
        std::vector<char *> args;
        for (auto &a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        return run_in_child([&] {
            if (quiet) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                dup2(null, 2);
            }
            execv(args[0], args.data());
            return 127;
        });
    };
    // Under the tool, through a shell: every probe fails with ENOSYS.
    CHECK(exited_with(run({tool, "/bin/sh", "-c", "exec \"$0\" --check", tool}), 0));
    // Without the filter, the same probe fails (this kernel has these syscalls).
    CHECK(exited_with(run({tool, "--check"}, true), 1));
    // Ordinary programs still work under it.
    CHECK(exited_with(run({tool, "/bin/sh", "-c", "ls / >/dev/null && exit 7"}), 7));
    // A narrower list: only openat2 fails.
    CHECK(exited_with(run({tool, "--syscalls", "openat2", tool, "--check"}, true), 1));
    // And inside a unit test: the filter the tool builds, loaded here, gives ENOSYS to syscall().
    Value p = profile("SCMP_ACT_ALLOW", Value::array({rule({"openat2", "clone3"}, "SCMP_ACT_ERRNO", {{"errnoRet", ENOSYS}})}));
    int st = run_filtered(p, [] {
        if (syscall(SYS_openat2, AT_FDCWD, "/", nullptr, 0) != -1 || errno != ENOSYS) return 1;
        if (syscall(SYS_clone3, nullptr, 0) != -1 || errno != ENOSYS) return 2;
        return 0;
    });
    CHECK(exited_with(st, 0));
}
