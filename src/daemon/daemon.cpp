// svc::run_daemon: the loop that ties the reaper, supervisor, updater,
// control socket and watchdog together; see daemon.hpp.
#include "daemon/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "daemon/apps.hpp"
#include "daemon/control.hpp"
#include "daemon/init_system.hpp"
#include "daemon/logs.hpp"
#include "daemon/memory.hpp"
#include "daemon/reaper.hpp"
#include "daemon/supervisor.hpp"
#include "daemon/watchdog.hpp"
#include "fleet/agent.hpp"
#include "ota/manifest.hpp"
#include "ota/system.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/flock.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace svc {

using util::cat;
using util::json::Value;

std::string daemon_state_root(const std::string &run_dir) { return util::path_join(run_dir, "runtime"); }

namespace {

/// The entries of `after` that `before` did not have: those after
/// `before`'s last one (the history is capped, so counts do not tell).
std::vector<ota::HistoryEntry> history_since(const std::vector<ota::HistoryEntry> &before,
                                             std::vector<ota::HistoryEntry> after) {
    if (before.empty()) return after;
    const auto &last = before.back();
    for (size_t i = after.size(); i-- > 0;)
        if (after[i].time == last.time && after[i].version == last.version && after[i].event == last.event &&
            after[i].reason == last.reason)
            return {after.begin() + static_cast<std::ptrdiff_t>(i) + 1, after.end()};
    return after;
}

constexpr int64_t kHeartbeatMs = 1000;  ///< without a watchdog (the hang failpoint still counts beats)
constexpr uint64_t kLogBytes = 1 << 20;  ///< daemon.log rotates past this (two files at most)

Value ok_response() {
    Value v = Value::object();
    v["ok"] = true;
    return v;
}

Value error_response(std::string_view why) {
    Value v = Value::object();
    v["ok"] = false;
    v["error"] = std::string(why);
    return v;
}

uint64_t rss_bytes() {
    auto s = util::read_file("/proc/self/statm", 256);
    if (!s) return 0;
    auto f = util::split(*s, ' ');
    if (f.size() < 2) return 0;
    return util::parse_int<uint64_t>(f[1]).value_or(0) * uint64_t(::sysconf(_SC_PAGESIZE));
}

const char *action_name(PowerAction a) {
    switch (a) {
    case PowerAction::PowerOff: return "poweroff";
    case PowerAction::Reboot: return "reboot";
    case PowerAction::Halt: return "halt";
    }
    return "?";
}

class Daemon {
public:
    explicit Daemon(DaemonOptions o) : o_(std::move(o)), pid1_(o_.init || ::getpid() == 1) {}
    util::Result<int> run();

private:
    util::Status setup();
    void on_signal();
    void request_shutdown(PowerAction a, std::string_view why);
    int shut_down();
    void heartbeat();
    /// daemon.log past kLogBytes becomes daemon.log.1 (the one before goes).
    void rotate_log();
    void handle(std::shared_ptr<ControlConn> c, const Value &req);
    Value ps_json() const;
    Value daemon_status_json() const;
    Value status_json() const;
    void apply(std::shared_ptr<ControlConn> c, const Value &req);
    /// The updater's apply, then TRYING: `berth update apply` and the fleet
    /// agent both come here. Returns the version being tried.
    util::Result<uint64_t> apply_manifest(std::string_view doc);
    /// The fleet agent, when <root>/fleet/agent.json exists (a bad one is
    /// logged: the daemon runs without it).
    void start_agent();
    void report(std::string_view state, std::string_view detail, std::string_view deployment) {
        if (agent_) agent_->report(state, detail, deployment);
    }
    void rollback_request(std::shared_ptr<ControlConn> c);
    void logs(std::shared_ptr<ControlConn> c, const Value &req);
    // TRYING
    void begin_trying(uint64_t version);
    void schedule_evaluation(int64_t ms = 0);
    void evaluate();
    void finish_trying(bool healthy, const std::string &why);
    /// The updater asked for a reboot (a system update goes on in another
    /// slot): the shutdown is scheduled. True when it did.
    bool reboot_if_asked();

