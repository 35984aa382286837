// util::Child: an owned child process is never dropped: destroyed or
// assigned over while it runs, it is killed and reaped.
#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/dir.hpp"
#include "util/process.hpp"

namespace {

/// True while `pid` exists (running or a zombie): kill(pid, 0) finds it.
bool exists(pid_t pid) { return ::kill(pid, 0) == 0; }

util::Child sleeper() {
    auto c = util::spawn({"/bin/sleep", "100"});
    REQUIRE(c.ok());
    return std::move(*c);
}

size_t open_fds() { return util::list_dir("/proc/self/fd").value().size(); }

}  // namespace

TEST_CASE("Child destroyed while running kills and reaps it") {
    pid_t pid;
    {
        util::Child c = sleeper();
        pid = c.pid();
        REQUIRE(exists(pid));
    }
    CHECK_FALSE(exists(pid));  // no zombie either: it was reaped
}

TEST_CASE("Child move-assigned onto a running Child kills and reaps the old one, keeps the new one") {
    util::Child a = sleeper();
    util::Child b = sleeper();
    pid_t old_pid = a.pid(), new_pid = b.pid();
    a = std::move(b);
    CHECK(a.pid() == new_pid);
    CHECK_FALSE(b.running());
    CHECK_FALSE(exists(old_pid));
    CHECK(exists(new_pid));
    REQUIRE(a.kill(SIGTERM).ok());
    CHECK(a.wait().value() == 128 + SIGTERM);
    CHECK_FALSE(exists(new_pid));
}

TEST_CASE("Child moved from no longer owns the pid") {
    util::Child a = sleeper();
    pid_t pid = a.pid();
    util::Child b(std::move(a));
    CHECK_FALSE(a.running());
    CHECK(b.pid() == pid);
    CHECK(exists(pid));
}

TEST_CASE("Child released survives its owner") {
    pid_t pid;
    {
        util::Child c = sleeper();
        pid = c.release();
    }
    CHECK(exists(pid));
    ::kill(pid, SIGKILL);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
}

TEST_CASE("Child that has exited and was waited for is left alone by its destructor") {
    util::Child c = std::move(*util::spawn({"/bin/true"}));
    CHECK(c.wait().value() == 0);
    CHECK_FALSE(c.running());
}

TEST_CASE("spawn leaks no fd when exec fails") {
    size_t before = open_fds();
    for (int i = 0; i < 20; i++) CHECK_FALSE(util::spawn({"/nonexistent/prog"}).ok());
    CHECK(open_fds() == before);
}
