// The container's root filesystem; see mounts.hpp.
#include "runtime/mounts.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>

#include "runtime/devices.hpp"
#include "runtime/procfs.hpp"
#include "util/file.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"
#include "util/syscalls.hpp"

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

namespace rt::mounts {
namespace {

using util::Error;

unsigned long locked_flags(int fd) {
    struct statvfs sv;
    if (::fstatvfs(fd, &sv) < 0) return 0;
    unsigned long f = 0;
    if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (sv.f_flag & ST_RDONLY) f |= MS_RDONLY;
    if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
    return f;
}

/// Remounts the bind mount at `fd` with `flags` (keeping what the kernel
/// locked, minus what the spec explicitly cleared).
util::Status remount_bind(Kernel &sys, int fd, unsigned long flags, unsigned long clear) {
    unsigned long f = ((locked_flags(fd) & ~clear) | flags) & ~(MS_BIND | MS_REC | MS_REMOUNT);
    if (sys.mount(nullptr, fd_path(fd).c_str(), nullptr, MS_BIND | MS_REMOUNT | f, nullptr) < 0) {
        // A user namespace may forbid clearing locked flags; keep them all.
        f |= locked_flags(fd) & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY);
        if (sys.mount(nullptr, fd_path(fd).c_str(), nullptr, MS_BIND | MS_REMOUNT | f, nullptr) < 0)
            return Error::from_errno("remount");
    }
    return util::ok();
}

/// Read-only on the mount at `fd` and everything below it.
util::Status make_recursive_readonly(Kernel &sys, int fd) {
    util::sys::MountAttr attr{MOUNT_ATTR_RDONLY, 0, 0, 0};
    if (sys.mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, attr) == 0) return util::ok();
    if (errno != ENOSYS) return Error::from_errno("mount_setattr rro");
    // Fallback: remount each mount under the target, top first.
    char buf[4096];
    ssize_t n = ::readlink(fd_path(fd).c_str(), buf, sizeof buf - 1);
    if (n < 0) return Error::from_errno("readlink target");
    std::string top(buf, static_cast<size_t>(n));
    auto infos = TRY(read_mountinfo());
    for (const auto &mi : infos) {
        if (mi.mount_point != top && !mi.mount_point.starts_with(top + "/")) continue;
        int sub = ::open(mi.mount_point.c_str(), O_PATH | O_CLOEXEC | O_NOFOLLOW);
        if (sub < 0) continue;
        util::UniqueFd s(sub);
        TRY_CTX(remount_bind(sys, s.get(), MS_RDONLY, 0), util::cat("rro ", util::quote(mi.mount_point)));
    }
    return util::ok();
}

/// Creates a missing mount target: a file when the bind source is one.
util::Result<util::UniqueFd> open_target(int rootfd, const std::string &dest, bool file) {
    auto fd = util::open_in_root(rootfd, dest, O_PATH);
    if (fd) return fd;
    if (fd.error().code != ENOENT) return std::move(fd).error();
    if (!file) return util::mkdir_all_in_root(rootfd, dest, 0755);
    TRY(util::mkdir_all_in_root(rootfd, util::dirname(dest), 0755));
    auto created = TRY(util::open_in_root(rootfd, dest, O_CREAT | O_WRONLY, 0644));
    created.reset();
    return util::open_in_root(rootfd, dest, O_PATH);
}

