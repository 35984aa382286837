// svc::Supervisor: one Service per supervised container id, driven by the
// loop: the init's exit (Reaper callback, or the pidfd of an adopted init)
// decides the restart at once and arms a loop timer for it; the stop signal,
// the grace period and the health result are loop events too.
//
// Health without a check: the container counts healthy once it has run for
// health.start_period_ms (at once when that is 0). With a check, the
// HealthMonitor's first pass makes it healthy and its failure restarts it as
// a crash does (stop signal, grace, SIGKILL, then the restart policy with
// the failure counted).
//
// Failures (a non-zero exit, a signal, an unknown exit code of an adopted
// container, unhealthy, a failed restart) count for on-failure and for the
// crash loop (5 within 60 s); every restart doubles the backoff, 100 ms up
// to 60 s with ±20 % jitter; a run of 10 s or more resets the backoff and
// the on-failure retries.
#include "daemon/supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <map>
#include <random>

#include "daemon/health.hpp"
#include "daemon/logs.hpp"
#include "daemon/netns.hpp"
#include "ota/stage.hpp"
#include "runtime/container.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/syscalls.hpp"

namespace svc {

using util::Error;

const char *health_name(Health h) {
    switch (h) {
    case Health::Starting: return "starting";
    case Health::Healthy: return "healthy";
    case Health::Unhealthy: return "unhealthy";
    case Health::Exited: return "exited";
    }
    return "?";
}

namespace {

constexpr int64_t kBackoffFirstMs = 100;
constexpr int64_t kBackoffMaxMs = 60000;
constexpr int64_t kResetAfterMs = 10000;
constexpr int64_t kCrashWindowMs = 60000;
constexpr size_t kCrashFailures = 5;

/// The longest restart delay: kBackoffMaxMs, or in test builds
/// BERTH_RESTART_BACKOFF_MS (bench/daemon.sh's fast restarts; 0: at once).
int64_t backoff_cap() {
    static const int64_t cap = [] {
        const char *e = util::test_hooks_compiled() ? getenv("BERTH_RESTART_BACKOFF_MS") : nullptr;
        auto v = e ? util::parse_int<int64_t>(e) : std::nullopt;
        return v && *v >= 0 ? *v : kBackoffMaxMs;
    }();
    return cap;
}

std::string exit_why(int code) {
    if (code > 128) return util::cat("killed by signal ", code - 128);
    return util::cat("exited ", code);
}

}  // namespace

struct Service {
    ServiceStatus st;
    ota::ContainerSpec spec;
    std::string bundle;
    bool running = false;
    bool stopping = false;
    util::UniqueFd pidfd;  ///< an adopted init's, watched on the loop
    util::EventLoop::TimerId restart_timer = 0, grace_timer = 0, healthy_timer = 0;
    std::unique_ptr<HealthMonitor> health;
    std::string unhealthy_why;  ///< set when it is being stopped for failing its check
    std::deque<int64_t> failures;  ///< monotonic ms of the failures within the crash window
    int retries = 0;               ///< restarts since the last reset (on-failure:N)
    int64_t backoff_ms = kBackoffFirstMs;
    int64_t started_ms = 0;
    std::vector<std::function<void(util::Status)>> stop_waiters;
};

struct Supervisor::Impl {
    util::EventLoop &loop;
    Reaper &reaper;
    SupervisorConfig cfg;
    Logs logs;
    std::map<std::string, std::unique_ptr<Service>> services;
    std::vector<std::function<void(const ServiceStatus &)>> watchers;
    std::minstd_rand rng{static_cast<unsigned>(util::monotonic_ms() ^ ::getpid())};

    Impl(util::EventLoop &l, Reaper &r, SupervisorConfig c)
        : loop(l), reaper(r), cfg(std::move(c)), logs(l, log_config(cfg)) {}

    static LogConfig log_config(const SupervisorConfig &c) {
        LogConfig lc;
        // Without a log dir (no device root): in RAM under the run dir.
        lc.dir = c.log_dir.empty() ? util::path_join(c.run_dir, "logs") : c.log_dir;
        lc.bytes_per_container = c.log_bytes_per_container;
        lc.bytes_total = c.log_bytes_total;
        return lc;
    }

