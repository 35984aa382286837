// What berth does as PID 1 before it supervises anything, and last when the
// box goes down: the pseudo-filesystems (/proc, /sys, /dev as devtmpfs,
// /dev/pts, /dev/shm, /run, the cgroup hierarchy the board uses: v2, or v1
// controllers plus the unified mount on old kernels), the hostname, `lo` up;
// and at shutdown: sync, unmount in reverse order, reboot(2).
#pragma once

#include <string>

#include "util/result.hpp"

namespace svc {

enum class CgroupLayout { Auto, Unified, Legacy, Hybrid };  ///< Auto: v2 when the kernel has it

struct SystemOptions {
    std::string hostname;  ///< empty: leave it
    CgroupLayout cgroups = CgroupLayout::Auto;
};

/// Mounts what is missing (an already mounted target is left as it is, so
/// an initramfs that mounted /proc first is fine); sets the hostname; lo up.
util::Status bring_up_system(const SystemOptions &o);

enum class PowerAction { PowerOff, Reboot, Halt };
/// sync, every mount but / unmounted (deepest first; lazily when busy), /
/// remounted read-only, then reboot(2). PID 1 only; does not return.
[[noreturn]] void power_down(PowerAction a);

/// The daemon's own log lines go to /dev/kmsg ("berth: ..." with a
/// priority), as PID 1 has no other log until the data partition is up.
util::Status log_to_kmsg();

}  // namespace svc
