// `update`: changing a running container's cgroup limits.
//
// runc's flags (--memory 512k, --cpu-quota ...) become a `linux.resources`
// patch; a `--resources` file is one already. The patch is applied (only
// what it names is written to the cgroup) and merged into the container's
// saved resources, <state dir>/resources.json, which starts as the spec's
// `linux.resources`: the next update, and anything reading the saved
// limits, sees the merged set. The CLI and the daemon share update_container().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/json.hpp"
#include "util/result.hpp"

namespace rt {

inline constexpr const char *kResourcesFile = "resources.json";

/// Sizes as runc's flags take them ("512k", "1.5m", "2GiB", "1024"; binary
/// units); "-1" (unlimited) only when `allow_unlimited`.
util::Result<int64_t> parse_bytes(std::string_view s, bool allow_unlimited = false);

/// Turns runc update flags (name without dashes, value) into a resources
/// object: memory, memory-reservation, memory-swap, kernel-memory,
/// kernel-memory-tcp, cpu-shares, cpu-quota, cpu-period, cpu-rt-period,
/// cpu-rt-runtime, cpuset-cpus, cpuset-mems, pids-limit, blkio-weight.
/// Unknown names and bad values are errors naming the flag.
util::Result<util::json::Value> resources_patch(const std::vector<std::pair<std::string, std::string>> &flags);

/// Deep merge: objects merge key by key, anything else in `patch` replaces.
void merge_json(util::json::Value &base, const util::json::Value &patch);

/// True for a flag name resources_patch() takes ("memory", "cpu-quota", ...).
bool is_resources_flag(std::string_view name);

/// Updates container `id` under `root` with `patch` (a linux.resources
/// object), holding the container's lock: merges it into the saved
/// resources, applies the merged set to the cgroup (device rules aside),
/// then saves it. A stopped container is an error. `systemd_cgroup`: the
/// cgroup is systemd's even if the state does not say so (--systemd-cgroup).
util::Status update_container(const std::string &root, const std::string &id, const util::json::Value &patch,
                              bool systemd_cgroup);

}  // namespace rt
