// svc::HealthMonitor: the timing of health.hpp's checks (Docker's
// semantics) over one probe at a time (health_probe.hpp) or, for `ready`,
// the notify socket (notify_socket.hpp).
//
// A probe starts at once, then `interval` after the last one ended (as
// Docker's: a slow probe never makes the next one start early). A pass resets the count of
// failures and ends the start period; a failure in the start period is not
// counted; `retries` failures in a row make the container unhealthy. Only a
// change of the result is reported, and the report is the last thing a
// callback does: the supervisor may destroy the monitor from inside it.
//
// A `ready` container announces itself once. So that a daemon restarted
// while it runs (and adopting it) does not wait for a second READY=1 that
// never comes, the first one is remembered in <notify dir>/ready, holding
// the init's host pid; a monitor of that same init finds it and reports
// healthy at once. (The container can write that directory, so it could
// write the marker itself: that only says it is ready, which READY=1 says
// as well.)
#include "daemon/health.hpp"

#include "daemon/health_probe.hpp"
#include "daemon/notify_socket.hpp"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace svc {

namespace {

/// The ready window when the spec gives neither a start period nor a timeout.
constexpr int64_t kDefaultReadyWindowMs = 30000;

class Monitor final : public HealthMonitor {
public:
    Monitor(util::EventLoop &loop, Reaper &reaper, const ota::HealthSpec &spec, const HealthTarget &target,
            Report report)
        : loop_(loop), reaper_(reaper), spec_(spec), target_(target), report_(std::move(report)) {
        if (target_.berth_exe.empty()) target_.berth_exe = "/proc/self/exe";
        if (spec_.retries < 1) spec_.retries = 1;
        if (spec_.interval_ms < 0) spec_.interval_ms = 0;
    }
    ~Monitor() override {
        loop_.cancel(next_);
        loop_.cancel(window_);
        // probe_ and notify_ stop themselves as members go.
    }

    util::Status begin() {
        started_ms_ = util::monotonic_ms();
        switch (spec_.kind) {
        case ota::HealthKind::None:
            return {};  // nothing to check: no report ever
        case ota::HealthKind::Ready: {
            auto heard = [this](bool ready, const std::string &status) { notified(ready, status); };
            notify_ = TRY_CTX(NotifySocket::open(loop_, target_.notify_dir, target_.pid, heard), "ready check");
            int64_t window = spec_.start_period_ms + spec_.timeout_ms;
            if (window <= 0) window = kDefaultReadyWindowMs;
            if (announced_before()) {
                window_ = loop_.after(0, [this] {
                    window_ = 0;
                    set(true, "READY=1 (before a daemon restart)");
                });
                return {};
            }
            window_ = loop_.after(window, [this, window] {
                window_ = 0;
                std::string why = "no READY=1 within " + duration_text(window);
                if (!status_.empty()) why += " (status: " + status_ + ")";
                set(false, std::move(why));
            });
            return {};
        }
        case ota::HealthKind::Exec:
            if (spec_.command.empty()) return util::Error::msg("exec check without a command");
            break;
        case ota::HealthKind::Http:
        case ota::HealthKind::Tcp:
            if (spec_.port == 0) return util::Error::msg("http or tcp check without a port");
            break;
        }
        next_ = loop_.after(0, [this] {
            next_ = 0;
            probe();
        });
        return {};
    }

private:
    enum class State { Starting, Healthy, Unhealthy };

    void probe() {
        auto done = [this](ProbeResult r) { probed(std::move(r)); };
        if (spec_.kind == ota::HealthKind::Exec)
            probe_ = start_exec_probe(loop_, reaper_, spec_, target_, std::move(done));
        else
            probe_ = start_connect_probe(loop_, spec_, target_, spec_.kind == ota::HealthKind::Http, std::move(done));
    }

    void probed(ProbeResult r) {
        probe_.reset();  // it has finished; this runs inside its last call, which touches nothing after
        int64_t now = util::monotonic_ms();
        bool in_start_period = starting_ && now < started_ms_ + spec_.start_period_ms;
        if (r.pass) {
            failures_ = 0;
            starting_ = false;
        } else if (!in_start_period) {
            ++failures_;
        }
        next_ = loop_.after(spec_.interval_ms, [this] {
            next_ = 0;
            probe();
        });
        if (r.pass) set(true, std::move(r.why));
        else if (failures_ >= spec_.retries) set(false, std::move(r.why));
    }

    void notified(bool ready, const std::string &status) {
        if (!status.empty()) status_ = status;
        if (!ready) return;
        loop_.cancel(window_);
        window_ = 0;
        // Best effort: without the marker a restarted daemon waits for the window.
        (void)util::atomic_write_file(marker(), std::to_string(target_.pid), 0644, util::Durability::ProcessCrash);
        set(true, status_.empty() ? std::string("READY=1") : status_);
    }

    std::string marker() const { return util::path_join(target_.notify_dir, "ready"); }
    /// This init said READY=1 to a monitor before this one.
    /// The container can write the directory: no FIFO or symlink may make
    /// this read block or go elsewhere.
    bool announced_before() const {
        util::UniqueFd fd(open(marker().c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
        struct stat st;
        if (!fd || fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
        char buf[32];
        ssize_t n = read(fd.get(), buf, sizeof buf);
        return n > 0 && std::string_view(buf, size_t(n)) == std::to_string(target_.pid);
    }

    /// Reports a change of the result; the caller's last statement.
    void set(bool healthy, std::string why) {
        State s = healthy ? State::Healthy : State::Unhealthy;
        if (s == state_) return;
        state_ = s;
        Report report = report_;  // the call may destroy this monitor
        report(healthy, why);
    }

    util::EventLoop &loop_;
    Reaper &reaper_;
    ota::HealthSpec spec_;
    HealthTarget target_;
    Report report_;

    State state_ = State::Starting;  ///< the last result reported
    int64_t started_ms_ = 0;
    bool starting_ = true;  ///< in the start period: no pass yet
    int failures_ = 0;      ///< counted failures in a row
    util::EventLoop::TimerId next_ = 0;  ///< the next probe
    std::unique_ptr<Probe> probe_;       ///< the running probe
    util::EventLoop::TimerId window_ = 0;  ///< ready: the deadline for READY=1
    std::unique_ptr<NotifySocket> notify_;
    std::string status_;  ///< ready: the last STATUS=
};

}  // namespace

util::Result<std::unique_ptr<HealthMonitor>> HealthMonitor::start(util::EventLoop &loop, Reaper &reaper,
                                                                  const ota::HealthSpec &spec,
                                                                  const HealthTarget &target, Report report) {
    auto m = std::make_unique<Monitor>(loop, reaper, spec, target, std::move(report));
    TRY(m->begin());
    return std::unique_ptr<HealthMonitor>(std::move(m));
}

}  // namespace svc
