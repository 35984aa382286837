// cgroup managers: one interface for cgroup v1, v2 and hybrid hosts.
//
// The host's mode is detected once (detect_mode). A Manager owns one
// container's cgroup: it creates it, applies `linux.resources`, moves
// processes in, freezes and thaws, lists and signals its processes, and
// removes it. Controllers are plain functions of a directory path so unit
// tests point them at a temporary directory and read the files back (youki
// style); `root` is therefore always a parameter.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/fd.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace rt::cgroup {

enum class Mode { V1, V2, Hybrid };
const char *mode_name(Mode m);

/// Looks at `root` (normally /sys/fs/cgroup): cgroup2 at the root is V2; v1
/// controllers plus a cgroup2 mount at `root`/unified is Hybrid; else V1.
util::Result<Mode> detect_mode(const std::string &root = "/sys/fs/cgroup");

struct DeviceRule {
    bool allow = false;
    char type = 'a';           ///< 'a', 'b' or 'c'
    int64_t major = -1;        ///< -1: any
    int64_t minor = -1;        ///< -1: any
    std::string access = "rwm";
};

struct WeightDevice {
    int64_t major = 0, minor = 0;
    std::optional<uint16_t> weight, leaf_weight;
};
struct ThrottleDevice {
    int64_t major = 0, minor = 0;
    uint64_t rate = 0;
};
struct HugepageLimit {
    std::string page_size;  ///< "2MB"
    uint64_t limit = 0;
};

/// `linux.resources` of the runtime spec, parsed and type-checked.
struct Resources {
    // memory
    std::optional<int64_t> memory_limit, memory_reservation, memory_swap, memory_kernel, memory_kernel_tcp;
    std::optional<uint64_t> memory_swappiness;
    std::optional<bool> memory_disable_oom_killer, memory_use_hierarchy, memory_check_before_update;
    // cpu
    std::optional<uint64_t> cpu_shares, cpu_period, cpu_realtime_period, cpu_burst;
    std::optional<int64_t> cpu_quota, cpu_realtime_runtime, cpu_idle;
    std::string cpu_cpus, cpu_mems;
    // pids
    std::optional<int64_t> pids_limit;
    // block io
    std::optional<uint16_t> blkio_weight, blkio_leaf_weight;
    std::vector<WeightDevice> blkio_weight_device;
    std::vector<ThrottleDevice> blkio_throttle_read_bps, blkio_throttle_write_bps, blkio_throttle_read_iops,
        blkio_throttle_write_iops;
    std::vector<HugepageLimit> hugepage_limits;
    std::vector<DeviceRule> devices;
    std::optional<uint32_t> network_class_id;
    std::vector<std::pair<std::string, uint32_t>> network_priorities;
    /// `unified`: cgroup v2 file name -> value, written as is.
    std::vector<std::pair<std::string, std::string>> unified;
};

/// Parses runc's `exec --cgroup` values, `PATH` or `CONTROLLER[,CONTROLLER]:PATH`,
/// into Manager::add_process's `sub`. PATH is relative to the container's
/// cgroup and may not leave it.
util::Result<std::vector<std::pair<std::string, std::string>>> parse_sub_cgroups(const std::vector<std::string> &args);

/// Parses `linux.resources` (nullptr: no limits). Errors name the field.
util::Result<Resources> parse_resources(const util::json::Value *resources);
/// Merges `update` (from `berth update`) into `base`: set fields replace.
void merge_resources(Resources &base, const Resources &update);

/// What `berth events --stats`/`ps` style callers may read.
struct Stats {
    uint64_t memory_usage = 0, memory_limit = 0, pids_current = 0, cpu_usage_ns = 0;
    uint64_t oom_kills = 0;
};

/// What the container's init needs to enter the cgroup by itself, opened
/// by the runtime before the clone. Moving ANOTHER process (a pid written
/// to cgroup.procs) takes the kernel's global threadgroup lock, whose write
/// side waits for an RCU grace period: 5-15 ms per start on a loaded v1 or
/// hybrid host, the largest single cost of a start. A single-threaded
/// process moving itself through a v1 `tasks` file ("0") skips that lock,
/// and clone3's CLONE_INTO_CGROUP creates the child in the cgroup2
/// directory without moving anything.
struct SelfJoin {
    /// {cgroup directory, its `tasks` file opened for writing}, per v1 hierarchy.
    std::vector<std::pair<std::string, util::UniqueFd>> v1_tasks;
    std::string v2_path;    ///< the cgroup2 directory, "" on a v1 host
    util::UniqueFd v2_dir;  ///< O_PATH fd of v2_path, for CLONE_INTO_CGROUP
};

