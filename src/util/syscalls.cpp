// Syscall wrappers; see syscalls.hpp.
#include "util/syscalls.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "util/failpoint.hpp"
#include "util/strings.hpp"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

namespace util::sys {
namespace {

std::vector<std::string> &disabled_list() {
    static std::vector<std::string> list = [] {
        const char *env = util::test_hooks_compiled() ? getenv("BERTH_DISABLE_SYSCALLS") : nullptr;
        return env ? split(env, ',') : std::vector<std::string>();
    }();
    return list;
}

int enosys() {
    errno = ENOSYS;
    return -1;
}

}  // namespace

bool disabled(std::string_view name) {
    for (const auto &n : disabled_list())
        if (n == name) return true;
    return false;
}

void disable(std::string_view name) {
    if (!disabled(name)) disabled_list().emplace_back(name);
}

void enable(std::string_view name) {
    auto &l = disabled_list();
    for (auto it = l.begin(); it != l.end(); ++it)
        if (*it == name) {
            l.erase(it);
            return;
        }
}

int openat2(int dirfd, const char *path, const OpenHow &how) {
    if (disabled("openat2")) return enosys();
    return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

int close_range(unsigned first, unsigned last, unsigned flags) {
    if (disabled("close_range")) return enosys();
    return static_cast<int>(::syscall(SYS_close_range, first, last, flags));
}

int pidfd_open(pid_t pid, unsigned flags) {
    if (disabled("pidfd_open")) return enosys();
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}

int pidfd_send_signal(int pidfd, int sig, unsigned flags) {
    if (disabled("pidfd_send_signal")) return enosys();
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, flags));
}

int mount_setattr(int dirfd, const char *path, unsigned flags, const MountAttr &attr) {
    if (disabled("mount_setattr")) return enosys();
    return static_cast<int>(::syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof attr));
}

int open_tree(int dirfd, const char *path, unsigned flags) {
    if (disabled("open_tree")) return enosys();
    return static_cast<int>(::syscall(SYS_open_tree, dirfd, path, flags));
}

}  // namespace util::sys
