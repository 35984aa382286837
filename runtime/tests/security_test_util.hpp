// Helpers for the security tests: run a function in a forked child (filters,
// capability drops and personalities must not touch the test runner) and read
// the capability masks of /proc/<pid>/status text.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>

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

/// The hex mask of line `key:` (CapInh, CapPrm, CapEff, CapBnd, CapAmb) in status text; ~0 if absent.
inline uint64_t cap_mask(const std::string &status, const std::string &key) {
    auto pos = status.find(key + ":");
    if (pos == std::string::npos) return ~uint64_t{0};
    auto end = status.find('\n', pos);
    auto value = util::trim(std::string_view(status).substr(pos + key.size() + 1, end - pos - key.size() - 1));
    return util::parse_int<uint64_t>(value, 16).value_or(~uint64_t{0});
}
