// One container's health check, run on the daemon's event loop (DESIGN.md,
// "The daemon"; the kinds and their timing are docs/update-manifest.md's):
//
//   exec   the command run inside the container as `berth exec` runs it
//          (a child of the daemon, killed at the timeout); exit 0 passes
//   http   GET http://127.0.0.1:<port><path> from inside the container's
//          network namespace (svc::socket_in); status 2xx or 3xx passes
//   tcp    a connect to 127.0.0.1:<port> there
//   ready  the container writes READY=1 to its notify socket (as sd_notify
//          does, NOTIFY_SOCKET): <notify_dir>/notify.sock, a datagram
//          socket heard from senders in the container's pid namespace only
//          (notify_socket.hpp); healthy from then on, unhealthy when it has
//          not come within start_period + timeout (30s when both are 0)
//
// A probe runs at once, then `interval` after each one ends; `retries`
// consecutive failures make the container unhealthy, one pass makes it
// healthy; in the start period a failure does not count and a pass ends it.
// Nothing blocks: sockets are non-blocking and watched, timeouts are loop
// timers, probe children are reaped by the daemon's Reaper.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "daemon/reaper.hpp"
#include "ota/manifest.hpp"
#include "util/event_loop.hpp"
#include "util/result.hpp"

namespace svc {

struct HealthTarget {
    std::string id;          ///< the runtime container id
    pid_t pid = 0;           ///< its init (for the network namespace)
    std::string state_root;  ///< the runtime's --root, for `berth exec`
    std::string berth_exe;   ///< the berth binary for exec probes ("/proc/self/exe")
    std::string notify_dir;  ///< ready: the host directory the notify socket is made in
};

class HealthMonitor {
public:
    /// `healthy` false comes with why ("http 503 from 127.0.0.1:8080/health",
    /// "exec exited 1: <first line of its output>", "no READY=1 within 30s").
    using Report = std::function<void(bool healthy, const std::string &why)>;

    /// Starts checking at once; reports every change of the result (the
    /// first pass, the `retries`-th failure in a row, a pass after that).
    /// The report may destroy the monitor. A spec of kind None never reports.
    static util::Result<std::unique_ptr<HealthMonitor>> start(util::EventLoop &loop, Reaper &reaper,
                                                              const ota::HealthSpec &spec,
                                                              const HealthTarget &target, Report report);
    /// Stops: timers cancelled, sockets closed, a running probe killed.
    virtual ~HealthMonitor() = default;

protected:
    HealthMonitor() = default;
};

}  // namespace svc
