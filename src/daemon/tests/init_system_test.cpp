// Unit tests of src/daemon/init_system: the cgroup layout choice and the
// unmount order as pure functions; bring_up_system for real in a forked
// child with its own mount, UTS and network namespaces, mounting under a
// temporary root, and the /dev/kmsg log format.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>

#include "daemon/init_system.hpp"
#include "runtime/mounts.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

using svc::CgroupLayout;
using util::cat;

namespace {

const char *kFilesystems = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tdevtmpfs\nnodev\tcgroup\nnodev\tcgroup2\n\text4\n";

/// Runs `fn` in a forked child that has its own mount, UTS and network
/// namespaces (so nothing it mounts or names reaches the host) and returns
/// what it returned: "" for success, else what went wrong. "skip: ..." when
/// the namespaces cannot be made here.
std::string in_namespaces(const std::function<std::string()> &fn) {
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        std::string out;
        if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWNET) < 0) out = cat("skip: unshare: ", strerror(errno));
        else if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) out = "skip: make / private";
        else out = fn();
        (void)util::write_all(p[1], out);
        _exit(0);
    }
    close(p[1]);
    util::UniqueFd rd(p[0]);
    std::string out = util::read_all(rd.get()).value_or("read failed");
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    return out;
}

/// A temporary root for the child's mounts (removed with the namespace's
/// mounts gone, by the parent).
struct TmpRoot {
    std::string path;
    TmpRoot() {
        char t[] = "/tmp/berth-init-test.XXXXXX";
        REQUIRE(mkdtemp(t));
        path = t;
    }
    ~TmpRoot() { (void)util::remove_tree(path); }
};

std::vector<rt::mounts::MountInfo> mounts_under(const std::string &root) {
    std::vector<rt::mounts::MountInfo> out;
    for (auto &m : rt::mounts::read_mountinfo().value_or({}))
        if (m.mount_point.rfind(root + "/", 0) == 0) out.push_back(m);
    return out;
}

std::string fs_at(const std::string &path) {
    for (auto &m : rt::mounts::read_mountinfo().value_or({}))
        if (m.mount_point == path) return m.fs_type;  // the last: the one on top
    return "";
}

/// A /proc/cgroups with only the controllers the host has bound to a v1
/// hierarchy, so a v1 mount of each joins that hierarchy rather than
/// taking a controller away from the host's cgroup2.
std::string bound_cgroups_fixture(const std::string &dir, const char *filesystems = kFilesystems) {
    std::string out = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n";
    for (const auto &line : util::split(util::read_file("/proc/cgroups").value_or(""), '\n')) {
        auto f = util::split(line, '\t');
        if (f.size() >= 4 && f[0][0] != '#' && f[1] != "0") out += line + "\n";
    }
    REQUIRE(util::mkdir_p(dir));
    REQUIRE(util::atomic_write_file(dir + "/cgroups", out));
    REQUIRE(util::atomic_write_file(dir + "/filesystems", filesystems));
    REQUIRE(util::atomic_write_file(dir + "/cmdline", "console=ttyS0\n"));
    return out;
}

bool host_is_v1() {
    struct stat st;
    return stat("/sys/fs/cgroup/memory", &st) == 0 || stat("/sys/fs/cgroup/cpu", &st) == 0;
}

/// What in_namespaces returned: a skip is a warning, else it must be "".
void judge(const std::string &r) {
    if (r.rfind("skip: ", 0) == 0) {
        WARN("skipped: " << r.substr(6));
        return;
    }
    CHECK(r == "");
}

/// In a forked child with its own namespaces (in_namespaces): `before`
/// (may be empty), then bring_up_system under a temporary root with
/// `layout`, hostname berth-test-host and fixture /proc files (`filesystems`, and /proc/cgroups with
/// the host's bound controllers), then `check`, which returns "" or what is
/// wrong. Skips (with the reason) where not root or the namespaces cannot
/// be made.
void bring_up_then(CgroupLayout layout, const char *filesystems,
                   const std::function<std::string(const std::string &root)> &before,
                   const std::function<std::string(const std::string &root, const std::string &table)> &check) {
    if (geteuid() != 0) {
        WARN("skipped: needs root");
        return;
    }
    TmpRoot root;
    judge(in_namespaces([&]() -> std::string {
        svc::SystemOptions o;
        o.root = root.path;
        o.cgroups = layout;
        o.hostname = "berth-test-host";
        o.proc = root.path + "/fixture";
        std::string table = bound_cgroups_fixture(o.proc, filesystems);
        if (before)
            if (auto err = before(root.path); !err.empty()) return err;
        if (auto st = svc::bring_up_system(o); !st) return "bring_up_system: " + st.error().message();
        return check(root.path, table);
    }));
}

}  // namespace

