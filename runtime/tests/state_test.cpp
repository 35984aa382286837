// Unit tests of runtime/state (files, ids, live status, pid reuse), the
// mountinfo parser, signal names, PATH lookup and the sealed berth-dmz.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "runtime/container.hpp"
#include "runtime/exe_protect.hpp"
#include "runtime/mounts.hpp"
#include "runtime/process_setup.hpp"
#include "runtime/state.hpp"
#include "util/strings.hpp"
#include "util/file.hpp"

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char t[] = "/tmp/berth-state-test.XXXXXX";
        path = mkdtemp(t);
    }
    ~TempDir() { (void)util::remove_tree(path); }
};

rt::State sample(const std::string &id) {
    rt::State st;
    st.id = id;
    st.pid = getpid();
    st.pid_start_time = rt::process_start_time(getpid()).value_or(0);
    st.bundle = "/b";
    st.rootfs = "/b/rootfs";
    st.created = util::rfc3339_now();
    st.status = rt::Status::Running;
    st.annotations = {{"k", "v"}};
    st.namespaces = {{"net", "/proc/1/ns/net"}};
    st.cgroup_path = "/berth/" + id;
    return st;
}

}  // namespace

TEST_CASE("container ids", "[state]") {
    CHECK(rt::validate_id("web-1_a.b+c").ok());
    CHECK_FALSE(rt::validate_id("").ok());
    CHECK_FALSE(rt::validate_id("..").ok());
    CHECK_FALSE(rt::validate_id("a/b").ok());
    CHECK_FALSE(rt::validate_id("a b").ok());
    CHECK_FALSE(rt::validate_id(std::string(2000, 'a')).ok());
}

TEST_CASE("state round trip, list and lock", "[state]") {
    TempDir d;
    auto st = sample("c1");
    REQUIRE(util::mkdir_p(rt::state_dir(d.path, "c1")).ok());
    REQUIRE(rt::save_state(d.path, st).ok());
    auto back = rt::load_state(d.path, "c1");
    REQUIRE(back.ok());
    CHECK(back->pid == st.pid);
    CHECK(back->pid_start_time == st.pid_start_time);
    CHECK(back->annotations == st.annotations);
    CHECK(back->namespaces == st.namespaces);
    CHECK(back->cgroup_path == "/berth/c1");
    CHECK(back->status == rt::Status::Running);
    REQUIRE(util::mkdir_p(rt::state_dir(d.path, "c0")).ok());  // no state.json: not listed
    auto ids = rt::list_ids(d.path);
    REQUIRE(ids.ok());
    CHECK(*ids == std::vector<std::string>{"c1"});
    auto missing = rt::load_state(d.path, "nope");
    REQUIRE_FALSE(missing.ok());
    CHECK_THAT(missing.error().message(), Catch::Contains("does not exist"));
    auto lock = rt::lock_container(d.path, "c1");
    CHECK(lock.ok());
}

TEST_CASE("live status: pid reuse, fifo, paused", "[state]") {
    TempDir d;
    auto st = sample("c2");
    REQUIRE(util::mkdir_p(rt::state_dir(d.path, "c2")).ok());
    CHECK(rt::init_alive(st));
    CHECK(rt::refresh_status(d.path, st) == rt::Status::Running);
    st.status = rt::Status::Paused;
    CHECK(rt::refresh_status(d.path, st) == rt::Status::Paused);
    std::string fifo = util::path_join(rt::state_dir(d.path, "c2"), rt::kExecFifo);
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(rt::refresh_status(d.path, st) == rt::Status::Created);
    // Same pid, another start time: a reused pid is not our container.
    st.pid_start_time += 1;
    CHECK_FALSE(rt::init_alive(st));
    CHECK(rt::refresh_status(d.path, st) == rt::Status::Stopped);
    // A pid that exited.
    pid_t child = fork();
    if (child == 0) _exit(0);
    int status;
    waitpid(child, &status, 0);
    st.pid = child;
    CHECK(rt::refresh_status(d.path, st) == rt::Status::Stopped);
}

TEST_CASE("the OCI state JSON", "[state]") {
    auto st = sample("c3");
    auto v = rt::oci_state_json(st, rt::Status::Created);
    CHECK(v["id"] == "c3");
    CHECK(v["status"] == "created");
    CHECK(v["pid"] == st.pid);
    CHECK(v["bundle"] == "/b");
    CHECK(v["annotations"]["k"] == "v");
    CHECK(v.contains("ociVersion"));
    CHECK(rt::oci_state_json(st, rt::Status::Stopped)["pid"] == 0);
}

TEST_CASE("signal names", "[container]") {
    CHECK(rt::parse_signal("KILL").value_or(0) == SIGKILL);
    CHECK(rt::parse_signal("SIGTERM").value_or(0) == SIGTERM);
    CHECK(rt::parse_signal("9").value_or(0) == 9);
    CHECK(rt::parse_signal("RTMIN+1").value_or(0) == SIGRTMIN + 1);
    CHECK_FALSE(rt::parse_signal("FOO").ok());
    CHECK_FALSE(rt::parse_signal("0").ok());
    CHECK_FALSE(rt::parse_signal("999").ok());
}

TEST_CASE("mountinfo parsing", "[mounts]") {
    TempDir d;
    std::string f = d.path + "/mountinfo";
    std::ofstream(f) << "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
                        "37 36 0:5 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
    auto infos = rt::mounts::read_mountinfo(f.c_str());
    REQUIRE(infos.ok());
    REQUIRE(infos->size() == 2);
    CHECK((*infos)[0].mount_point == "/mnt two");
    CHECK((*infos)[0].root == "/mnt1");
    CHECK((*infos)[0].fs_type == "ext3");
    CHECK((*infos)[0].optional == "master:1");
    CHECK((*infos)[1].super_options == "rw,cpu,cpuacct");
    CHECK(rt::mounts::unescape("a\\011b") == "a\tb");
}

TEST_CASE("PATH lookup", "[process]") {
    auto sh = rt::find_in_path("sh", {"PATH=/nonexistent:/bin:/usr/bin"});
    REQUIRE(sh.ok());
    CHECK(sh->ends_with("/sh"));
    CHECK_FALSE(rt::find_in_path("no-such-binary-berth", {"PATH=/bin"}).ok());
    CHECK(rt::find_in_path("/bin/sh", {}).ok());
    CHECK_FALSE(rt::find_in_path("/etc/passwd", {}).ok());
}

TEST_CASE("berth-dmz comes sealed", "[exe_protect]") {
    auto fd = rt::exe_protect::dmz_fd();
    REQUIRE(fd.ok());
    int seals = fcntl(fd->get(), F_GET_SEALS);
    CHECK((seals & F_SEAL_WRITE) != 0);
    CHECK((seals & F_SEAL_SEAL) != 0);
    CHECK(write(fd->get(), "x", 1) < 0);
    int w = open(("/proc/self/fd/" + std::to_string(fd->get())).c_str(), O_WRONLY);
    if (w >= 0) {
        CHECK(write(w, "x", 1) < 0);
        close(w);
    }
    // It runs: berth-dmz PATH ARGV0 ... execs PATH.
    pid_t child = fork();
    if (child == 0) {
        char *argv[] = {const_cast<char *>("true"), nullptr};
        char *envp[] = {nullptr};
        rt::exe_protect::exec_through_dmz(fd->get(), "/bin/true", argv, envp);
        _exit(99);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
