// util::lock_file / lock_busy: the one flock loop.
#include <catch2/catch.hpp>
#include <fcntl.h>

#include "tmpdir.hpp"
#include "util/flock.hpp"

TEST_CASE("lock_file holds the lock while its fd is open") {
    TempDir t;
    CHECK_FALSE(util::lock_busy(t / "lock"));  // missing: nobody holds it
    {
        auto fd = util::lock_file(t / "lock", LOCK_EX);
        REQUIRE(fd.ok());
        CHECK(util::lock_busy(t / "lock"));
    }
    CHECK_FALSE(util::lock_busy(t / "lock"));
}

TEST_CASE("shared locks coexist and exclude an exclusive one") {
    TempDir t;
    auto a = util::lock_file(t / "lock", LOCK_SH);
    auto b = util::lock_file(t / "lock", LOCK_SH);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(util::lock_busy(t / "lock"));
    auto c = util::open_file(t / "lock", O_RDWR).value();
    auto st = util::flock_fd(c.get(), LOCK_EX | LOCK_NB);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == EWOULDBLOCK);
}

TEST_CASE("lock_file names the path it could not open") {
    TempDir t;
    auto r = util::lock_file(t / "missing/lock", LOCK_EX);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("missing/lock") != std::string::npos);
}
