// svc::Supervisor with real containers (busybox bundles in a temporary
// state root): exits seen and restarted per policy, the backoff, stop
// returning as soon as the container exited or SIGKILL after the grace,
// adoption by a new Supervisor, logs captured, rotated and not lost across
// a supervisor restart, the time from an exit to the restart decision.
// Needs root and a static busybox; skips otherwise. Every container,
// cgroup and file goes at the end of each case.
#include <catch2/catch.hpp>

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "daemon/logs.hpp"
#include "daemon/supervisor.hpp"
#include "ota/stage.hpp"
#include "runtime/container.hpp"
#include "runtime/tests/busybox_bundle.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace {

bool skip() {
    if (::geteuid() != 0 || !rt::testing::static_busybox()) {
        WARN("skipped: needs root and a static busybox");
        return true;
    }
    return false;
}

/// A loop, a reaper on SIGCHLD, a Supervisor on a temporary state root,
/// and busybox bundles; everything removed at the end.
class Fixture {
public:
    Fixture() {
        char tmpl[] = "/tmp/berth-sup.XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        ::chmod(dir_.c_str(), 0755);
        rootfs_ = dir_ + "/rootfs";
        rt::testing::make_busybox_rootfs(rootfs_);
        cfg.state_root = dir_ + "/state";
        cfg.run_dir = dir_ + "/run";
        cfg.log_dir = dir_ + "/logs";

        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        REQUIRE(::sigprocmask(SIG_BLOCK, &chld, &old_mask_) == 0);
        sigfd_.reset(::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK));
        REQUIRE(sigfd_);
        auto l = util::EventLoop::create();
        REQUIRE(l);
        loop = std::move(*l);
        REQUIRE(loop->watch(sigfd_.get(), EPOLLIN, [this](uint32_t) {
            struct signalfd_siginfo si;
            while (::read(sigfd_.get(), &si, sizeof si) == sizeof si) {
            }
            last_sigchld_ms = util::monotonic_ms();
            reaper.reap();
        }));
        new_supervisor();
    }
    ~Fixture() {
        sup.reset();
        for (const auto &id : ids_) (void)rt::delete_container(cfg.state_root, id, true);
        reaper.reap();
        loop->unwatch(sigfd_.get());
        ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
        (void)util::remove_tree(dir_);
    }

    void new_supervisor() {
        sup.reset();
        sup = std::make_unique<svc::Supervisor>(*loop, reaper, cfg);
        sup->on_change([this](const svc::ServiceStatus &s) { changes.push_back(s); });
    }

    /// A bundle running `sh -c script`, and its spec.
    /// Without `pid_ns` the container shares our pid namespace.
    ota::ContainerSpec bundle(const std::string &name, const std::string &script, bool pid_ns = true) {
        std::string b = dir_ + "/" + name;
        REQUIRE(util::mkdir_p(b));
        REQUIRE(::symlink("../rootfs", (b + "/rootfs").c_str()) == 0);
        auto spec = rt::testing::sh_spec(script, util::cat("berth-sup-", ::getpid(), "-", name));
        spec["root"]["readonly"] = false;  // the scripts leave marks in /tmp
        if (!pid_ns) {
            auto kept = util::json::Value::array();
            for (auto &n : spec["linux"]["namespaces"])
                if (n["type"] != "pid") kept.push_back(n);
            spec["linux"]["namespaces"] = kept;
        }
        REQUIRE(util::atomic_write_file(b + "/config.json", util::json::dump(spec)));
        ids_.push_back(name);
        ota::ContainerSpec c;
        c.name = name;
        c.stop_grace_ms = 5000;
        return c;
    }
    void start(const ota::ContainerSpec &c) {
        auto r = sup->start(1, c, c.name, dir_ + "/" + c.name);
        INFO((r ? "" : r.error().message()));
        REQUIRE(r);
    }

    /// bundle() with `policy` and `grace_ms`, started.
    ota::ContainerSpec run(const std::string &name, const std::string &script,
                           ota::RestartPolicy::Kind policy = ota::RestartPolicy::No, int64_t grace_ms = 5000) {
        auto c = bundle(name, script);
        c.restart.kind = policy;
        c.stop_grace_ms = grace_ms;
        start(c);
        return c;
    }

    std::optional<svc::ServiceStatus> status(const std::string &id) const {
        for (auto &s : sup->status())
            if (s.id == id) return s;
        return std::nullopt;
    }
    /// Turns the loop until `pred` holds or `ms` pass; returns pred().
    template <typename P> bool run_until(P pred, int64_t ms = 10000) {
        const int64_t end = util::monotonic_ms() + ms;
        while (!pred() && util::monotonic_ms() < end) REQUIRE(loop->run_once(50));
        return pred();
    }
    /// Turns the loop until `id` has exited.
    void wait_exited(const std::string &id) {
        REQUIRE(run_until([&] { return status(id)->health == svc::Health::Exited; }));
    }
    /// Turns the loop for `ms`: for "nothing more happens" checks.
    void run_for(int64_t ms) {
        run_until([] { return false; }, ms);
    }

    const std::string &rootfs() const { return rootfs_; }

    svc::SupervisorConfig cfg;
    std::unique_ptr<util::EventLoop> loop;
    svc::Reaper reaper;
    std::unique_ptr<svc::Supervisor> sup;
    std::vector<svc::ServiceStatus> changes;
    int64_t last_sigchld_ms = 0;

