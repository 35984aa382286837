#include <catch2/catch.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tmpdir.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"

namespace {

int count_entries(const std::string &dir) {
    int n = 0;
    DIR *d = opendir(dir.c_str());
    while (auto *e = readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") n++;
    closedir(d);
    return n;
}

}  // namespace

TEST_CASE("read_all and write_all round-trip through a pipe") {
    int p[2];
    REQUIRE(pipe(p) == 0);
    util::UniqueFd r(p[0]), w(p[1]);
    REQUIRE(util::write_all(w.get(), "hello").ok());
    w.reset();
    auto s = util::read_all(r.get());
    REQUIRE(s.ok());
    CHECK(*s == "hello");
}

TEST_CASE("read_all enforces its limit") {
    TempDir t;
    REQUIRE(util::atomic_write_file(t / "f", std::string(100, 'x')).ok());
    auto r = util::read_file(t / "f", 10);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == EFBIG);
}

TEST_CASE("atomic_write_file writes and replaces") {
    TempDir t;
    REQUIRE(util::atomic_write_file(t / "state", "one", 0600).ok());
    CHECK(*util::read_file(t / "state") == "one");
    struct stat st;
    REQUIRE(stat((t / "state").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(util::atomic_write_file(t / "state", "two").ok());
    CHECK(*util::read_file(t / "state") == "two");
    CHECK(count_entries(t.path) == 1);
}

TEST_CASE("atomic_write_file without fsync replaces the file and leaves no temporary") {
    TempDir t;
    for (const char *content : {"one", "two", "three"}) {
        REQUIRE(util::atomic_write_file(t / "state", content, 0600, util::Durability::ProcessCrash).ok());
        CHECK(*util::read_file(t / "state") == content);
        CHECK(count_entries(t.path) == 1);
    }
    struct stat st;
    REQUIRE(stat((t / "state").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("atomic_write_file without fsync does not replace a directory") {
    TempDir t;
    REQUIRE(mkdir((t / "state").c_str(), 0755) == 0);
    auto st = util::atomic_write_file(t / "state", "x", 0600, util::Durability::ProcessCrash);
    REQUIRE_FALSE(st.ok());
    struct stat sb;
    REQUIRE(stat((t / "state").c_str(), &sb) == 0);
    CHECK(S_ISDIR(sb.st_mode));
    CHECK(count_entries(t.path) == 1);  // no temporary left behind
}

TEST_CASE("rewrite_file_at replaces the file and reuses the displaced one as the next spare") {
    TempDir t;
    auto dir = util::open_file(t.path, O_RDONLY | O_DIRECTORY);
    REQUIRE(dir.ok());
    REQUIRE(util::rewrite_file_at(dir->get(), "state", ".spare", "one", 0600).ok());
    REQUIRE(util::rewrite_file_at(dir->get(), "state", ".spare", "two", 0600).ok());
    CHECK(*util::read_file(t / "state") == "two");
    struct stat two, spare;
    REQUIRE(stat((t / "state").c_str(), &two) == 0);
    REQUIRE(stat((t / ".spare").c_str(), &spare) == 0);
    REQUIRE(util::rewrite_file_at(dir->get(), "state", ".spare", "three", 0600).ok());
    struct stat three;
    REQUIRE(stat((t / "state").c_str(), &three) == 0);
    CHECK(three.st_ino == spare.st_ino);  // no new inode
    CHECK((three.st_mode & 0777) == 0600);
    CHECK(*util::read_file(t / "state") == "three");
    CHECK(count_entries(t.path) == 2);
}

TEST_CASE("atomic_write_file keeps the old content when any step fails") {
    const char *steps[] = {"atomic_write.create", "atomic_write.write", "atomic_write.fsync", "atomic_write.rename"};
    for (const char *step : steps) {
        DYNAMIC_SECTION(step) {
            TempDir t;
            REQUIRE(util::atomic_write_file(t / "state", "old").ok());
            util::failpoint_arm(step, util::FailAction::Error);
            auto st = util::atomic_write_file(t / "state", "new content");
            util::failpoint_clear();
            REQUIRE_FALSE(st.ok());
            CHECK(st.error().message().find(step) != std::string::npos);
            CHECK(*util::read_file(t / "state") == "old");
            CHECK(count_entries(t.path) == 1);  // no temporary left behind
        }
    }
}

TEST_CASE("atomic_write_file: a failed directory sync still leaves the new content") {
    TempDir t;
    REQUIRE(util::atomic_write_file(t / "state", "old").ok());
    util::failpoint_arm("atomic_write.dirsync", util::FailAction::Error);
    auto st = util::atomic_write_file(t / "state", "new");
    util::failpoint_clear();
    CHECK_FALSE(st.ok());
    CHECK(*util::read_file(t / "state") == "new");
    CHECK(count_entries(t.path) == 1);
}

TEST_CASE("atomic_write_file: a crash at any step leaves old or new, never a mix") {
    const char *steps[] = {"atomic_write.create", "atomic_write.write", "atomic_write.fsync", "atomic_write.rename",
                           "atomic_write.dirsync"};
    for (const char *step : steps) {
        TempDir t;
        REQUIRE(util::atomic_write_file(t / "state", "old").ok());
        pid_t pid = fork();
        if (pid == 0) {
            util::failpoint_arm(step, util::FailAction::Crash);
            (void)util::atomic_write_file(t / "state", "new");
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status));
        auto content = *util::read_file(t / "state");
        CHECK((content == "old" || content == "new"));
    }
}

TEST_CASE("atomic_write_file fails cleanly when the directory is missing") {
    TempDir t;
    REQUIRE(util::atomic_write_file(t / "state", "x").ok());
    CHECK_FALSE(util::atomic_write_file(t / "missing-dir/state", "x").ok());
}

TEST_CASE("atomic_symlink_at switches a pointer") {
    TempDir t;
    auto dir = util::open_file(t.path, O_RDONLY | O_DIRECTORY);
    REQUIRE(dir.ok());
    REQUIRE(util::atomic_symlink_at(dir->get(), "current", "rev-1").ok());
    REQUIRE(util::atomic_symlink_at(dir->get(), "current", "rev-2").ok());
    char buf[64] = {};
    REQUIRE(readlink((t / "current").c_str(), buf, sizeof buf - 1) > 0);
    CHECK(std::string(buf) == "rev-2");
}

TEST_CASE("mkdir_p and remove_tree") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "a/b/c").ok());
    REQUIRE(util::atomic_write_file(t / "a/b/c/f", "x").ok());
    REQUIRE(symlink("/etc", (t / "a/link").c_str()) == 0);
    REQUIRE(util::remove_tree(t / "a").ok());
    CHECK_FALSE(util::path_exists(t / "a"));
    CHECK(util::path_exists("/etc/passwd"));  // the symlink was removed, not followed
    CHECK(util::remove_tree(t / "absent").ok());
}

TEST_CASE("path helpers") {
    CHECK(util::dirname("/a/b/c") == "/a/b");
    CHECK(util::dirname("c") == ".");
    CHECK(util::dirname("/c") == "/");
    CHECK(util::basename("/a/b/c/") == "c");
    CHECK(util::path_join("/a/", "/b") == "/a/b");
}

TEST_CASE("move_durably moves a directory into another one, and names what it could not move") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "a/data").ok());
    REQUIRE(util::atomic_write_file(t / "a/data/f", "x").ok());
    REQUIRE(util::mkdir_p(t / "b").ok());
    REQUIRE(util::move_durably(t / "a/data", t / "b/data").ok());
    CHECK(*util::read_file(t / "b/data/f") == "x");
    CHECK_FALSE(util::path_exists(t / "a/data"));
    auto again = util::move_durably(t / "a/data", t / "b/other");
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().message().find("a/data") != std::string::npos);
}
