// ota::Apps on the daemon's supervisor: what the updater asks of whoever
// runs containers (stage, start, stop, remove, stop the strays), done
// without stopping the daemon's event loop.
//
//   stage        a child process runs ota::stage_revision (a pull's memory
//                and its blocking I/O are never the daemon's); the daemon
//                turns its loop until the child exits (registered with the
//                Reaper), so supervision, health checks and the watchdog go
//                on meanwhile. The child dies with the daemon (PDEATHSIG).
//   start        bundles not ready (their rootfs mount and notify directory
//                are gone after a reboot) staged again first, as above;
//                then Supervisor::start of each container in dependency order:
//                a dependent starts once its dependencies run and, those
//                with a health check, are healthy, within the revision's
//                health window
//   stop         Supervisor::stop_and_wait in reverse dependency order
//   remove       ota::remove_revision_bundles, in a child as staging is
//   stop_others  every runtime container (in the supervisor's state root)
//                whose id is no container of a kept revision is stopped
//                and deleted
//
// cancel() (the daemon shuts down) ends what an apply is waiting for: a
// staging or removal child is killed, a start stops waiting for a
// dependency, and from then on stage, start and remove fail at once with
// "the daemon is shutting down". The updater takes that as any failure
// (its state stays one resume() finishes). stop and stop_others still
// work: they are bounded by the grace periods, and shutting down stops
// the containers anyway.
#pragma once

#include <functional>
#include <string>

#include "daemon/reaper.hpp"
#include "daemon/supervisor.hpp"
#include "ota/stage.hpp"
#include "ota/updater.hpp"
#include "util/event_loop.hpp"

namespace svc {

/// How much nicer (setpriority(2)) than the daemon its worker children run.
inline constexpr int kWorkerNice = 10;

class SupervisorApps : public ota::Apps {
public:
    /// `stage` holds the device root, policy and registry of staging; it
    /// must outlive this. `state_root`: the supervisor's runtime state root.
    SupervisorApps(util::EventLoop &loop, Reaper &reaper, Supervisor &sup, const ota::StageContext &stage,
                   std::string state_root)
        : loop_(loop), reaper_(reaper), sup_(sup), stage_(stage), state_root_(std::move(state_root)) {}

    util::Status stage(const ota::Revision &rev) override;
    util::Status start(const ota::Revision &rev) override;
    util::Status stop(const ota::Revision &rev) override;
    util::Status remove(const ota::Revision &rev) override;
    util::Status stop_others(const std::vector<const ota::Revision *> &keep) override;

    /// Optional: while a staging child runs, the bytes of the images it
    /// downloaded so far (ota::StageContext::on_bytes), read every 500 ms
    /// and passed on when they changed, and once more at its end.
    std::function<void(uint64_t bytes)> on_staging_bytes;

    /// The daemon shuts down: see above. For good.
    void cancel();
    bool staging() const { return stage_pid_ > 0; }

    /// Runs `fn` in a child process (the image store's libraries and a
    /// pull's memory stay out of the daemon), turning the loop until it
    /// exits; its error comes back through a pipe. cancel() kills it.
    /// Also the system image's install (ota::BoardSystem). The child runs
    /// kWorkerNice below the daemon: on a one-core board its hashing,
    /// decompressing and writing must not delay the loop, which feeds the
    /// watchdog and runs the health checks.
    util::Status in_child(const char *what, const std::function<util::Status()> &fn);

private:
    /// True when every bundle of `rev` has its rootfs mounted and, for a
    /// `ready` check, its notify directory.
    bool bundles_ready(const ota::Revision &rev) const;
    /// Turns the loop until `dep` of `rev` runs (and is healthy when it has
    /// a health check), or `deadline_ms` (monotonic) passes.
    util::Status wait_ready(const ota::Revision &rev, const ota::ContainerSpec &dep, int64_t deadline_ms);

    util::EventLoop &loop_;
    Reaper &reaper_;
    Supervisor &sup_;
    const ota::StageContext &stage_;
    std::string state_root_;
    pid_t stage_pid_ = 0;
    bool cancelled_ = false;
};

}  // namespace svc
