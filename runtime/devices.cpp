// The container's /dev; see devices.hpp.
#include "runtime/devices.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "runtime/mounts.hpp"
#include "util/file.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"

namespace rt::devices {
namespace {

using util::Error;

struct DefaultDevice {
    const char *name;
    unsigned major, minor;
};
constexpr DefaultDevice kDefaults[] = {
    {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

/// Sets owner and mode of the node just created at `name` in `dirfd`.
/// `dirfd` may be shared (a /dev bound from the host or another container):
/// the name can be swapped for a symlink at any moment, so nothing here
/// resolves it twice. The node is opened once (O_PATH | O_NOFOLLOW), checked
/// to be the device made, and changed through that fd only.
util::Status own_node(int dirfd, const std::string &name, mode_t type, dev_t dev, mode_t perm, uid_t uid, gid_t gid) {
    int fd = ::openat(dirfd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Error::from_errno("open the new node");
    util::UniqueFd node(fd);
    struct stat sb;
    if (::fstat(fd, &sb) < 0) return Error::from_errno("stat the new node");
    if ((sb.st_mode & S_IFMT) != type || (type != S_IFIFO && sb.st_rdev != dev))
        return Error::msg("the new node was replaced while it was set up");
    if ((sb.st_uid != uid || sb.st_gid != gid) && ::fchownat(fd, "", uid, gid, AT_EMPTY_PATH) < 0)
        return Error::from_errno("chown");
    // mknodat under umask 0 gave the mode already, unless a default ACL of a
    // host directory changed it; chown may have dropped setgid.
    if ((sb.st_mode & 07777) != perm || sb.st_uid != uid || sb.st_gid != gid) {
        if (::chmod(mounts::fd_path(fd).c_str(), perm) < 0) return Error::from_errno("chmod");
    }
    return util::ok();
}

/// Creates node `name` in `dirfd`, replacing what the image had there.
util::Status make_node(Kernel &sys, int dirfd, const std::string &name, mode_t type, dev_t dev, mode_t perm, uid_t uid, gid_t gid,
                       const std::string &host_path) {
    struct stat sb;
    if (::fstatat(dirfd, name.c_str(), &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(sb.st_mode)) return Error::msg(util::cat("a directory is in the way"));
        if (::unlinkat(dirfd, name.c_str(), 0) < 0) return Error::from_errno("remove what the image had");
    }
    if (sys.mknodat(dirfd, name.c_str(), type | perm, dev) == 0) return own_node(dirfd, name, type, dev, perm, uid, gid);
    if (errno != EPERM || type == S_IFIFO) return Error::from_errno("mknod");
    // No mknod (user namespace): bind the host's node over an empty file,
    // through the fd of the file we created (O_EXCL: never one put there).
    int fd = ::openat(dirfd, name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) return Error::from_errno("create bind target");
    util::UniqueFd target(fd);
    if (sys.mount(host_path.c_str(), mounts::fd_path(target.get()).c_str(), nullptr, MS_BIND, nullptr) < 0)
        return Error::from_errno(util::cat("bind ", util::quote(host_path)));
    return util::ok();
}

util::Status make_symlink(Kernel &sys, int dirfd, const char *name, const char *target) {
    struct stat sb;
    if (::fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(sb.st_mode)) return util::ok();  // an image's own /dev/fd dir: leave it
        if (::unlinkat(dirfd, name, 0) < 0) return Error::from_errno(util::cat("remove /dev/", name));
    }
    if (sys.symlinkat(target, dirfd, name) < 0 && errno != EEXIST)
        return Error::from_errno(util::cat("symlink /dev/", name));
    return util::ok();
}

}  // namespace

bool is_dev_null(Kernel &sys, int fd) {
    struct stat sb;
    return sys.fstat(fd, &sb) == 0 && S_ISCHR(sb.st_mode) && sb.st_rdev == makedev(1, 3);
}

util::Status check_dev_dir(int rootfd) {
    struct stat sb;
    if (::fstatat(rootfd, "dev", &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
        return Error::msg("`/dev` in the rootfs is a symlink; refusing to create devices through it");
    return util::ok();
}

util::Status setup_dev(Kernel &sys, int rootfd, const Spec &spec) {
    TRY(check_dev_dir(rootfd));
    auto dev = TRY_CTX(util::mkdir_all_in_root(rootfd, "/dev", 0755), "/dev");
    // mknodat needs a real directory fd, not O_PATH.
    auto devfd = TRY_CTX(util::open_at(dev.get(), ".", O_RDONLY | O_DIRECTORY), "/dev");
    for (const auto &d : kDefaults) {
        bool overridden = false;
        for (const auto &sd : spec.devices)
            if (sd.path == util::cat("/dev/", d.name)) overridden = true;
        if (overridden) continue;
        TRY_CTX(make_node(sys, devfd.get(), d.name, S_IFCHR, makedev(d.major, d.minor), 0666, 0, 0, util::cat("/dev/", d.name)),
                util::cat("device /dev/", d.name));
    }
    for (const auto &d : spec.devices) {
        std::string where = util::cat("device ", util::quote(d.path));
        std::string dir = util::dirname(d.path), name = util::basename(d.path);
        auto pdir = TRY_CTX(util::mkdir_all_in_root(rootfd, dir, 0755), where);
        auto pfd = TRY_CTX(util::open_at(pdir.get(), ".", O_RDONLY | O_DIRECTORY), where);
        mode_t type = d.type == 'b' ? S_IFBLK : d.type == 'p' ? S_IFIFO : S_IFCHR;
        dev_t devno = makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor));
        TRY_CTX(make_node(sys, pfd.get(), name, type, devno, d.file_mode.value_or(0666), d.uid.value_or(0), d.gid.value_or(0),
                          d.path),
                where);
    }
    TRY(make_symlink(sys, devfd.get(), "fd", "/proc/self/fd"));
    TRY(make_symlink(sys, devfd.get(), "stdin", "/proc/self/fd/0"));
    TRY(make_symlink(sys, devfd.get(), "stdout", "/proc/self/fd/1"));
    TRY(make_symlink(sys, devfd.get(), "stderr", "/proc/self/fd/2"));
    if (::access("/proc/kcore", F_OK) == 0) TRY(make_symlink(sys, devfd.get(), "core", "/proc/kcore"));
    // /dev/ptmx: the container's devpts instance, when it has one.
    struct stat sb;
    if (::fstatat(devfd.get(), "pts/ptmx", &sb, AT_SYMLINK_NOFOLLOW) == 0) TRY(make_symlink(sys, devfd.get(), "ptmx", "pts/ptmx"));
    if (::mkdirat(devfd.get(), "shm", 01777) < 0 && errno != EEXIST) return Error::from_errno("mkdir /dev/shm");
    return util::ok();
}

}  // namespace rt::devices
