// /dev of the container: the default devices (null, zero, full, random,
// urandom, tty), `linux.devices`, the /dev/ptmx -> pts/ptmx, /dev/fd,
// stdin/stdout/stderr symlinks and /dev/shm. Nodes are created with mknodat
// relative to a /dev fd opened inside the rootfs; where mknod is not allowed
// (a user namespace) the host's node is bind-mounted instead. Whatever the
// image had at a device path (a symlink included) is replaced, never followed.
// /dev may be shared (bound from the host or from another container), so a
// created node is opened once with O_NOFOLLOW, checked to be the device made,
// and chowned/chmodded through that fd: a name swapped for a symlink between
// two calls never sends a chmod to a host file.
#pragma once

#include "runtime/kernel.hpp"
#include "runtime/spec.hpp"
#include "util/result.hpp"

namespace rt::devices {

/// Fails when `dev` in the rootfs is a symlink (the image would redirect
/// every device we create).
util::Status check_dev_dir(int rootfd);

/// Creates the default devices, the spec's devices and the /dev symlinks.
util::Status setup_dev(Kernel &sys, int rootfd, const Spec &spec);

/// True when `fd` is the real /dev/null (char 1:3).
bool is_dev_null(Kernel &sys, int fd);

}  // namespace rt::devices