TEST_CASE("auto picks cgroup v2 when the kernel has cgroup2", "[init]") {
    CHECK(svc::resolve_cgroup_layout(CgroupLayout::Auto, kFilesystems, "console=ttyAMA0 quiet") == CgroupLayout::Unified);
}

TEST_CASE("auto picks v1 when the kernel has no cgroup2", "[init]") {
    CHECK(svc::resolve_cgroup_layout(CgroupLayout::Auto, "nodev\tcgroup\n", "") == CgroupLayout::Legacy);
}

TEST_CASE("the kernel command line overrides the automatic layout", "[init]") {
    CHECK(svc::resolve_cgroup_layout(CgroupLayout::Auto, kFilesystems, "quiet systemd.unified_cgroup_hierarchy=0") ==
          CgroupLayout::Hybrid);
    CHECK(svc::resolve_cgroup_layout(CgroupLayout::Auto, kFilesystems, "berth.cgroups=legacy\n") == CgroupLayout::Legacy);
    CHECK(svc::resolve_cgroup_layout(CgroupLayout::Auto, "nodev\tcgroup\n", "berth.cgroups=unified") ==
          CgroupLayout::Unified);
}

TEST_CASE("an explicit layout is kept whatever the kernel says", "[init]") {
    CHECK(svc::resolve_cgroup_layout(CgroupLayout::Hybrid, kFilesystems, "berth.cgroups=unified") == CgroupLayout::Hybrid);
}

TEST_CASE("unmount order puts every mount before the one it sits on and leaves / out", "[init]") {
    // id parent dev root mount-point options - type source super
    const char *mi =
        "20 1 0:1 / / rw - ext4 /dev/vda rw\n"
        "21 20 0:1 / /proc rw - proc proc rw\n"
        "22 20 0:1 / /sys rw - sysfs sysfs rw\n"
        "23 22 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
        "24 20 0:1 / /dev rw - devtmpfs devtmpfs rw\n"
        "25 24 0:1 / /dev/pts rw - devpts devpts rw\n"
        "26 21 0:1 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw\n"
        "27 20 0:1 / /data\\040dir rw - ext4 /dev/vdb rw\n"
        "28 20 0:1 / /run rw - tmpfs tmpfs rw\n";
    auto order = svc::unmount_order(mi);
    REQUIRE(order.size() == 8);
    auto pos = [&](const std::string &p) { return std::find(order.begin(), order.end(), p) - order.begin(); };
    CHECK(std::find(order.begin(), order.end(), "/") == order.end());
    CHECK(pos("/sys/fs/cgroup") < pos("/sys"));
    CHECK(pos("/dev/pts") < pos("/dev"));
    CHECK(pos("/proc/sys/fs/binfmt_misc") < pos("/proc"));
    CHECK(pos("/data dir") < 8);
}

TEST_CASE("unmount order takes stacked mounts on one path top first", "[init]") {
    const char *mi =
        "1 0 0:1 / / rw - rootfs rootfs rw\n"
        "2 1 0:1 / /run rw - tmpfs tmpfs rw\n"
        "3 2 0:1 / /run rw - tmpfs tmpfs rw\n"
        "4 3 0:1 / /run/x rw - tmpfs tmpfs rw\n"
        "5 1 0:1 / / rw - ext4 /dev/vda rw\n";
    auto order = svc::unmount_order(mi);
    CHECK(order == std::vector<std::string>{"/run/x", "/run", "/run"});
}

TEST_CASE("unmount order ignores malformed lines and a parent loop", "[init]") {
    const char *mi = "garbage\n7 8 0:1 / /a rw - tmpfs t rw\n8 7 0:1 / /b rw - tmpfs t rw\n";
    CHECK(svc::unmount_order(mi).size() == 2);
}