/// /sys/fs/cgroup: cgroup2 mounted or bound (v2), or a tmpfs holding a bind
/// of the container's own cgroup in every v1 hierarchy (v1 and hybrid).
util::Status mount_cgroups(int rootfd, const Mount &m, int target, const RootfsOptions &opts) {
    Kernel &sys = *opts.sys;
    unsigned long flags = m.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
    auto infos = TRY(read_mountinfo());
    auto self = TRY(util::read_file("/proc/self/cgroup", 1 << 20));
    auto known = [&](const std::string &name) -> const std::string * {
        if (!opts.cgroup_dirs) return nullptr;
        for (const auto &[n, dir] : *opts.cgroup_dirs)
            if (n == name) return &dir;
        return nullptr;
    };
    auto path_in = [&](const std::string &super_options, bool v2) -> std::string {
        for (const auto &line : util::split(self, '\n')) {
            auto parts = util::split(line, ':');
            if (parts.size() < 3) continue;
            if (v2 ? parts[1].empty() && parts[0] == "0" : false) return parts[2];
            if (v2 || parts[1].empty()) continue;
            bool all = true;
            for (const auto &c : util::split(parts[1], ','))
                if (util::cat(",", super_options, ",").find(util::cat(",", c, ",")) == std::string::npos) all = false;
            if (all) return parts[2];
        }
        return "/";
    };
    for (const auto &mi : infos)
        if (mi.mount_point == "/sys/fs/cgroup" && mi.fs_type == "cgroup2") {
            if (opts.new_cgroupns) {
                if (sys.mount("cgroup2", fd_path(target).c_str(), "cgroup2", flags, nullptr) < 0)
                    return Error::from_errno("mount cgroup2");
                return util::ok();
            }
            const std::string *dir = known("");
            std::string src = dir ? *dir : util::path_join("/sys/fs/cgroup", path_in("", true));
            if (sys.mount(src.c_str(), fd_path(target).c_str(), nullptr, MS_BIND, nullptr) < 0)
                return Error::from_errno(util::cat("bind ", util::quote(src)));
            auto again = TRY(util::open_in_root(rootfd, m.destination, O_PATH));
            return remount_bind(sys, again.get(), flags, m.clear_flags);
        }
    if (sys.mount("tmpfs", fd_path(target).c_str(), "tmpfs", flags & ~MS_RDONLY, "mode=755") < 0)
        return Error::from_errno("mount tmpfs for cgroups");
    auto dir = TRY(util::open_in_root(rootfd, m.destination, O_RDONLY | O_DIRECTORY));
    for (const auto &mi : infos) {
        if ((mi.fs_type != "cgroup" && mi.fs_type != "cgroup2") || !mi.mount_point.starts_with("/sys/fs/cgroup/")) continue;
        std::string name = mi.mount_point.substr(15);
        if (name.empty() || name.find('/') != std::string::npos) continue;
        std::string cg = path_in(mi.super_options, mi.fs_type == "cgroup2");
        // mountinfo's root is the part of the hierarchy this mount shows.
        std::string rel = cg;
        if (mi.root != "/" && rel.starts_with(mi.root)) rel = rel.substr(mi.root.size());
        const std::string *own = known(mi.fs_type == "cgroup2" ? std::string() : name);
        std::string src = own ? *own : util::path_join(mi.mount_point, rel);
        if (::mkdirat(dir.get(), name.c_str(), 0755) < 0 && errno != EEXIST)
            return Error::from_errno(util::cat("mkdir cgroup ", util::quote(name)));
        int sub = ::openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC | O_DIRECTORY);
        if (sub < 0) return Error::from_errno(util::cat("open cgroup ", util::quote(name)));
        util::UniqueFd subfd(sub);
        if (sys.mount(src.c_str(), fd_path(sub).c_str(), nullptr, MS_BIND, nullptr) < 0)
            return Error::from_errno(util::cat("bind ", util::quote(src)));
        int again = ::openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC | O_DIRECTORY);
        if (again < 0) return Error::from_errno("reopen cgroup mount");
        util::UniqueFd againfd(again);
        TRY_CTX(remount_bind(sys, again, flags | MS_NOSUID | MS_NODEV | MS_NOEXEC, m.clear_flags),
                util::cat("cgroup ", util::quote(name)));
        // Co-mounted controllers get symlinks, as on the host (cpu -> cpu,cpuacct).
        if (name.find(',') != std::string::npos)
            for (const auto &c : util::split(name, ','))
                if (sys.symlinkat(name.c_str(), dir.get(), c.c_str()) < 0 && errno != EEXIST)
                    return Error::from_errno(util::cat("symlink cgroup ", util::quote(c)));
    }
    if (flags & MS_RDONLY) {
        auto again = TRY(util::open_in_root(rootfd, m.destination, O_PATH));
        if (sys.mount(nullptr, fd_path(again.get()).c_str(), nullptr, MS_REMOUNT | flags, "mode=755") < 0)
            return Error::from_errno("remount cgroup tmpfs read-only");
    }
    return util::ok();
}