private:
    std::string dir_, rootfs_;
    std::vector<std::string> ids_;
    util::UniqueFd sigfd_;
    sigset_t old_mask_;
};

bool container_exists(const std::string &root, const std::string &id) {
    return static_cast<bool>(rt::container_state(root, id));
}

}  // namespace

TEST_CASE("an exited container is restarted under restart always") {
    if (skip()) return;
    Fixture f;
    auto c = f.run("always", "exit 3", ota::RestartPolicy::Always);
    REQUIRE(f.run_until([&] { return f.status("always")->restarts >= 2; }));
    auto s = *f.status("always");
    CHECK(s.last_exit == 3);
    bool saw_exit = false;
    for (auto &ch : f.changes) saw_exit = saw_exit || (ch.health == svc::Health::Exited && ch.why == "exited 3");
    CHECK(saw_exit);
    REQUIRE(f.sup->stop_and_wait({"always"}));
    CHECK_FALSE(container_exists(f.cfg.state_root, "always"));
}

TEST_CASE("on-failure:2 gives up after two restarts and reports crash looping") {
    if (skip()) return;
    Fixture f;
    auto c = f.bundle("onfail", "exit 1");
    c.restart.kind = ota::RestartPolicy::OnFailure;
    c.restart.max_retries = 2;
    f.start(c);
    REQUIRE(f.run_until([&] { return f.status("onfail")->crash_looping; }));
    auto s = *f.status("onfail");
    CHECK(s.restarts == 2);
    CHECK(s.health == svc::Health::Exited);
    CHECK(s.why.find("gave up after 2 restarts") != std::string::npos);
    f.run_for(1000);  // the next backoff would be ~400 ms
    CHECK(f.status("onfail")->restarts == 2);
    CHECK_FALSE(container_exists(f.cfg.state_root, "onfail"));
}

TEST_CASE("on-failure does not restart a container that exited 0") {
    if (skip()) return;
    Fixture f;
    auto c = f.run("clean", "exit 0", ota::RestartPolicy::OnFailure);
    f.wait_exited("clean");
    f.run_for(500);
    CHECK(f.status("clean")->restarts == 0);
    CHECK_FALSE(f.status("clean")->crash_looping);
}