    DaemonOptions o_;
    bool pid1_;
    std::string log_path_;  ///< not PID 1: <root>/daemon.log
    int64_t started_ms_ = util::monotonic_ms();
    util::UniqueFd lock_, run_lock_, sigfd_;
    std::unique_ptr<util::EventLoop> loop_;
    Reaper reaper_;
    std::unique_ptr<Supervisor> sup_;
    std::unique_ptr<SupervisorApps> apps_;
    std::unique_ptr<ota::BoardSystem> system_;  ///< the board's slots; null without
    std::unique_ptr<ota::Updater> updater_;
    std::unique_ptr<ControlServer> control_;
    std::unique_ptr<fleet::Agent> agent_;
    std::optional<Watchdog> wd_;
    util::EventLoop::TimerId heartbeat_ = 0;
    int64_t heartbeat_due_ms_ = 0;  ///< when the next heartbeat should run (monotonic); 0 before the first
    std::optional<PowerAction> shutdown_;

    struct Trying {
        ota::Revision rev;
        int64_t since_ms = 0;
        util::EventLoop::TimerId window = 0, eval = 0;
        std::vector<std::shared_ptr<ControlConn>> waiters;
    };
    std::optional<Trying> trying_;
    Value last_outcome_ = nullptr;
};

util::Status Daemon::setup() {
    if (pid1_) {
        if (auto st = bring_up_system(SystemOptions{}); !st) util::log::error("bring up the system: ", st.error().message());
        if (auto st = log_to_kmsg(); !st) util::log::error("log to /dev/kmsg: ", st.error().message());
        ::reboot(RB_DISABLE_CAD);  // ctrl-alt-del becomes SIGINT
    } else if (::prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        return util::Error::from_errno("become a child subreaper");
    }
    TRY_CTX(util::mkdir_p(o_.root.dir(), 0755), cat("device root ", util::quote(o_.root.dir())));
    TRY_CTX(util::mkdir_p(o_.run_dir, 0700), cat("run directory ", util::quote(o_.run_dir)));
    std::string lock = util::path_join(o_.root.dir(), "daemon.lock");
    lock_ = TRY(util::open_file(lock, O_RDWR | O_CREAT, 0600));
    if (auto st = util::flock_fd(lock_.get(), LOCK_EX | LOCK_NB); !st)
        return util::Error::msg(cat("a daemon is already running on ", util::quote(o_.root.dir())));
    run_lock_ = TRY(util::open_file(util::path_join(o_.run_dir, "daemon.lock"), O_RDWR | O_CREAT, 0600));
    if (auto st = util::flock_fd(run_lock_.get(), LOCK_EX | LOCK_NB); !st)
        return util::Error::msg(cat("a daemon is already running in ", util::quote(o_.run_dir)));
    if (!pid1_) {
        log_path_ = util::path_join(o_.root.dir(), "daemon.log");
        TRY(util::log::set_file(log_path_));
    }
    if (util::log::level() > util::log::Level::Info) util::log::set_level(util::log::Level::Info);
    util::log::info("berth daemon starting: pid ", ::getpid(), pid1_ ? " (PID 1)" : " (subreaper)", ", root ",
                    util::quote(o_.root.dir()), ", run directory ", util::quote(o_.run_dir));

    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGPWR}) sigaddset(&set, s);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) < 0) return util::Error::from_errno("block signals");
    ::signal(SIGPIPE, SIG_IGN);
    sigfd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sigfd_) return util::Error::from_errno("signalfd");

    loop_ = TRY(util::EventLoop::create());
    TRY(loop_->watch(sigfd_.get(), EPOLLIN, [this](uint32_t) { on_signal(); }));

    SupervisorConfig sc;
    sc.state_root = daemon_state_root(o_.run_dir);
    sc.run_dir = o_.run_dir;
    sc.log_dir = util::path_join(o_.root.dir(), "logs");
    TRY(util::mkdir_p(sc.state_root, 0700));
    TRY(util::mkdir_p(sc.log_dir, 0700));
    sup_ = std::make_unique<Supervisor>(*loop_, reaper_, sc);
    sup_->on_change([this](const ServiceStatus &s) {
        // Failures at info, the rest at debug: a crash loop must not fill the log.
        bool failure = s.health == Health::Unhealthy || s.health == Health::Exited || s.crash_looping;
        if (failure || util::log::level() <= util::log::Level::Debug)
            util::log::write(failure ? util::log::Level::Info : util::log::Level::Debug,
                             cat("container ", util::quote(s.name), " (", s.id, "): ", health_name(s.health),
                                 s.crash_looping ? " (crash-looping)" : "", s.why.empty() ? "" : cat(": ", s.why)));
        if (trying_ && s.revision == trying_->rev.version) schedule_evaluation();
    });
    o_.stage.root = o_.root;
    o_.stage.run_dir = o_.run_dir;
    apps_ = std::make_unique<SupervisorApps>(*loop_, reaper_, *sup_, o_.stage, sc.state_root);
    ota::AppLimits limits;
    if (!o_.board.empty()) {
        util::log::info("board profile ", util::quote(o_.board), o_.board_from.empty() ? "" : cat(" (", o_.board_from, ")"));
        limits = TRY_CTX(ota::load_app_limits(o_.board), cat("board ", util::quote(o_.board)));
        auto board = TRY_CTX(ota::load_board(o_.board), cat("board ", util::quote(o_.board)));
        if (!board.slots.empty()) {
            auto sys = ota::BoardSystem::open(std::move(board), util::path_join(o_.root.dir(), "slots"), o_.stage.open_registry);
            if (sys) {
                system_ = std::move(*sys);
                // The download must not stop the loop (the watchdog is fed there).
                system_->run_apart([this](const char *what, const std::function<util::Status()> &fn) {
                    return apps_->in_child(what, fn);
                });
            }
            else util::log::error("system updates are off: ", sys.error().message());
        }
    }
    updater_ = std::make_unique<ota::Updater>(o_.root, *apps_, limits, system_.get());

    if (!o_.watchdog.empty()) {
        wd_ = TRY_CTX(Watchdog::open(o_.watchdog, o_.watchdog_timeout_s), cat("watchdog ", util::quote(o_.watchdog)));
        util::log::info("watchdog ", util::quote(o_.watchdog), ": timeout ", wd_->timeout(), " s");
    }
    heartbeat();

    control_ = TRY(ControlServer::listen(*loop_, control_socket_path(o_.run_dir),
                                         [this](std::shared_ptr<ControlConn> c, const Value &req) { handle(std::move(c), req); }));
    return {};
}