    Service *find(const std::string &id) {
        auto it = services.find(id);
        return it == services.end() ? nullptr : it->second.get();
    }

    void changed(Service &s) {
        s.st.since_ms = util::monotonic_ms();
        auto ws = watchers;  // a watcher may add another
        for (auto &w : ws) w(s.st);
    }

    /// create (stdio -> the log), lo up, start; the init registered with the reaper.
    util::Status launch(Service &s) {
        const std::string &id = s.st.id;
        auto null = TRY(util::open_file("/dev/null", O_RDWR));
        // A log that cannot be opened (a full or broken disk) does not keep
        // the container from running: its output is dropped, and why says so.
        auto log = logs.open(s.spec.name, true);
        if (!log) s.st.why = util::cat("running without a log: ", log.error().message());
        rt::CreateOptions o;
        o.root = cfg.state_root;
        o.id = id;
        o.bundle = s.bundle;
        o.stdio[0] = null.get();
        o.stdio[1] = o.stdio[2] = log ? log->get() : null.get();
        auto st = TRY_CTX(rt::create_container(o), util::cat("create ", id));
        const pid_t pid = st.pid;
        reaper.expect(pid, [this, id](int code) { exited(id, code, true); });
        s.st.pid = pid;
        auto started = [&]() -> util::Status {
            if (s.spec.network == ota::NetworkMode::Private) TRY_CTX(loopback_up_in(pid), util::cat("container ", id));
            // The notify socket must exist before the app can send READY=1.
            if (s.spec.health.kind == ota::HealthKind::Ready) start_health(s);
            TRY_CTX(rt::start_container(cfg.state_root, id), util::cat("start ", id));
            return util::ok();
        }();
        if (!started) {
            s.health.reset();
            s.st.pid = 0;
            // delete reaps the init itself.
            reaper.forget(pid);
            (void)rt::delete_container(cfg.state_root, id, true);
            return started;
        }
        running(s, pid);
        return util::ok();
    }

    /// Adopts the running container `id` (its init is no child of ours, or
    /// was started by a previous Supervisor): its exit comes through a pidfd.
    util::Status adopt(Service &s, pid_t pid) {
        const std::string &id = s.st.id;
        util::UniqueFd fd(util::sys::pidfd_open(pid, 0));
        if (!fd) return Error::from_errno(util::cat("pidfd_open of the init of ", id));
        // The pid may have been reused between the state and the pidfd: the
        // state checks the start time, so a still running one is ours.
        auto again = TRY(rt::container_state(cfg.state_root, id));
        if (again.second != rt::Status::Running || again.first.pid != pid)
            return Error::msg(util::cat("container ", id, " exited while it was adopted"));
        if (auto a = logs.attach(s.spec.name); !a) s.st.why = util::cat("running without a log: ", a.error().message());
        TRY(loop.watch(fd.get(), EPOLLIN, [this, id](uint32_t) { exited(id, -1, false); }));
        s.pidfd = std::move(fd);
        running(s, pid);
        return util::ok();
    }

    void running(Service &s, pid_t pid) {
        s.running = true;
        s.started_ms = util::monotonic_ms();
        s.unhealthy_why.clear();
        s.st.pid = pid;
        s.st.health = Health::Starting;
        changed(s);
        if (!s.health) start_health(s);
    }

    void start_health(Service &s) {
        const std::string id = s.st.id;
        if (s.spec.health.kind == ota::HealthKind::None) {
            auto healthy = [this, id] {
                Service *p = find(id);
                if (!p || !p->running) return;
                p->healthy_timer = 0;
                p->st.health = Health::Healthy;
                changed(*p);
            };
            if (s.spec.health.start_period_ms <= 0) healthy();
            else s.healthy_timer = loop.after(s.spec.health.start_period_ms, healthy);
            return;
        }
        HealthTarget t;
        t.id = id;
        t.pid = s.st.pid;
        t.state_root = cfg.state_root;
        t.berth_exe = cfg.berth_exe;
        t.notify_dir = ota::notify_dir(cfg.run_dir, id);
        auto m = HealthMonitor::start(loop, reaper, s.spec.health, t,
                                      [this, id](bool ok, const std::string &why) { health_report(id, ok, why); });
        if (!m) {
            health_report(id, false, util::cat("health check: ", m.error().message()));
            return;
        }
        s.health = std::move(*m);
    }

