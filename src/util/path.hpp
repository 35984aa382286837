// Opening paths inside a root directory without ever leaving it.
//
// Container rootfs and image layers are untrusted: any component may be a
// symlink pointing anywhere, and may be swapped while we look (CVE-2021-30465).
// open_in_root() uses openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) where
// the kernel has it (5.6+), and otherwise walks the path one component at a
// time with O_NOFOLLOW, resolving each symlink itself against the root.
#pragma once

#include <sys/types.h>

#include <string_view>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace util {

enum class Scope {
    /// Like chroot: `..` at the root stays at the root and absolute symlinks
    /// start from the root (RESOLVE_IN_ROOT). For container root filesystems.
    InRoot,
    /// Any step out of the root (`..` above it, an absolute symlink) fails with
    /// EXDEV (RESOLVE_BENEATH). For unpacking layers, where an escape is hostile.
    Beneath,
};

/// Opens `path` (relative or absolute, both taken relative to `rootfd`) with
/// open(2) `flags` (O_CLOEXEC is added). A final symlink is followed inside
/// the root unless `flags` has O_NOFOLLOW. More than 40 symlinks give ELOOP.
Result<UniqueFd> open_in_root(int rootfd, std::string_view path, int flags, mode_t mode = 0,
                              Scope scope = Scope::InRoot);

/// Creates every missing directory of `path` inside the root (like mkdir -p,
/// never following a symlink out) and returns an O_PATH fd of the last one.
Result<UniqueFd> mkdir_all_in_root(int rootfd, std::string_view path, mode_t mode = 0755,
                                   Scope scope = Scope::InRoot);

/// True when the kernel's openat2 is used (not disabled, not ENOSYS).
bool openat2_usable();

}  // namespace util
