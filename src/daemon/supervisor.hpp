// The supervisor: keeps the containers of the running revision running.
// Each service is one container, started from its staged bundle with the
// runtime's non-blocking calls (rt::create_container, rt::start_container),
// its init registered with the Reaper; when it exits, its restart policy
// decides (no, on-failure[:N], always, unless-stopped) with a capped,
// jittered exponential backoff (100 ms doubling to 60 s, reset after 10 s
// up), decided within the loop callback of the exit. An unhealthy container
// (health.hpp) is restarted as a crash is. A container that keeps failing
// is reported crash-looping (the updater rolls back a TRYING revision).
//
// Without a health check a container counts healthy once it has run for
// health.start_period_ms (at once when 0). Failures (a non-zero exit, a
// signal, unhealthy, an adopted container's exit, a failed restart) count
// for on-failure:N (N restarts since the last run of 10 s, then no more and
// crash_looping) and for the crash loop (5 within 60 s).
//
// stdout and stderr go to the container's log (logs.hpp: a file the
// container writes itself, stdin is /dev/null); stop sends the stop
// signal, waits the grace period on a timer and SIGKILLs the cgroup,
// returning as soon as the container exited, then deletes it. When an init
// exits, whatever is left in its cgroup is SIGKILLed before the delete.
//
// After a daemon restart (not PID 1: systemd restarts it, the containers
// kept running), start() adopts a running container of the same id: its
// exit is seen through a pidfd (its code is unknown: counted as a failure).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/reaper.hpp"
#include "ota/manifest.hpp"
#include "util/event_loop.hpp"
#include "util/result.hpp"

namespace svc {

class Logs;

enum class Health { Starting, Healthy, Unhealthy, Exited };
const char *health_name(Health h);  ///< "starting", "healthy", "unhealthy", "exited"

struct ServiceStatus {
    std::string name;  ///< the manifest's
    std::string id;    ///< the runtime's
    uint64_t revision = 0;
    Health health = Health::Starting;
    std::string why;          ///< the last exit, health failure or start error
    pid_t pid = 0;            ///< 0 while not running
    int restarts = 0;         ///< since start()
    int last_exit = -1;       ///< -1: none yet
    bool crash_looping = false;  ///< failed 5 times within 60 s, or its on-failure:N ran out
    int64_t since_ms = 0;     ///< util::monotonic_ms() of the last change
};

struct SupervisorConfig {
    std::string state_root = "/run/berth/runtime";  ///< the runtime's --root
    std::string run_dir = "/run/berth";              ///< notify sockets (ota::notify_dir)
    std::string log_dir;                             ///< <device root>/logs
    std::string berth_exe = "/proc/self/exe";        ///< for exec probes
    uint64_t log_bytes_per_container = 1 << 20;      ///< rotated files per container, in total
    uint64_t log_bytes_total = 16 << 20;             ///< all containers' logs
};

class Supervisor {
public:
    Supervisor(util::EventLoop &loop, Reaper &reaper, SupervisorConfig cfg);
    ~Supervisor();

    /// Starts (or adopts) container `id` from `bundle` and supervises it.
    /// Returns once it was created and started (health comes later).
    util::Status start(uint64_t revision, const ota::ContainerSpec &spec, const std::string &id,
                       const std::string &bundle);
    /// Stops supervising `id`: stop signal, grace, SIGKILL; `done` runs once
    /// it exited and was deleted (at once when it was not running).
    void stop(const std::string &id, std::function<void(util::Status)> done);
    /// stop() of each id in order, one after another, turning the loop until
    /// the last is done.
    util::Status stop_and_wait(const std::vector<std::string> &ids);

    std::vector<ServiceStatus> status() const;
    /// Called on every change of a service's status.
    void on_change(std::function<void(const ServiceStatus &)> cb);
    /// The containers' logs (logs.hpp), named by ContainerSpec::name, for
    /// `berth logs`: last(), since(), follow().
    Logs &logs();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace svc