TEST_CASE("restart no leaves a failed container down") {
    if (skip()) return;
    Fixture f;
    // Not pid 1 of its own namespace, which SIGKILL from inside cannot kill.
    auto c = f.bundle("norestart", "kill -9 $$", false);
    f.start(c);
    f.wait_exited("norestart");
    CHECK(f.status("norestart")->why == "killed by signal 9");
    f.run_for(500);
    CHECK(f.status("norestart")->restarts == 0);
    CHECK_FALSE(container_exists(f.cfg.state_root, "norestart"));
}

TEST_CASE("five failures within a minute mark a container crash looping") {
    if (skip()) return;
    Fixture f;
    auto c = f.run("looping", "exit 2", ota::RestartPolicy::Always);
    REQUIRE(f.run_until([&] { return f.status("looping")->crash_looping; }));
    CHECK(f.status("looping")->restarts == 4);  // the fifth failure
}

TEST_CASE("the restart backoff doubles and resets after 10 s up") {
    if (skip()) return;
    Fixture f;
    auto c = f.bundle("backoff", "if [ -e /tmp/long ]; then rm /tmp/long; sleep 10.5; fi; exit 1");
    c.restart.kind = ota::RestartPolicy::Always;
    // exit -> the next start, per restart
    std::vector<int64_t> delays;
    int64_t exited_at = 0;
    f.sup->on_change([&](const svc::ServiceStatus &s) {
        if (s.health == svc::Health::Exited) exited_at = s.since_ms;
        if (s.health == svc::Health::Starting && exited_at) delays.push_back(s.since_ms - exited_at);
    });
    f.start(c);
    REQUIRE(f.run_until([&] { return delays.size() >= 4; }, 20000));
    // 100, 200, 400, 800 ms, each ±20 %, plus the create's time (up to 300 ms on a loaded machine)
    for (size_t i = 0; i < 4; i++) {
        INFO("restart " << i << " after " << delays[i] << " ms");
        CHECK(delays[i] >= static_cast<int64_t>(80 << i));
        CHECK(delays[i] <= static_cast<int64_t>(120 << i) + 300);
    }
    REQUIRE(util::atomic_write_file(f.rootfs() + "/tmp/long", ""));
    // The run that found the file lasted 10.5 s: the next delay is 100 ms again.
    REQUIRE(f.run_until([&] { return !util::path_exists(f.rootfs() + "/tmp/long"); }, 10000));
    const size_t n = delays.size();
    REQUIRE(f.run_until([&] { return delays.size() > n; }, 20000));
    INFO("restart after the long run after " << delays[n] << " ms");
    CHECK(delays[n] <= 120 + 300);  // the next without the reset: 1600 ms ±20 %
    REQUIRE(f.sup->stop_and_wait({"backoff"}));
}

TEST_CASE("stop returns as soon as the container exits on the stop signal") {
    if (skip()) return;
    Fixture f;
    auto c = f.run("polite", "trap 'exit 0' TERM; echo up; while true; do sleep 0.05; done", ota::RestartPolicy::Always, 10000);
    REQUIRE(f.run_until([&] { return f.sup->logs().last("polite", 1).size() == 1; }));
    const int64_t t0 = util::monotonic_ms();
    REQUIRE(f.sup->stop_and_wait({"polite"}));
    const int64_t took = util::monotonic_ms() - t0;
    WARN("stop of a container exiting on TERM took " << took << " ms (grace 10000 ms)");
    CHECK(took < 2000);
    CHECK_FALSE(f.status("polite"));
    CHECK_FALSE(container_exists(f.cfg.state_root, "polite"));
}

TEST_CASE("a container ignoring the stop signal is killed after the grace") {
    if (skip()) return;
    Fixture f;
    auto c = f.run("stubborn", "trap '' TERM; echo up; while true; do sleep 0.05; done", ota::RestartPolicy::Always, 500);
    REQUIRE(f.run_until([&] { return f.sup->logs().last("stubborn", 1).size() == 1; }));
    const int64_t t0 = util::monotonic_ms();
    bool done = false;
    f.sup->stop("stubborn", [&](util::Status s) {
        CHECK(s);
        done = true;
    });
    REQUIRE(f.run_until([&] { return done; }));
    const int64_t took = util::monotonic_ms() - t0;
    CHECK(took >= 500);
    CHECK(took < 3000);
    CHECK_FALSE(container_exists(f.cfg.state_root, "stubborn"));
}