TEST_CASE("bring up mounts proc, sys, dev, run and cgroup v2 under the root", "[init]") {
    // The controllers a fresh cgroup2 root offers are enabled in its
    // subtree_control: on a hybrid host that is the host's own root, so
    // what this enables is given back.
    std::string before = util::read_file("/sys/fs/cgroup/unified/cgroup.subtree_control").value_or("");
    bring_up_then(CgroupLayout::Unified, kFilesystems, {}, [&](const std::string &root, const std::string &) -> std::string {
        std::string cg = root + "/sys/fs/cgroup";
        std::string controllers = util::read_file(cg + "/cgroup.controllers").value_or("?");
        std::string enabled = util::read_file(cg + "/cgroup.subtree_control").value_or("?");
        for (const auto &c : util::split(util::trim(enabled), ' '))
            if (!c.empty() && before.find(c) == std::string::npos) {
                if (auto fd = util::open_file(cg + "/cgroup.subtree_control", O_WRONLY)) (void)util::write_all(fd->get(), "-" + c);
            }
        std::string errs;
        auto want = [&](const char *rel, const char *type) {
            std::string got = fs_at(root + rel);
            if (got != type) errs += cat(rel, " is `", got, "`, wanted ", type, "; ");
        };
        want("/proc", "proc");
        want("/sys", "sysfs");
        want("/dev", "devtmpfs");
        want("/dev/pts", "devpts");
        want("/dev/shm", "tmpfs");
        want("/run", "tmpfs");
        want("/sys/fs/cgroup", "cgroup2");
        if (util::trim(enabled) != util::trim(controllers))
            errs += cat("subtree_control `", util::trim(enabled), "` is not every controller `", util::trim(controllers), "`; ");
        struct stat sb;
        if (lstat((root + "/dev/ptmx").c_str(), &sb) < 0) errs += "no /dev/ptmx; ";
        struct utsname u;
        uname(&u);
        if (std::string(u.nodename) != "berth-test-host") errs += cat("hostname is ", u.nodename, "; ");
        return errs;
    });
}

TEST_CASE("bring up a second time mounts nothing new", "[init]") {
    bring_up_then(CgroupLayout::Legacy, kFilesystems, {}, [](const std::string &root, const std::string &) -> std::string {
        size_t first = mounts_under(root).size();
        svc::SystemOptions o;
        o.root = root;
        o.cgroups = CgroupLayout::Legacy;
        o.proc = root + "/fixture";
        if (auto st = svc::bring_up_system(o); !st) return "second: " + st.error().message();
        size_t second = mounts_under(root).size();
        if (first != second) return cat(first, " mounts after the first call, ", second, " after the second");
        return "";
    });
}

TEST_CASE("bring up leaves an existing mount alone", "[init]") {
    auto premount = [](const std::string &root) -> std::string {
        std::string run = root + "/run";
        mkdir(run.c_str(), 0755);
        return mount("tmpfs", run.c_str(), "tmpfs", 0, "mode=0700,size=1m") < 0 ? "premount /run" : "";
    };
    bring_up_then(CgroupLayout::Legacy, kFilesystems, premount, [](const std::string &root, const std::string &) -> std::string {
        std::string run = root + "/run";
        int on_run = 0;
        for (auto &m : mounts_under(root))
            if (m.mount_point == run) on_run++;
        struct stat sb;
        stat(run.c_str(), &sb);
        if (on_run != 1) return cat(on_run, " mounts on /run");
        if ((sb.st_mode & 07777) != 0700) return "/run's mode changed: the premounted tmpfs is not the one on top";
        return "";
    });
}

TEST_CASE("bring up without devtmpfs makes /dev a tmpfs with the usual nodes", "[init]") {
    const char *no_devtmpfs = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tcgroup\n";
    bring_up_then(CgroupLayout::Legacy, no_devtmpfs, {}, [](const std::string &root, const std::string &) -> std::string {
        std::string dev = root + "/dev";
        if (fs_at(dev) != "tmpfs") return cat("/dev is `", fs_at(dev), "`, wanted tmpfs");
        std::string errs;
        for (const char *n : {"null", "zero", "full", "random", "urandom", "tty", "console", "kmsg"}) {
            struct stat sb;
            if (stat((dev + "/" + n).c_str(), &sb) < 0 || !S_ISCHR(sb.st_mode)) errs += cat("no /dev/", n, "; ");
        }
        auto null = util::open_file(dev + "/null", O_WRONLY);
        if (!null || !util::write_all(null->get(), "x")) errs += "/dev/null does not take a write; ";
        if (fs_at(dev + "/pts") != "devpts") errs += "no devpts on the tmpfs /dev; ";
        return errs;
    });
}

TEST_CASE("bring up with v1 mounts a tmpfs and one hierarchy per controller", "[init]") {
    if (!host_is_v1()) {
        WARN("skipped: needs a host with v1 hierarchies to join");
        return;
    }
    bring_up_then(CgroupLayout::Hybrid, kFilesystems, {}, [](const std::string &root, const std::string &table) -> std::string {
        std::string cg = root + "/sys/fs/cgroup";
        std::string errs;
        if (fs_at(cg) != "tmpfs") errs += "/sys/fs/cgroup is not a tmpfs; ";
        if (fs_at(cg + "/unified") != "cgroup2") errs += "no cgroup2 at unified; ";
        for (const auto &line : util::split(table, '\n')) {
            auto f = util::split(line, '\t');
            if (f.size() < 4 || f[0][0] == '#') continue;
            struct stat sb;
            if (stat((cg + "/" + f[0] + "/cgroup.procs").c_str(), &sb) < 0) errs += cat("no hierarchy for ", f[0], "; ");
        }
        return errs;
    });
}

