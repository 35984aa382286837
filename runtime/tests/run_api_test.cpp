// The runtime's run API as a supervisor uses it, without the CLI driver:
// create and start return while the container runs, they leave the
// caller's signal mask and child-subreaper flag as they were, and one
// process starts two containers and waits on each through its InitHandle,
// with a pidfd and without one (kernels before 5.3). update_container, the
// library half of `berth update`, is called the same way. Needs root and a
// static busybox; skips otherwise.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/container.hpp"
#include "runtime/features.hpp"
#include "runtime/init_handle.hpp"
#include "runtime/update.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/process.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"
#include "util/syscalls.hpp"

namespace {

const char *busybox() {
    for (const char *p : {"/bin/busybox", "/usr/bin/busybox"})
        if (::access(p, X_OK) == 0) return p;
    return nullptr;
}

/// A temporary state root and a busybox bundle per container; everything
/// (containers, cgroups, files) goes at the end of the test.
class Fixture {
public:
    Fixture() {
        char tmpl[] = "/tmp/berth-runapi.XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        ::chmod(dir_.c_str(), 0755);
        root_ = dir_ + "/state";
        std::string rootfs = dir_ + "/rootfs";
        REQUIRE(util::mkdir_p(rootfs + "/bin"));
        for (const char *d : {"proc", "dev", "sys", "tmp"}) REQUIRE(util::mkdir_p(rootfs + "/" + d));
        REQUIRE(util::run_process({"cp", busybox(), rootfs + "/bin/busybox"}).value_or(1) == 0);
        REQUIRE(::symlink("busybox", (rootfs + "/bin/sh").c_str()) == 0);
    }
    ~Fixture() {
        for (const auto &id : ids_) (void)rt::delete_container(root_, id, true);
        (void)util::remove_tree(dir_);
    }

    /// Creates container `id` running `sh -c script`.
    rt::State create(const std::string &id, const std::string &script) {
        std::string bundle = dir_ + "/" + id;
        REQUIRE(util::mkdir_p(bundle));
        REQUIRE(::symlink("../rootfs", (bundle + "/rootfs").c_str()) == 0);
        auto spec = rt::default_spec(false, 0, 0);
        spec["process"]["terminal"] = false;
        spec["process"]["args"] = util::json::Value::array();
        for (const char *a : {"/bin/sh", "-c"}) spec["process"]["args"].push_back(a);
        spec["process"]["args"].push_back(script);
        spec["root"]["readonly"] = true;
        spec["linux"]["cgroupsPath"] = util::cat("berth-runapi-", ::getpid(), "-", id);
        REQUIRE(util::atomic_write_file(bundle + "/config.json", util::json::dump(spec)));
        rt::CreateOptions o;
        o.root = root_;
        o.id = id;
        o.bundle = bundle;
        ids_.push_back(id);
        auto st = rt::create_container(o);
        INFO((st ? "" : st.error().message()));
        REQUIRE(st);
        return *st;
    }
    void start(const std::string &id) {
        auto s = rt::start_container(root_, id);
        INFO((s ? "" : s.error().message()));
        REQUIRE(s);
    }

    const std::string &root() const { return root_; }

private:
    std::string dir_, root_;
    std::vector<std::string> ids_;
};

bool skip() {
    if (::geteuid() != 0) {
        WARN("skipped: needs root");
        return true;
    }
    if (!busybox()) {
        WARN("skipped: needs busybox");
        return true;
    }
    return false;
}

sigset_t current_mask() {
    sigset_t m;
    sigprocmask(SIG_SETMASK, nullptr, &m);
    return m;
}

bool same_mask(const sigset_t &a, const sigset_t &b) {
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&a, s) != sigismember(&b, s)) return false;
    return true;
}

int subreaper() {
    int v = -1;
    ::prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0);
    return v;
}

}  // namespace

TEST_CASE("create and start return while the container runs", "[root][run]") {
    if (skip()) return;
    Fixture f;
    auto st = f.create("blocking", "sleep 30");
    auto init = rt::InitHandle::open(st);
    REQUIRE(init);
    f.start("blocking");
    CHECK(!*init->try_wait());  // still running: start did not wait for it
    CHECK(!*init->wait(50));    // a bounded wait returns without a code
    REQUIRE(::kill(init->pid(), SIGKILL) == 0);
    auto code = init->wait(10000);
    REQUIRE(code);
    REQUIRE(*code);
    CHECK(**code == 128 + SIGKILL);
}

TEST_CASE("create and start leave the signal mask and the subreaper flag alone", "[root][run]") {
    if (skip()) return;
    const sigset_t before = current_mask();
    const int reaper_before = subreaper();
    Fixture f;
    auto st = f.create("untouched", "exit 0");
    auto init = rt::InitHandle::open(st);
    REQUIRE(init);
    f.start("untouched");
    CHECK(same_mask(before, current_mask()));
    CHECK(subreaper() == reaper_before);
    auto code = init->wait(10000);
    REQUIRE(code);
    CHECK(*code == std::optional<int>(0));
    CHECK(same_mask(before, current_mask()));
    CHECK(subreaper() == reaper_before);
}

TEST_CASE("two containers started from one process are waited on each through its handle", "[root][run]") {
    if (skip()) return;
    const bool no_pidfd = GENERATE(false, true);
    if (no_pidfd) util::sys::disable("pidfd_open");
    util::ScopeGuard restore([] { util::sys::enable("pidfd_open"); });
    Fixture f;
    auto a = f.create("first", "exit 3");
    auto b = f.create("second", "exit 4");
    auto ha = rt::InitHandle::open(a), hb = rt::InitHandle::open(b);
    REQUIRE(ha);
    REQUIRE(hb);
    CHECK((ha->fd() < 0) == no_pidfd);
    f.start("first");
    f.start("second");
    // Waited in the other order than started: each handle reaps only its own init.
    auto cb = hb->wait(10000);
    REQUIRE(cb);
    CHECK(*cb == std::optional<int>(4));
    auto ca = ha->wait(10000);
    REQUIRE(ca);
    CHECK(*ca == std::optional<int>(3));
    CHECK(*ha->try_wait() == std::optional<int>(3));  // the code stays
}

TEST_CASE("update_container applies a resources patch and saves the merged set", "[root][run][update]") {
    if (skip()) return;
    Fixture f;
    auto st = f.create("updated", "sleep 30");
    auto patch = util::json::Value::object();
    patch["pids"]["limit"] = 42;
    auto r = rt::update_container(f.root(), "updated", patch, false);
    INFO((r ? "" : r.error().message()));
    REQUIRE(r);
    auto saved = util::read_file(util::path_join(rt::state_dir(f.root(), "updated"), rt::kResourcesFile));
    REQUIRE(saved);
    CHECK(saved->find("42") != std::string::npos);
    for (const char *base : {"/sys/fs/cgroup/pids", "/sys/fs/cgroup"}) {
        auto max = util::read_file(util::path_join(util::path_join(base, st.cgroup_path), "pids.max"));
        if (max) CHECK(util::trim(*max) == "42");
    }
    patch["pids"]["limit"] = "x";
    CHECK(!rt::update_container(f.root(), "updated", patch, false));
    CHECK(!rt::update_container(f.root(), "no-such-container", util::json::Value::object(), false));
}
