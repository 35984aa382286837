// The exec, http and tcp probes of health_probe.hpp. Each is a small state
// machine driven by loop callbacks: exec waits for its child's exit (from
// the Reaper) while reading its output pipe; http and tcp watch a
// non-blocking socket made in the container's network namespace through
// connect (EPOLLOUT), the request (EPOLLOUT) and the status line (EPOLLIN).
// One timer bounds the whole probe.
#include "daemon/health_probe.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "daemon/health.hpp"
#include "daemon/netns.hpp"
#include "util/fd.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

namespace svc {

namespace {

/// Bytes of a probe's output or an http answer looked at: the first line
/// must be in there. More output is read and dropped (a child must never
/// block on a full pipe).
constexpr size_t kHeadBytes = 4096;

/// The first line of `s`, without its line end, at most 200 characters.
std::string first_line(std::string_view s) {
    s = s.substr(0, s.find('\n'));
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    return std::string(s.substr(0, 200));
}

/// Keeps the outcome callback and the timeout timer every probe has.
class ProbeBase : public Probe {
public:
    ~ProbeBase() override { loop_.cancel(timer_); }

protected:
    ProbeBase(util::EventLoop &loop, Done done) : loop_(loop), done_(std::move(done)) {}

    /// Runs timed_out() once, `ms` from now, unless the probe ends first.
    void arm(int64_t ms) {
        timer_ = loop_.after(ms, [this] {
            timer_ = 0;
            timed_out();
        });
    }
    virtual void timed_out() = 0;

    /// Ends the probe. `done` may destroy it: nothing after the call
    /// touches a member.
    void finish(bool pass, std::string why) {
        loop_.cancel(timer_);
        timer_ = 0;
        Done d = std::move(done_);
        done_ = nullptr;
        if (d) d(ProbeResult{pass, std::move(why)});
    }
    /// finish() on the loop's next round, for an outcome known while the
    /// probe is being started (its starter must not be called back).
    void finish_soon(bool pass, std::string why) {
        loop_.cancel(timer_);
        timer_ = loop_.after(0, [this, pass, why = std::move(why)]() mutable {
            timer_ = 0;
            finish(pass, std::move(why));
        });
    }

    util::EventLoop &loop_;

private:
    Done done_;
    util::EventLoop::TimerId timer_ = 0;  ///< the timeout, or the deferred finish
};

class ExecProbe final : public ProbeBase {
public:
    ExecProbe(util::EventLoop &loop, Reaper &reaper, int64_t timeout_ms, Done done)
        : ProbeBase(loop, std::move(done)), reaper_(reaper), timeout_ms_(timeout_ms) {}
    ~ExecProbe() override { stop(); }

    void begin(const std::vector<std::string> &argv) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) < 0) return finish_soon(false, "exec: pipe: " + std::string(strerror(errno)));
        out_.reset(p[0]);
        util::UniqueFd out_w(p[1]);
        (void)::fcntl(out_.get(), F_SETFL, O_NONBLOCK);  // the read end only: the child's writes block as usual
        util::UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        util::SpawnOptions o;
        o.stdin_fd = null.get();  // -1 when /dev/null is missing: the daemon's own stdin
        o.stdout_fd = out_w.get();
        o.stderr_fd = out_w.get();
        o.new_session = true;  // its own process group: the timeout kills what it started too
        auto child = util::spawn(argv, o);
        if (!child) return finish_soon(false, "exec: " + child.error().message());
        pid_ = child->release();
        reaper_.expect(pid_, [this](int code) {
            pid_ = -1;
            exited(code);
        });
        if (!loop_.watch(out_.get(), EPOLLIN, [this](uint32_t) { drain(); })) out_.reset();  // exit code only
        arm(timeout_ms_);
    }

private:
    /// Reads what the pipe holds, keeping the first kHeadBytes; at most
    /// 64 KiB a call, so a command writing without end cannot hold the loop
    /// (the level-triggered watch calls again).
    void drain() {
        char buf[4096];
        for (int reads = 0; reads < 16; reads++) {
            ssize_t n = ::read(out_.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            if (n <= 0) {  // end of output, or an error: either way nothing more to read
                loop_.unwatch(out_.get());
                out_.reset();
                return;
            }
            if (head_.size() < kHeadBytes) head_.append(buf, std::min(size_t(n), kHeadBytes - head_.size()));
        }
    }

    void exited(int code) {
        // The output written before the exit is in the pipe now; a grandchild
        // holding the write end is not waited for.
        if (out_) drain();
        stop();
        if (code == 0) return finish(true, "exec exited 0");
        std::string line = first_line(head_);
        finish(false, util::cat("exec exited ", code, line.empty() ? "" : ": ", line));
    }

    void timed_out() override {
        stop();
        finish(false, "exec timed out after " + duration_text(timeout_ms_));
    }

    void stop() {
        if (pid_ > 0) {
            // Not reaped yet (the Reaper would have called us): the pid, and
            // so the process group it leads, is still ours. The group holds
            // the command berth exec started inside the container (no setsid
            // there without a terminal), which a SIGKILL to berth exec alone
            // would leave running.
            ::kill(-pid_, SIGKILL);
            reaper_.forget(pid_);
            pid_ = -1;
        }
        if (out_) {
            loop_.unwatch(out_.get());
            out_.reset();
        }
    }

    Reaper &reaper_;
    int64_t timeout_ms_;
    pid_t pid_ = -1;      ///< the running child; -1 once exited or given up
    util::UniqueFd out_;  ///< read end of the child's stdout and stderr
    std::string head_;    ///< the first kHeadBytes of its output
};

