// The runtime behind `berth build`'s RUN steps (build::Runner, see
// cross/build/builder.hpp): each step is a container of berth's own
// runtime whose root is an overlay of the stage's layers.
//
// The runner keeps its state under one directory (default /run/berth-build):
//   <state_root>/run/<id>       the runtime's state (rt::create_container's root)
//   <state_root>/bundles/<id>   config.json, the rootfs mount point, the
//                               copies of resolv.conf and hosts
// Ids are b<pid>-<start time>-<n>: a directory whose process is gone was
// left by a build killed with SIGKILL, and the next runner removes it
// (container, cgroup, mount, files) when it is made.
//
// make_build_runner moves this process into a mount namespace of its own
// (slave to the host's): the overlays it mounts are never seen outside and
// vanish with the process however it ends. Where that fails (no
// CAP_SYS_ADMIN), the runner mounts in the host's namespace and unmounts
// as it always does.
#pragma once

#include <memory>
#include <string>

#include "cross/build/builder.hpp"

namespace cmd {

inline constexpr const char *kBuildStateRoot = "/run/berth-build";

/// `own_mounts`, when given, says whether this process now has a mount
/// namespace of its own (where a build may mount its scratch tmpfs).
std::unique_ptr<build::Runner> make_build_runner(const std::string &state_root = kBuildStateRoot,
                                                 bool *own_mounts = nullptr);

}  // namespace cmd
