// AtomicFile: the streaming crash-safe writer every persistent file goes through.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tmpdir.hpp"
#include "util/dir.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"

namespace {

std::vector<std::string> names(const std::string &dir) { return util::list_dir(dir).value(); }

const char *const kSteps[] = {"atomic_write.create", "atomic_write.write", "atomic_write.fsync", "atomic_write.rename",
                              "atomic_write.dirsync"};

/// Writes "new content" to `path` in two streamed pieces.
util::Status stream_new(const std::string &path) {
    auto f = TRY(util::AtomicFile::create(path, 0600));
    TRY(f.write("new "));
    TRY(f.write("content"));
    return f.commit();
}

/// A directory whose file `state` holds "old".
struct OldState {
    TempDir t;
    std::string path = t / "state";
    OldState() { REQUIRE(util::atomic_write_file(path, "old").ok()); }
};

}  // namespace

TEST_CASE("AtomicFile commit makes the target with the streamed content and mode") {
    TempDir t;
    REQUIRE(stream_new(t / "state").ok());
    CHECK(*util::read_file(t / "state") == "new content");
    struct stat st;
    REQUIRE(stat((t / "state").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(names(t.path) == std::vector<std::string>{"state"});
}

TEST_CASE("AtomicFile destroyed without commit leaves no temporary and no target") {
    TempDir t;
    {
        auto f = util::AtomicFile::create(t / "state");
        REQUIRE(f.ok());
        REQUIRE(f->write("half").ok());
        CHECK(names(t.path).size() == 1);  // the temporary exists meanwhile
    }
    CHECK(names(t.path).empty());
}

TEST_CASE("AtomicFile destroyed without commit keeps the old content") {
    TempDir t;
    REQUIRE(util::atomic_write_file(t / "state", "old").ok());
    {
        auto f = util::AtomicFile::create(t / "state");
        REQUIRE(f.ok());
        REQUIRE(f->write("new").ok());
    }
    CHECK(*util::read_file(t / "state") == "old");
    CHECK(names(t.path) == std::vector<std::string>{"state"});
}

TEST_CASE("AtomicFile: an error at any step leaves the old or the new content and no temporary") {
    for (const char *step : kSteps) {
        DYNAMIC_SECTION(step) {
            OldState o;
            util::failpoint_arm(step, util::FailAction::Error);
            auto st = stream_new(o.path);
            util::failpoint_clear();
            REQUIRE_FALSE(st.ok());
            CHECK(st.error().message().find(step) != std::string::npos);
            // Only a failed directory sync comes after the rename.
            std::string want = std::string(step) == "atomic_write.dirsync" ? "new content" : "old";
            CHECK(*util::read_file(o.path) == want);
            CHECK(names(o.t.path) == std::vector<std::string>{"state"});
        }
    }
}

TEST_CASE("AtomicFile: a crash at any step leaves the old or the new content") {
    for (const char *step : kSteps) {
        DYNAMIC_SECTION(step) {
            OldState o;
            pid_t pid = fork();
            if (pid == 0) {
                util::failpoint_arm(step, util::FailAction::Crash);
                (void)stream_new(o.path);
                _exit(0);
            }
            int status = 0;
            REQUIRE(waitpid(pid, &status, 0) == pid);
            CHECK(WIFSIGNALED(status));
            auto content = *util::read_file(o.path);
            CHECK((content == "old" || content == "new content"));
        }
    }
}

TEST_CASE("AtomicFile keeps its own directory fd: the caller's may close before commit") {
    TempDir t;
    auto dir = util::open_file(t.path, O_RDONLY | O_DIRECTORY);
    REQUIRE(dir.ok());
    auto f = util::AtomicFile::create_at(dir->get(), "state");
    REQUIRE(f.ok());
    dir->reset();
    REQUIRE(f->write("x").ok());
    REQUIRE(f->commit().ok());
    CHECK(*util::read_file(t / "state") == "x");
}

TEST_CASE("AtomicFile commits once") {
    TempDir t;
    auto f = util::AtomicFile::create(t / "state");
    REQUIRE(f.ok());
    REQUIRE(f->commit().ok());
    CHECK_FALSE(f->commit().ok());
    CHECK(util::path_exists(t / "state"));
}

TEST_CASE("AtomicFile moved from leaves the temporary to the new owner") {
    TempDir t;
    auto f = util::AtomicFile::create(t / "state");
    REQUIRE(f.ok());
    util::AtomicFile g(std::move(*f));
    REQUIRE(g.write("moved").ok());
    REQUIRE(g.commit().ok());
    CHECK(*util::read_file(t / "state") == "moved");
}

TEST_CASE("a resumable AtomicFile survives its owner and resumes where it stopped") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "ingest").ok());
    REQUIRE(util::mkdir_p(t / "blobs").ok());
    auto in = util::open_file(t / "ingest", O_RDONLY | O_DIRECTORY).value();
    auto out = util::open_file(t / "blobs", O_RDONLY | O_DIRECTORY).value();
    {
        auto f = util::AtomicFile::resume_at(in.get(), "part", out.get(), "blob");
        REQUIRE(f.ok());
        REQUIRE(f->write("first ").ok());
    }
    CHECK(*util::read_file(t / "ingest/part") == "first ");
    auto f = util::AtomicFile::resume_at(in.get(), "part", out.get(), "blob");
    REQUIRE(f.ok());
    REQUIRE(lseek(f->fd(), 0, SEEK_END) == 6);
    REQUIRE(f->write("second").ok());
    REQUIRE(f->commit().ok());
    CHECK(*util::read_file(t / "blobs/blob") == "first second");
    CHECK(names(t / "ingest").empty());
}