/// In the init (single-threaded): moves the calling process into every v1
/// hierarchy of `j`, then closes those fds. The open file's credentials
/// (the runtime's) are what the kernel checks, so this also works from a
/// new user namespace before its id maps exist.
util::Status join_self_v1(SelfJoin &j);
/// In the runtime: moves `pid` into `j`'s cgroup2 directory, for a kernel
/// whose clone3 has no CLONE_INTO_CGROUP (before 5.7).
util::Status join_v2(const SelfJoin &j, pid_t pid);

class Manager {
public:
    virtual ~Manager() = default;
    virtual Mode mode() const = 0;
    /// The cgroup's path relative to the hierarchy root ("/berth/web").
    virtual const std::string &path() const = 0;
    /// Creates the cgroup (in every v1 controller, or in the unified tree).
    virtual util::Status create() = 0;
    /// Writes the resource limits. Fails with the file and value that were refused.
    virtual util::Status set(const Resources &r) = 0;
    /// Moves `pid` into the cgroup.
    util::Status add_process(pid_t pid) { return add_process(pid, {}); }
    /// Moves `pid` into existing sub-cgroups of the cgroup (`exec --cgroup`):
    /// `sub` maps a controller ("memory"; "" for every other one and for
    /// cgroup2) to a path below the container's cgroup; unlisted ones get
    /// the container's cgroup itself.
    virtual util::Status add_process(pid_t pid, const std::vector<std::pair<std::string, std::string>> &sub) = 0;
    /// Opens what a new process needs to enter the cgroup by itself (see
    /// SelfJoin). The cgroup must exist (create()).
    virtual util::Result<SelfJoin> open_self_join() const = 0;
    virtual util::Status freeze() = 0;
    virtual util::Status thaw() = 0;
    virtual util::Result<bool> frozen() = 0;
    /// Every pid in the cgroup (and its descendants).
    virtual util::Result<std::vector<pid_t>> pids() = 0;
    virtual util::Result<Stats> stats() = 0;
    /// Kills everything inside (freeze, signal, thaw) and removes the cgroup;
    /// succeeds when it is already gone. Works after an OOM kill too.
    virtual util::Status destroy() = 0;
    /// The cgroup's directory in each hierarchy: {hierarchy name, absolute dir}.
    /// v1 names are the mount's ("memory", "cpu,cpuacct"); the cgroup2 tree is "".
    /// For bind-mounting the container's own cgroups into it (v1 `cgroup` mounts).
    virtual std::vector<std::pair<std::string, std::string>> dirs() const { return {}; }
};

struct ManagerOptions {
    std::string root = "/sys/fs/cgroup";  ///< tests pass a temporary directory
    std::optional<Mode> mode;             ///< nullopt: detect_mode(root)
    bool systemd = false;                 ///< cgroupsPath is "slice:prefix:name"
};

/// The devices every container may use whatever its config says, as runc
/// allows them: mknod of any device, null, zero, full, random, urandom, tty,
/// console, ptmx and the pts. The lifecycle appends them after the spec's rules.
std::vector<DeviceRule> default_device_rules();

/// linux.cgroupsPath as a path below the hierarchy roots, starting with '/'.
/// Empty: "/berth/<container_id>". A relative path is taken relative to the
/// hierarchy roots too. `..` components are refused. With `systemd`, the
/// path is "slice:prefix:name" and maps to where systemd would put the scope
/// (see cgroup_detect.cpp).
util::Result<std::string> resolve_path(const std::string &cgroups_path, const std::string &container_id,
                                       bool systemd = false);

/// The manager for `cgroups_path` (the spec's linux.cgroupsPath; empty means
/// "/berth/<container_id>"). Does not create anything yet.
util::Result<std::unique_ptr<Manager>> open_manager(const std::string &cgroups_path, const std::string &container_id,
                                                    const ManagerOptions &opts = {});

}  // namespace rt::cgroup
