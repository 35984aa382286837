// The runtime's own writes to procfs (oom_score_adj, LSM exec attributes)
// and its fd listing, through a verified procfs handle instead of paths.
//
// A path like /proc/self/oom_score_adj resolves through whatever is mounted
// on the way: a bind mount of a host file placed over it (through a symlink
// swapped in a shared volume) would receive the write. So the handle is
// (in order of preference) a private procfs instance of our own (fsopen +
// fsmount: nothing can be mounted on it), a non-recursive clone of the
// /proc mount (open_tree: no submounts, so nothing stacked on its files),
// or on kernels before 5.2 the /proc directory itself, checked to be the root
// of a procfs. Every file is opened beneath that root with O_NOFOLLOW and
// checked to be on the same procfs (fstatfs == PROC_SUPER_MAGIC and the same
// device), so a file from another filesystem or procfs instance is refused.
//
// The handle is opened once per process and kept (O_CLOEXEC): the init opens
// it before it builds the rootfs, while the runtime's /proc is still there,
// and uses it after pivot_root or chroot (a container without a mount
// namespace may have no /proc of its own).
#pragma once

#include <string_view>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace rt::procfs {

/// The verified procfs root, opened on first use; the fd stays owned here.
util::Result<int> root();

/// The cached root fd, or -1 when none was opened (an fd sweep must keep it).
int cached_fd();

/// Opens `self/<rel>` beneath root() (last component not followed) and
/// checks that the file is on that procfs.
util::Result<util::UniqueFd> open_self(std::string_view rel, int flags);

/// Opens `self/fd/<fd>` beneath root() (the magic link followed): reopens
/// an O_PATH fd with `flags`. Works after a chroot that has no /proc.
util::Result<util::UniqueFd> reopen_fd(int fd, int flags);

/// True when `self/<rel>` exists beneath root().
bool self_exists(std::string_view rel);

/// Writes `value` to `self/<rel>` in one write(2) (the kernel parses it whole).
util::Status write_self(std::string_view rel, std::string_view value);

}  // namespace rt::procfs