void Daemon::rotate_log() {
    if (pid1_ || log_path_.empty()) return;
    struct stat st;
    if (::fstat(util::log::fd(), &st) < 0 || uint64_t(st.st_size) < kLogBytes) return;
    std::string old = log_path_ + ".1";
    if (::rename(log_path_.c_str(), old.c_str()) == 0) (void)util::log::set_file(log_path_);
}

void Daemon::heartbeat() {
    // A heartbeat later than a whole period: the loop was blocked (or the
    // machine starved of CPU) for most of the watchdog's timeout. Said in
    // the log, so a watchdog reset can be told from a hung loop.
    int64_t late = heartbeat_due_ms_ ? util::monotonic_ms() - heartbeat_due_ms_ : 0;
    int64_t period = wd_ ? std::max<int64_t>(500, wd_->timeout() * 1000 / 3) : kHeartbeatMs;
    if (late > period)
        util::log::warn("the main loop was ", late, " ms late to its heartbeat",
                        wd_ ? cat(" (the watchdog's timeout is ", wd_->timeout(), " s)") : std::string());
    rotate_log();
    if (!util::failpoint("daemon.hang")) {
        util::log::warn("failpoint daemon.hang: the main loop hangs");
        for (;;) ::pause();  // every signal is blocked: only SIGKILL (or the watchdog) ends this
    }
    if (wd_)
        if (auto st = wd_->feed(); !st) util::log::error("feed the watchdog: ", st.error().message());
    heartbeat_due_ms_ = util::monotonic_ms() + period;
    heartbeat_ = loop_->after(period, [this] { heartbeat(); });
    if (!util::failpoint("daemon.stall")) {  // blocks the loop past the next heartbeat's time
        util::log::warn("failpoint daemon.stall: the main loop stalls for 3 s");
        struct timespec ts{3, 0};
        while (::nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
    }
}

void Daemon::on_signal() {
    signalfd_siginfo si;
    bool child = false;
    while (::read(sigfd_.get(), &si, sizeof si) == sizeof si) {
        switch (si.ssi_signo) {
        case SIGCHLD: child = true; break;
        case SIGTERM: request_shutdown(pid1_ ? PowerAction::Reboot : PowerAction::PowerOff, "SIGTERM"); break;
        case SIGINT: request_shutdown(pid1_ ? PowerAction::Reboot : PowerAction::PowerOff, "SIGINT"); break;
        case SIGUSR1:
            if (pid1_) request_shutdown(PowerAction::Halt, "SIGUSR1");
            break;
        case SIGUSR2:
        case SIGPWR:
            if (pid1_) request_shutdown(PowerAction::PowerOff, si.ssi_signo == SIGPWR ? "SIGPWR" : "SIGUSR2");
            break;
        default: break;
        }
    }
    if (child) reaper_.reap();
}

void Daemon::request_shutdown(PowerAction a, std::string_view why) {
    if (shutdown_) return;
    util::log::info("shutdown (", action_name(a), ") on ", why);
    shutdown_ = a;
    apps_->cancel();  // an apply in progress is not waited for (a pull, a dependency's health)
    loop_->stop();
}

int Daemon::shut_down() {
    // A TRYING revision stays TRYING on disk: the next start rolls it back.
    std::vector<std::string> ids;
    auto add_reversed = [&](const ota::Revision &rev) {
        for (auto c = rev.containers.rbegin(); c != rev.containers.rend(); ++c) {
            std::string id = ota::container_id(rev, *c);
            if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
        }
    };
    if (trying_) {
        add_reversed(trying_->rev);
        loop_->cancel(trying_->window);
        loop_->cancel(trying_->eval);
        for (auto &w : trying_->waiters) w->reply(error_response("the daemon is shutting down; the update is rolled back at its next start"));
        trying_.reset();
    }
    if (auto cur = updater_->state().current)
        if (auto rev = updater_->revision(*cur)) add_reversed(*rev);
    for (const auto &s : sup_->status())
        if (std::find(ids.begin(), ids.end(), s.id) == ids.end()) ids.push_back(s.id);
    if (agent_) agent_->stop();
    util::log::info("stopping ", ids.size(), " containers");
    if (auto st = sup_->stop_and_wait(ids); !st) util::log::error("stop the containers: ", st.error().message());
    control_.reset();
    loop_->cancel(heartbeat_);
    if (wd_)
        if (auto st = wd_->disarm(); !st) util::log::error("disarm the watchdog: ", st.error().message());
    PowerAction a = shutdown_.value_or(PowerAction::PowerOff);
    util::log::info("berth daemon stopped");
    if (pid1_) power_down(a);
    return 0;
}

util::Result<int> Daemon::run() {
    TRY(setup());
    // The committed revision runs; what a crash or a reboot left is cleaned
    // (a TRYING revision rolled back). A failure here is logged: the daemon
    // (maybe PID 1) keeps serving.
    auto before = updater_->history();
    if (auto st = updater_->resume(); !st) util::log::error("resume the updater: ", st.error().message());
    // What the start decided (a reboot during TRYING rolled back, a system
    // update that never booted recorded as failed) goes to the log, PID 1's
    // only record, and a rollback to the fleet once the agent runs.
    auto decided = history_since(before, updater_->history());
    for (auto e : decided) {
        std::replace(e.event.begin(), e.event.end(), '-', ' ');
        util::log::info("update: revision ", e.version, " ", e.event, e.reason.empty() ? "" : cat(": ", e.reason));
    }
    // Booted into a system update's slot: its revision runs on probation.
    if (!reboot_if_asked())
        if (auto v = updater_->state().trying) begin_trying(*v);
    start_agent();
    for (const auto &e : decided)
        if (e.event == "rolled-back") report("rolled-back", cat("revision ", e.version, ": ", e.reason), {});
    (void)release_idle_memory();  // what start-up touched goes back: the daemon idles for months
    if (!shutdown_) TRY(loop_->run());
    return shut_down();
}

// ---- the control socket's requests ---------------------------------------

Value Daemon::ps_json() const {
    Value a = Value::array();
    int64_t now = util::monotonic_ms();
    for (const auto &s : sup_->status()) {
        Value v = Value::object();
        v["name"] = s.name;
        v["id"] = s.id;
        v["revision"] = s.revision;
        v["status"] = health_name(s.health);
        v["why"] = s.why;
        v["pid"] = s.pid;
        v["restarts"] = s.restarts;
        if (s.last_exit >= 0) v["last_exit"] = s.last_exit;
        else v["last_exit"] = nullptr;
        v["crash_looping"] = s.crash_looping;
        v["for_s"] = (now - s.since_ms) / 1000;
        a.push_back(v);
    }
    return a;
}

Value Daemon::status_json() const {
    Value v = updater_->status_json();
    if (trying_) {
        Value t = Value::object();
        t["version"] = trying_->rev.version;
        t["window_left_ms"] = loop_->remaining(trying_->window);
        v["watch"] = t;
    }
    v["last_outcome"] = last_outcome_;
    return v;
}

Value Daemon::daemon_status_json() const {
    Value v = ok_response();
    v["pid"] = ::getpid();
    v["pid1"] = pid1_;
    v["uptime_s"] = (util::monotonic_ms() - started_ms_) / 1000;
    v["rss_bytes"] = rss_bytes();
    v["root"] = o_.root.dir();
    v["run_dir"] = o_.run_dir;
    const auto &st = updater_->state();
    if (st.current) v["revision"] = *st.current;
    else v["revision"] = nullptr;
    if (st.trying) v["trying"] = *st.trying;
    else v["trying"] = nullptr;
    v["containers"] = sup_->status().size();
    v["orphans_reaped"] = reaper_.orphans();
    if (!o_.board.empty()) {
        Value b = Value::object();
        b["path"] = o_.board;
        b["from"] = o_.board_from;
        v["board"] = b;
    } else {
        v["board"] = nullptr;
    }
    if (wd_) {
        Value w = Value::object();
        w["device"] = o_.watchdog;
        w["timeout_s"] = wd_->timeout();
        v["watchdog"] = w;
    } else {
        v["watchdog"] = nullptr;
    }
    return v;
}

void Daemon::handle(std::shared_ptr<ControlConn> c, const Value &req) {
    std::string op = req["op"].get<std::string>();
    if (shutdown_) {
        c->reply(error_response("the daemon is shutting down"));
        return;
    }
    if (op == "ps") {
        Value v = ok_response();
        v["services"] = ps_json();
        c->reply(v);
    } else if (op == "daemon-status") {
        c->reply(daemon_status_json());
    } else if (op == "update-status") {
        Value v = ok_response();
        v["status"] = status_json();
        c->reply(v);
    } else if (op == "update-history") {
        Value v = ok_response();
        v["history"] = ota::history_json(updater_->history());
        c->reply(v);
    } else if (op == "update-apply") {
        apply(std::move(c), req);
    } else if (op == "update-rollback") {
        rollback_request(std::move(c));
    } else if (op == "update-check") {
        if (!agent_) return c->reply(error_response("no fleet agent runs (no fleet/agent.json in the device root)"));
        agent_->check_now();
        c->reply(ok_response());
    } else if (op == "shutdown") {
        std::string a = req.contains("action") && req["action"].is_string() ? req["action"].get<std::string>() : "poweroff";
        PowerAction pa;
        if (a == "poweroff") pa = PowerAction::PowerOff;
        else if (a == "reboot") pa = PowerAction::Reboot;
        else if (a == "halt") pa = PowerAction::Halt;
        else {
            c->reply(error_response(cat("shutdown: unknown action ", util::quote(a), " (poweroff, reboot or halt)")));
            return;
        }
        Value v = ok_response();
        v["pid1"] = pid1_;
        c->reply(v);
        loop_->after(0, [this, pa, a] { request_shutdown(pa, cat("request (", a, ")")); });
    } else if (op == "logs") {
        logs(std::move(c), req);
    } else {
        c->reply(error_response(cat("unknown request ", util::quote(op))));
    }
}

util::Result<uint64_t> Daemon::apply_manifest(std::string_view doc) {
    if (updater_->busy() || trying_)
        return util::Error::msg(trying_ ? cat("an update is in progress: revision ", trying_->rev.version, " is being tried")
                                        : std::string("an update is in progress"));
    util::log::info("update: applying a manifest of ", doc.size(), " bytes");
    auto v = updater_->apply(doc);  // turns the loop while it stages, stops and starts
    if (!v) {
        util::log::error("update: ", v.error().message());
        return std::move(v).error();
    }
    if (reboot_if_asked()) return *v;  // a system update: tried after the reboot
    util::log::info("update: revision ", *v, " is trying");
    if (shutdown_) return util::Error::msg("the daemon is shutting down; the update is rolled back at its next start");
    begin_trying(*v);
    if (!trying_)  // its revision could not be read back: begin_trying rolled back
        return util::Error::msg(last_outcome_.is_object() && last_outcome_.contains("error") ? last_outcome_["error"].get<std::string>()
                                                                                          : std::string("update failed"));
    report("staged", cat("revision ", *v), trying_->rev.digest);
    report("trying", cat("revision ", *v, ": health window ", trying_->rev.health_window_ms / 1000, " s"), trying_->rev.digest);
    return *v;
}

void Daemon::apply(std::shared_ptr<ControlConn> c, const Value &req) {
    if (!req.contains("manifest") || !req["manifest"].is_string()) {
        c->reply(error_response("update-apply: expected the manifest as a string"));
        return;
    }
    bool wait = !req.contains("wait") || req["wait"] != false;
    auto v = apply_manifest(req["manifest"].get<std::string>());
    if (!v) {
        report("refused", v.error().message(), {});
        c->reply(error_response(v.error().message()));
        return;
    }
    Value ev = ok_response();
    if (!trying_) {  // a system update: the reboot is on its way
        ev["event"] = "reboot";
        ev["version"] = *v;
        ev["reason"] = updater_->reboot_requested().value_or("");
        c->reply(ev);
        return;
    }
    ev["event"] = "trying";
    ev["version"] = *v;
    ev["window_ms"] = trying_->rev.health_window_ms;
    if (!wait) {
        c->reply(ev);
        return;
    }
    c->send(ev);
    trying_->waiters.push_back(c);
}

void Daemon::rollback_request(std::shared_ptr<ControlConn> c) {
    if (trying_) {
        finish_trying(false, "rolled back by the operator");
        Value v = ok_response();
        v["status"] = status_json();
        c->reply(v);
        return;
    }
    if (updater_->busy()) {
        c->reply(error_response("an update is in progress"));
        return;
    }
    auto st = updater_->rollback("rolled back by the operator");
    if (!st) {
        c->reply(error_response(st.error().message()));
        return;
    }
    Value v = ok_response();
    v["status"] = status_json();
    c->reply(v);
}

void Daemon::logs(std::shared_ptr<ControlConn> c, const Value &req) {
    if (!req.contains("name") || !req["name"].is_string()) {
        c->reply(error_response("logs: expected the container's name"));
        return;
    }
    std::string name = req["name"].get<std::string>();
    auto services = sup_->status();
    bool known = std::any_of(services.begin(), services.end(), [&](const auto &s) { return s.name == name; });
    std::string dir = util::path_join(util::path_join(o_.root.dir(), "logs"), name);
    if (!known && !util::path_exists(dir)) {
        c->reply(error_response(cat("logs: no container named ", util::quote(name))));
        return;
    }
    Logs &logs = sup_->logs();
    std::vector<LogLine> lines;
    if (req.contains("since_ms") && req["since_ms"].is_number_integer())
        lines = logs.since(name, req["since_ms"].get<int64_t>());
    else
        lines = logs.last(name, SIZE_MAX);
    if (req.contains("tail") && req["tail"].is_number_unsigned()) {
        size_t n = req["tail"].get<size_t>();
        if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(n));
    }
    auto line_json = [](const LogLine &l) {
        Value v = Value::object();
        v["time_ms"] = l.time_ms;
        v["line"] = l.text;
        return v;
    };
    for (const auto &l : lines) c->send(line_json(l));
    if (!(req.contains("follow") && req["follow"] == true)) {
        c->reply(ok_response());
        return;
    }
    std::weak_ptr<ControlConn> weak = c;
    Logs::FollowId id = logs.follow(name, [weak, line_json](const LogLine &l) {
        if (auto conn = weak.lock()) conn->send(line_json(l));
    });
    c->on_close([this, id] { sup_->logs().unfollow(id); });
}

