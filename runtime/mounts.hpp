// The container's root filesystem, as the init builds it in its new mount
// namespace: propagation of `/` (rslave, or private), the rootfs bound onto
// itself, every `mounts` entry in order, devices (devices.hpp), sysctl,
// masked and read-only paths, then pivot_root (or MS_MOVE + chroot where the
// current root is an initramfs, or with --no-pivot), then the spec's
// rootfsPropagation (shared or unbindable only now: either would break the
// steps before) and `root.readonly`. Without a mount namespace: devices and
// a chroot, nothing mounted.
//
// No mount target may resolve into `/proc` (except a procfs on `/proc` and
// lxcfs's files): a bind there would catch the runtime's own procfs writes.
//
// Every target is resolved inside the rootfs (util::open_in_root) and
// mounted through /proc/self/fd/N of an O_PATH fd, so a symlink swapped in
// under a target cannot redirect the mount (CVE-2021-30465); masked and
// read-only paths are resolved the same way, and /dev/null is checked to be
// the real 1:3 device before it is bound over anything.
#pragma once

#include <string>
#include <vector>

#include "runtime/kernel.hpp"
#include "runtime/spec.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace rt::mounts {

/// One line of /proc/self/mountinfo.
struct MountInfo {
    int id = 0, parent = 0;
    std::string root, mount_point, options, fs_type, source, super_options, optional;
};
util::Result<std::vector<MountInfo>> read_mountinfo(const char *path = "/proc/self/mountinfo");
/// The lines of a mountinfo file's text (malformed lines are skipped).
std::vector<MountInfo> parse_mountinfo(std::string_view text);
/// Unescapes mountinfo's octal escapes ("\040" -> " ").
std::string unescape(std::string_view s);

struct RootfsOptions {
    bool no_pivot = false;
    bool new_cgroupns = false;
    /// Runs after the mounts, before pivot_root (createContainer hooks).
    util::Status (*before_pivot)(void *ctx) = nullptr;
    void *before_pivot_ctx = nullptr;
    /// Every mount, pivot_root and chroot goes through it (tests record them).
    Kernel *sys = &kernel();
    /// The container's cgroup per hierarchy name ("" for cgroup2), bound at
    /// /sys/fs/cgroup; hierarchies not listed use /proc/self/cgroup.
    const std::vector<std::pair<std::string, std::string>> *cgroup_dirs = nullptr;
};

/// A config without a mount namespace shares the runtime's mounts: refuses
/// what would change them (`mounts`, masked and read-only paths,
/// rootfsPropagation, root.readonly, --no-pivot). The init then only
/// creates devices and chroots into the rootfs.
util::Status check_without_mount_ns(const Spec &spec, bool no_pivot);

/// Everything from `/` propagation to `root.readonly`. Runs in the init.
util::Status setup_rootfs(const Spec &spec, const RootfsOptions &opts);

/// Mounts one `mounts` entry into the rootfs open at `rootfd` (exposed for tests).
util::Status mount_entry(int rootfd, const Mount &m, const RootfsOptions &opts);

/// `/proc/self/fd/N`
std::string fd_path(int fd);

}  // namespace rt::mounts
