// svc::Reaper: an expected child's exit goes to its owner; an orphan is
// reaped and counted.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/reaper.hpp"

namespace {
pid_t fork_exit(int code) {
    pid_t p = fork();
    if (p == 0) _exit(code);
    REQUIRE(p > 0);
    return p;
}
void wait_until_zombie(pid_t p) {
    siginfo_t si = {};
    REQUIRE(waitid(P_PID, p, &si, WEXITED | WNOWAIT) == 0);
}
}  // namespace

TEST_CASE("reaper hands an expected child's exit code to its owner") {
    svc::Reaper r;
    pid_t p = fork_exit(7);
    int got = -1;
    r.expect(p, [&](int code) { got = code; });
    wait_until_zombie(p);
    CHECK(r.reap() == 1);
    CHECK(got == 7);
    CHECK_FALSE(r.expecting(p));
}

TEST_CASE("reaper reports death by signal as 128 plus the signal") {
    svc::Reaper r;
    pid_t p = fork();
    if (p == 0) {
        pause();
        _exit(0);
    }
    int got = -1;
    r.expect(p, [&](int code) { got = code; });
    REQUIRE(kill(p, SIGKILL) == 0);
    wait_until_zombie(p);
    r.reap();
    CHECK(got == 128 + SIGKILL);
}

TEST_CASE("reaper reaps an orphan nobody expects") {
    svc::Reaper r;
    pid_t p = fork_exit(0);
    wait_until_zombie(p);
    CHECK(r.reap() == 1);
    CHECK(r.orphans() == 1);
    CHECK(waitpid(p, nullptr, WNOHANG) == -1);  // gone
}
