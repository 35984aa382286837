// The real rt::Kernel: each call goes straight to the kernel; see kernel.hpp.
#include "runtime/kernel.hpp"

#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace rt {
namespace {

class RealKernel final : public Kernel {
public:
    constexpr RealKernel() = default;
    int mount(const char *source, const char *target, const char *fstype, unsigned long flags,
              const void *data) override {
        return ::mount(source, target, fstype, flags, data);
    }
    int umount2(const char *target, int flags) override { return ::umount2(target, flags); }
    int mount_setattr(int dirfd, const char *path, unsigned flags, const util::sys::MountAttr &attr) override {
        return util::sys::mount_setattr(dirfd, path, flags, attr);
    }
    int pivot_root(const char *new_root, const char *put_old) override {
        return static_cast<int>(::syscall(SYS_pivot_root, new_root, put_old));
    }
    int chroot(const char *path) override { return ::chroot(path); }
    int mknodat(int dirfd, const char *name, mode_t mode, dev_t dev) override { return ::mknodat(dirfd, name, mode, dev); }
    int symlinkat(const char *target, int dirfd, const char *linkpath) override {
        return ::symlinkat(target, dirfd, linkpath);
    }
    int fstat(int fd, struct stat *sb) override { return ::fstat(fd, sb); }
    int setns(int fd, int type) override { return ::setns(fd, type); }
    int unshare(int flags) override { return ::unshare(flags); }
};

constinit RealKernel real_kernel;

}  // namespace

Kernel &kernel() { return real_kernel; }

}  // namespace rt