    void health_report(const std::string &id, bool ok, const std::string &why) {
        Service *s = find(id);
        if (!s || !s->running || s->stopping || !s->unhealthy_why.empty()) return;
        if (ok) {
            s->st.health = Health::Healthy;
            s->st.why.clear();
            changed(*s);
            return;
        }
        s->st.health = Health::Unhealthy;
        s->st.why = why;  // the status says unhealthy
        s->unhealthy_why = util::cat("unhealthy: ", why);
        changed(*s);
        terminate(*s);
    }

    /// The stop signal to the init, SIGKILL to the whole container after the grace.
    void terminate(Service &s) {
        const std::string id = s.st.id;
        (void)rt::kill_container(cfg.state_root, id, s.spec.stop_signal, false);
        loop.cancel(s.grace_timer);
        s.grace_timer = loop.after(s.spec.stop_grace_ms, [this, id] {
            Service *p = find(id);
            if (!p) return;
            p->grace_timer = 0;
            if (p->running) (void)rt::kill_container(cfg.state_root, id, SIGKILL, true);
        });
    }

    /// The init exited (code -1 and known false: adopted, its code unknown).
    void exited(const std::string &id, int code, bool known) {
        Service *s = find(id);
        if (!s || !s->running) return;
        const int64_t now = util::monotonic_ms();
        s->running = false;
        if (s->pidfd) {
            loop.unwatch(s->pidfd.get());
            s->pidfd.reset();
        }
        s->health.reset();
        loop.cancel(s->healthy_timer);
        loop.cancel(s->grace_timer);
        s->healthy_timer = s->grace_timer = 0;
        // What is left in the cgroup goes with the init (with a pid
        // namespace the kernel already did it).
        (void)rt::kill_container(cfg.state_root, id, SIGKILL, true);
        auto del = rt::delete_container(cfg.state_root, id, true);
        logs.detach(s->spec.name);

        std::string why = known ? exit_why(code) : "exited, code unknown (adopted after a daemon restart)";
        if (!s->unhealthy_why.empty()) why = util::cat(s->unhealthy_why, "; ", why);
        if (!del) why = util::cat(why, "; delete: ", del.error().message());
        s->st.pid = 0;
        s->st.last_exit = known ? code : -1;
        s->st.health = Health::Exited;
        s->st.why = why;
        if (s->stopping) {
            finish_stop(id, util::ok());
            return;
        }
        const bool failure = !known || code != 0 || !s->unhealthy_why.empty();
        if (now - s->started_ms >= kResetAfterMs) {
            s->backoff_ms = kBackoffFirstMs;
            s->retries = 0;
        }
        decide(*s, failure, now);
    }

    /// The restart policy, right after an exit or a failed restart.
    void decide(Service &s, bool failure, int64_t now) {
        if (failure) s.failures.push_back(now);
        while (!s.failures.empty() && now - s.failures.front() > kCrashWindowMs) s.failures.pop_front();
        s.st.crash_looping = s.failures.size() >= kCrashFailures;
        bool restart = false;
        switch (s.spec.restart.kind) {
        case ota::RestartPolicy::No: break;
        case ota::RestartPolicy::OnFailure:
            if (!failure) break;
            if (s.spec.restart.max_retries > 0 && s.retries >= s.spec.restart.max_retries) {
                s.st.crash_looping = true;
                s.st.why = util::cat(s.st.why, "; gave up after ", s.retries, " restarts");
                break;
            }
            restart = true;
            break;
        case ota::RestartPolicy::Always:
        case ota::RestartPolicy::UnlessStopped: restart = true; break;
        }
        if (restart) {
            s.retries++;
            std::uniform_real_distribution<double> jitter(0.8, 1.2);
            int64_t delay = std::min(static_cast<int64_t>(static_cast<double>(s.backoff_ms) * jitter(rng)), backoff_cap());
            s.backoff_ms = std::min(s.backoff_ms * 2, kBackoffMaxMs);
            const std::string id = s.st.id;
            s.restart_timer = loop.after(delay, [this, id] { restart_now(id); });
        }
        changed(s);
    }