TEST_CASE("stop_and_wait stops each container in the order given") {
    if (skip()) return;
    Fixture f;
    auto a = f.bundle("first", "trap 'exit 0' TERM; while true; do sleep 0.05; done");
    auto b = f.bundle("second", "trap 'exit 0' TERM; while true; do sleep 0.05; done");
    f.start(a);
    f.start(b);
    std::vector<std::string> gone;
    f.sup->on_change([&](const svc::ServiceStatus &s) {
        if (s.health == svc::Health::Exited) gone.push_back(s.id);
    });
    REQUIRE(f.sup->stop_and_wait({"second", "first"}));
    CHECK(gone == std::vector<std::string>{"second", "first"});
    CHECK(f.sup->status().empty());
    CHECK_FALSE(container_exists(f.cfg.state_root, "first"));
    CHECK_FALSE(container_exists(f.cfg.state_root, "second"));
}

TEST_CASE("a container's leftover processes die with its init") {
    if (skip()) return;
    Fixture f;
    // Without a pid namespace nothing but the supervisor kills the sleeper.
    auto c = f.bundle("group", "sleep 1000 & echo $! > /tmp/sleeper; sleep 0.3; exit 0", false);
    f.start(c);
    f.wait_exited("group");
    auto pid = util::parse_int<pid_t>(util::trim(util::read_file(f.rootfs() + "/tmp/sleeper").value_or("")));
    REQUIRE(pid);
    // The sleeper was in the container's cgroup: killed with the init.
    CHECK(f.run_until([&] {
        f.reaper.reap();
        return ::kill(*pid, 0) != 0;
    }, 3000));
    CHECK_FALSE(container_exists(f.cfg.state_root, "group"));
}

TEST_CASE("a new supervisor adopts a container the last one left running") {
    if (skip()) return;
    Fixture f;
    auto c = f.run("adopted", "while true; do sleep 0.05; done", ota::RestartPolicy::Always, 300);
    const pid_t pid = f.status("adopted")->pid;
    REQUIRE(pid > 0);
    f.new_supervisor();  // the old one destroyed without stopping
    REQUIRE(container_exists(f.cfg.state_root, "adopted"));
    CHECK(rt::container_state(f.cfg.state_root, "adopted")->second == rt::Status::Running);
    f.start(c);
    CHECK(f.status("adopted")->pid == pid);
    // Its exit is seen through the pidfd (the code unknown: a failure), and it is restarted.
    REQUIRE(rt::kill_container(f.cfg.state_root, "adopted", SIGKILL, false));
    REQUIRE(f.run_until([&] {
        auto s = f.status("adopted");
        return s->restarts == 1 && s->pid > 0;
    }));
    CHECK(f.status("adopted")->pid != pid);
    bool unknown = false;
    for (auto &ch : f.changes) unknown = unknown || ch.why.find("code unknown") != std::string::npos;
    CHECK(unknown);
    REQUIRE(f.sup->stop_and_wait({"adopted"}));
}

TEST_CASE("a stopped container left behind is deleted and created anew") {
    if (skip()) return;
    Fixture f;
    auto c = f.run("stale", "while true; do sleep 0.05; done", ota::RestartPolicy::No, 300);
    const pid_t pid = f.status("stale")->pid;
    f.new_supervisor();
    REQUIRE(rt::kill_container(f.cfg.state_root, "stale", SIGKILL, false));
    REQUIRE(f.run_until([&] {
        auto st = rt::container_state(f.cfg.state_root, "stale");
        return st && st->second == rt::Status::Stopped;
    }));
    f.start(c);
    CHECK(f.status("stale")->pid != pid);
    CHECK(f.status("stale")->pid > 0);
    REQUIRE(f.sup->stop_and_wait({"stale"}));
}

