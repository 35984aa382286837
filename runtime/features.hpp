// What berth implements, as the runtime-spec's features.md structure
// (`berth features`), and the default config.json of `berth spec`.
//
// features.md asks for what the runtime implements, not what this host
// offers, so the answer depends only on the build: hooks, the mount options
// the spec parser knows, namespaces, capabilities, the cgroup backends,
// seccomp (rt::security's tables) and the LSM fields.
#pragma once

#include <sys/types.h>

#include "util/json.hpp"

namespace rt {

/// The oldest and newest ociVersion berth accepts.
inline constexpr const char *kOciVersionMin = "1.0.0";
inline constexpr const char *kOciVersionMax = "1.2.0";

/// The features structure (runtime-spec features.md + features-linux.md).
util::json::Value features_json();

/// runc's example config.json (`runc spec`): sh on a terminal, the usual
/// mounts, masked and read-only paths, a deny-all device cgroup. With
/// `rootless`, as runc's ToRootless: a user namespace mapping `uid`/`gid` to
/// root, no network namespace, /sys bind-mounted, no uid=/gid= mount
/// options and no resources.
util::json::Value default_spec(bool rootless, uid_t uid, gid_t gid);

}  // namespace rt