class ConnectProbe final : public ProbeBase {
public:
    ConnectProbe(util::EventLoop &loop, const ota::HealthSpec &spec, bool http, Done done)
        : ProbeBase(loop, std::move(done)),
          http_(http),
          port_(spec.port),
          path_(spec.path.empty() ? "/" : spec.path),
          timeout_ms_(spec.timeout_ms),
          where_(util::cat("127.0.0.1:", spec.port)) {}
    ~ConnectProbe() override { stop(); }

    void begin(pid_t netns_pid) {
        auto s = socket_in(netns_pid, AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
        if (!s) return finish_soon(false, util::cat(kind(), ": ", s.error().message()));
        fd_ = std::move(*s);
        struct sockaddr_in a = {};
        a.sin_family = AF_INET;
        a.sin_port = htons(port_);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int r = ::connect(fd_.get(), reinterpret_cast<struct sockaddr *>(&a), sizeof a);
        if (r < 0 && errno != EINPROGRESS) return fail_soon_errno("connect to " + where_);
        // Connected or not yet: either way the socket turns writable when it is settled.
        if (!loop_.watch(fd_.get(), EPOLLOUT, [this](uint32_t) { connected(); }))
            return fail_soon_errno("watch the socket");
        arm(timeout_ms_);
    }

private:
    const char *kind() const { return http_ ? "http" : "tcp"; }

    void fail_soon_errno(const std::string &what) {
        std::string why = util::cat(kind(), ": ", what, ": ", strerror(errno));
        stop();
        finish_soon(false, std::move(why));
    }
    void fail(std::string why) {
        stop();
        finish(false, std::move(why));
    }

    void connected() {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err != 0) return fail(util::cat(kind(), ": connect to ", where_, ": ", strerror(err)));
        connected_ = true;
        if (!http_) {
            stop();
            return finish(true, "tcp connect to " + where_);
        }
        request_ = util::cat("GET ", path_, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        send();
    }

    void send() {
        while (sent_ < request_.size()) {
            ssize_t n = ::send(fd_.get(), request_.data() + sent_, request_.size() - sent_, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) {
                if (!loop_.watch(fd_.get(), EPOLLOUT, [this](uint32_t) { send(); }))
                    return fail(util::cat("http: watch the socket: ", strerror(errno)));
                return;
            }
            if (n < 0) return fail(util::cat("http: send to ", where_, ": ", strerror(errno)));
            sent_ += size_t(n);
        }
        if (!loop_.watch(fd_.get(), EPOLLIN | EPOLLRDHUP, [this](uint32_t) { receive(); }))
            fail(util::cat("http: watch the socket: ", strerror(errno)));
    }

    void receive() {
        char buf[1024];
        for (;;) {
            size_t want = std::min(sizeof buf, kHeadBytes - head_.size());
            ssize_t n = ::recv(fd_.get(), buf, want, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            if (n < 0) return fail(util::cat("http: receive from ", where_, ": ", strerror(errno)));
            head_.append(buf, size_t(n));
            if (head_.find('\n') != std::string::npos || n == 0) return status_line();
            if (head_.size() >= kHeadBytes)
                return fail(util::cat("http: no status line in the first 4 KiB from ", where_));
        }
    }

    /// "HTTP/1.x NNN reason": 200-399 pass.
    void status_line() {
        std::string url = where_ + path_;
        if (head_.empty()) return fail("http: " + url + " closed the connection without an answer");
        std::string line = first_line(head_);
        std::string_view v = line;
        int code = 0;
        bool ok = v.size() >= 12 && v.substr(0, 7) == "HTTP/1." && v[8] == ' ' &&
                  std::from_chars(v.data() + 9, v.data() + 12, code).ptr == v.data() + 12 &&
                  (v.size() == 12 || v[12] == ' ');
        if (!ok) return fail(util::cat("http: bad status line from ", url, ": ", line));
        bool pass = code >= 200 && code < 400;
        stop();
        finish(pass, util::cat("http ", code, " from ", url));
    }

    void timed_out() override {
        std::string within = " within " + duration_text(timeout_ms_);
        std::string why = connected_ ? util::cat("http: no answer from ", where_, path_, within)
                                     : util::cat(kind(), ": no connection to ", where_, within);
        fail(std::move(why));
    }

    void stop() {
        if (!fd_) return;
        loop_.unwatch(fd_.get());
        fd_.reset();
    }

    bool http_;
    uint16_t port_;
    std::string path_;
    int64_t timeout_ms_;
    std::string where_;  ///< "127.0.0.1:8080"
    util::UniqueFd fd_;
    bool connected_ = false;
    std::string request_;
    size_t sent_ = 0;
    std::string head_;  ///< the answer's first bytes, at most kHeadBytes
};

}  // namespace

std::string duration_text(int64_t ms) {
    if (ms < 1000) return util::cat(ms, "ms");
    if (ms % 1000 == 0) return util::cat(ms / 1000, "s");
    return util::cat(ms / 1000, '.', (ms % 1000) / 100, "s");
}

std::unique_ptr<Probe> start_exec_probe(util::EventLoop &loop, Reaper &reaper, const ota::HealthSpec &spec,
                                        const HealthTarget &target, Probe::Done done) {
    std::vector<std::string> argv = {target.berth_exe, "--root", target.state_root, "exec", target.id};
    argv.insert(argv.end(), spec.command.begin(), spec.command.end());
    auto p = std::make_unique<ExecProbe>(loop, reaper, spec.timeout_ms, std::move(done));
    p->begin(argv);
    return p;
}

std::unique_ptr<Probe> start_connect_probe(util::EventLoop &loop, const ota::HealthSpec &spec,
                                           const HealthTarget &target, bool http, Probe::Done done) {
    auto p = std::make_unique<ConnectProbe>(loop, spec, http, std::move(done));
    p->begin(target.pid);
    return p;
}

}  // namespace svc
