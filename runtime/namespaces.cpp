// Namespaces; see namespaces.hpp.
#include "runtime/namespaces.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/syscalls.hpp"

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef NS_GET_NSTYPE
#define NS_GET_NSTYPE 0xb703
#endif

namespace rt::ns {
namespace {

using util::Error;

std::string map_text(const std::vector<IdMapping> &maps) {
    std::string out;
    for (const auto &m : maps) out += util::cat(m.container_id, ' ', m.host_id, ' ', m.size, '\n');
    return out;
}

util::Status write_proc(pid_t pid, const char *name, const std::string &text) {
    std::string path = util::cat("/proc/", pid, '/', name);
    auto fd = TRY(util::open_file(path, O_WRONLY));
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return Error::from_errno(util::cat("write ", util::quote(path)));
    return util::ok();
}

}  // namespace

int clone_flags(const Spec &spec) {
    int flags = 0;
    for (const auto &n : spec.namespaces)
        if (n.path.empty() && n.type != kCloneNewTime && n.type != CLONE_NEWCGROUP) flags |= n.type;
    // A user namespace joined by path must be entered before any other is
    // created (so they belong to it): the init unshares them after setns.
    const Namespace *user = spec.find_namespace(CLONE_NEWUSER);
    if (user && !user->path.empty()) flags &= CLONE_NEWPID;
    return flags;
}

int unshare_after_join(const Spec &spec) {
    const Namespace *user = spec.find_namespace(CLONE_NEWUSER);
    if (!user || user->path.empty()) return 0;
    int flags = 0;
    for (const auto &n : spec.namespaces)
        if (n.path.empty() && n.type != kCloneNewTime && n.type != CLONE_NEWCGROUP && n.type != CLONE_NEWPID) flags |= n.type;
    return flags;
}

bool wants_new_cgroupns(const Spec &spec) {
    const Namespace *c = spec.find_namespace(CLONE_NEWCGROUP);
    return c && c->path.empty();
}

util::Result<std::vector<Join>> open_joins(const Spec &spec) {
    std::vector<Join> out;
    for (const auto &n : spec.namespaces) {
        if (n.path.empty()) continue;
        std::string what = util::cat("namespace ", util::quote(namespace_name(n.type)), " path ", util::quote(n.path));
        Join j;
        j.type = n.type;
        j.fd = TRY_CTX(util::open_file(n.path, O_RDONLY), what);
        int t = ::ioctl(j.fd.get(), NS_GET_NSTYPE);
        if (t >= 0 && t != n.type) return Error::msg(util::cat(what, ": not a ", namespace_name(n.type), " namespace"));
        if (t < 0) {
            // Kernels before 4.11 lack NS_GET_NSTYPE: the fd's link reads "net:[4026531993]".
            char buf[64] = {};
            ssize_t len = ::readlink(util::cat("/proc/self/fd/", j.fd.get()).c_str(), buf, sizeof buf - 1);
            std::string_view link(buf, len > 0 ? static_cast<size_t>(len) : 0);
            if (!link.starts_with(util::cat(namespace_name(n.type), ":[")))
                return Error::msg(util::cat(what, ": not a ", namespace_name(n.type), " namespace file"));
        }
        out.push_back(std::move(j));
    }
    return out;
}

util::Status prepare_for_children(const Spec &spec, std::vector<Join> &joins, Kernel &sys) {
    for (auto &j : joins) {
        if (j.type != CLONE_NEWPID && j.type != kCloneNewTime) continue;
        if (sys.setns(j.fd.get(), j.type) < 0)
            return Error::from_errno(util::cat("join ", namespace_name(j.type), " namespace"));
        j.fd.reset();
    }
    const Namespace *time = spec.find_namespace(kCloneNewTime);
    if (time && time->path.empty()) {
        if (sys.unshare(kCloneNewTime) < 0) return Error::from_errno("create time namespace");
        std::string offs;
        for (const auto &t : spec.time_offsets) offs += util::cat(t.clock, ' ', t.secs, ' ', t.nanosecs, '\n');
        if (!offs.empty()) TRY_CTX(write_proc(::getpid(), "timens_offsets", offs), "time namespace offsets");
    }
    return util::ok();
}

util::Status join_in_init(std::vector<Join> &joins, Kernel &sys) {
    // user first: the others may need the capabilities it grants.
    for (int pass = 0; pass < 2; pass++) {
        for (auto &j : joins) {
            if (!j.fd.valid() || (pass == 0) != (j.type == CLONE_NEWUSER)) continue;
            if (sys.setns(j.fd.get(), j.type) < 0)
                return Error::from_errno(util::cat("join ", namespace_name(j.type), " namespace"));
            j.fd.reset();
        }
    }
    return util::ok();
}

pid_t clone_init(int flags, int cgroup_fd, bool *into_cgroup) {
    *into_cgroup = false;
#ifdef SYS_clone3
    if (cgroup_fd >= 0 && !util::sys::disabled("clone3")) {
        // struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2).
        struct {
            uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
        } args = {};
        args.flags = static_cast<uint64_t>(static_cast<unsigned>(flags)) | CLONE_INTO_CGROUP;
        args.exit_signal = SIGCHLD;
        args.cgroup = static_cast<uint64_t>(cgroup_fd);
        long r = ::syscall(SYS_clone3, &args, sizeof args);
        if (r >= 0) {
            *into_cgroup = true;
            return static_cast<pid_t>(r);
        }
        // ENOSYS, E2BIG or EINVAL on older kernels, anything a filter
        // returns: the plain clone below, and the runtime moves the child.
    }
#else
    (void)cgroup_fd;
#endif
    return static_cast<pid_t>(::syscall(SYS_clone, static_cast<unsigned long>(flags) | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

util::Status write_id_maps(pid_t pid, const Spec &spec) {
    // Mapping several ids needs CAP_SETGID in the parent user namespace; a
    // single self-mapping by an unprivileged user needs setgroups "deny".
    if (::geteuid() != 0) TRY_CTX(write_proc(pid, "setgroups", "deny"), "user namespace");
    TRY_CTX(write_proc(pid, "uid_map", map_text(spec.uid_mappings)), "user namespace uidMappings");
    TRY_CTX(write_proc(pid, "gid_map", map_text(spec.gid_mappings)), "user namespace gidMappings");
    return util::ok();
}

}  // namespace rt::ns
