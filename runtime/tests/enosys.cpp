// enosys: runs a command with the syscalls that old gateway kernels (4.4 to
// 5.10) lack failing with ENOSYS, so the integration suite exercises berth's
// fallbacks on a new kernel. It installs a seccomp filter (through berth's own
// compile_seccomp) that allows everything except those syscalls, then execs.
//
//   enosys [--syscalls a,b,c] COMMAND [ARG...]   run COMMAND under the filter
//   enosys --check                               exit 0 iff every listed syscall
//                                                fails with ENOSYS here
//
// The filter is inherited by every child, so `enosys meson test ...` or
// `enosys /bin/sh -c '...'` covers a whole run. As root it needs no
// no_new_privs; otherwise it sets no_new_privs first (setuid programs then
// lose their privileges, as under any seccomp sandbox).
#include <errno.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/security.hpp"
#include "util/strings.hpp"

namespace {

const char *const kDefaultSyscalls[] = {
    "openat2",   "clone3",  "close_range", "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "mount_setattr",
    "fsopen",    "fsmount", "fsconfig",    "fspick",     "move_mount",        "open_tree",
};

/// Calls each syscall with harmless invalid arguments; returns the names that did not fail with ENOSYS.
std::vector<std::string> check() {
    struct Probe {
        const char *name;
        long nr;
        long a, b, c, d, e;
    };
    const Probe probes[] = {
        {"openat2", SYS_openat2, -1, 0, 0, 0, 0},
        {"clone3", SYS_clone3, 0, 0, 0, 0, 0},
        {"close_range", SYS_close_range, ~0L, 0, 0, 0, 0},
        {"pidfd_open", SYS_pidfd_open, 0, ~0L, 0, 0, 0},
        {"pidfd_send_signal", SYS_pidfd_send_signal, -1, 0, 0, 0, 0},
        {"pidfd_getfd", SYS_pidfd_getfd, -1, -1, ~0L, 0, 0},
        {"mount_setattr", SYS_mount_setattr, -1, 0, ~0L, 0, 0},
        {"fsopen", SYS_fsopen, 0, ~0L, 0, 0, 0},
        {"fsmount", SYS_fsmount, -1, ~0L, 0, 0, 0},
        {"fsconfig", SYS_fsconfig, -1, ~0L, 0, 0, 0},
        {"fspick", SYS_fspick, -1, 0, ~0L, 0, 0},
        {"move_mount", SYS_move_mount, -1, 0, -1, 0, ~0L},
        {"open_tree", SYS_open_tree, -1, 0, ~0L, 0, 0},
    };
    std::vector<std::string> bad;
    for (const auto &p : probes) {
        long r = syscall(p.nr, p.a, p.b, p.c, p.d, p.e);
        if (!(r < 0 && errno == ENOSYS)) bad.push_back(util::cat(p.name, " (returned ", r, ", ", strerror(errno), ')'));
    }
    return bad;
}

int usage() {
    fputs("usage: enosys [--syscalls a,b,c] COMMAND [ARG...] | enosys --check\n", stderr);
    return 2;
}

}  // namespace

int main(int argc, char **argv) {
    int i = 1;
    std::vector<std::string> names(std::begin(kDefaultSyscalls), std::end(kDefaultSyscalls));
    if (i < argc && strcmp(argv[i], "--check") == 0) {
        auto bad = check();
        for (const auto &b : bad) fprintf(stderr, "enosys --check: %s did not fail with ENOSYS\n", b.c_str());
        return bad.empty() ? 0 : 1;
    }
    if (i + 1 < argc && strcmp(argv[i], "--syscalls") == 0) {
        names = util::split(argv[i + 1], ',');
        i += 2;
    }
    if (i >= argc) return usage();

    util::json::Value profile = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"syscalls", util::json::Value::array({{{"names", names}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", ENOSYS}}})},
    };
    auto filter = rt::security::compile_seccomp(&profile);
    if (!filter.ok()) {
        fprintf(stderr, "enosys: %s\n", filter.error().message().c_str());
        return 125;
    }
    auto loaded = (*filter)->load();
    if (!loaded.ok() && loaded.error().code == EACCES) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
            perror("enosys: prctl(PR_SET_NO_NEW_PRIVS)");
            return 125;
        }
        loaded = (*filter)->load();
    }
    if (!loaded.ok()) {
        fprintf(stderr, "enosys: %s\n", loaded.error().message().c_str());
        return 125;
    }
    execvp(argv[i], argv + i);
    fprintf(stderr, "enosys: exec %s: %s\n", argv[i], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
