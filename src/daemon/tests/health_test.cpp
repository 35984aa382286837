// svc::HealthMonitor with the real things: http and tcp probes against
// sockets this test listens on in the host's network namespace (target.pid
// 0 is "our own namespace" to socket_in), served on the same event loop;
// exec probes through a fake berth (a shell script that ignores the exec
// arguments); the ready socket fed with sendmsg; and one real container
// whose http server is reachable only inside its own network namespace
// (root and a static busybox; skipped otherwise).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "daemon/health.hpp"
#include "runtime/tests/busybox_bundle.hpp"
#include "daemon/netns.hpp"
#include "daemon/notify_socket.hpp"
#include "runtime/container.hpp"
#include "runtime/features.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

namespace {

/// An event loop whose Reaper reaps on SIGCHLD, as the daemon's does.
struct Loop {
    std::unique_ptr<util::EventLoop> loop;
    svc::Reaper reaper;
    util::UniqueFd sigfd;
    int reaped = 0;  ///< children reaped so far

    Loop() {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGCHLD);
        REQUIRE(sigprocmask(SIG_BLOCK, &s, nullptr) == 0);
        sigfd.reset(signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC));
        REQUIRE(sigfd);
        loop = std::move(*util::EventLoop::create());
        REQUIRE(loop->watch(sigfd.get(), EPOLLIN, [this](uint32_t) {
            struct signalfd_siginfo si;
            while (read(sigfd.get(), &si, sizeof si) == sizeof si) {
            }
            reaped += reaper.reap();
        }));
    }
    /// Runs the loop until `pred` holds or `ms` have passed; returns pred().
    template <typename P>
    bool run_until(P pred, int64_t ms = 10000) {
        int64_t end = util::monotonic_ms() + ms;
        while (!pred() && util::monotonic_ms() < end)
            if (!loop->run_once(50)) FAIL("event loop failed");
        return pred();
    }
};

struct Reports {
    struct One {
        bool healthy;
        std::string why;
        int64_t at;  ///< ms after the monitor started
    };
    std::vector<One> got;
    int64_t started = util::monotonic_ms();
    svc::HealthMonitor::Report fn() {
        return [this](bool healthy, const std::string &why) {
            got.push_back({healthy, why, util::monotonic_ms() - started});
        };
    }
};