void Daemon::start_agent() {
    auto config = fleet::load_agent_config(o_.root);
    if (!config) return util::log::error("fleet agent: ", config.error().message(), " (running without it)");
    if (!*config) return;
    fleet::AgentHooks h;
    h.committed_version = [this] { return updater_->state().current.value_or(0); };
    h.apply = [this](std::string_view doc) -> util::Status {
        auto v = apply_manifest(doc);
        if (!v) return std::move(v).error();
        return {};
    };
    h.busy = [this] { return updater_->busy() || trying_.has_value(); };
    h.trying_version = [this] { return trying_ ? std::optional<uint64_t>(trying_->rev.version) : std::nullopt; };
    h.expect_child = [this](pid_t pid, std::function<void(int)> cb) { reaper_.expect(pid, std::move(cb)); };
    auto agent = fleet::Agent::start(std::move(**config), o_.root, *loop_, std::move(h));
    if (!agent) return util::log::error("fleet agent: ", agent.error().message(), " (running without it)");
    agent_ = std::move(*agent);
    apps_->on_staging_bytes = [this](uint64_t bytes) {
        if (agent_) agent_->progress(bytes);
    };
}

// ---- TRYING ----------------------------------------------------------------

void Daemon::begin_trying(uint64_t version) {
    auto rev = updater_->revision(version);
    if (!rev) {
        util::log::error("update: read revision ", version, ": ", rev.error().message());
        auto st = updater_->rollback(cat("revision ", version, " could not be read back"));
        last_outcome_ = error_response(cat("revision ", version, " could not be read back; rolled back"));
        (void)st;
        return;
    }
    trying_.emplace();
    trying_->rev = std::move(*rev);
    trying_->since_ms = util::monotonic_ms();
    int64_t window = trying_->rev.health_window_ms;
    trying_->window = loop_->after(window, [this, window] {
        if (!trying_) return;
        trying_->window = 0;
        std::string pending;
        for (const auto &s : sup_->status())
            if (s.revision == trying_->rev.version && s.health != Health::Healthy)
                pending += cat(pending.empty() ? "" : ", ", s.name, " ", health_name(s.health));
        finish_trying(false, cat("the health window (", window / 1000, " s) ran out", pending.empty() ? "" : ": ", pending));
    });
    schedule_evaluation();
}

