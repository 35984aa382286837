// Linux namespaces of a container: which ones clone() creates, which ones
// are joined by path (setns), the uid/gid maps of a new user namespace, and
// the time namespace (created by the runtime with unshare, since clone(2)
// cannot take CLONE_NEWTIME, so the init is born inside it).
//
// Order, as runc: the runtime opens every namespace path before clone (paths
// are host paths); a pid or time namespace given by path is joined by the
// runtime itself (both apply to children only); the init joins the others
// (user first) and unshares the cgroup namespace once it sits in its cgroup.
#pragma once

#include <sys/types.h>

#include <utility>
#include <vector>

#include "runtime/kernel.hpp"
#include "runtime/spec.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace rt::ns {

#ifndef CLONE_NEWTIME
inline constexpr int kCloneNewTime = 0x00000080;
#else
inline constexpr int kCloneNewTime = CLONE_NEWTIME;
#endif

/// A namespace to join: its type and an fd of its path.
struct Join {
    int type = 0;
    util::UniqueFd fd;
};

/// The clone(2) flags for the namespaces the spec creates (no path). Never
/// includes time (see file comment) nor cgroup (unshared by the init later).
int clone_flags(const Spec &spec);
/// What the init unshares after joining a user namespace by path (the
/// namespaces clone_flags() left out for that reason).
int unshare_after_join(const Spec &spec);
/// True when the spec asks for a new cgroup namespace.
bool wants_new_cgroupns(const Spec &spec);

/// Opens every namespace path of the spec (before clone); checks each is a
/// namespace file of the right type.
util::Result<std::vector<Join>> open_joins(const Spec &spec);

/// In the runtime, before clone: joins a pid/time namespace by path, or
/// unshares a new time namespace and writes its offsets. Children are born
/// inside; the runtime itself is not moved.
util::Status prepare_for_children(const Spec &spec, std::vector<Join> &joins, Kernel &sys = kernel());

/// In the init: joins the remaining namespaces (user first).
util::Status join_in_init(std::vector<Join> &joins, Kernel &sys = kernel());

/// Clones the container's init like fork (no new stack) into the new
/// namespaces of `flags`. With `cgroup_fd` >= 0 (a cgroup2 directory),
/// first through clone3 with CLONE_INTO_CGROUP, so the child is born in
/// that cgroup; where clone3 or the flag is missing (before 5.7, or a
/// seccomp filter), a plain clone. `*into_cgroup` says which, in the
/// parent and in the child. Returns like fork: the pid, 0, or -1 and errno.
pid_t clone_init(int flags, int cgroup_fd, bool *into_cgroup);

/// Writes /proc/<pid>/{setgroups,uid_map,gid_map} for a new user namespace.
util::Status write_id_maps(pid_t pid, const Spec &spec);

}  // namespace rt::ns