bool is_namespaced_sysctl(const Spec &spec, const std::string &key) {
    auto has = [&](int t) { return spec.find_namespace(t) != nullptr; };
    if (key.starts_with("fs.mqueue.") || key == "kernel.msgmax" || key == "kernel.msgmnb" || key == "kernel.msgmni" ||
        key == "kernel.sem" || key == "kernel.shmall" || key == "kernel.shmmax" || key == "kernel.shmmni" ||
        key == "kernel.shm_rmid_forced")
        return has(CLONE_NEWIPC);
    if (key.starts_with("net.")) return has(CLONE_NEWNET);
    if (key == "kernel.hostname" || key == "kernel.domainname") return has(CLONE_NEWUTS);
    return false;
}

util::Status write_sysctls(const Spec &spec) {
    for (const auto &[key, value] : spec.sysctl) {
        std::string where = util::cat("sysctl ", util::quote(key));
        if (key.find("..") != std::string::npos || key.find('/') != std::string::npos)
            return Error::msg(util::cat(where, ": invalid key"));
        if (!is_namespaced_sysctl(spec, key))
            return Error::msg(util::cat(where, ": not namespaced (or its namespace is not in the spec); refused"));
        std::string path = "/proc/sys/";
        for (char c : key) path.push_back(c == '.' ? '/' : c);
        // /proc/sys shows the namespaces of the process that writes it: ours.
        auto fd = TRY_CTX(util::open_file(path, O_WRONLY | O_NOFOLLOW), where);
        TRY_CTX(util::write_all(fd.get(), value), where);
    }
    return util::ok();
}

util::Status mask_paths(Kernel &sys, int rootfd, const Spec &spec) {
    if (spec.masked_paths.empty()) return util::ok();
    auto null = TRY_CTX(util::open_in_root(rootfd, "/dev/null", O_PATH), "masked paths: /dev/null");
    if (!devices::is_dev_null(sys, null.get())) return Error::msg("masked paths: `/dev/null` in the container is not the null device");
    for (const auto &p : spec.masked_paths) {
        std::string where = util::cat("masked path ", util::quote(p));
        auto fd = util::open_in_root(rootfd, p, O_PATH);
        if (!fd) {
            if (fd.error().code == ENOENT) continue;
            return std::move(fd).error().wrap(where);
        }
        struct stat sb;
        if (::fstat(fd->get(), &sb) < 0) return Error::from_errno(where);
        if (S_ISDIR(sb.st_mode)) {
            if (sys.mount("tmpfs", fd_path(fd->get()).c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        "size=0,mode=000") < 0)
                return Error::from_errno(where);
        } else if (sys.mount(fd_path(null.get()).c_str(), fd_path(fd->get()).c_str(), nullptr, MS_BIND, nullptr) < 0) {
            return Error::from_errno(where);
        }
    }
    return util::ok();
}