TEST_CASE("a resumable AtomicFile is removed by discard") {
    TempDir t;
    auto dir = util::open_file(t.path, O_RDONLY | O_DIRECTORY).value();
    auto f = util::AtomicFile::resume_at(dir.get(), "part", dir.get(), "blob");
    REQUIRE(f.ok());
    REQUIRE(f->write("bad bytes").ok());
    f->discard();
    CHECK(names(t.path).empty());
}

TEST_CASE("rename_durably_at moves a finished directory into place") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / ".tmp-x/rootfs").ok());
    auto dir = util::open_file(t.path, O_RDONLY | O_DIRECTORY).value();
    REQUIRE(util::rename_durably_at(dir.get(), ".tmp-x", dir.get(), "x").ok());
    CHECK(util::path_exists(t / "x/rootfs"));
    util::failpoint_arm("atomic_write.rename", util::FailAction::Error);
    REQUIRE(util::mkdir_p(t / ".tmp-y").ok());
    CHECK_FALSE(util::rename_durably_at(dir.get(), ".tmp-y", dir.get(), "y").ok());
    util::failpoint_clear();
    CHECK_FALSE(util::path_exists(t / "y"));
}

namespace {

/// One boot of a device whose berth is PID 1: a process that is PID 1 of a
/// new PID namespace writes `path`; with `cut`, the power goes (the process
/// ends, nothing unlinked) after the temporary got its content. Returns
/// the init's exit code, 90 when the namespace cannot be made.
int boot_and_write(const std::string &path, bool cut) {
    pid_t helper = fork();
    if (helper == 0) {
        if (unshare(CLONE_NEWPID) < 0) _exit(90);
        pid_t init = fork();
        if (init == 0) {
            if (getpid() != 1) _exit(91);
            auto f = util::AtomicFile::create(path);
            if (!f || !f->write(cut ? "torn" : "whole")) _exit(1);
            if (cut) _exit(0);  // no commit, no destructor: as a power cut leaves it
            _exit(f->commit() ? 0 : 2);
        }
        int st = 0;
        waitpid(init, &st, 0);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 3);
    }
    int st = 0;
    waitpid(helper, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 4;
}

}  // namespace

TEST_CASE("AtomicFile: a temporary a power cut left behind does not stop the next boot's PID 1 from writing",
          "[root]") {
    // The same process (PID 1) on every boot, and the same steps before
    // the write: the old temporary's name comes again.
    TempDir t;
    int first = boot_and_write(t / "state.json", true);
    if (first == 90) {
        WARN("skipped: cannot make a PID namespace here");
        return;
    }
    REQUIRE(first == 0);
    REQUIRE(names(t.path).size() == 1);  // the cut's temporary
    CHECK(boot_and_write(t / "state.json", false) == 0);
    CHECK(util::read_file(t / "state.json").value_or("") == "whole");
}
