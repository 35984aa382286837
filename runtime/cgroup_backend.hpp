// The cgroup backends' building blocks, shared by the managers and the unit
// tests: file access in a cgroup directory, one plain function per controller
// and hierarchy version (each takes the cgroup's directory, so tests point it
// at a temporary directory and read the files back), the value conversions
// between runc's v1-style numbers and cgroup v2, the v2 device eBPF program,
// freezing, listing and removing a cgroup tree.
//
// Nothing here knows which host it runs on; cgroup_manager.cpp decides which
// function gets which directory.
#pragma once

#include <linux/bpf.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/cgroup.hpp"
#include "util/result.hpp"

namespace rt::cgroup {

// ---- files in a cgroup directory (cgroup_fs.cpp) ----

/// Writes `value` to `dir`/`file` in one write(2); the error names file and value.
util::Status write_value(const std::string &dir, std::string_view file, std::string_view value);
/// Reads `dir`/`file`, trailing whitespace removed.
util::Result<std::string> read_value(const std::string &dir, std::string_view file);
/// Reads `dir`/`file` as an unsigned number ("max" reads as UINT64_MAX).
util::Result<uint64_t> read_uint(const std::string &dir, std::string_view file);
/// The value of `key` in a flat keyed file ("oom_kill 3"); nullopt when absent.
util::Result<std::optional<uint64_t>> read_keyed(const std::string &dir, std::string_view file, std::string_view key);
bool has_file(const std::string &dir, std::string_view file);

/// Pids in `dir`/cgroup.procs and in every descendant cgroup, sorted.
util::Result<std::vector<pid_t>> read_pids_recursive(const std::string &dir);
/// Removes `dir` and its descendant cgroups (deepest first), retrying briefly on
/// EBUSY while the last tasks leave. An absent `dir` is success.
util::Status remove_cgroup_dir(const std::string &dir, std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
/// Waits until no pid is left in `dir` and its descendants.
util::Status wait_empty(const std::string &dir, std::chrono::milliseconds timeout);
/// Sends `sig` to every pid in `dir` and its descendants.
util::Status signal_all(const std::string &dir, int sig);

/// v1 freezer: writes FROZEN (or THAWED) and waits until freezer.state reads it.
util::Status freeze_v1(const std::string &dir, bool freeze, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
/// v2: writes cgroup.freeze and waits until cgroup.events says `frozen 0/1`.
util::Status freeze_v2(const std::string &dir, bool freeze, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

// ---- conversions (cgroup_v2.cpp) ----

/// cpu.shares (2..262144) to cpu.weight (1..10000), as runc and crun convert.
uint64_t shares_to_weight(uint64_t shares);
/// blkio weight (10..1000) to io.weight (1..10000), as runc converts.
uint64_t blkio_weight_to_io_weight(uint64_t weight);
/// runc's memory.swap (memory + swap) to memory.swap.max (swap only).
/// -1 means "max"; 0 means "do not write". Errors when swap < limit.
util::Result<int64_t> swap_to_v2(int64_t swap, std::optional<int64_t> limit);

// ---- v1 controllers (cgroup_v1.cpp) ----

util::Status set_memory_v1(const std::string &dir, const Resources &r);
util::Status set_cpu_v1(const std::string &dir, const Resources &r);
/// Writes cpuset.cpus/mems; empty ones are copied from the parent first
/// (walking up to `root`), since a cpuset with none cannot take tasks.
util::Status set_cpuset_v1(const std::string &root, const std::string &dir, const Resources &r);
util::Status set_pids_v1(const std::string &dir, const Resources &r);
util::Status set_blkio_v1(const std::string &dir, const Resources &r);
util::Status set_hugetlb_v1(const std::string &dir, const Resources &r);
util::Status set_devices_v1(const std::string &dir, const Resources &r);
util::Status set_net_cls_v1(const std::string &dir, const Resources &r);
util::Status set_net_prio_v1(const std::string &dir, const Resources &r);
/// The devices.allow / devices.deny writes for `rules`, in order: {file, line}.
std::vector<std::pair<std::string, std::string>> device_rules_v1(const std::vector<DeviceRule> &rules);

// ---- v2 controllers (cgroup_v2.cpp) ----

util::Status set_memory_v2(const std::string &dir, const Resources &r);
util::Status set_cpu_v2(const std::string &dir, const Resources &r);
util::Status set_cpuset_v2(const std::string &dir, const Resources &r);
util::Status set_pids_v2(const std::string &dir, const Resources &r);
util::Status set_io_v2(const std::string &dir, const Resources &r);
util::Status set_hugetlb_v2(const std::string &dir, const Resources &r);
/// Checks every `unified` key (a plain file name, no '/' or "..") and writes it.
util::Status set_unified_v2(const std::string &dir, const Resources &r);
util::Status check_unified_key(std::string_view key);
/// Writes "+ctrl" into cgroup.subtree_control of every cgroup from `root`
/// down to `dir`'s parent, for each controller `root` offers.
util::Status enable_controllers_v2(const std::string &root, const std::string &dir);
/// Writes cgroup.kill when present; else freezes, SIGKILLs every pid, thaws.
util::Status kill_all_v2(const std::string &dir);

// ---- the v2 device filter (cgroup_bpf.cpp) ----

/// The BPF_PROG_TYPE_CGROUP_DEVICE program for `rules` (last matching rule
/// wins; nothing matching is denied).
std::vector<bpf_insn> build_device_program(const std::vector<DeviceRule> &rules);
/// Loads the program for `rules` and attaches it to the cgroup2 directory
/// `dir` with BPF_F_ALLOW_MULTI, then detaches the programs berth attached
/// before (so `update` replaces rather than stacks).
util::Status apply_device_program(const std::string &dir, const std::vector<DeviceRule> &rules);

}  // namespace rt::cgroup