    void restart_now(const std::string &id) {
        Service *s = find(id);
        if (!s) return;
        s->restart_timer = 0;
        s->st.restarts++;
        (void)rt::delete_container(cfg.state_root, id, true);  // what a failed delete at the exit left (a no-op else)
        if (auto r = launch(*s); !r) {
            s->st.why = util::cat("restart failed: ", r.error().message());
            s->st.health = Health::Exited;
            s->started_ms = util::monotonic_ms();
            decide(*s, true, s->started_ms);
        }
    }

    void finish_stop(const std::string &id, util::Status result) {
        auto it = services.find(id);
        if (it == services.end()) return;
        std::unique_ptr<Service> s = std::move(it->second);
        services.erase(it);
        changed(*s);
        for (auto &w : s->stop_waiters) w(result);
    }

    void stop(const std::string &id, std::function<void(util::Status)> done) {
        Service *s = find(id);
        if (!s) {
            done(util::ok());
            return;
        }
        s->stop_waiters.push_back(std::move(done));
        if (s->stopping) return;
        s->stopping = true;
        loop.cancel(s->restart_timer);
        s->restart_timer = 0;
        s->health.reset();
        if (!s->running) {
            auto del = rt::delete_container(cfg.state_root, id, true);  // a failed create may have left state
            finish_stop(id, util::ok());
            (void)del;
            return;
        }
        terminate(*s);
    }
};

Supervisor::Supervisor(util::EventLoop &loop, Reaper &reaper, SupervisorConfig cfg)
    : impl_(std::make_unique<Impl>(loop, reaper, std::move(cfg))) {}

Supervisor::~Supervisor() {
    // The containers keep running: a later Supervisor (a restarted daemon)
    // adopts them. Only our hooks on the loop and the reaper go.
    for (auto &[id, s] : impl_->services) {
        impl_->loop.cancel(s->restart_timer);
        impl_->loop.cancel(s->grace_timer);
        impl_->loop.cancel(s->healthy_timer);
        if (s->pidfd) impl_->loop.unwatch(s->pidfd.get());
        if (s->running && s->st.pid > 0) impl_->reaper.forget(s->st.pid);
        s->health.reset();
    }
}

util::Status Supervisor::start(uint64_t revision, const ota::ContainerSpec &spec, const std::string &id,
                               const std::string &bundle) {
    Impl &m = *impl_;
    if (m.find(id)) return Error::msg(util::cat("container ", util::quote(id), " is already supervised"));
    auto s = std::make_unique<Service>();
    s->st.name = spec.name;
    s->st.id = id;
    s->st.revision = revision;
    s->spec = spec;
    s->bundle = bundle;
    Service &ref = *s;
    m.services[id] = std::move(s);
    auto started = [&]() -> util::Status {
        auto cur = rt::container_state(m.cfg.state_root, id);
        if (cur && cur->second == rt::Status::Running)
            if (auto a = m.adopt(ref, cur->first.pid); a) return util::ok();
        // Stopped, half-created, gone while adopted, or a state directory
        // without a readable state (a daemon killed in the middle of a
        // create or a delete): start anew.
        if (cur || util::path_exists(util::path_join(m.cfg.state_root, id)))
            TRY_CTX(rt::delete_container(m.cfg.state_root, id, true), util::cat("delete the old ", id));
        return m.launch(ref);
    }();
    if (!started) m.services.erase(id);
    return started;
}

void Supervisor::stop(const std::string &id, std::function<void(util::Status)> done) {
    impl_->stop(id, std::move(done));
}

util::Status Supervisor::stop_and_wait(const std::vector<std::string> &ids) {
    util::Status result = util::ok();
    for (const auto &id : ids) {
        bool done = false;
        util::Status r = util::ok();
        impl_->stop(id, [&](util::Status s) {
            r = std::move(s);
            done = true;
        });
        while (!done) TRY(impl_->loop.run_once());
        if (!r && result) result = std::move(r);
    }
    return result;
}

std::vector<ServiceStatus> Supervisor::status() const {
    std::vector<ServiceStatus> out;
    for (const auto &[id, s] : impl_->services) out.push_back(s->st);
    return out;
}

void Supervisor::on_change(std::function<void(const ServiceStatus &)> cb) { impl_->watchers.push_back(std::move(cb)); }

Logs &Supervisor::logs() { return impl_->logs; }

}  // namespace svc
