// The image config (OCI image-spec config.json / Docker's container config)
// and its conversion into an OCI runtime-spec config.json for a bundle.
//
// The runtime config follows what podman and runc generate: the default
// capability set (podman's), namespaces pid/ipc/uts/mount/network, the
// standard mounts, runc's masked and read-only paths, a device cgroup that
// denies all but the default devices, a pids limit, and a default seccomp
// profile (seccomp_profile.cpp) that allows what programs need and refuses
// namespaces, mounts and the kernel's administration.
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

/// The directory of the image volume at container path `dest` under `dir`:
/// <prefix><dest with '/' turned into '_'>.
std::string volume_dir(const std::string &dir, std::string_view prefix, std::string_view dest);

/// Builds the runtime config.json. `rootfs_fd` is the assembled rootfs (for
/// user names). Volumes become bind mounts from volumes_dir/<prefix><name>.
util::Result<util::json::Value> runtime_config(const ImageConfig &image, int rootfs_fd, const RuntimeConfigOptions &opts);

/// The default seccomp profile (an OCI `linux.seccomp` object; seccomp_profile.cpp).
util::json::Value default_seccomp();
/// The default capability list ("CAP_CHOWN", ...).
std::vector<std::string> default_capabilities();

}  // namespace img