/// A TCP socket on 127.0.0.1 of the host namespace: listening (and, with
/// serve(), answering GETs with `status`), or bound only (connects refused).
class Server {
public:
    Server(util::EventLoop &loop, bool listening) : loop_(loop) {
        fd_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        REQUIRE(fd_);
        struct sockaddr_in a = {};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(bind(fd_.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        REQUIRE(getsockname(fd_.get(), reinterpret_cast<sockaddr *>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        if (listening) REQUIRE(listen(fd_.get(), 64) == 0);
    }
    ~Server() {
        for (auto &c : conns_) loop_.unwatch(c.first);
        loop_.unwatch(fd_.get());
    }
    uint16_t port() const { return port_; }
    int served = 0;    ///< requests answered
    int accepted = 0;  ///< connections accepted
    int status = 200;
    std::string raw;  ///< when set, the whole answer instead of a status

    /// Accepts on the loop and answers each request once it has been read.
    void serve() {
        REQUIRE(loop_.watch(fd_.get(), EPOLLIN, [this](uint32_t) {
            int c = accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c < 0) return;
            ++accepted;
            conns_[c] = {util::UniqueFd(c), ""};
            REQUIRE(loop_.watch(c, EPOLLIN, [this, c](uint32_t) { readable(c); }));
        }));
    }

private:
    void readable(int c) {
        auto &conn = conns_.at(c);
        char buf[1024];
        ssize_t n = read(c, buf, sizeof buf);
        if (n > 0) conn.second.append(buf, size_t(n));
        if (n > 0 && conn.second.find("\r\n\r\n") == std::string::npos) return;
        if (n > 0) {
            REQUIRE(conn.second.rfind("GET /health HTTP/1.0\r\n", 0) == 0);
            std::string answer =
                raw.empty() ? util::cat("HTTP/1.0 ", status, " Whatever\r\nContent-Length: 0\r\n\r\n") : raw;
            REQUIRE(write(c, answer.data(), answer.size()) == ssize_t(answer.size()));
            ++served;
        }
        loop_.unwatch(c);
        conns_.erase(c);
    }

    util::EventLoop &loop_;
    util::UniqueFd fd_;
    uint16_t port_ = 0;
    std::map<int, std::pair<util::UniqueFd, std::string>> conns_;
};

ota::HealthSpec spec_of(ota::HealthKind kind, uint16_t port = 0) {
    ota::HealthSpec s;
    s.kind = kind;
    s.port = port;
    s.path = "/health";
    s.interval_ms = 20;
    s.timeout_ms = 2000;
    s.retries = 3;
    s.start_period_ms = 0;
    return s;
}

std::unique_ptr<svc::HealthMonitor> start(Loop &l, const ota::HealthSpec &spec, const svc::HealthTarget &target,
                                          Reports &r) {
    r.started = util::monotonic_ms();
    auto m = svc::HealthMonitor::start(*l.loop, l.reaper, spec, target, r.fn());
    INFO((m ? "" : m.error().message()));
    REQUIRE(m);
    return std::move(*m);
}

/// Starts a monitor, runs the loop until its first report and returns it.
Reports::One first_report(Loop &l, const ota::HealthSpec &spec, const svc::HealthTarget &target = {},
                          int64_t ms = 10000) {
    Reports r;
    auto m = start(l, spec, target, r);
    REQUIRE(l.run_until([&] { return !r.got.empty(); }, ms));
    return r.got[0];
}

/// A temporary directory, removed at the end.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/berth-health.XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        path = tmpl;
        chmod(path.c_str(), 0755);
    }
    ~TempDir() { (void)util::remove_tree(path); }
};

/// A fake berth: records its arguments and pid, then runs `body`.
std::string fake_berth(const TempDir &d, const std::string &body) {
    std::string p = d.path + "/berth";
    std::string script =
        util::cat("#!/bin/sh\necho \"$@\" > ", d.path, "/args\necho $$ > ", d.path, "/pid\n", body, "\n");
    REQUIRE(util::atomic_write_file(p, script, 0755));
    return p;
}

std::string read_text(const std::string &path) {
    auto r = util::read_file(path);
    return r ? std::string(*r) : std::string();
}

bool alive(pid_t pid) { return kill(pid, 0) == 0; }

size_t open_fds() {
    size_t n = 0;
    for (auto &e : std::filesystem::directory_iterator("/proc/self/fd")) (void)e, ++n;
    return n;
}

struct sockaddr_un unix_address(const std::string &path) {
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof a.sun_path);
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

/// Sends one datagram to <dir>/notify.sock from this process.
void notify(const std::string &dir, const std::string &text) {
    util::UniqueFd s(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(s);
    struct sockaddr_un a = unix_address(dir + "/notify.sock");
    struct iovec iov = {const_cast<char *>(text.data()), text.size()};
    struct msghdr msg = {};
    msg.msg_name = &a;
    msg.msg_namelen = sizeof a;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    REQUIRE(sendmsg(s.get(), &msg, 0) == ssize_t(text.size()));
}

}  // namespace

// ---- http ----

TEST_CASE("http check: a 200 answer makes the container healthy") {
    Loop l;
    Server srv(*l.loop, true);
    srv.serve();
    auto got = first_report(l, spec_of(ota::HealthKind::Http, srv.port()), {});
    CHECK(got.healthy);
    CHECK(got.why == util::cat("http 200 from 127.0.0.1:", srv.port(), "/health"));
}

TEST_CASE("http check: a 3xx answer passes") {
    Loop l;
    Server srv(*l.loop, true);
    srv.status = 302;
    srv.serve();
    auto got = first_report(l, spec_of(ota::HealthKind::Http, srv.port()), {});
    CHECK(got.healthy);
}

TEST_CASE("http check: 503 makes the container unhealthy at the retries-th failure in a row") {
    Loop l;
    Server srv(*l.loop, true);
    srv.status = 503;
    srv.serve();
    Reports r;
    int served_at_report = -1;
    auto m = svc::HealthMonitor::start(*l.loop, l.reaper, spec_of(ota::HealthKind::Http, srv.port()), {},
                                       [&](bool healthy, const std::string &why) {
                                           r.got.push_back({healthy, why, 0});
                                           served_at_report = srv.served;
                                       });
    REQUIRE(m);
    REQUIRE(l.run_until([&] { return !r.got.empty(); }));
    CHECK_FALSE(r.got[0].healthy);
    CHECK(r.got[0].why == util::cat("http 503 from 127.0.0.1:", srv.port(), "/health"));
    CHECK(served_at_report == 3);
}

TEST_CASE("http check: a server that accepts but never answers fails at the timeout") {
    Loop l;
    Server srv(*l.loop, true);  // the kernel completes the connection; nobody reads it
    auto spec = spec_of(ota::HealthKind::Http, srv.port());
    spec.timeout_ms = 300;
    spec.retries = 1;
    auto got = first_report(l, spec);
    CHECK_FALSE(got.healthy);
    CHECK(got.why == util::cat("http: no answer from 127.0.0.1:", srv.port(), "/health within 300ms"));
    CHECK(got.at >= 300);
}

namespace {
/// A check of `kind` ("http" or "tcp") against a port nothing listens on:
/// the first probe fails at once, long before its timeout.
void check_refused_at_once(ota::HealthKind kind, const char *name) {
    Loop l;
    Server srv(*l.loop, false);  // bound, not listening: the port stays ours and refuses
    auto spec = spec_of(kind, srv.port());
    spec.timeout_ms = 10000;
    spec.retries = 1;
    auto got = first_report(l, spec);
    CHECK_FALSE(got.healthy);
    CHECK(got.why == util::cat(name, ": connect to 127.0.0.1:", srv.port(), ": Connection refused"));
    CHECK(got.at < 2000);
}
}  // namespace

TEST_CASE("http check: nothing listening fails at once") { check_refused_at_once(ota::HealthKind::Http, "http"); }

TEST_CASE("http check: an answer that is not HTTP fails, naming its first line") {
    Loop l;
    Server srv(*l.loop, true);
    srv.raw = "SSH-2.0-OpenSSH_9.2\r\n";
    srv.serve();
    auto spec = spec_of(ota::HealthKind::Http, srv.port());
    spec.retries = 1;
    auto got = first_report(l, spec);
    CHECK_FALSE(got.healthy);
    CHECK(got.why == util::cat("http: bad status line from 127.0.0.1:", srv.port(), "/health: SSH-2.0-OpenSSH_9.2"));
}

TEST_CASE("health reports only changes of the result") {
    Loop l;
    Server srv(*l.loop, true);
    srv.serve();
    auto spec = spec_of(ota::HealthKind::Http, srv.port());
    spec.retries = 2;
    Reports r;
    auto m = start(l, spec, {}, r);
    REQUIRE(l.run_until([&] { return srv.served >= 10; }));
    REQUIRE(r.got.size() == 1);
    CHECK(r.got[0].healthy);
    srv.status = 500;
    REQUIRE(l.run_until([&] { return r.got.size() == 2; }));
    CHECK_FALSE(r.got[1].healthy);
    int served = srv.served;
    REQUIRE(l.run_until([&] { return srv.served >= served + 10; }));
    CHECK(r.got.size() == 2);
    srv.status = 204;
    REQUIRE(l.run_until([&] { return r.got.size() == 3; }));
    CHECK(r.got[2].healthy);
}

TEST_CASE("health: failures in the start period do not count") {
    Loop l;
    Server srv(*l.loop, true);
    srv.status = 503;
    srv.serve();
    auto spec = spec_of(ota::HealthKind::Http, srv.port());
    spec.start_period_ms = 600;
    spec.retries = 1;
    auto got = first_report(l, spec);
    CHECK_FALSE(got.healthy);
    CHECK(got.at >= 600);
    CHECK(srv.served > 2);  // probed all along; the failures before 600 ms were not counted
}

TEST_CASE("health: a pass ends the start period, so the next failures count") {
    Loop l;
    Server srv(*l.loop, true);
    srv.serve();
    auto spec = spec_of(ota::HealthKind::Http, srv.port());
    spec.start_period_ms = 60000;
    spec.retries = 2;
    Reports r;
    auto m = start(l, spec, {}, r);
    REQUIRE(l.run_until([&] { return !r.got.empty(); }));
    REQUIRE(r.got[0].healthy);
    srv.status = 503;
    REQUIRE(l.run_until([&] { return r.got.size() == 2; }));
    CHECK_FALSE(r.got[1].healthy);
    CHECK(r.got[1].at < 60000);
}

TEST_CASE("health: a probe runs at once, then interval after each one ends") {
    Loop l;
    Server srv(*l.loop, true);
    srv.serve();
    auto spec = spec_of(ota::HealthKind::Http, srv.port());
    spec.interval_ms = 200;
    Reports r;
    auto m = start(l, spec, {}, r);
    REQUIRE(l.run_until([&] { return srv.served == 3; }));
    int64_t elapsed = util::monotonic_ms() - r.started;
    CHECK(elapsed >= 400);  // at 0, 200, 400
    CHECK(elapsed < 1500);
}

// ---- tcp ----

TEST_CASE("tcp check: a listening port makes the container healthy") {
    Loop l;
    Server srv(*l.loop, true);
    auto got = first_report(l, spec_of(ota::HealthKind::Tcp, srv.port()));
    CHECK(got.healthy);
    CHECK(got.why == util::cat("tcp connect to 127.0.0.1:", srv.port()));
}

TEST_CASE("tcp check: nothing listening fails at once") { check_refused_at_once(ota::HealthKind::Tcp, "tcp"); }

// ---- exec ----

namespace {
/// An exec check of container "web.r3" through a fake berth running `body`.
struct FakeExec {
    TempDir d;
    svc::HealthTarget target;
    ota::HealthSpec spec = spec_of(ota::HealthKind::Exec);
    explicit FakeExec(const std::string &body) {
        target.id = "web.r3";
        target.berth_exe = fake_berth(d, body);
        spec.command = {"check"};
    }
    /// The fake's pid once it has started (0 before).
    pid_t pid() const { return std::atoi(read_text(d.path + "/pid").c_str()); }
};
}  // namespace

TEST_CASE("exec check: runs `berth --root R exec ID command...` and passes on exit 0") {
    Loop l;
    FakeExec x("exit 0");
    x.target.state_root = "/run/berth/runtime";
    x.spec.command = {"curl", "-f", "http://localhost/"};
    auto got = first_report(l, x.spec, x.target);
    CHECK(got.healthy);
    CHECK(read_text(x.d.path + "/args") == "--root /run/berth/runtime exec web.r3 curl -f http://localhost/\n");
}

TEST_CASE("exec check: a failure names the exit code and the first line of output") {
    Loop l;
    FakeExec x("echo 'database is down' >&2\necho second line\nexit 3");
    x.spec.retries = 2;
    auto got = first_report(l, x.spec, x.target);
    CHECK_FALSE(got.healthy);
    CHECK(got.why == "exec exited 3: database is down");
}

TEST_CASE("exec check: a probe still running at the timeout is killed and fails") {
    Loop l;
    FakeExec x("exec sleep 30");
    x.spec.timeout_ms = 300;
    x.spec.retries = 1;
    x.spec.interval_ms = 60000;
    auto got = first_report(l, x.spec, x.target);
    CHECK_FALSE(got.healthy);
    CHECK(got.why == "exec timed out after 300ms");
    CHECK(got.at >= 300);
    pid_t pid = x.pid();
    REQUIRE(pid > 0);
    CHECK(l.run_until([&] { return !alive(pid); }));  // killed, then reaped as an orphan
}

TEST_CASE("exec check: a command writing without end neither blocks on its pipe nor holds the loop") {
    Loop l;
    FakeExec x("exec yes 'all is well'");
    x.spec.timeout_ms = 500;
    x.spec.retries = 1;
    auto got = first_report(l, x.spec, x.target);
    CHECK(got.why == "exec timed out after 500ms");
    CHECK(got.at < 3000);
}

TEST_CASE("destroying a monitor kills its running probe and closes its fds") {
    Loop l;
    FakeExec x("exec sleep 30");
    x.spec.timeout_ms = 60000;
    size_t fds = open_fds();
    Reports r;
    auto m = start(l, x.spec, x.target, r);
    REQUIRE(l.run_until([&] { return x.pid() > 0; }));
    pid_t pid = x.pid();
    REQUIRE(l.reaper.expecting(pid));
    m.reset();
    CHECK_FALSE(l.reaper.expecting(pid));
    CHECK(open_fds() == fds);
    unsigned long orphans = l.reaper.orphans();
    CHECK(l.run_until([&] { return !alive(pid); }));
    CHECK(l.reaper.orphans() == orphans + 1);
    CHECK(r.got.empty());
}

TEST_CASE("a report may destroy its monitor") {
    Loop l;
    Server srv(*l.loop, true);
    srv.serve();
    Reports r;
    std::unique_ptr<svc::HealthMonitor> m;
    auto started = svc::HealthMonitor::start(*l.loop, l.reaper, spec_of(ota::HealthKind::Http, srv.port()), {},
                                             [&](bool healthy, const std::string &) {
                                                 r.got.push_back({healthy, "", 0});
                                                 m.reset();
                                             });
    REQUIRE(started);
    m = std::move(*started);
    REQUIRE(l.run_until([&] { return !r.got.empty(); }));
    int served = srv.served;
    // No probe runs any more: the loop has nothing of the monitor's left.
    l.run_until([&] { return false; }, 200);
    CHECK(srv.served == served);
    CHECK(r.got.size() == 1);
}

// ---- ready ----

namespace {
/// A ready check whose notify directory is <temp>/notify, made by the monitor.
struct ReadyCheck {
    Loop l;
    TempDir d;
    svc::HealthTarget t;
    ota::HealthSpec spec = spec_of(ota::HealthKind::Ready);
    Reports r;
    ReadyCheck() { t.notify_dir = d.path + "/notify"; }
    std::unique_ptr<svc::HealthMonitor> start() { return ::start(l, spec, t, r); }
};
}  // namespace

TEST_CASE("ready check: READY=1 from inside the container makes it healthy, its STATUS the why") {
    ReadyCheck c;
    auto m = c.start();
    struct stat st;
    REQUIRE(stat((c.t.notify_dir + "/notify.sock").c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0666);  // any user in the container may notify
    notify(c.t.notify_dir, "STATUS=serving\nREADY=1\n");  // this process is in the target's (our) pid namespace
    REQUIRE(c.l.run_until([&] { return !c.r.got.empty(); }));
    CHECK(c.r.got[0].healthy);
    CHECK(c.r.got[0].why == "serving");
}

TEST_CASE("ready check: no READY=1 within start period + timeout makes it unhealthy") {
    ReadyCheck c;
    c.spec.start_period_ms = 200;
    c.spec.timeout_ms = 100;
    auto m = c.start();
    notify(c.t.notify_dir, "STATUS=loading the model");
    REQUIRE(c.l.run_until([&] { return !c.r.got.empty(); }));
    CHECK_FALSE(c.r.got[0].healthy);
    CHECK(c.r.got[0].why == "no READY=1 within 300ms (status: loading the model)");
    CHECK(c.r.got[0].at >= 300);
}

TEST_CASE("ready check: READY=1 after the window turns unhealthy into healthy") {
    ReadyCheck c;
    c.spec.timeout_ms = 100;
    auto m = c.start();
    REQUIRE(c.l.run_until([&] { return !c.r.got.empty(); }));
    REQUIRE_FALSE(c.r.got[0].healthy);
    notify(c.t.notify_dir, "READY=1");
    REQUIRE(c.l.run_until([&] { return c.r.got.size() == 2; }));
    CHECK(c.r.got[1].healthy);
    CHECK(c.r.got[1].why == "READY=1");
}

TEST_CASE("ready check: a stale socket is replaced and the socket goes with the monitor") {
    ReadyCheck c;
    // What a daemon killed without cleaning up leaves: a socket file nobody reads.
    std::string sock = c.t.notify_dir + "/notify.sock";
    REQUIRE(util::mkdir_p(c.t.notify_dir));
    {
        util::UniqueFd stale(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        struct sockaddr_un a = unix_address(sock);
        REQUIRE(bind(stale.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    }
    auto m = c.start();  // binds again in the same directory
    notify(c.t.notify_dir, "READY=1");
    REQUIRE(c.l.run_until([&] { return !c.r.got.empty(); }));
    CHECK(c.r.got[0].healthy);
    m.reset();
    CHECK(access(sock.c_str(), F_OK) < 0);
}

TEST_CASE("ready check: a socket swapped for a symlink while it is made never changes the link's target") {
    // The container may write the notify directory (it is bind-mounted in):
    // a notify.sock turned into a symlink to a host file between the bind and
    // a chmod by name would make that file world-writable.
    Loop l;
    TempDir d;
    std::string victim = d.path + "/victim";
    REQUIRE(util::atomic_write_file(victim, "secret", 0600));
    svc::HealthTarget t;
    t.notify_dir = d.path + "/notify";
    REQUIRE(util::mkdir_p(t.notify_dir));
    std::string sock = t.notify_dir + "/notify.sock";
    std::atomic<bool> stop{false};
    std::thread racer([&] {
        std::string tmp = t.notify_dir + "/link";
        while (!stop) {
            (void)!symlink(victim.c_str(), tmp.c_str());
            (void)!rename(tmp.c_str(), sock.c_str());  // replaces whatever is there
        }
    });
    Reports r;
    int made = 0;
    for (int i = 0; i < 3000; i++) {
        auto m = svc::HealthMonitor::start(*l.loop, l.reaper, spec_of(ota::HealthKind::Ready), t, r.fn());
        if (m) ++made;
    }
    stop = true;
    racer.join();
    struct stat st;
    REQUIRE(stat(victim.c_str(), &st) == 0);
    INFO(made << " sockets made");
    CHECK(made > 0);
    CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("ready check: READY=1 from outside the container's pid namespace is not heard") {
    if (geteuid() != 0) {
        WARN("skipped: needs root for a pid namespace");
        return;
    }
    Loop l;
    TempDir d;
    // The "container": a process in a new pid namespace that sends READY=1
    // when told to (a byte on `go`).
    int go[2], pidpipe[2];
    REQUIRE(pipe2(go, O_CLOEXEC) == 0);
    REQUIRE(pipe2(pidpipe, O_CLOEXEC) == 0);
    std::string dir = d.path + "/notify";
    pid_t mid = fork();
    REQUIRE(mid >= 0);
    if (mid == 0) {
        if (unshare(CLONE_NEWPID) < 0) _exit(1);
        pid_t inner = fork();
        if (inner == 0) {
            char c;
            if (read(go[0], &c, 1) != 1) _exit(1);
            int s = socket(AF_UNIX, SOCK_DGRAM, 0);
            struct sockaddr_un a = {};
            a.sun_family = AF_UNIX;
            snprintf(a.sun_path, sizeof a.sun_path, "%s/notify.sock", dir.c_str());
            const char text[] = "STATUS=inside\nREADY=1";
            sendto(s, text, sizeof text - 1, 0, reinterpret_cast<sockaddr *>(&a), sizeof a);
            pause();
            _exit(0);
        }
        (void)!write(pidpipe[1], &inner, sizeof inner);
        _exit(0);
    }
    pid_t inner = 0;
    REQUIRE(read(pidpipe[0], &inner, sizeof inner) == sizeof inner);
    REQUIRE(inner > 0);
    svc::HealthTarget t;
    t.pid = inner;
    t.notify_dir = dir;
    auto spec = spec_of(ota::HealthKind::Ready);
    spec.timeout_ms = 30000;
    Reports r;
    auto m = start(l, spec, t, r);
    notify(dir, "STATUS=outside\nREADY=1");  // from the host's pid namespace: dropped
    REQUIRE(write(go[1], "x", 1) == 1);       // then the same from inside
    REQUIRE(l.run_until([&] { return !r.got.empty(); }));
    CHECK(r.got[0].healthy);
    CHECK(r.got[0].why == "inside");  // datagrams arrive in order: the outside one was not taken
    kill(inner, SIGKILL);
    for (int fd : {go[0], go[1], pidpipe[0], pidpipe[1]}) close(fd);
}

// ---- a real container ----

namespace {

using rt::testing::static_busybox;

/// A busybox container in its own network namespace, removed at the end.
class Container {
public:
    explicit Container(const TempDir &d) : dir_(d.path), root_(d.path + "/state") {
        std::string rootfs = dir_ + "/rootfs";
        rt::testing::make_busybox_rootfs(rootfs);
        REQUIRE(util::mkdir_p(rootfs + "/www"));
        REQUIRE(util::atomic_write_file(rootfs + "/www/health", "ok\n"));
    }
    ~Container() {
        if (!id_.empty()) (void)rt::delete_container(root_, id_, true);
    }
    /// Creates `id` running `script`; returns its init's pid.
    pid_t create(const std::string &id, const std::string &script) {
        std::string bundle = dir_ + "/bundle";
        REQUIRE(util::mkdir_p(bundle));
        REQUIRE(symlink("../rootfs", (bundle + "/rootfs").c_str()) == 0);
        auto spec = rt::testing::sh_spec(script, util::cat("berth-health-", getpid(), "-", id));
        spec["root"]["readonly"] = true;
        REQUIRE(util::atomic_write_file(bundle + "/config.json", util::json::dump(spec)));
        rt::CreateOptions o;
        o.root = root_;
        o.id = id;
        o.bundle = bundle;
        id_ = id;
        auto st = rt::create_container(o);
        INFO((st ? "" : st.error().message()));
        REQUIRE(st);
        return st->pid;
    }
    void start() {
        auto s = rt::start_container(root_, id_);
        INFO((s ? "" : s.error().message()));
        REQUIRE(s);
    }
    const std::string &root() const { return root_; }

private:
    std::string dir_, root_, id_;
};

/// The berth built with these tests: $BERTH_EXE, or src/berth of the
/// build directory this test binary is in (src/daemon/tests/).
std::string built_berth() {
    if (const char *e = getenv("BERTH_EXE")) return e;
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return "";
    auto p = self.parent_path().parent_path().parent_path() / "berth";
    return access(p.c_str(), X_OK) == 0 ? p.string() : "";
}

/// Pids whose command line is exactly `argv`.
std::vector<pid_t> pids_running(const std::vector<std::string> &argv) {
    std::string want;
    for (const auto &a : argv) want += a + '\0';
    std::vector<pid_t> out;
    for (auto &e : std::filesystem::directory_iterator("/proc")) {
        auto pid = util::parse_int<pid_t>(e.path().filename().string());
        if (!pid) continue;
        auto cmd = util::read_file(e.path() / "cmdline");
        if (cmd && std::string(*cmd) == want) out.push_back(*pid);
    }
    return out;
}

bool connects_from_host(uint16_t port) {
    util::UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return connect(s.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
}

}  // namespace

TEST_CASE("http check reaches a server in the container's private network namespace") {
    if (geteuid() != 0 || !static_busybox() || getenv("BERTH_EMULATED")) {
        WARN("skipped: needs root, a static busybox and a real kernel (not qemu-user)");
        return;
    }
    Loop l;
    TempDir d;
    Container c(d);
    Server reserved(*l.loop, false);  // holds the port in the host namespace: nothing can listen there
    uint16_t port = reserved.port();
    pid_t init = c.create("web", util::cat("exec /bin/busybox httpd -f -p 127.0.0.1:", port, " -h /www"));
    REQUIRE(svc::loopback_up_in(init));  // as the daemon does for a private network
    c.start();
    auto spec = spec_of(ota::HealthKind::Http, port);
    spec.interval_ms = 100;
    spec.start_period_ms = 10000;  // httpd may take a moment to bind
    svc::HealthTarget t;
    t.id = "web";
    t.pid = init;
    t.state_root = c.root();
    auto got = first_report(l, spec, t, 15000);
    CHECK(got.healthy);
    CHECK(got.why == util::cat("http 200 from 127.0.0.1:", port, "/health"));
    CHECK_FALSE(connects_from_host(port));
}

TEST_CASE("exec check: at the timeout the command inside the container is killed too, not only berth exec") {
    std::string berth = built_berth();
    if (geteuid() != 0 || !static_busybox() || berth.empty() || getenv("BERTH_EMULATED")) {
        WARN("skipped: needs root, a static busybox, the built berth and a real kernel (not qemu-user)");
        return;
    }
    Loop l;
    TempDir d;
    Container c(d);
    pid_t init = c.create("execto", "exec /bin/busybox sleep 1000");
    c.start();
    std::vector<std::string> hung = {"/bin/busybox", "sleep", util::cat(getpid(), "1")};
    auto spec = spec_of(ota::HealthKind::Exec);
    spec.command = hung;
    spec.timeout_ms = 1000;
    spec.retries = 1;
    spec.interval_ms = 60000;
    svc::HealthTarget t;
    t.id = "execto";
    t.pid = init;
    t.state_root = c.root();
    t.berth_exe = berth;
    Reports r;
    auto m = start(l, spec, t, r);
    REQUIRE(l.run_until([&] { return !pids_running(hung).empty() || !r.got.empty(); }));
    REQUIRE(r.got.empty());  // the command runs in the container
    REQUIRE(l.run_until([&] { return !r.got.empty(); }));
    CHECK(r.got[0].why == "exec timed out after 1s");
    CHECK(l.run_until([&] { return pids_running(hung).empty(); }, 5000));
}

// ---- cost ----

namespace {

double cpu_ms(int who) {
    struct rusage u;
    getrusage(who, &u);
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

/// Runs `n` probes back to back; returns the CPU (ms) of this process and
/// of its reaped children per probe.
template <typename Counter>
std::pair<double, double> cost(Loop &l, const ota::HealthSpec &spec, const svc::HealthTarget &t, int n,
                               Counter probes) {
    Reports r;
    double self = cpu_ms(RUSAGE_SELF), children = cpu_ms(RUSAGE_CHILDREN);
    auto m = start(l, spec, t, r);
    REQUIRE(l.run_until([&] { return probes() >= n; }, 120000));
    m.reset();
    return {(cpu_ms(RUSAGE_SELF) - self) / n, (cpu_ms(RUSAGE_CHILDREN) - children) / n};
}

}  // namespace

TEST_CASE("probe cost: CPU per probe over 1000 probes", "[.bench]") {
    Loop l;
    Server srv(*l.loop, true);
    srv.serve();
    auto spec = spec_of(ota::HealthKind::Http, srv.port());
    spec.interval_ms = 0;
    auto http = cost(l, spec, {}, 1000, [&] { return srv.served; });
    WARN("http: " << http.first << " ms CPU per probe (this process, the in-process server's share included)");

    spec.kind = ota::HealthKind::Tcp;
    int accepted = srv.accepted;
    auto tcp = cost(l, spec, {}, 1000, [&] { return srv.accepted - accepted; });
    WARN("tcp: " << tcp.first << " ms CPU per probe (this process, the accept included)");

    svc::HealthTarget t;
    t.id = "x";
    t.berth_exe = "/bin/true";  // a berth exec that does nothing: the daemon's side of the cost
    spec = spec_of(ota::HealthKind::Exec);
    spec.command = {"true"};
    spec.interval_ms = 0;
    int reaped = l.reaped;
    auto exec = cost(l, spec, t, 1000, [&] { return l.reaped - reaped; });
    WARN("exec: " << exec.first << " ms CPU per probe in this process, " << exec.second << " ms in the child");
}

TEST_CASE("probe cost in a container: http through its network namespace, exec through berth", "[.bench]") {
    const char *berth = getenv("BERTH_EXE");  // the built berth, for the exec probes
    if (geteuid() != 0 || !static_busybox() || !berth || getenv("BERTH_EMULATED")) {
        WARN("skipped: needs root, a static busybox, BERTH_EXE and a real kernel (not qemu-user)");
        return;
    }
    Loop l;
    TempDir d;
    Container c(d);
    Server reserved(*l.loop, false);
    uint16_t port = reserved.port();
    pid_t init = c.create("bench", util::cat("exec /bin/busybox httpd -f -p 127.0.0.1:", port, " -h /www"));
    REQUIRE(svc::loopback_up_in(init));
    c.start();
    svc::HealthTarget t;
    t.id = "bench";
    t.pid = init;
    t.state_root = c.root();
    t.berth_exe = berth;

    auto spec = spec_of(ota::HealthKind::Http, port);
    spec.interval_ms = 0;
    spec.start_period_ms = 10000;
    int probes = 0;
    // A pass is reported once per monitor: 200 monitors, each reporting its
    // first probe (the monitor's own setup is in the figure too).
    double self = cpu_ms(RUSAGE_SELF);
    for (int i = 0; i < 200; i++) {
        Reports r;
        auto m = start(l, spec, t, r);
        REQUIRE(l.run_until([&] { return !r.got.empty(); }, 15000));
        REQUIRE(r.got[0].healthy);
        ++probes;
    }
    WARN("http in the container's netns: " << (cpu_ms(RUSAGE_SELF) - self) / probes
                                           << " ms CPU per probe in this process");

    spec = spec_of(ota::HealthKind::Exec);
    spec.command = {"/bin/busybox", "true"};
    spec.timeout_ms = 10000;
    double self0 = cpu_ms(RUSAGE_SELF), children0 = cpu_ms(RUSAGE_CHILDREN);
    int64_t t0 = util::monotonic_ms();
    int n = 50;
    for (int i = 0; i < n; i++) {
        Reports r;
        auto m = start(l, spec, t, r);
        REQUIRE(l.run_until([&] { return !r.got.empty(); }, 15000));
        INFO(r.got[0].why);
        REQUIRE(r.got[0].healthy);
    }
    WARN("exec through berth: " << (cpu_ms(RUSAGE_SELF) - self0) / n << " ms CPU per probe in this process, "
                                << (cpu_ms(RUSAGE_CHILDREN) - children0) / n << " ms in berth exec, "
                                << (util::monotonic_ms() - t0) / n << " ms wall");
}

TEST_CASE("ready check: the same init, seen again after a daemon restart, is healthy without a second READY=1") {
    ReadyCheck c;
    c.t.pid = getpid();
    c.spec.timeout_ms = 60000;
    auto m = c.start();
    notify(c.t.notify_dir, "READY=1");
    REQUIRE(c.l.run_until([&] { return !c.r.got.empty(); }));
    REQUIRE(c.r.got[0].healthy);
    m.reset();  // the daemon goes; the container stays
    c.r.got.clear();
    auto again = c.start();
    REQUIRE(c.l.run_until([&] { return !c.r.got.empty(); }, 2000));
    CHECK(c.r.got[0].healthy);
    CHECK(c.r.got[0].why == "READY=1 (before a daemon restart)");
}

TEST_CASE("ready check: another init of the same container is not taken as ready by the first one's READY=1") {
    ReadyCheck c;
    c.t.pid = getpid();
    c.spec.timeout_ms = 60000;
    auto m = c.start();
    notify(c.t.notify_dir, "READY=1");
    REQUIRE(c.l.run_until([&] { return !c.r.got.empty(); }));
    m.reset();
    c.r.got.clear();
    c.t.pid = getppid();  // a restarted container: a new init
    auto again = c.start();
    c.l.run_until([&] { return !c.r.got.empty(); }, 300);
    CHECK(c.r.got.empty());
}
