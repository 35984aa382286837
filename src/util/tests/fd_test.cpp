#include <catch2/catch.hpp>
#include <fcntl.h>
#include <unistd.h>

#include "util/fd.hpp"

using util::UniqueFd;

namespace {
bool fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }
}  // namespace

TEST_CASE("UniqueFd closes on destruction") {
    int raw = open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(raw >= 0);
    {
        UniqueFd fd(raw);
        CHECK(fd.valid());
        CHECK(fd_open(raw));
    }
    CHECK_FALSE(fd_open(raw));
}

TEST_CASE("UniqueFd moves ownership and closes exactly once") {
    int raw = open("/dev/null", O_RDONLY | O_CLOEXEC);
    UniqueFd a(raw);
    UniqueFd b(std::move(a));
    CHECK_FALSE(a.valid());
    CHECK(b.get() == raw);
    UniqueFd c;
    c = std::move(b);
    CHECK_FALSE(b.valid());
    CHECK(c.get() == raw);
    c.reset();
    CHECK_FALSE(fd_open(raw));
    // The number is now free; a new fd may reuse it. The moved-from handles
    // must not close it a second time.
    int again = open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(again == raw);
    { UniqueFd d(std::move(a)); }
    CHECK(fd_open(again));
    close(again);
}

TEST_CASE("UniqueFd release gives up ownership") {
    int raw = open("/dev/null", O_RDONLY | O_CLOEXEC);
    {
        UniqueFd fd(raw);
        CHECK(fd.release() == raw);
        CHECK_FALSE(fd.valid());
    }
    CHECK(fd_open(raw));
    close(raw);
}

TEST_CASE("ScopeGuard runs unless dismissed") {
    int n = 0;
    { util::ScopeGuard g([&] { n++; }); }
    CHECK(n == 1);
    {
        util::ScopeGuard g([&] { n++; });
        g.dismiss();
    }
    CHECK(n == 1);
}