TEST_CASE("kmsg format writes one priority-tagged record per line", "[init]") {
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    util::UniqueFd rd(p[0]), wr(p[1]);
    int old_fd = util::log::fd();
    auto old_format = util::log::format();
    util::log::set_fd(wr.get());
    util::log::set_format(util::log::Format::Kmsg);
    util::log::error("broken\nline");
    util::log::warn("careful");
    util::log::set_fd(old_fd);
    util::log::set_format(old_format);
    wr.reset();
    CHECK(util::read_all(rd.get()).value_or("") == "<3>berth: broken line\n<4>berth: careful\n");
}

TEST_CASE("kmsg_unlimited turns the rate limit of /dev/kmsg off", "[init][root]") {
    // The real control (a sysctl, /proc/sys/kernel/printk_devkmsg), put
    // back as it was.
    const std::string control = "/proc/sys/kernel/printk_devkmsg";
    if (::geteuid() != 0) {
        WARN("skipped: needs root to write " << control);
        return;
    }
    auto before = util::read_file(control);
    if (!before) {
        WARN("skipped: " << control << ": " << before.error().message());
        return;
    }
    std::string was(util::trim(*before));
    {
        auto w = util::open_file(control, O_WRONLY);
        if (!w || !util::write_all(w->get(), "ratelimit\n")) {
            WARN("skipped: " << control << " is fixed by the kernel command line (printk.devkmsg=) or read-only");
            return;
        }
    }
    util::ScopeGuard restore([&] {
        if (auto w = util::open_file(control, O_WRONLY)) (void)util::write_all(w->get(), was + "\n");
    });
    auto st = svc::kmsg_unlimited(control);
    CHECK(st.ok());
    if (!st) UNSCOPED_INFO(st.error().message());
    CHECK(util::trim(util::read_file(control).value_or("")) == "on");
}

TEST_CASE("kmsg_unlimited takes a setting locked to on and names one locked to ratelimit", "[init][root]") {
    // As printk.devkmsg= on the command line leaves the control: it reads
    // back, every write fails (here: a read-only tmpfs).
    TmpRoot tmp;
    auto out = in_namespaces([&]() -> std::string {
        if (mount("tmpfs", tmp.path.c_str(), "tmpfs", 0, nullptr) < 0) return cat("skip: mount tmpfs: ", strerror(errno));
        for (const char *v : {"on", "ratelimit"}) {
            if (!util::atomic_write_file(cat(tmp.path, "/", v), cat(v, "\n"))) return cat("write ", v);
        }
        if (mount(nullptr, tmp.path.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) < 0) return "remount read-only";
        if (auto st = svc::kmsg_unlimited(cat(tmp.path, "/on")); !st) return cat("locked on: ", st.error().message());
        auto st = svc::kmsg_unlimited(cat(tmp.path, "/ratelimit"));
        if (st) return "locked ratelimit: no error";
        if (st.error().message().find("is \"ratelimit\"") == std::string::npos) return cat("locked ratelimit: ", st.error().message());
        return "";
    });
    if (out.rfind("skip:", 0) == 0) {
        WARN(out);
        return;
    }
    CHECK(out == "");
}