util::Status readonly_paths(Kernel &sys, int rootfd, const Spec &spec) {
    for (const auto &p : spec.readonly_paths) {
        std::string where = util::cat("read-only path ", util::quote(p));
        auto fd = util::open_in_root(rootfd, p, O_PATH);
        if (!fd) {
            if (fd.error().code == ENOENT) continue;
            return std::move(fd).error().wrap(where);
        }
        if (sys.mount(fd_path(fd->get()).c_str(), fd_path(fd->get()).c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
            return Error::from_errno(where);
        auto again = TRY_CTX(util::open_in_root(rootfd, p, O_PATH), where);
        TRY_CTX(remount_bind(sys, again.get(), MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0), where);
    }
    return util::ok();
}

/// The files lxcfs emulates: bind mounts over them are accepted (as runc).
constexpr const char *kLxcfsProcFiles[] = {
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime",  "/proc/loadavg",   "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
};

bool on_procfs(int fd) {
    struct statfs sf;
    return ::fstatfs(fd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
}

std::string fd_target(int fd) {
    char buf[4096];
    ssize_t n = ::readlink(fd_path(fd).c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

/// Refuses a mount whose target (resolved, open at `target`) is `/proc` or
/// inside it, or on any procfs: a bind there would redirect the runtime's
/// own procfs writes (oom_score_adj, LSM attributes) into the bind's source.
/// Accepted: a procfs at `/proc`, and binds of files over lxcfs's entries.
util::Status check_proc_target(int rootfd, int target, const Mount &m) {
    std::string root = fd_target(rootfd), path = fd_target(target);
    std::string rel;
    if (!root.empty() && (path == root + "/proc" || path.starts_with(root + "/proc/"))) rel = path.substr(root.size());
    else if (!on_procfs(target)) return util::ok();
    if (rel == "/proc") {
        if (m.type == "proc") return util::ok();
        struct statfs sf;
        struct stat sb;
        if (m.is_bind() && ::statfs(m.source.c_str(), &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC &&
            ::stat(m.source.c_str(), &sb) == 0 && sb.st_ino == 1)
            return util::ok();
        return Error::msg("only a procfs may be mounted on `/proc`");
    }
    if (m.is_bind())
        for (const char *f : kLxcfsProcFiles)
            if (rel == f) return util::ok();
    return Error::msg(util::cat("the target resolves to ", rel.empty() ? std::string("a procfs") : util::quote(rel),
                                ", inside `/proc`; refused"));
}

/// As runc, a missing cwd is created (never under /proc: it could name a
/// magic link to a host path).
util::Status create_cwd(int rootfd, const Spec &spec) {
    if (!spec.process || spec.process->cwd.starts_with("/proc/") || spec.process->cwd == "/proc") return util::ok();
    auto cwd = util::open_in_root(rootfd, spec.process->cwd, O_PATH);
    if (!cwd && cwd.error().code == ENOENT) TRY_CTX(util::mkdir_all_in_root(rootfd, spec.process->cwd, 0755), "create cwd");
    return util::ok();
}

/// No mount namespace: the container shares the runtime's mounts, so
/// nothing is mounted (check_without_mount_ns refused what would be); the
/// devices are made in the rootfs's /dev and the init chroots into the
/// rootfs (pivot_root would move the runtime's own root), as runc does.
util::Status enter_root_without_mount_ns(const Spec &spec, const RootfsOptions &opts) {
    Kernel &sys = *opts.sys;
    auto rootfd = TRY_CTX(util::open_file(spec.root_path, O_PATH | O_DIRECTORY), "rootfs");
    TRY(devices::setup_dev(sys, rootfd.get(), spec));
    TRY(create_cwd(rootfd.get(), spec));
    if (opts.before_pivot) TRY(opts.before_pivot(opts.before_pivot_ctx));
    TRY(write_sysctls(spec));
    if (::fchdir(rootfd.get()) < 0) return Error::from_errno("chdir rootfs");
    if (sys.chroot(".") < 0) return Error::from_errno("chroot rootfs");
    if (::chdir("/") < 0) return Error::from_errno("chdir /");
    return util::ok();
}

util::Status do_pivot(Kernel &sys, const std::string &root) {
    auto oldroot = TRY(util::open_file("/", O_RDONLY | O_DIRECTORY));
    auto newroot = TRY(util::open_file(root, O_RDONLY | O_DIRECTORY));
    if (::fchdir(newroot.get()) < 0) return Error::from_errno("chdir rootfs");
    if (sys.pivot_root(".", ".") < 0) return Error::from_errno("pivot_root");
    // The old root is now stacked on `/`: detach it without letting the
    // unmount propagate to the host.
    if (::fchdir(oldroot.get()) < 0) return Error::from_errno("chdir old root");
    if (sys.mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0) return Error::from_errno("make old root rslave");
    if (sys.umount2(".", MNT_DETACH) < 0) return Error::from_errno("unmount old root");
    if (::chdir("/") < 0) return Error::from_errno("chdir /");
    return util::ok();
}

/// For an initramfs root (pivot_root refuses it) and --no-pivot: move the
/// rootfs over `/` and chroot. Host mounts outside the rootfs are detached
/// first so the container cannot reach them.
util::Status move_root(Kernel &sys, const std::string &root) {
    auto infos = TRY(read_mountinfo());
    std::sort(infos.begin(), infos.end(), [](const MountInfo &a, const MountInfo &b) { return a.mount_point.size() > b.mount_point.size(); });
    for (const auto &mi : infos) {
        const auto &mp = mi.mount_point;
        if (mp == "/" || mp == root || mp.starts_with(root + "/") || root.starts_with(mp + "/")) continue;
        if (sys.umount2(mp.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
            (void)sys.mount("tmpfs", mp.c_str(), "tmpfs", MS_RDONLY, "size=0");
    }
    if (::chdir(root.c_str()) < 0) return Error::from_errno("chdir rootfs");
    if (sys.mount(root.c_str(), "/", nullptr, MS_MOVE, nullptr) < 0) return Error::from_errno("move rootfs to /");
    if (sys.chroot(".") < 0) return Error::from_errno("chroot");
    if (::chdir("/") < 0) return Error::from_errno("chdir /");
    return util::ok();
}

}  // namespace

std::string fd_path(int fd) { return util::cat("/proc/self/fd/", fd); }

std::string unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
            out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

util::Result<std::vector<MountInfo>> read_mountinfo(const char *path) {
    return parse_mountinfo(TRY(util::read_file(path, 64 << 20)));
}

std::vector<MountInfo> parse_mountinfo(std::string_view text) {
    std::vector<MountInfo> out;
    for (const auto &line : util::split(text, '\n')) {
        auto f = util::split(line, ' ');
        if (f.size() < 10) continue;
        MountInfo mi;
        mi.id = util::parse_int<int>(f[0]).value_or(0);
        mi.parent = util::parse_int<int>(f[1]).value_or(0);
        mi.root = unescape(f[3]);
        mi.mount_point = unescape(f[4]);
        mi.options = f[5];
        size_t i = 6;
        for (; i < f.size() && f[i] != "-"; i++) mi.optional += (mi.optional.empty() ? "" : " ") + f[i];
        if (i + 2 >= f.size()) continue;  // no `-` separator or no fs type and source
        mi.fs_type = f[i + 1];
        mi.source = unescape(f[i + 2]);
        mi.super_options = i + 3 < f.size() ? f[i + 3] : "";
        out.push_back(std::move(mi));
    }
    return out;
}

util::Status mount_entry(int rootfd, const Mount &m, const RootfsOptions &opts) {
    Kernel &sys = *opts.sys;
    std::string where = util::cat("mount ", util::quote(m.destination));
    if (m.is_bind()) {
        struct stat sb;
        if (::stat(m.source.c_str(), &sb) < 0) return Error::from_errno(util::cat(where, ": source ", util::quote(m.source)));
        auto target = TRY_CTX(open_target(rootfd, m.destination, !S_ISDIR(sb.st_mode)), where);
        TRY_CTX(check_proc_target(rootfd, target.get(), m), where);
        if (sys.mount(m.source.c_str(), fd_path(target.get()).c_str(), nullptr, MS_BIND | (m.flags & MS_REC), nullptr) < 0)
            return Error::from_errno(where);
        auto mounted = TRY_CTX(util::open_in_root(rootfd, m.destination, O_PATH), where);
        unsigned long extra = m.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
        if (extra != 0 || m.clear_flags != 0) TRY_CTX(remount_bind(sys, mounted.get(), m.flags, m.clear_flags), where);
        if (m.recursive_readonly) TRY_CTX(make_recursive_readonly(sys, mounted.get()), where);
        if (m.propagation && sys.mount(nullptr, fd_path(mounted.get()).c_str(), nullptr, m.propagation, nullptr) < 0)
            return Error::from_errno(util::cat(where, ": propagation"));
        return util::ok();
    }
    auto target = TRY_CTX(open_target(rootfd, m.destination, false), where);
    TRY_CTX(check_proc_target(rootfd, target.get(), m), where);
    if (m.type == "cgroup" || m.type == "cgroup2") return mount_cgroups(rootfd, m, target.get(), opts).context(where);
    unsigned long flags = m.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
    const char *data = m.data.empty() ? nullptr : m.data.c_str();
    if (sys.mount(m.source.empty() ? m.type.c_str() : m.source.c_str(), fd_path(target.get()).c_str(), m.type.c_str(), flags,
                data) < 0) {
        int e = errno;
        // sysfs cannot be mounted without a network namespace of our own
        // in a user namespace: bind the host's, as runc does.
        if (m.type == "sysfs" && (e == EPERM || e == EBUSY)) {
            if (sys.mount("/sys", fd_path(target.get()).c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
                return Error::from_errno(where);
            auto again = TRY_CTX(util::open_in_root(rootfd, m.destination, O_PATH), where);
            return remount_bind(sys, again.get(), flags | MS_RDONLY, 0).context(where);
        }
        return Error::with_code(e, util::cat(where, " (", m.type, ")"));
    }
    if (m.propagation) {
        auto again = TRY_CTX(util::open_in_root(rootfd, m.destination, O_PATH), where);
        if (sys.mount(nullptr, fd_path(again.get()).c_str(), nullptr, m.propagation, nullptr) < 0)
            return Error::from_errno(util::cat(where, ": propagation"));
    }
    return util::ok();
}

util::Status check_without_mount_ns(const Spec &spec, bool no_pivot) {
    if (spec.find_namespace(CLONE_NEWNS)) return util::ok();
    auto refuse = [](const char *what) {
        return Error::msg(util::cat(what, " needs a mount namespace (the container would change the runtime's mounts)"));
    };
    if (!spec.mounts.empty()) return refuse("`mounts`");
    if (!spec.masked_paths.empty() || !spec.readonly_paths.empty()) return refuse("`linux.maskedPaths` or `linux.readonlyPaths`");
    if (spec.rootfs_propagation) return refuse("`linux.rootfsPropagation`");
    if (spec.root_readonly) return refuse("`root.readonly`");
    if (no_pivot) return refuse("--no-pivot");
    return util::ok();
}

util::Status setup_rootfs(const Spec &spec, const RootfsOptions &opts) {
    Kernel &sys = *opts.sys;
    const std::string &root = spec.root_path;
    // The procfs handle for later writes, while the runtime's /proc is here.
    TRY(procfs::root());
    if (!spec.find_namespace(CLONE_NEWNS)) return enter_root_without_mount_ns(spec, opts);
    // `/` rslave (or private) first, so nothing below reaches the host; then
    // the rootfs bound onto itself (a mount point for pivot_root); only then
    // the spec's propagation, which may be unbindable (that forbids the bind).
    unsigned long prop = spec.rootfs_propagation ? spec.rootfs_propagation : MS_SLAVE | MS_REC;
    if (prop & (MS_SHARED | MS_UNBINDABLE)) prop = MS_SLAVE | MS_REC;  // applied after the bind or the pivot
    if (sys.mount(nullptr, "/", nullptr, prop, nullptr) < 0) return Error::from_errno("set propagation of `/`");
    if (sys.mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
        return Error::from_errno(util::cat("bind rootfs ", util::quote(root)));
    auto rootfd = TRY_CTX(util::open_file(root, O_PATH | O_DIRECTORY), "rootfs");
    TRY(devices::check_dev_dir(rootfd.get()));
    for (const auto &m : spec.mounts) TRY(mount_entry(rootfd.get(), m, opts));
    TRY(devices::setup_dev(sys, rootfd.get(), spec));
    TRY(create_cwd(rootfd.get(), spec));
    if (opts.before_pivot) TRY(opts.before_pivot(opts.before_pivot_ctx));
    TRY(write_sysctls(spec));
    TRY(mask_paths(sys, rootfd.get(), spec));
    TRY(readonly_paths(sys, rootfd.get(), spec));
    rootfd.reset();

    bool pivoted = false;
    if (!opts.no_pivot) {
        auto st = do_pivot(sys, root);
        if (!st && st.error().code != EINVAL) return std::move(st).error();
        pivoted = st.ok();
    }
    if (!pivoted) TRY(move_root(sys, root));
    if (spec.rootfs_propagation && sys.mount(nullptr, "/", nullptr, spec.rootfs_propagation, nullptr) < 0)
        return Error::from_errno("set rootfsPropagation");
    if (spec.root_readonly) {
        auto r = TRY(util::open_file("/", O_PATH | O_DIRECTORY));
        unsigned long f = locked_flags(r.get()) | MS_RDONLY;
        if (sys.mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | f, nullptr) < 0)
            return Error::from_errno("make rootfs read-only");
    }
    return util::ok();
}

}  // namespace rt::mounts
