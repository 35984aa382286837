// Helpers for the security tests: run a function in a forked child (filters,
// capability drops and personalities must not touch the test runner) and read
// the capability masks of /proc/<pid>/status text.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "util/file.hpp"
#include "util/result.hpp"
#include "util/strings.hpp"

/// Runs `f` in a forked child and returns the raw wait status. `f` returns the
/// exit code; it must not use Catch2 macros (the child is a copy of the runner).
template <typename F>
int run_in_child(F f) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) _exit(f());
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return status;
}

inline bool exited_with(int status, int code) { return WIFEXITED(status) && WEXITSTATUS(status) == code; }

/// How `act` failed in the child of failure_in_child.
struct ChildFailure {
    int status = -1;  ///< wait status: exit 0 when prepared and `act` failed
    int code = 0;     ///< the Error's errno
    std::string message;
};

/// Runs `prepare` (returns 0, or an exit code when it cannot) and then `act`
/// (returns a util::Status expected to fail) in a forked child; reports how
/// `act` failed. Exit 100: `act` succeeded.
template <typename P, typename A>
ChildFailure failure_in_child(P prepare, A act) {
    ChildFailure out;
    int p[2];
    if (pipe(p) != 0) return out;
    out.status = run_in_child([&] {
        if (int rc = prepare()) return rc;
        util::Status r = act();
        if (r.ok()) return 100;
        std::string m = util::cat(r.error().code, '\n', r.error().message());
        (void)!write(p[1], m.data(), m.size());
        return 0;
    });
    close(p[1]);
    std::string msg = util::read_all(p[0]).value_or("");
    close(p[0]);
    if (auto nl = msg.find('\n'); nl != std::string::npos) {
        out.code = util::parse_int<int>(std::string_view(msg).substr(0, nl)).value_or(0);
        out.message = msg.substr(nl + 1);
    }
    return out;
}

/// The hex mask of line `key:` (CapInh, CapPrm, CapEff, CapBnd, CapAmb) in status text; ~0 if absent.
inline uint64_t cap_mask(const std::string &status, const std::string &key) {
    auto pos = status.find(key + ":");
    if (pos == std::string::npos) return ~uint64_t{0};
    auto end = status.find('\n', pos);
    auto value = util::trim(std::string_view(status).substr(pos + key.size() + 1, end - pos - key.size() - 1));
    return util::parse_int<uint64_t>(value, 16).value_or(~uint64_t{0});
}
