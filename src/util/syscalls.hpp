// Wrappers for syscalls newer than the 4.4-5.10 kernels gateways run.
//
// Each returns like libc (-1 and errno) and fails with ENOSYS when the kernel
// lacks the call. A caller that gets ENOSYS takes its fallback path. Tests
// force the fallbacks with disable(), or for the real binary with
//   BERTH_DISABLE_SYSCALLS=openat2,clone3,close_range,pidfd_open,mount_setattr,fsopen
// in test builds only (-Dtest_hooks=true, see util/failpoint.hpp); a seccomp
// filter around a test run, returning ENOSYS, exercises the same paths.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string_view>

namespace util::sys {

struct OpenHow {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};
inline constexpr uint64_t kResolveNoXdev = 0x01;
inline constexpr uint64_t kResolveNoMagiclinks = 0x02;
inline constexpr uint64_t kResolveNoSymlinks = 0x04;
inline constexpr uint64_t kResolveBeneath = 0x08;
inline constexpr uint64_t kResolveInRoot = 0x10;

int openat2(int dirfd, const char *path, const OpenHow &how);
int close_range(unsigned first, unsigned last, unsigned flags);
int pidfd_open(pid_t pid, unsigned flags);
int pidfd_send_signal(int pidfd, int sig, unsigned flags);

struct MountAttr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};
int mount_setattr(int dirfd, const char *path, unsigned flags, const MountAttr &attr);
/// open_tree(2) (5.2): with OPEN_TREE_CLONE, a detached bind mount of `path`.
int open_tree(int dirfd, const char *path, unsigned flags);

/// True when `name` was disabled by the environment or by disable().
bool disabled(std::string_view name);
/// Makes the wrapper for `name` fail with ENOSYS (tests); `enable` undoes it.
void disable(std::string_view name);
void enable(std::string_view name);

}  // namespace util::sys
