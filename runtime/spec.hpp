// The OCI runtime-spec config.json (Linux), parsed and type-checked.
//
// Everything is checked in the runtime process before any clone, so a bad
// field fails `create` with a message naming it ("`linux.namespaces[2].type`:
// unknown namespace `foo`") before anything was set up. Sections owned by
// other areas are parsed by them: `process.capabilities`, `rlimits`,
// `linux.seccomp`, `linux.personality` and the LSM fields by rt::security,
// `linux.resources` by rt::cgroup. `hooks` are kept raw for rt::hooks.
//
// Used by the ops commands (exec/ps/pause/update/hooks): parse_process() parses an
// `exec --process` file the same way as the spec's `process`.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/cgroup.hpp"
#include "runtime/security.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace rt {

/// One entry of `mounts`, with its options turned into mount(2) flags.
struct Mount {
    std::string destination;  ///< absolute, inside the container
    std::string type;         ///< "bind" for binds (also when only options say so)
    std::string source;       ///< for binds: absolute (relative ones resolved against the bundle)
    std::vector<std::string> options;  ///< as written
    unsigned long flags = 0;           ///< MS_* to set (MS_BIND, MS_REC, MS_RDONLY ...)
    unsigned long clear_flags = 0;     ///< MS_* explicitly cleared ("rw", "suid" ...)
    unsigned long propagation = 0;     ///< MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (| MS_REC)
    bool recursive_readonly = false;   ///< "rro": read-only on every submount (mount_setattr)
    bool is_bind() const;
    std::string data;  ///< the options that are not flags, comma-joined (filesystem data)
};

/// One `linux.namespaces` entry.
struct Namespace {
    int type = 0;       ///< CLONE_NEWNS, CLONE_NEWPID, ...
    std::string path;   ///< non-empty: join this one instead of creating one
};
/// "pid" for CLONE_NEWPID etc. (the /proc/<pid>/ns/<name> name).
const char *namespace_name(int type);

struct IdMapping {
    uint32_t container_id = 0, host_id = 0, size = 0;
};

/// One `linux.devices` entry.
struct Device {
    std::string path;
    char type = 'c';  ///< 'c', 'u', 'b' or 'p'
    int64_t major = 0, minor = 0;
    std::optional<uint32_t> file_mode;
    std::optional<uint32_t> uid, gid;
};

struct User {
    uint32_t uid = 0, gid = 0;
    std::optional<uint32_t> umask;
    std::vector<uint32_t> additional_gids;
};

/// `process` (also the `exec --process` file).
struct Process {
    bool terminal = false;
    std::optional<std::pair<uint32_t, uint32_t>> console_size;  ///< (height, width)
    User user;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string cwd = "/";
    security::Capabilities capabilities;
    std::vector<security::Rlimit> rlimits;
    bool no_new_privileges = false;
    std::optional<int> oom_score_adj;
    std::string apparmor_profile, selinux_label;
};

/// `linux.timeOffsets`.
struct TimeOffset {
    std::string clock;  ///< "monotonic" or "boottime"
    int64_t secs = 0;
    uint32_t nanosecs = 0;
};

struct Spec {
    std::string oci_version;
    std::string bundle;        ///< absolute bundle directory
    std::string root_path;     ///< absolute rootfs path
    bool root_readonly = false;
    std::vector<Mount> mounts;
    std::optional<Process> process;
    std::optional<std::string> hostname, domainname;
    util::json::Value hooks;   ///< raw `hooks` (null when absent), for rt::hooks
    std::vector<std::pair<std::string, std::string>> annotations;

    // linux
    std::vector<Namespace> namespaces;
    std::vector<IdMapping> uid_mappings, gid_mappings;
    std::vector<Device> devices;
    std::string cgroups_path;
    cgroup::Resources resources;
    bool has_resources = false;
    std::vector<std::pair<std::string, std::string>> sysctl;
    /// Compiled `linux.seccomp`; nullptr when absent.
    std::shared_ptr<security::SeccompFilter> seccomp;
    unsigned long rootfs_propagation = 0;  ///< 0: the default (rslave)
    std::vector<std::string> masked_paths, readonly_paths;
    std::string mount_label;
    std::optional<unsigned long> personality;
    std::vector<TimeOffset> time_offsets;
    security::LsmConfig lsm;

    util::json::Value raw;  ///< the whole document

    /// The namespace entry of `type`, or nullptr when the spec has none.
    const Namespace *find_namespace(int type) const;
};

/// Reads and parses `<bundle>/config.json`. `bundle` may be relative.
util::Result<Spec> load_spec(const std::string &bundle);
/// Parses a config.json document; `bundle` must be absolute.
util::Result<Spec> parse_spec(const util::json::Value &doc, const std::string &bundle);
/// Parses a `process` object; `where` names it in errors ("process").
util::Result<Process> parse_process(const util::json::Value &obj, std::string_view where);
/// Parses one mount option list into `m`'s flags/data (exposed for tests).
util::Status parse_mount_options(Mount &m, std::string_view where);

}  // namespace rt