namespace {

/// The end of a power_down run by the init of a new PID namespace, in its
/// own mount namespace whose root is a tmpfs with a few mounts on it (one
/// busy): how that init ended, and the mount table left behind (through
/// a mountinfo file opened before, which keeps the namespace).
struct PowerDownRun {
    int init_status = -1;  ///< 100 + the signal that ended the init, or its exit code
    std::string mountinfo;  ///< of the namespace after the power-down
    std::string error;
};

PowerDownRun power_down_in_namespace(svc::PowerAction action) {
    PowerDownRun out;
    int pid_pipe[2], ready[2], go[2];
    REQUIRE(pipe2(pid_pipe, O_CLOEXEC) == 0);
    REQUIRE(pipe2(ready, O_CLOEXEC) == 0);
    REQUIRE(pipe2(go, O_CLOEXEC) == 0);
    pid_t helper = fork();
    REQUIRE(helper >= 0);
    if (helper == 0) {
        // The helper makes the namespaces; its child is their init.
        if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) _exit(90);
        pid_t init = fork();
        if (init == 0) {
            char t[] = "/tmp/berth-powerdown.XXXXXX";
            if (!mkdtemp(t) || mount("tmpfs", t, "tmpfs", 0, "size=1m") < 0) _exit(91);
            std::string root = t;
            if (mkdir((root + "/old").c_str(), 0755) < 0 || syscall(SYS_pivot_root, t, (root + "/old").c_str()) < 0 || chdir("/") < 0 ||
                umount2("/old", MNT_DETACH) < 0)
                _exit(92);
            for (const char *d : {"/proc", "/a", "/run"}) mkdir(d, 0755);
            if (mount("proc", "/proc", "proc", 0, nullptr) < 0 || mount("tmpfs", "/a", "tmpfs", 0, "size=1m") < 0 ||
                mkdir("/a/b", 0755) < 0 || mount("tmpfs", "/a/b", "tmpfs", 0, "size=1m") < 0 ||
                mount("tmpfs", "/run", "tmpfs", 0, "size=1m") < 0)
                _exit(93);
            // A file held open for writing on /run: busy, lazily detached.
            int busy = open("/run/held", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            (void)busy;
            pid_t sibling = fork();
            if (sibling == 0) {
                for (;;) pause();
            }
            char c = 'r';
            if (write(ready[1], &sibling, sizeof sibling) < 0 || read(go[0], &c, 1) != 1) _exit(94);
            svc::power_down(action);
        }
        (void)!write(pid_pipe[1], &init, sizeof init);
        int status = 0;
        waitpid(init, &status, 0);
        // The status travels as the exit code: 100 + the signal, or the code.
        _exit(WIFSIGNALED(status) ? 100 + WTERMSIG(status) : WEXITSTATUS(status));
    }
    close(pid_pipe[1]);
    close(ready[1]);
    close(go[0]);
    pid_t init = -1, sibling = -1;
    bool started = read(pid_pipe[0], &init, sizeof init) == sizeof init && read(ready[0], &sibling, sizeof sibling) == sizeof sibling;
    // Opened now, read after the power-down: the file keeps the init's
    // mount namespace, and shows it as it is when read.
    util::UniqueFd mountinfo;
    if (started) mountinfo.reset(open(cat("/proc/", init, "/mountinfo").c_str(), O_RDONLY | O_CLOEXEC));
    char g = 'g';
    (void)!write(go[1], &g, 1);
    close(go[1]);
    close(pid_pipe[0]);
    close(ready[0]);
    int status = 0;
    waitpid(helper, &status, 0);
    out.init_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (!started || !mountinfo) {
        out.error = cat("the namespace's init did not start (helper exit ", out.init_status, ")");
        return out;
    }
    out.mountinfo = util::read_all(mountinfo.get()).value_or("");
    return out;
}

bool skip_unless_can_reboot_a_pid_namespace() {
    if (geteuid() != 0) {
        WARN("skipped: needs root");
        return true;
    }
    // reboot(2) in a PID namespace needs CAP_SYS_BOOT (bit 22).
    auto status = util::read_file("/proc/self/status").value_or("");
    auto at = status.find("CapEff:\t");
    unsigned long long eff = at == std::string::npos ? 0 : strtoull(status.c_str() + at + 8, nullptr, 16);
    if (!(eff & (1ULL << 22))) {
        WARN("skipped: no CAP_SYS_BOOT");
        return true;
    }
    return false;
}

}  // namespace

TEST_CASE("power down unmounts all but / and leaves it read-only", "[init]") {
    if (skip_unless_can_reboot_a_pid_namespace()) return;
    auto run = power_down_in_namespace(svc::PowerAction::PowerOff);
    REQUIRE(run.error == "");
    auto mounts = rt::mounts::parse_mountinfo(run.mountinfo);
    REQUIRE(mounts.size() == 1);
    CHECK(mounts[0].mount_point == "/");
    CHECK(("," + mounts[0].options + ",").find(",ro,") != std::string::npos);
}

TEST_CASE("power down as a PID namespace's init ends it as reboot(2) does: SIGINT for power-off", "[init]") {
    if (skip_unless_can_reboot_a_pid_namespace()) return;
    auto run = power_down_in_namespace(svc::PowerAction::PowerOff);
    REQUIRE(run.error == "");
    CHECK(run.init_status == 100 + SIGINT);
}

TEST_CASE("power down for a reboot ends a PID namespace's init with SIGHUP", "[init]") {
    if (skip_unless_can_reboot_a_pid_namespace()) return;
    auto run = power_down_in_namespace(svc::PowerAction::Reboot);
    REQUIRE(run.error == "");
    CHECK(run.init_status == 100 + SIGHUP);
}
