// berth-pid1-probe: the daemon test's stand-in PID 1 for the parts of PID 1
// that need no supervisor (qemu-tests/daemon_test.py): it calls
// svc::bring_up_system, sends its log to /dev/kmsg, runs the guest's check
// script (qemu-tests/daemon_init.sh) and then, as the script's exit code
// says, exercises the watchdog: feeds it and then hangs (the machine must be
// reset by it), or feeds it, disarms it, outlives its timeout and powers
// the machine off through svc::power_down. Every fact the test judges is
// printed by the script (mount table, hostname, lo, the disk), not here;
// this prints only what it is about to do.
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "daemon/init_system.hpp"
#include "daemon/watchdog.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace {

constexpr int kHangExit = 10;    // the script's "test the hang" answer
constexpr int kDisarmExit = 20;  // "test the clean shutdown"
constexpr int kTimeout = 4;      // seconds: the watchdog's timeout

void say(const std::string &what) { (void)util::write_all(1, util::cat("BERTH-PROBE ", what, "\n")); }

void sleep_s(int s) {
    struct timespec ts = {s, 0};
    while (nanosleep(&ts, &ts) < 0) {
    }
}

/// Runs the check script with `phase`; reaps every orphan meanwhile, as
/// PID 1 must. Returns its exit code.
int run_script(const char *phase) {
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/busybox", "sh", "/daemon_init.sh", phase, nullptr);
        _exit(127);
    }
    for (;;) {
        int status = 0;
        pid_t got = wait(&status);
        if (got == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (got < 0 && errno != EINTR) return 126;
    }
}

[[noreturn]] void off(svc::PowerAction a) {
    say("power-down");
    svc::power_down(a);
}

}  // namespace

int main() {
    svc::SystemOptions o;
    o.hostname = "berth-pid1";
    auto st = svc::bring_up_system(o);
    say(st ? "bring-up ok" : util::cat("bring-up failed: ", st.error().message()));
    if (auto k = svc::log_to_kmsg(); !k) say(util::cat("kmsg failed: ", k.error().message()));
    util::log::set_level(util::log::Level::Info);
    util::log::info("pid1 probe: the system is up");
    // Again: the second call must find everything mounted (the script
    // compares the mount table with this).
    if (auto again = svc::bring_up_system(o); !again) say(util::cat("second bring-up failed: ", again.error().message()));

    int phase = run_script("check");
    if (phase != kHangExit && phase != kDisarmExit) {
        say(util::cat("script answered ", phase, ": powering off"));
        off(svc::PowerAction::PowerOff);
    }
    auto wd = svc::Watchdog::open("/dev/watchdog", kTimeout);
    if (!wd) {
        say(util::cat("watchdog failed: ", wd.error().message()));
        off(svc::PowerAction::PowerOff);
    }
    say(util::cat("watchdog armed timeout=", wd->timeout()));
    // Fed for twice its timeout: feeding keeps the machine up.
    for (int i = 0; i < 2 * wd->timeout(); i++) {
        if (auto f = wd->feed(); !f) say(util::cat("feed failed: ", f.error().message()));
        sleep_s(1);
    }
    say("fed for twice the timeout");
    if (phase == kHangExit) {
        say("hang");
        for (;;) sleep_s(60);  // no feeding: the watchdog resets the machine
    }
    if (auto d = wd->disarm(); !d) say(util::cat("disarm failed: ", d.error().message()));
    say("disarmed");
    sleep_s(3 * kTimeout);
    say("outlived the timeout disarmed");
    run_script("final");
    off(svc::PowerAction::PowerOff);
}
