// Dir and list_dir: directory streams that never leak their fd.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <unistd.h>

#include "tmpdir.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"

namespace {

/// Open fds of this process (the listing's own fd included, the same every time).
size_t open_fds() { return util::list_dir("/proc/self/fd").value().size(); }

}  // namespace

TEST_CASE("list_dir names every entry but . and .., sorted") {
    TempDir t;
    for (const char *n : {"b", "a", "c"}) REQUIRE(util::atomic_write_file(t / n, "x").ok());
    REQUIRE(util::mkdir_p(t / "d").ok());
    CHECK(util::list_dir(t.path).value() == std::vector<std::string>{"a", "b", "c", "d"});
    auto fd = util::open_file(t.path, O_RDONLY | O_DIRECTORY).value();
    CHECK(util::list_dir_fd(fd.get()).value() == std::vector<std::string>{"a", "b", "c", "d"});
}

TEST_CASE("list_dir of a missing directory fails with ENOENT and names it") {
    TempDir t;
    auto r = util::list_dir(t / "missing");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ENOENT);
    CHECK(r.error().message().find("missing") != std::string::npos);
}

TEST_CASE("Dir::of_fd on a file fails without leaking the dup") {
    TempDir t;
    REQUIRE(util::atomic_write_file(t / "file", "x").ok());
    auto file = util::open_file(t / "file", O_RDONLY).value();
    size_t before = open_fds();
    for (int i = 0; i < 50; i++) {
        auto d = util::Dir::of_fd(file.get());
        REQUIRE_FALSE(d.ok());
        CHECK(d.error().code == ENOTDIR);
    }
    CHECK(open_fds() == before);
}

TEST_CASE("Dir closes its stream and dup when destroyed; the caller's fd stays open") {
    TempDir t;
    REQUIRE(util::atomic_write_file(t / "f", "x").ok());
    auto fd = util::open_file(t.path, O_RDONLY | O_DIRECTORY).value();
    size_t before = open_fds();
    for (int i = 0; i < 50; i++) {
        auto d = util::Dir::of_fd(fd.get());
        REQUIRE(d.ok());
        CHECK(fcntl(d->fd(), F_GETFD) & FD_CLOEXEC);
        auto e = d->next();
        REQUIRE(e.ok());
        REQUIRE(*e != nullptr);
        CHECK(std::string((*e)->d_name) == "f");
    }
    CHECK(open_fds() == before);
    CHECK(fcntl(fd.get(), F_GETFD) >= 0);
}

TEST_CASE("Dir::of_fd reads from the first entry even after the fd was read") {
    TempDir t;
    REQUIRE(util::atomic_write_file(t / "only", "x").ok());
    auto fd = util::open_file(t.path, O_RDONLY | O_DIRECTORY).value();
    CHECK(util::list_dir_fd(fd.get()).value().size() == 1);
    CHECK(util::list_dir_fd(fd.get()).value().size() == 1);  // the shared offset was at the end
}