TEST_CASE("a container whose delete was cut short (a state directory without state.json) is created anew") {
    if (skip()) return;
    Fixture f;
    auto c = f.bundle("halfgone", "while true; do sleep 0.05; done");
    // What a daemon killed in the middle of deleting the container leaves
    // (the runtime's delete removes state.json before the directory).
    REQUIRE(util::mkdir_p(f.cfg.state_root + "/halfgone/sub"));
    f.start(c);
    CHECK(f.status("halfgone")->pid > 0);
    REQUIRE(f.sup->stop_and_wait({"halfgone"}));
}

TEST_CASE("container output is captured into the log and rotated") {
    if (skip()) return;
    Fixture f;
    f.cfg.log_bytes_per_container = 8192;
    f.new_supervisor();
    auto c = f.bundle("chatty", "i=0; while [ $i -lt 400 ]; do echo \"line $i of some output\"; i=$((i+1)); done; "
                                "echo to-stderr >&2");
    f.start(c);
    f.wait_exited("chatty");
    auto last = f.sup->logs().last("chatty", 2);
    REQUIRE(last.size() == 2);
    CHECK(last[0].text == "line 399 of some output");
    CHECK(last[1].text == "to-stderr");
    std::string d = f.cfg.log_dir + "/chatty/";
    uint64_t total = 0;
    for (const char *n : {"log", "log.1", "log.2", "log.3"}) {
        struct stat st;
        REQUIRE(::stat((d + n).c_str(), &st) == 0);
        total += static_cast<uint64_t>(st.st_size);
    }
    CHECK(total <= 8192);
}

TEST_CASE("no log line is lost across a supervisor restart while the container writes") {
    if (skip()) return;
    Fixture f;
    auto c = f.run("writer", "i=0; while true; do echo \"n$i\"; i=$((i+1)); sleep 0.01; done", ota::RestartPolicy::No, 200);
    REQUIRE(f.run_until([&] { return f.sup->logs().last("writer", 20).size() == 20; }));
    f.sup.reset();  // the daemon goes away; the container keeps writing to `current`
    const std::string current = f.cfg.log_dir + "/writer/current";
    struct stat st0, st1;
    REQUIRE(::stat(current.c_str(), &st0) == 0);
    const int64_t deadline = util::monotonic_ms() + 5000;
    do {
        ::usleep(20000);
        REQUIRE(::stat(current.c_str(), &st1) == 0);
    } while (st1.st_size < st0.st_size + 200 && util::monotonic_ms() < deadline);
    f.new_supervisor();
    f.start(c);
    REQUIRE(f.run_until([&] { return f.sup->logs().last("writer", 40).size() == 40; }));
    REQUIRE(f.sup->stop_and_wait({"writer"}));
    auto all = f.sup->logs().last("writer", 1000000);
    REQUIRE(all.size() > 60);
    for (size_t i = 0; i < all.size(); i++) {
        INFO("line " << i);
        REQUIRE(all[i].text == util::cat("n", i));
    }
}

