// The image config (OCI image-spec config.json / Docker's container config)
// and its conversion into an OCI runtime-spec config.json for a bundle.
//
// The runtime config follows what podman and runc generate: the default
// capability set (podman's), namespaces pid/ipc/uts/mount/network, the
// standard mounts, runc's masked and read-only paths, a device cgroup that
// denies all but the default devices, a pids limit, and a default seccomp
// profile (seccomp_profile.cpp) that allows what programs need and refuses
// namespaces, mounts and the kernel's administration. An update manifest's
// container (ota/stage.hpp) adds to that: a cwd and user, capabilities
// beyond the default set, host devices (a node and one allow rule each),
// memory, CPU and pids limits, the host network, named volumes and bind
// mounts; the confinement stays.
// User names ("app", "app:staff") are resolved in the image's own
// /etc/passwd and /etc/group, read through util::open_in_root so a
// hostile image cannot make us read a host file, and only when they are
// regular files of bounded size (a FIFO there would block us).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "image/digest.hpp"
#include "image/manifest.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace img {

struct ImageConfig {
    Platform platform;
    std::vector<Digest> diff_ids;
    std::string user;
    std::vector<std::string> env, entrypoint, cmd;
    std::string working_dir;
    std::vector<std::string> volumes;  ///< container paths
    std::string stop_signal;
    std::map<std::string, std::string> labels;
};

util::Result<ImageConfig> parse_image_config(std::string_view json);

/// A host device node the container gets (linux.devices, plus an allow rule
/// in linux.resources.devices). The caller stats the host node for its
/// type and numbers.
struct DeviceNode {
    std::string path;  ///< in the container (the host's path, as a rule)
    char type = 'c';   ///< 'c' or 'b'
    int64_t major = 0, minor = 0;
    std::string permissions = "rwm";  ///< the cgroup access: r, w, m
    uint32_t file_mode = 0666;
};

/// A named volume: a bind mount from volumes_dir/<name>, which the caller
/// creates (runtime_config only names it).
struct NamedVolume {
    std::string name;         ///< one path component
    std::string destination;  ///< absolute path in the container
    bool readonly = false;
};

/// A bind mount of a host directory the caller provides (the notify
/// socket's directory of a `ready` health check).
struct BindMount {
    std::string source;       ///< absolute host path
    std::string destination;  ///< absolute path in the container
    bool readonly = false;
};

struct RuntimeConfigOptions {
    std::string rootfs = "rootfs";           ///< root.path in config.json
    std::string hostname;                    ///< empty: none set
    std::vector<std::string> args;           ///< overrides Cmd (Entrypoint stays) when non-empty
    std::vector<std::string> extra_env;      ///< KEY=VALUE, override the image's
    std::string volumes_dir;                 ///< <root>/volumes; empty: image volumes are not mounted
    std::string volume_prefix;               ///< volume name prefix (the container or app name)
    std::map<std::string, std::string> annotations;  ///< added to the image's labels, replacing same-named ones
    uint64_t nofile = 0;                     ///< RLIMIT_NOFILE; 0: 1048576 (podman's), or this process's hard limit when it may not raise to that
    uint64_t pids_limit = 2048;              ///< linux.resources.pids.limit (podman's default)
    bool terminal = false;
    bool readonly_rootfs = false;
    // What an update manifest's container may ask for (ota/stage.hpp).
    std::string cwd;   ///< process.cwd; empty: the image's WorkingDir
    std::string user;  ///< "user[:group]" resolved as the image's User is; empty: the image's
    std::vector<std::string> extra_capabilities;  ///< added to the default set (bounding, effective, permitted)
    std::vector<DeviceNode> devices;
    uint64_t memory_limit = 0;  ///< linux.resources.memory.limit in bytes; 0: none
    uint64_t cpu_millis = 0;    ///< CPU time per second in thousandths of a CPU (quota over a 100 ms period); 0: none
    bool host_network = false;  ///< no network namespace: the host's network
    /// Mounted after the standard mounts, in this order; an image volume
    /// at the same destination as one of these is left out. Neither may
    /// cover the root or sit in /proc, /sys or /dev.
    std::vector<NamedVolume> named_volumes;
    std::vector<BindMount> extra_mounts;
};

/// Resolves "user[:group]" (names or numbers) against the rootfs' /etc/passwd
/// and /etc/group. A numeric user not in passwd is fine (gid 0); an unknown
/// name is an error.
struct UserIds {
    uint32_t uid = 0, gid = 0;
    std::vector<uint32_t> additional_gids;
    std::string home;
};
util::Result<UserIds> resolve_user(int rootfs_fd, std::string_view user);

/// A named volume's name is one path component, not starting with `.`
/// (`.image` holds the image volumes), no `/`.
bool valid_volume_name(std::string_view name);

/// The directory of the image volume at container path `dest` under `dir`:
/// <dir>/.image/<prefix>/<dest without its leading '/', '/' turned into '_'>.
/// Apart from the named volumes (<dir>/<name>, never starting with `.`),
/// and one directory per prefix (the container's name).
std::string volume_dir(const std::string &dir, std::string_view prefix, std::string_view dest);
/// Where berth kept that image volume before: <dir>/<prefix><dest with '/'
/// turned into '_'>, a name a named volume could take too.
std::string legacy_volume_dir(const std::string &dir, std::string_view prefix, std::string_view dest);
/// Moves an image volume from its legacy_volume_dir to its volume_dir when
/// only the legacy one exists, and leaves a symlink at the legacy name so
/// bundles made before (a rollback target) bind the same data. Crash-safe:
/// the link is made first beside the new place (.<name>.legacy) and renamed
/// to the old name last; a call after a crash finishes the move.
util::Status migrate_legacy_volume(const std::string &dir, std::string_view prefix, std::string_view dest);

/// Builds the runtime config.json. `rootfs_fd` is the assembled rootfs (for
/// user names). Image volumes become bind mounts from their volume_dir,
/// named volumes from volumes_dir/<name>.
util::Result<util::json::Value> runtime_config(const ImageConfig &image, int rootfs_fd, const RuntimeConfigOptions &opts);

/// The default seccomp profile (an OCI `linux.seccomp` object; seccomp_profile.cpp).
util::json::Value default_seccomp();
/// The default capability list ("CAP_CHOWN", ...).
std::vector<std::string> default_capabilities();

}  // namespace img
