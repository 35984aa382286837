// The kernel calls that change mounts and namespaces, behind one small
// interface so the rootfs and namespace logic (mounts.cpp, devices.cpp,
// namespaces.cpp) can be unit-tested without root: production code calls
// rt::kernel(), which forwards each call to the kernel; runtime/tests has
// a recording implementation that keeps the calls and fails those a test
// asks it to. Each call returns like libc (-1 and errno).
//
// Only calls whose effect a test could not undo, or could not make without
// privileges, are here; opening, reading and creating files in the rootfs
// stay direct (tests run them on a temporary directory).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include "util/syscalls.hpp"

namespace rt {

class Kernel {
public:
    virtual int mount(const char *source, const char *target, const char *fstype, unsigned long flags,
                      const void *data) = 0;
    virtual int umount2(const char *target, int flags) = 0;
    virtual int mount_setattr(int dirfd, const char *path, unsigned flags, const util::sys::MountAttr &attr) = 0;
    virtual int pivot_root(const char *new_root, const char *put_old) = 0;
    virtual int chroot(const char *path) = 0;
    virtual int mknodat(int dirfd, const char *name, mode_t mode, dev_t dev) = 0;
    virtual int symlinkat(const char *target, int dirfd, const char *linkpath) = 0;
    /// fstat(2): a fake answers for the nodes it pretended to bind.
    virtual int fstat(int fd, struct stat *sb) = 0;
    virtual int setns(int fd, int type) = 0;
    virtual int unshare(int flags) = 0;

protected:
    ~Kernel() = default;
};

/// The real kernel (a static object: no allocation, no initialisation order).
Kernel &kernel();

}  // namespace rt
