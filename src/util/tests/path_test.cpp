// The path resolver must never leave its root, with the kernel's openat2 and
// with the component walk used on kernels before 5.6. Every case runs twice.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir.hpp"
#include "util/file.hpp"
#include "util/path.hpp"
#include "util/syscalls.hpp"

namespace {

/// Builds root/ with an outside sibling holding a "secret".
struct Tree {
    TempDir t;
    std::string root = t / "root";
    util::UniqueFd rootfd;
    Tree() {
        util::mkdir_p(root + "/etc").value();
        util::mkdir_p(t / "outside").value();
        util::atomic_write_file(t / "outside/secret", "host").value();
        util::atomic_write_file(root + "/etc/secret", "inside").value();
        util::atomic_write_file(root + "/secret", "inside-root").value();
        rootfd = std::move(util::open_file(root, O_RDONLY | O_DIRECTORY).value());
    }
    void link(const std::string &target, const std::string &name) const {
        REQUIRE(symlink(target.c_str(), (root + "/" + name).c_str()) == 0);
    }
};

std::string read_fd(util::UniqueFd fd) { return util::read_all(fd.get()).value(); }

/// Runs the body with openat2 and with openat2 forced unavailable.
template <typename F>
void both_ways(F body) {
    SECTION("openat2") {
        util::sys::enable("openat2");
        if (!util::openat2_usable()) WARN("kernel lacks openat2; only the walk is tested");
        body();
    }
    SECTION("component walk (openat2 unavailable)") {
        util::sys::disable("openat2");
        REQUIRE_FALSE(util::openat2_usable());
        body();
        util::sys::enable("openat2");
    }
}

}  // namespace

TEST_CASE("open_in_root opens plain paths") {
    both_ways([] {
        Tree tr;
        CHECK(read_fd(util::open_in_root(tr.rootfd.get(), "etc/secret", O_RDONLY).value()) == "inside");
        CHECK(read_fd(util::open_in_root(tr.rootfd.get(), "/etc/secret", O_RDONLY).value()) == "inside");
        CHECK(read_fd(util::open_in_root(tr.rootfd.get(), "./etc/../etc/secret", O_RDONLY).value()) == "inside");
        auto missing = util::open_in_root(tr.rootfd.get(), "etc/nothing", O_RDONLY);
        REQUIRE_FALSE(missing.ok());
        CHECK(missing.error().code == ENOENT);
    });
}

TEST_CASE("`..` cannot climb out of the root") {
    both_ways([] {
        Tree tr;
        // In-root scope clamps at the root, as chroot does.
        CHECK(read_fd(util::open_in_root(tr.rootfd.get(), "../../etc/../secret", O_RDONLY).value()) == "inside-root");
        CHECK_FALSE(util::open_in_root(tr.rootfd.get(), "../outside/secret", O_RDONLY).ok());
        // Beneath scope refuses.
        auto r = util::open_in_root(tr.rootfd.get(), "../outside/secret", O_RDONLY, 0, util::Scope::Beneath);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == EXDEV);
    });
}

TEST_CASE("an absolute symlink resolves inside the root") {
    both_ways([] {
        Tree tr;
        tr.link(tr.t / "outside", "abs");  // points at the host's outside/ by its full path
        tr.link("/etc", "etclink");
        CHECK(read_fd(util::open_in_root(tr.rootfd.get(), "etclink/secret", O_RDONLY).value()) == "inside");
        auto r = util::open_in_root(tr.rootfd.get(), "abs/secret", O_RDONLY);
        CHECK_FALSE(r.ok());  // the host path does not exist inside the root
        auto b = util::open_in_root(tr.rootfd.get(), "etclink/secret", O_RDONLY, 0, util::Scope::Beneath);
        REQUIRE_FALSE(b.ok());
        CHECK(b.error().code == EXDEV);
    });
}

TEST_CASE("a relative symlink climbing out stays inside") {
    both_ways([] {
        Tree tr;
        tr.link("../../../outside", "rel");
        tr.link("../../secret", "etc/up");
        auto r = util::open_in_root(tr.rootfd.get(), "rel/secret", O_RDONLY);
        CHECK_FALSE(r.ok());
        CHECK(read_fd(util::open_in_root(tr.rootfd.get(), "etc/up", O_RDONLY).value()) == "inside-root");
        auto b = util::open_in_root(tr.rootfd.get(), "rel/secret", O_RDONLY, 0, util::Scope::Beneath);
        REQUIRE_FALSE(b.ok());
        CHECK(b.error().code == EXDEV);
    });
}

TEST_CASE("symlink loops end with ELOOP") {
    both_ways([] {
        Tree tr;
        tr.link("b", "a");
        tr.link("a", "b");
        tr.link("self/x", "self");
        auto r = util::open_in_root(tr.rootfd.get(), "a", O_RDONLY);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ELOOP);
        auto s = util::open_in_root(tr.rootfd.get(), "self", O_RDONLY);
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().code == ELOOP);
    });
}

TEST_CASE("O_NOFOLLOW on the last component does not follow it") {
    both_ways([] {
        Tree tr;
        tr.link("/etc/secret", "final");
        auto r = util::open_in_root(tr.rootfd.get(), "final", O_RDONLY | O_NOFOLLOW);
        CHECK_FALSE(r.ok());
        auto p = util::open_in_root(tr.rootfd.get(), "final", O_PATH | O_NOFOLLOW);
        REQUIRE(p.ok());
        struct stat st;
        REQUIRE(fstat(p->get(), &st) == 0);
        CHECK(S_ISLNK(st.st_mode));
    });
}

TEST_CASE("O_CREAT through a symlink creates inside the root") {
    both_ways([] {
        Tree tr;
        tr.link(tr.t / "outside/new", "planted");
        (void)util::open_in_root(tr.rootfd.get(), "planted", O_WRONLY | O_CREAT, 0644);
        // Refused (its parent does not exist inside the root); never created outside.
        CHECK_FALSE(util::path_exists(tr.t / "outside/new"));
    });
}

TEST_CASE("a path through a regular file is ENOTDIR") {
    both_ways([] {
        Tree tr;
        auto r = util::open_in_root(tr.rootfd.get(), "secret/x", O_RDONLY);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ENOTDIR);
    });
}

TEST_CASE("mkdir_all_in_root creates inside the root through hostile symlinks") {
    Tree tr;
    tr.link(tr.t / "outside", "abs");
    tr.link("../../outside", "rel");
    REQUIRE(util::mkdir_all_in_root(tr.rootfd.get(), "abs/made").ok());
    REQUIRE(util::mkdir_all_in_root(tr.rootfd.get(), "rel/made2").ok());
    REQUIRE(util::mkdir_all_in_root(tr.rootfd.get(), "a/b/c").ok());
    CHECK_FALSE(util::path_exists(tr.t / "outside/made"));
    CHECK_FALSE(util::path_exists(tr.t / "outside/made2"));
    CHECK(util::path_exists(tr.root + "/a/b/c"));
    CHECK(util::path_exists(tr.root + "/outside/made2"));
    auto b = util::mkdir_all_in_root(tr.rootfd.get(), "abs/x", 0755, util::Scope::Beneath);
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().code == EXDEV);
}