void Daemon::schedule_evaluation(int64_t ms) {
    if (!trying_) return;
    if (trying_->eval) {
        if (loop_->remaining(trying_->eval) <= ms) return;
        loop_->cancel(trying_->eval);
    }
    trying_->eval = loop_->after(ms, [this] {
        if (!trying_) return;
        trying_->eval = 0;
        evaluate();
    });
}

void Daemon::evaluate() {
    // Runs from a timer, never inside the supervisor's callbacks: a
    // rollback stops and starts containers.
    const ota::Revision &rev = trying_->rev;
    auto all = sup_->status();
    int64_t now = util::monotonic_ms();
    int64_t recheck = -1;
    bool pass = true;
    for (const auto &c : rev.containers) {
        std::string id = ota::container_id(rev, c);
        auto s = std::find_if(all.begin(), all.end(), [&](const auto &x) { return x.id == id; });
        if (s == all.end()) {
            pass = false;
            continue;
        }
        if (s->crash_looping) return finish_trying(false, cat(c.name, " is crash-looping", s->why.empty() ? "" : ": ", s->why));
        if (s->health == Health::Unhealthy) return finish_trying(false, cat(c.name, " is unhealthy", s->why.empty() ? "" : ": ", s->why));
        if (c.health.kind != ota::HealthKind::None) {
            if (s->health != Health::Healthy) pass = false;
            continue;
        }
        // No health check: running, unchanged for kSettleMs.
        if (s->pid <= 0 || s->health == Health::Exited) {
            pass = false;
            continue;
        }
        int64_t up = now - std::max(s->since_ms, trying_->since_ms);
        if (up < kSettleMs) {
            pass = false;
            recheck = recheck < 0 ? kSettleMs - up : std::min(recheck, kSettleMs - up);
        }
    }
    if (pass) return finish_trying(true, "");
    if (recheck >= 0) schedule_evaluation(recheck);
}