TEST_CASE("the restart is decided within 100 ms of the exit") {
    if (skip()) return;
    Fixture f;
    auto c = f.bundle("timing", "exit 1");
    c.restart.kind = ota::RestartPolicy::Always;
    std::vector<int64_t> ms;
    f.sup->on_change([&](const svc::ServiceStatus &s) {
        if (s.health == svc::Health::Exited) ms.push_back(util::monotonic_ms() - f.last_sigchld_ms);
    });
    struct rusage r0, r1;
    ::getrusage(RUSAGE_SELF, &r0);
    f.start(c);
    REQUIRE(f.run_until([&] { return ms.size() >= 5; }, 20000));
    ::getrusage(RUSAGE_SELF, &r1);
    auto cpu_ms = [](const struct rusage &r) {
        return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000.0 + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1000.0;
    };
    const double per_restart = (cpu_ms(r1) - cpu_ms(r0)) / static_cast<double>(ms.size());
    WARN("supervisor CPU per crash and restart: " << per_restart << " ms; at the 60 s backoff cap "
                                                  << per_restart / 600.0 << " % of a core");
    REQUIRE(f.sup->stop_and_wait({"timing"}));
    std::sort(ms.begin(), ms.end());
    WARN("SIGCHLD -> restart decided: p50 " << ms[ms.size() / 2] << " ms, max " << ms.back() << " ms over "
                                            << ms.size());
    CHECK(ms.back() < 100);
}

TEST_CASE("without a health check a container counts healthy once its start period passed") {
    if (skip()) return;
    Fixture f;
    auto c = f.bundle("period", "while true; do sleep 0.05; done");
    c.health.start_period_ms = 300;
    c.stop_grace_ms = 300;
    const int64_t t0 = util::monotonic_ms();
    f.start(c);
    CHECK(f.status("period")->health == svc::Health::Starting);
    REQUIRE(f.run_until([&] { return f.status("period")->health == svc::Health::Healthy; }));
    CHECK(util::monotonic_ms() - t0 >= 300);
    auto d = f.bundle("atonce", "while true; do sleep 0.05; done");
    d.stop_grace_ms = 300;
    f.start(d);
    CHECK(f.status("atonce")->health == svc::Health::Healthy);
    REQUIRE(f.sup->stop_and_wait({"atonce", "period"}));
}

TEST_CASE("stop during the restart backoff returns at once and cancels the restart") {
    if (skip()) return;
    Fixture f;
    auto c = f.run("waiting", "exit 1", ota::RestartPolicy::Always);
    f.wait_exited("waiting");
    bool done = false;
    f.sup->stop("waiting", [&](util::Status s) {
        CHECK(s);
        done = true;
    });
    CHECK(done);
    CHECK_FALSE(f.status("waiting"));
    f.run_for(500);
    CHECK_FALSE(container_exists(f.cfg.state_root, "waiting"));
    bool unknown_done = false;
    f.sup->stop("never-started", [&](util::Status s) { unknown_done = static_cast<bool>(s); });
    CHECK(unknown_done);
}

TEST_CASE("a container that cannot be created is refused and left nowhere") {
    if (skip()) return;
    Fixture f;
    auto c = f.bundle("broken", "true");
    REQUIRE(util::atomic_write_file(f.rootfs() + "/../broken/config.json", "{}"));
    auto r = f.sup->start(1, c, "broken", f.rootfs() + "/../broken");
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("broken") != std::string::npos);
    CHECK(f.sup->status().empty());
    CHECK_FALSE(container_exists(f.cfg.state_root, "broken"));
}

TEST_CASE("a passing health check makes the container healthy") {
    if (skip()) return;
    Fixture f;
    auto c = f.bundle("served", "echo ok > /tmp/index.html; exec httpd -f -p 8080 -h /tmp");
    c.health.kind = ota::HealthKind::Http;
    c.health.port = 8080;
    c.health.interval_ms = 100;
    c.health.timeout_ms = 500;
    c.stop_grace_ms = 300;
    f.start(c);
    CHECK(f.status("served")->health == svc::Health::Starting);
    REQUIRE(f.run_until([&] { return f.status("served")->health == svc::Health::Healthy; }));
    CHECK(f.status("served")->restarts == 0);
    REQUIRE(f.sup->stop_and_wait({"served"}));
}

