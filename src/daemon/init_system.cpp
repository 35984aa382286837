// svc::bring_up_system, power_down and log_to_kmsg (init_system.hpp): the
// mounts PID 1 owes the rest of the system, each made only when
// /proc/self/mountinfo shows nothing at its target (so a second call, or an
// initramfs that mounted some first, changes nothing), and the way down.
#include "daemon/init_system.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "daemon/netns.hpp"
#include "runtime/mounts.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace svc {

using util::cat;
using util::Error;
using util::quote;

namespace {

constexpr unsigned long kNoSuidDevExec = MS_NOSUID | MS_NODEV | MS_NOEXEC;

std::string under(const std::string &root, std::string_view rel) {
    std::string r = root;
    while (r.size() > 1 && r.back() == '/') r.pop_back();
    return r == "/" ? std::string(rel) : cat(r, rel);
}

/// Whether `path` is a mount point: from mountinfo when /proc is up, else
/// (before /proc is mounted) by its device against its parent's.
bool is_mounted(const std::string &path) {
    auto infos = rt::mounts::read_mountinfo();
    if (infos) {
        return std::any_of(infos->begin(), infos->end(), [&](const auto &m) { return m.mount_point == path; });
    }
    struct stat self, parent;
    if (stat(path.c_str(), &self) < 0) return false;
    if (stat(cat(path, "/..").c_str(), &parent) < 0) return false;
    return self.st_dev != parent.st_dev || self.st_ino == parent.st_ino;
}

/// Mounts `type` at ROOT`rel` unless something is mounted there already.
/// Returns whether it mounted.
util::Result<bool> mount_missing(const std::string &root, std::string_view rel, const char *type,
                                 unsigned long flags, const char *data, const char *source = nullptr) {
    std::string target = under(root, rel);
    if (is_mounted(target)) return false;
    if (mkdir(target.c_str(), 0755) < 0 && errno != EEXIST) return Error::from_errno(cat("create ", quote(target)));
    if (mount(source ? source : type, target.c_str(), type, flags, data) < 0)
        return Error::from_errno(cat("mount ", type, " at ", quote(target)));
    return true;
}

/// Whether /proc/filesystems' text lists `type` ("nodev\tcgroup2").
bool has_filesystem(std::string_view filesystems, std::string_view type) {
    for (const auto &line : util::split(filesystems, '\n')) {
        auto f = util::split(line, '\t');
        if (!f.empty() && util::trim(f.back()) == type) return true;
    }
    return false;
}

util::Status symlink_missing(const std::string &target, const std::string &link) {
    struct stat st;
    if (lstat(link.c_str(), &st) == 0) return util::ok();
    if (symlink(target.c_str(), link.c_str()) < 0 && errno != EEXIST)
        return Error::from_errno(cat("symlink ", quote(link)));
    return util::ok();
}

/// /dev: devtmpfs, or on a kernel without it (`have_devtmpfs`, from
/// /proc/filesystems) a tmpfs with the nodes every program expects; then the
/// links devtmpfs does not make.
util::Status mount_dev(const std::string &root, bool have_devtmpfs) {
    std::string dev = under(root, "/dev");
    if (have_devtmpfs) {
        TRY(mount_missing(root, "/dev", "devtmpfs", MS_NOSUID, "mode=0755"));
    } else if (TRY(mount_missing(root, "/dev", "tmpfs", MS_NOSUID, "mode=0755"))) {
        struct Node { const char *name; unsigned major, minor; mode_t mode; };
        for (const Node &n : {Node{"null", 1, 3, 0666}, Node{"zero", 1, 5, 0666}, Node{"full", 1, 7, 0666},
                              Node{"random", 1, 8, 0666}, Node{"urandom", 1, 9, 0666}, Node{"tty", 5, 0, 0666},
                              Node{"console", 5, 1, 0600}, Node{"kmsg", 1, 11, 0644}}) {
            std::string p = cat(dev, '/', n.name);
            if (mknod(p.c_str(), S_IFCHR | n.mode, makedev(n.major, n.minor)) < 0 && errno != EEXIST)
                return Error::from_errno(cat("mknod ", quote(p)));
            if (chmod(p.c_str(), n.mode) < 0) return Error::from_errno(cat("chmod ", quote(p)));
        }
    }
    TRY(symlink_missing("/proc/self/fd", cat(dev, "/fd")));
    TRY(symlink_missing("/proc/self/fd/0", cat(dev, "/stdin")));
    TRY(symlink_missing("/proc/self/fd/1", cat(dev, "/stdout")));
    TRY(symlink_missing("/proc/self/fd/2", cat(dev, "/stderr")));
    // A private devpts instance; /dev/ptmx (a devtmpfs node opens the pts
    // next to it since Linux 4.7, else the instance's own) where missing.
    TRY(mount_missing(root, "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"));
    TRY(symlink_missing("pts/ptmx", cat(dev, "/ptmx")));
    TRY(mount_missing(root, "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
    return util::ok();
}

/// The v1 hierarchies to mount from /proc/cgroups: enabled controllers
/// sharing a hierarchy id go together (the host's grouping); unbound ones
/// alone, but for the usual pairs cpu,cpuacct and net_cls,net_prio.
std::vector<std::vector<std::string>> v1_hierarchies(std::string_view proc_cgroups) {
    std::map<int, std::vector<std::string>> bound;
    std::vector<std::string> unbound;
    for (const auto &line : util::split(proc_cgroups, '\n')) {
        if (line.empty() || line[0] == '#') continue;
        auto f = util::split(line, '\t');
        if (f.size() < 4 || util::trim(f[3]) != "1") continue;
        int h = util::parse_int<int>(f[1]).value_or(0);
        if (h > 0) bound[h].push_back(f[0]);
        else unbound.push_back(f[0]);
    }
    std::vector<std::vector<std::string>> out;
    for (auto &[h, names] : bound) out.push_back(names);
    std::set<std::string> rest(unbound.begin(), unbound.end());
    for (auto pair : {std::pair<const char *, const char *>{"cpu", "cpuacct"}, {"net_cls", "net_prio"}}) {
        if (rest.count(pair.first) && rest.count(pair.second)) {
            out.push_back({pair.first, pair.second});
            rest.erase(pair.first);
            rest.erase(pair.second);
        }
    }
    for (const auto &name : unbound)
        if (rest.count(name)) out.push_back({name});
    return out;
}

util::Status enable_controllers(const std::string &cgroot) {
    auto available = TRY(util::read_file(cat(cgroot, "/cgroup.controllers")));
    auto enabled = util::split(util::trim(TRY(util::read_file(cat(cgroot, "/cgroup.subtree_control")))), ' ');
    // One at a time, all tried: one the kernel refuses (cpu beside a
    // realtime thread on old kernels) leaves the others enabled.
    std::vector<std::string> refused;
    int code = 0;
    for (const auto &c : util::split(util::trim(available), ' ')) {
        if (c.empty() || std::find(enabled.begin(), enabled.end(), c) != enabled.end()) continue;
        auto fd = TRY(util::open_file(cat(cgroot, "/cgroup.subtree_control"), O_WRONLY));
        if (auto st = util::write_all(fd.get(), cat('+', c)); !st) {
            refused.push_back(c);
            code = st.error().code;
        }
    }
    if (!refused.empty())
        return Error::with_code(code, cat("enable the controllers ", util::join(refused, " "), " in ", quote(cgroot)));
    return util::ok();
}

util::Status mount_cgroups(const std::string &root, CgroupLayout layout, const std::string &proc) {
    if (layout == CgroupLayout::Unified) {
        TRY(mount_missing(root, "/sys/fs/cgroup", "cgroup2", kNoSuidDevExec, nullptr));
        return enable_controllers(under(root, "/sys/fs/cgroup"));
    }
    TRY(mount_missing(root, "/sys/fs/cgroup", "tmpfs", kNoSuidDevExec, "mode=0755", "cgroup"));
    auto table = TRY(util::read_file(cat(proc, "/cgroups")));
    for (const auto &names : v1_hierarchies(table)) {
        std::string joined = util::join(names, ",");
        TRY(mount_missing(root, cat("/sys/fs/cgroup/", joined), "cgroup", kNoSuidDevExec, joined.c_str(), "cgroup"));
        if (names.size() > 1)
            for (const auto &n : names) TRY(symlink_missing(joined, under(root, cat("/sys/fs/cgroup/", n))));
    }
    if (layout == CgroupLayout::Hybrid)
        TRY(mount_missing(root, "/sys/fs/cgroup/unified", "cgroup2", kNoSuidDevExec, nullptr));
    return util::ok();
}

}  // namespace

CgroupLayout resolve_cgroup_layout(CgroupLayout wanted, std::string_view filesystems, std::string_view cmdline) {
    if (wanted != CgroupLayout::Auto) return wanted;
    for (const auto &word : util::split(util::trim(cmdline), ' ')) {
        if (word == "berth.cgroups=unified") return CgroupLayout::Unified;
        if (word == "berth.cgroups=hybrid" || word == "systemd.unified_cgroup_hierarchy=0") return CgroupLayout::Hybrid;
        if (word == "berth.cgroups=legacy") return CgroupLayout::Legacy;
    }
    return has_filesystem(filesystems, "cgroup2") ? CgroupLayout::Unified : CgroupLayout::Legacy;
}

util::Status bring_up_system(const SystemOptions &o) {
    const std::string &root = o.root;
    TRY(mount_missing(root, "/proc", "proc", kNoSuidDevExec, nullptr));
    std::string proc = o.proc.empty() ? under(root, "/proc") : o.proc;
    TRY(mount_missing(root, "/sys", "sysfs", kNoSuidDevExec, nullptr));
    auto filesystems = TRY(util::read_file(cat(proc, "/filesystems")));
    TRY(mount_dev(root, has_filesystem(filesystems, "devtmpfs")));
    TRY(mount_missing(root, "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
    CgroupLayout layout = o.cgroups;
    if (layout == CgroupLayout::Auto)
        layout = resolve_cgroup_layout(layout, filesystems, util::read_file(cat(proc, "/cmdline")).value_or(""));
    TRY_CTX(mount_cgroups(root, layout, proc), "cgroups");
    if (!o.hostname.empty() && sethostname(o.hostname.data(), o.hostname.size()) < 0)
        return Error::from_errno(cat("set the hostname to ", quote(o.hostname)));
    if (o.loopback) TRY(loopback_up());
    return util::ok();
}

std::vector<std::string> unmount_order(std::string_view mountinfo) {
    auto infos = rt::mounts::parse_mountinfo(mountinfo);
    std::map<int, int> parent;
    for (const auto &m : infos) parent[m.id] = m.parent;
    auto depth = [&](int id) {
        size_t d = 0;
        // Bounded: a parent loop in a malformed table cannot hang us.
        for (auto it = parent.find(id); it != parent.end() && d <= parent.size(); it = parent.find(it->second)) d++;
        return d;
    };
    struct Entry { size_t depth, index; std::string path; };
    std::vector<Entry> entries;
    for (size_t i = 0; i < infos.size(); i++)
        if (infos[i].mount_point != "/") entries.push_back({depth(infos[i].id), i, infos[i].mount_point});
    // Deepest first; of two at one depth the later mounted first.
    std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) {
        return a.depth != b.depth ? a.depth > b.depth : a.index > b.index;
    });
    std::vector<std::string> out;
    for (auto &e : entries) out.push_back(std::move(e.path));
    return out;
}

void power_down(PowerAction a) {
    sync();
    auto text = util::read_file("/proc/self/mountinfo").value_or("");
    if (getpid() == 1) kill(-1, SIGKILL);  // whatever the daemon did not stop holds mounts
    for (const auto &path : unmount_order(text)) {
        if (umount2(path.c_str(), 0) < 0 && errno == EBUSY) umount2(path.c_str(), MNT_DETACH);
    }
    mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY, nullptr);
    sync();
    int cmd = a == PowerAction::PowerOff ? RB_POWER_OFF : a == PowerAction::Reboot ? RB_AUTOBOOT : RB_HALT_SYSTEM;
    reboot(cmd);
    util::log::error("reboot(2) failed: ", strerror(errno));
    _exit(1);
}

util::Status kmsg_unlimited(const std::string &control) {
    // The kernel takes the word with its newline only ("on" alone is EINVAL).
    auto ctl = util::open_file(control, O_WRONLY);
    auto wrote = ctl ? util::write_all(ctl->get(), "on\n") : util::Status(ctl.error());
    if (wrote) return util::ok();
    // printk.devkmsg= on the kernel command line locks the setting (every
    // write fails): the board chose, and "on" is what berth wants anyway.
    auto now = util::read_file(control, 64);
    if (now && util::trim(*now) == "on") return util::ok();
    if (now) {
        return util::Error::msg(cat("/dev/kmsg keeps its rate limit (", control, " is \"", util::trim(*now),
                                    "\", locked by the kernel command line's printk.devkmsg= or read-only)"));
    }
    return std::move(wrote).error().wrap(cat("turn off the rate limit of /dev/kmsg (", control, ")"));
}

util::Status log_to_kmsg() {
    static util::UniqueFd kmsg;
    auto fd = TRY(util::open_file("/dev/kmsg", O_WRONLY | O_NOCTTY));
    // PID 1 has no other log: the kernel's rate limit would drop its lines.
    auto unlimited = kmsg_unlimited();
    kmsg = std::move(fd);
    util::log::set_fd(kmsg.get());
    util::log::set_format(util::log::Format::Kmsg);
    if (!unlimited) util::log::warn(unlimited.error().message(), "; lines past 10 in 5 s may be dropped");
    return util::ok();
}

}  // namespace svc
