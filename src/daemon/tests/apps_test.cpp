// svc::SupervisorApps::in_child (daemon/apps.hpp), the daemon's worker
// children (staging, the system image's install): the child's priority
// against the daemon's, and the loop's timers (where the watchdog is fed)
// kept on time while a child burns the one CPU they share.
#include <catch2/catch.hpp>

#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>

#include "daemon/apps.hpp"
#include "daemon/reaper.hpp"
#include "daemon/supervisor.hpp"
#include "util/event_loop.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace {

/// A loop, a reaper on SIGCHLD, and SupervisorApps over a Supervisor on a
/// temporary state root; removed at the end.
struct Fixture {
    Fixture() {
        char tmpl[] = "/tmp/berth-apps.XXXXXX";
        dir = ::mkdtemp(tmpl);
        cfg.state_root = dir + "/state";
        cfg.run_dir = dir + "/run";
        cfg.log_dir = dir + "/logs";
        REQUIRE(util::mkdir_p(cfg.state_root));
        REQUIRE(util::mkdir_p(cfg.log_dir));
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        REQUIRE(::sigprocmask(SIG_BLOCK, &chld, &old_mask) == 0);
        sigfd.reset(::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK));
        REQUIRE(sigfd);
        auto l = util::EventLoop::create();
        REQUIRE(l);
        loop = std::move(*l);
        REQUIRE(loop->watch(sigfd.get(), EPOLLIN, [this](uint32_t) {
            struct signalfd_siginfo si;
            while (::read(sigfd.get(), &si, sizeof si) == sizeof si) {
            }
            reaper.reap();
        }));
        sup = std::make_unique<svc::Supervisor>(*loop, reaper, cfg);
        stage.root = util::DeviceRoot(dir + "/root");
        stage.run_dir = cfg.run_dir;
        apps = std::make_unique<svc::SupervisorApps>(*loop, reaper, *sup, stage, cfg.state_root);
    }
    ~Fixture() {
        apps.reset();
        sup.reset();
        reaper.reap();
        loop->unwatch(sigfd.get());
        ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
        (void)util::remove_tree(dir);
    }

    std::string dir;
    svc::SupervisorConfig cfg;
    ota::StageContext stage;
    std::unique_ptr<util::EventLoop> loop;
    svc::Reaper reaper;
    std::unique_ptr<svc::Supervisor> sup;
    std::unique_ptr<svc::SupervisorApps> apps;
    util::UniqueFd sigfd;
    sigset_t old_mask;
};

}  // namespace

TEST_CASE("a worker child runs nicer than the daemon", "[apps]") {
    Fixture f;
    errno = 0;
    int ours = ::getpriority(PRIO_PROCESS, 0);
    REQUIRE(errno == 0);
    auto st = f.apps->in_child("priority probe", [&]() -> util::Status {
        errno = 0;
        int theirs = ::getpriority(PRIO_PROCESS, 0);
        if (errno != 0) return util::Error::from_errno("getpriority");
        int want = std::min(ours + svc::kWorkerNice, 19);
        if (theirs != want) return util::Error::msg(util::cat("the child's nice is ", theirs, ", not ", want));
        return util::ok();
    });
    INFO((st ? std::string("ok") : st.error().message()));
    CHECK(st.ok());
}

TEST_CASE("the loop's timers keep time while a worker child burns the CPU they share", "[apps]") {
    // One CPU for both, as on a one-core board: a timer every 200 ms for
    // the 3 s the child spins; none may be more than 500 ms late.
    cpu_set_t before, one;
    REQUIRE(::sched_getaffinity(0, sizeof before, &before) == 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &before)) {
            CPU_SET(c, &one);
            break;
        }
    REQUIRE(::sched_setaffinity(0, sizeof one, &one) == 0);
    Fixture f;
    int64_t worst = 0, due = util::monotonic_ms() + 200;
    std::function<void()> tick = [&] {
        worst = std::max(worst, util::monotonic_ms() - due);
        due = util::monotonic_ms() + 200;
        f.loop->after(200, tick);
    };
    auto timer = f.loop->after(200, tick);
    (void)timer;
    auto st = f.apps->in_child("spinner", []() -> util::Status {
        int64_t end = util::monotonic_ms() + 3000;
        volatile uint64_t n = 0;
        while (util::monotonic_ms() < end) n = n + 1;
        return util::ok();
    });
    ::sched_setaffinity(0, sizeof before, &before);
    REQUIRE(st.ok());
    INFO("the latest timer was " << worst << " ms late");
    CHECK(worst < 500);
}
