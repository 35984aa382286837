#include <catch2/catch.hpp>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "tmpdir.hpp"
#include "util/file.hpp"
#include "util/process.hpp"
#include "util/syscalls.hpp"

namespace {

std::string run_capture(const std::vector<std::string> &argv) {
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    util::UniqueFd r(p[0]), w(p[1]);
    util::SpawnOptions o;
    o.stdout_fd = w.get();
    auto child = util::spawn(argv, o);
    REQUIRE(child.ok());
    w.reset();
    auto out = util::read_all(r.get()).value();
    REQUIRE(child->wait().value() == 0);
    return out;
}

}  // namespace

TEST_CASE("spawned children get no leaked fds") {
    for (bool fallback : {false, true}) {
        if (fallback) util::sys::disable("close_range");
        // Not O_CLOEXEC: only spawn's cleanup keeps it out of the child.
        int leak = 57;
        REQUIRE(dup2(0, leak) == leak);
        auto out = run_capture({"/bin/sh", "-c", "ls /proc/self/fd"});
        close(leak);
        util::sys::enable("close_range");
        CHECK(out.find(std::to_string(leak) + "\n") == std::string::npos);
    }
}

TEST_CASE("spawned children get an empty signal mask and default handlers") {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    signal(SIGUSR1, SIG_IGN);
    auto out = run_capture({"/bin/sh", "-c", "grep -E '^(SigBlk|SigIgn)' /proc/self/status"});
    sigprocmask(SIG_SETMASK, &old, nullptr);
    signal(SIGUSR1, SIG_DFL);
    CHECK(out.find("SigBlk:\t0000000000000000") != std::string::npos);
    CHECK(out.find("SigIgn:\t0000000000000000") != std::string::npos);
}

TEST_CASE("exit codes and exec failures") {
    CHECK(util::run_process({"/bin/sh", "-c", "exit 3"}).value() == 3);
    CHECK(util::run_process({"/bin/sh", "-c", "kill -9 $$"}).value() == 137);
    auto missing = util::spawn({"/nonexistent/prog"});
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == ENOENT);
    CHECK(missing.error().message() == "exec `/nonexistent/prog`: No such file or directory");
}

TEST_CASE("keep_fds passes chosen fds through") {
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    util::UniqueFd r(p[0]), w(p[1]);
    util::SpawnOptions o;
    o.keep_fds = {w.get()};
    auto child = util::spawn({"/bin/sh", "-c", "echo through >&" + std::to_string(w.get())}, o);
    REQUIRE(child.ok());
    w.reset();
    CHECK(util::read_all(r.get()).value() == "through\n");
    CHECK(child->wait().value() == 0);
}