TEST_CASE("an unhealthy container is restarted as a failure") {
    if (skip()) return;
    Fixture f;
    auto c = f.bundle("sick", "while true; do sleep 0.05; done");  // nothing listens on 8080
    c.restart.kind = ota::RestartPolicy::OnFailure;
    c.health.kind = ota::HealthKind::Tcp;
    c.health.port = 8080;
    c.health.interval_ms = 100;
    c.health.timeout_ms = 200;
    c.health.retries = 2;
    c.stop_grace_ms = 300;
    f.start(c);
    REQUIRE(f.run_until([&] { return f.status("sick")->restarts >= 1; }));
    bool unhealthy = false, exited = false;
    for (auto &ch : f.changes) {
        unhealthy = unhealthy || ch.health == svc::Health::Unhealthy;
        exited = exited || (ch.health == svc::Health::Exited && ch.why.starts_with("unhealthy: "));
    }
    CHECK(unhealthy);
    CHECK(exited);
    REQUIRE(f.sup->stop_and_wait({"sick"}));
}

TEST_CASE("memory the supervisor holds per running container") {
    if (skip()) return;
    Fixture f;
    const int n = 5;
    std::vector<ota::ContainerSpec> specs;
    for (int i = 0; i < n; i++) {
        specs.push_back(f.bundle(util::cat("idle", i), "echo started; while true; do sleep 1; done"));
        specs.back().stop_grace_ms = 300;
    }
    f.changes.shrink_to_fit();
    const size_t before = mallinfo2().uordblks;
    std::vector<std::string> ids;
    for (auto &c : specs) {
        f.start(c);
        ids.push_back(c.name);
    }
    f.run_for(300);  // the logs followed once or twice
    const size_t used = mallinfo2().uordblks - before - f.changes.capacity() * sizeof(svc::ServiceStatus);
    WARN("heap per supervised container (status, spec, log stream, loop entries): " << used / n << " bytes");
    CHECK(used / n < 16384);
    REQUIRE(f.sup->stop_and_wait(ids));
}

TEST_CASE("a ready check's socket is there when start returns, and READY=1 makes the container healthy") {
    if (skip()) return;
    Fixture f;
    // In our pid namespace, so this process may notify for it.
    auto c = f.bundle("ready", "while true; do sleep 0.05; done", false);
    c.health.kind = ota::HealthKind::Ready;
    c.health.timeout_ms = 10000;
    c.stop_grace_ms = 300;
    f.start(c);
    const std::string sock = ota::notify_dir(f.cfg.run_dir, "ready") + "/notify.sock";
    REQUIRE(util::path_exists(sock));
    CHECK(f.status("ready")->health == svc::Health::Starting);
    util::UniqueFd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(s);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    REQUIRE(sock.size() < sizeof a.sun_path);
    std::memcpy(a.sun_path, sock.c_str(), sock.size() + 1);
    REQUIRE(::sendto(s.get(), "READY=1", 7, 0, reinterpret_cast<struct sockaddr *>(&a), sizeof a) == 7);
    REQUIRE(f.run_until([&] { return f.status("ready")->health == svc::Health::Healthy; }));
    REQUIRE(f.sup->stop_and_wait({"ready"}));
}

TEST_CASE("a container with a private network starts with loopback up") {
    if (skip()) return;
    Fixture f;
    auto c = f.run("lo", "ip link show lo");
    f.wait_exited("lo");
    CHECK(f.status("lo")->last_exit == 0);
    auto lines = f.sup->logs().last("lo", 10);
    REQUIRE_FALSE(lines.empty());
    CHECK(lines[0].text.find("LOOPBACK,UP") != std::string::npos);
}

TEST_CASE("a container with network none keeps loopback down") {
    if (skip()) return;
    Fixture f;
    auto c = f.bundle("nolo", "ip link show lo");
    c.network = ota::NetworkMode::None;
    f.start(c);
    f.wait_exited("nolo");
    auto lines = f.sup->logs().last("nolo", 10);
    REQUIRE_FALSE(lines.empty());
    CHECK(lines[0].text.find("LOOPBACK,UP") == std::string::npos);
}
