// One run of a health probe (health.hpp's exec, http and tcp kinds) on the
// daemon's event loop. A probe starts, watches its socket or pipe and its
// child, and calls `done` exactly once with the outcome, at the latest when
// its timeout timer fires; never from inside the call that started it.
// Destroying a probe stops it at once: its timer is cancelled, its fds are
// unwatched and closed, and a running child is killed (SIGKILL, with its
// process group) and forgotten in the Reaper, which still reaps it as an
// orphan.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "daemon/reaper.hpp"
#include "ota/manifest.hpp"
#include "util/event_loop.hpp"

namespace svc {

struct HealthTarget;

struct ProbeResult {
    bool pass = false;
    std::string why;  ///< "http 200 from 127.0.0.1:8080/", "exec exited 1: <first line>"
};

class Probe {
public:
    using Done = std::function<void(ProbeResult)>;
    /// Stops the probe; `done` is not called afterwards.
    virtual ~Probe() = default;

protected:
    Probe() = default;
};

/// `<berth_exe> --root <state_root> exec <id> <command...>` with its
/// stdout and stderr read (the first line goes into the failure's why);
/// exit 0 passes.
std::unique_ptr<Probe> start_exec_probe(util::EventLoop &loop, Reaper &reaper, const ota::HealthSpec &spec,
                                        const HealthTarget &target, Probe::Done done);

/// A connect to 127.0.0.1:<port> in the network namespace of target.pid
/// (0: ours); with `http`, then a GET of spec.path whose status line must
/// say 2xx or 3xx.
std::unique_ptr<Probe> start_connect_probe(util::EventLoop &loop, const ota::HealthSpec &spec,
                                           const HealthTarget &target, bool http, Probe::Done done);

/// "30s", "1.5s", "200ms": a duration in a health report.
std::string duration_text(int64_t ms);

}  // namespace svc
