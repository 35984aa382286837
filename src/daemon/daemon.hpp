// `berth daemon`: the process that owns the device root (DESIGN.md, "The
// daemon"). One event loop ties the parts together: a signalfd (SIGCHLD
// reaps, SIGTERM/SIGINT shut down; as PID 1 also SIGUSR1 halt, SIGUSR2 and
// SIGPWR power off, as busybox init does), the control socket
// (control.hpp), the supervisor and its health checks, and a heartbeat
// timer, the only place the watchdog is fed.
//
// At start the updater resumes (the committed revision runs; what a crash
// left is cleaned). An applied update is watched while it is TRYING: every
// container healthy commits it; one unhealthy or crash-looping, or the
// revision's health window running out, rolls it back, with the reason in
// the updater's history. A container without a health check counts as
// healthy once it has run kSettleMs without a change.
//
// As PID 1 (getpid() == 1, or --init) it first brings the system up and
// logs to /dev/kmsg, and every orphan of the box is reaped here; otherwise
// it is a child subreaper logging to <device root>/daemon.log. One daemon
// per device root (flock on <root>/daemon.lock) and per run directory.
//
// Shutdown stops the containers in reverse dependency order (returning as
// soon as they exited), closes the control socket, disarms the watchdog,
// and as PID 1 powers the box down (svc::power_down).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ota/stage.hpp"
#include "ota/updater.hpp"
#include "util/device_root.hpp"
#include "util/result.hpp"

namespace svc {

/// A container without a health check passes once it has run this long.
inline constexpr int64_t kSettleMs = 3000;

struct DaemonOptions {
    util::DeviceRoot root;
    std::string run_dir = "/run/berth";  ///< control socket; containers' state in <run_dir>/runtime
    bool init = false;                   ///< PID 1's duties (also when getpid() == 1)
    std::string board;                   ///< board.json: slots and what an update may ask for; empty: none, the default limits
    std::string board_from;              ///< what named it (ota::BoardPath::from), for the log and `daemon status`
    std::string watchdog;                ///< the watchdog device; empty: none
    int watchdog_timeout_s = 30;
    /// Staging's policy and registry; root and run_dir are filled in.
    ota::StageContext stage;
};

/// Runs the daemon until it is shut down; returns its exit code (0). As
/// PID 1 it does not return from a shutdown (the box powers down).
util::Result<int> run_daemon(DaemonOptions o);

/// The runtime state root of the daemon's containers: <run_dir>/runtime.
std::string daemon_state_root(const std::string &run_dir);

}  // namespace svc
