// What berth does as PID 1 before it supervises anything, and last when the
// box goes down: the pseudo-filesystems (/proc, /sys, /dev as devtmpfs,
// /dev/pts, /dev/shm, /run, the cgroup hierarchy the board uses: v2, or v1
// controllers plus the unified mount on old kernels), the hostname, `lo` up;
// and at shutdown: sync, unmount in reverse order, reboot(2).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace svc {

enum class CgroupLayout { Auto, Unified, Legacy, Hybrid };  ///< Auto: v2 when the kernel has it

struct SystemOptions {
    std::string hostname;  ///< empty: leave it
    CgroupLayout cgroups = CgroupLayout::Auto;
    /// The tree the mounts go under ("/" on a device; tests use a
    /// temporary directory inside their own mount namespace).
    std::string root = "/";
    /// Where the kernel's cgroups, filesystems and cmdline files are read;
    /// empty: ROOT/proc once mounted (tests point it at fixtures).
    std::string proc;
    bool loopback = true;  ///< bring `lo` up in the caller's network namespace
};

/// Mounts what is missing (an already mounted target is left as it is, so
/// an initramfs that mounted /proc first is fine); sets the hostname; lo up.
util::Status bring_up_system(const SystemOptions &o);

/// The layout Auto means for a kernel with these /proc/filesystems and
/// /proc/cmdline: Unified when it has cgroup2, unless the command line asks
/// for another (berth.cgroups=unified|hybrid|legacy, or systemd's
/// systemd.unified_cgroup_hierarchy=0, which means hybrid).
CgroupLayout resolve_cgroup_layout(CgroupLayout wanted, std::string_view filesystems, std::string_view cmdline);

enum class PowerAction { PowerOff, Reboot, Halt };
/// sync, every process but us killed (PID 1 only), every mount but /
/// unmounted (deepest first; lazily when busy), / remounted read-only, then
/// reboot(2). PID 1 only; does not return (exits 1 if reboot(2) fails).
[[noreturn]] void power_down(PowerAction a);

/// The order power_down unmounts in, from /proc/self/mountinfo's text: every
/// mount point but /, each mount before the one it sits on.
std::vector<std::string> unmount_order(std::string_view mountinfo);

/// The daemon's own log lines go to /dev/kmsg ("berth: ..." with a
/// priority), as PID 1 has no other log until the data partition is up.
/// The kernel's rate limit on /dev/kmsg (10 lines in 5 s) is turned off
/// first (kmsg_unlimited); where that fails the log goes on, a warning says
/// lines may be dropped.
util::Status log_to_kmsg();

/// Turns off the rate limit of writes to /dev/kmsg: "on" written to
/// `control` (/proc/sys/kernel/printk_devkmsg, whose default "ratelimit"
/// drops a writer's 11th line in 5 s in silence). Where the kernel command
/// line locked the setting (printk.devkmsg=: a board that wants the limit
/// kept says so there), a locked "on" is success and anything else an
/// error naming the setting.
util::Status kmsg_unlimited(const std::string &control = "/proc/sys/kernel/printk_devkmsg");

}  // namespace svc