void Daemon::finish_trying(bool healthy, const std::string &why) {
    Trying t = std::move(*trying_);
    trying_.reset();
    loop_->cancel(t.window);
    loop_->cancel(t.eval);
    uint64_t v = t.rev.version;
    util::Status st = healthy ? updater_->commit() : updater_->rollback(why);
    Value out = Value::object();
    out["ok"] = healthy && st.ok();
    out["version"] = v;
    out["outcome"] = healthy ? "committed" : "rolled-back";
    if (!healthy) out["reason"] = why;
    if (!st) out["error"] = st.error().message();
    else if (!healthy) out["error"] = cat("revision ", v, " rolled back: ", why);
    util::log::info("update: revision ", v, healthy ? " committed" : cat(" rolled back: ", why),
                    st ? "" : cat(" (", st.error().message(), ")"));
    last_outcome_ = out;
    report(healthy ? "committed" : "rolled-back", healthy ? cat("revision ", v) : why, t.rev.digest);
    for (auto &w : t.waiters) w->reply(out);
    if (!reboot_if_asked()) (void)release_idle_memory();
}

bool Daemon::reboot_if_asked() {
    const auto &why = updater_->reboot_requested();
    if (!why) return false;
    util::log::info("update: rebooting: ", *why);
    loop_->after(0, [this, w = *why] { request_shutdown(PowerAction::Reboot, cat("the system update (", w, ")")); });
    return true;
}

}  // namespace

util::Result<int> run_daemon(DaemonOptions o) {
    Daemon d(std::move(o));
    return d.run();
}

}  // namespace svc
