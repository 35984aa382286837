// The shared tail of the init and of `exec`; see process_setup.hpp.
#include "runtime/process_setup.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <linux/capability.h>
#include <unistd.h>

#include <algorithm>

#include "runtime/exe_protect.hpp"
#include "runtime/procfs.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

namespace rt {
namespace {

using util::Error;

util::Status set_user(const User &u) {
    TRY(security::keep_capabilities_across_setuid());
    std::vector<gid_t> groups(u.additional_gids.begin(), u.additional_gids.end());
    // setgroups is refused in a user namespace with setgroups "deny": only
    // fail when groups were asked for.
    if (::setgroups(groups.size(), groups.data()) < 0 && !(errno == EPERM && groups.empty()))
        return Error::from_errno("setgroups");
    if (::setresgid(u.gid, u.gid, u.gid) < 0) return Error::from_errno(util::cat("setgid ", u.gid));
    if (::setresuid(u.uid, u.uid, u.uid) < 0) return Error::from_errno(util::cat("setuid ", u.uid));
    return util::ok();
}

/// Changes into `cwd` inside the current root and checks it really is inside:
/// a cwd reached through a leaked host fd shows as "(unreachable)/..." (CVE-2024-21626).
util::Status enter_cwd(const std::string &cwd) {
    if (::chdir(cwd.c_str()) < 0) return Error::from_errno(util::cat("chdir to cwd ", util::quote(cwd)));
    char buf[4096];
    if (!::getcwd(buf, sizeof buf)) return Error::from_errno(util::cat("cwd ", util::quote(cwd), " is outside the container"));
    if (buf[0] != '/') return Error::msg(util::cat("cwd ", util::quote(cwd), " is outside the container"));
    return util::ok();
}

/// Every fd >= 3 must be a preserved one or one of ours (CLOEXEC, gone at exec).
util::Status check_fds(int preserve, const std::vector<int> &internal) {
    auto proc_fd = TRY(procfs::open_self("fd", O_RDONLY | O_DIRECTORY));
    auto dir = TRY_CTX(util::Dir::of_fd(proc_fd.get()), "list fds");
    while (const dirent *e = TRY_CTX(dir.next(), "list fds")) {
        auto fd = util::parse_int<int>(e->d_name);
        if (!fd || *fd < 3 || *fd == dir.fd() || *fd == proc_fd.get()) continue;
        if (*fd < 3 + preserve) continue;
        bool ours = false;
        for (int i : internal) ours = ours || i == *fd;
        if (!ours) return Error::msg(util::cat("fd ", *fd, " would leak into the container"));
        int flags = ::fcntl(*fd, F_GETFD);
        if (flags < 0 || !(flags & FD_CLOEXEC)) return Error::msg(util::cat("internal fd ", *fd, " is not close-on-exec"));
    }
    return util::ok();
}

std::string env_value(const std::vector<std::string> &env, std::string_view key) {
    for (const auto &e : env)
        if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
            return e.substr(key.size() + 1);
    return {};
}

}  // namespace

util::Result<std::string> find_in_path(const std::string &name, const std::vector<std::string> &env) {
    if (name.empty()) return Error::msg("empty executable name");
    if (name.find('/') != std::string::npos) {
        struct stat sb;
        if (::stat(name.c_str(), &sb) < 0) return Error::from_errno(util::cat("exec: ", util::quote(name)));
        if (!S_ISREG(sb.st_mode) || ::access(name.c_str(), X_OK) < 0)
            return Error::with_code(EACCES, util::cat("exec: ", util::quote(name), ": not an executable file"));
        return name;
    }
    std::string path = env_value(env, "PATH");
    if (path.empty()) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const auto &dir : util::split(path, ':')) {
        std::string cand = util::path_join(dir.empty() ? "." : dir, name);
        struct stat sb;
        if (::stat(cand.c_str(), &sb) == 0 && S_ISREG(sb.st_mode) && ::access(cand.c_str(), X_OK) == 0) return cand;
    }
    return Error::with_code(ENOENT, util::cat("exec: ", util::quote(name), ": executable file not found in $PATH"));
}

util::Status setup_process_and_exec(const ProcessSetup &setup) {
    const Process &p = *setup.process;
    TRY(security::apply_rlimits(p.rlimits));
    // Through a verified procfs handle: a host file bound over the path must not get it.
    if (p.oom_score_adj) TRY_CTX(procfs::write_self("oom_score_adj", util::cat(*p.oom_score_adj)), "oom_score_adj");
    TRY(set_user(p.user));
    // The seccomp filter comes after every syscall of our own (the cwd check,
    // the fds, the exec fifo, the LSM label): a profile may deny any of them.
    // Without no_new_privs, loading it needs CAP_SYS_ADMIN: when the process
    // keeps that, the filter still comes last; when not, it comes right
    // before the capabilities are applied (capset and prctl after it, as in
    // runc, where it even precedes setuid and the cwd).
    bool filter_before_caps = setup.seccomp && !p.no_new_privileges &&
                              std::find(p.capabilities.effective.begin(), p.capabilities.effective.end(), CAP_SYS_ADMIN) ==
                                  p.capabilities.effective.end();
    if (!filter_before_caps) TRY(security::apply_capabilities(p.capabilities));
    ::umask(p.user.umask.value_or(022));
    // Close everything the container must not see, then check (CVE-2024-21626).
    std::vector<int> internal = setup.internal_fds;
    internal.push_back(TRY(procfs::root()));  // O_CLOEXEC, used until exec
    std::vector<int> keep = internal;
    for (int i = 0; i < setup.preserve_fds; i++) keep.push_back(3 + i);
    util::close_fds_from(3, keep.data(), keep.size());
    TRY(enter_cwd(p.cwd));
    TRY(check_fds(setup.preserve_fds, internal));
    std::string exe = TRY(find_in_path(p.args[0], p.env));
    std::vector<char *> argv, envp;
    for (const auto &a : p.args) argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto &e : p.env) envp.push_back(const_cast<char *>(e.c_str()));
    envp.push_back(nullptr);
    // The trampoline is prepared before seccomp (which may forbid
    // memfd_create). Without it (vm.memfd_noexec, a kernel or filter that
    // refuses it) the exec is direct, which only a protected berth binary
    // makes safe (exe_protect.hpp): never fall back to an unprotected exec.
    auto dmz = exe_protect::dmz_fd();
    bool direct_exec_safe = exe_protect::self_protected();
    if (!dmz && !direct_exec_safe)
        return Error::msg(util::cat("berth-dmz unavailable (", dmz.error().message(),
                                    ") and the berth binary is writable: refusing an unprotected exec (CVE-2019-5736)"));
    if (setup.before_exec) TRY(setup.before_exec(setup.before_exec_ctx));
    security::LsmConfig lsm;
    lsm.apparmor_profile = p.apparmor_profile;
    lsm.selinux_label = p.selinux_label;
    TRY(security::apply_lsm(lsm));
    if (filter_before_caps) {
        TRY(security::raise_effective_capabilities());
        TRY_CTX(setup.seccomp->load(), "load seccomp filter");
        TRY(security::apply_capabilities(p.capabilities));
    }
    if (p.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return Error::from_errno("set no_new_privs");
    if (setup.seccomp && !filter_before_caps) TRY_CTX(setup.seccomp->load(), "load seccomp filter");
    if (dmz) {
        exe_protect::exec_through_dmz(dmz->get(), exe.c_str(), argv.data(), envp.data());
        // A memfd that may not be executed, or a seccomp filter denying
        // execveat: direct, if that is safe.
        if ((errno != ENOSYS && errno != EPERM && errno != EACCES) || !direct_exec_safe)
            return Error::from_errno(util::cat("exec ", util::quote(exe), " through berth-dmz"));
    }
    ::execve(exe.c_str(), argv.data(), envp.data());
    return Error::from_errno(util::cat("exec ", util::quote(exe)));
}

util::Status enter_container(const State &st) {
    // Until exec, nobody in the container may ptrace us or open our /proc
    // files (CAP_SYS_PTRACE may, but our exe cannot be written: exe_protect.hpp).
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return Error::from_errno("prctl PR_SET_DUMPABLE");
    if (!init_alive(st)) return Error::msg(util::cat("container ", util::quote(st.id), " is not running"));
    std::vector<std::pair<std::string, util::UniqueFd>> fds;
    for (const auto &[name, path] : st.namespaces) {
        if (name == "pid") continue;
        fds.emplace_back(name, TRY_CTX(util::open_file(path, O_RDONLY), util::cat("namespace ", name)));
    }
    auto root = TRY(util::open_file(util::cat("/proc/", st.pid, "/root"), O_RDONLY | O_DIRECTORY));
    // user first (the rest need its capabilities), mount last (it changes our root).
    for (int pass = 0; pass < 3; pass++)
        for (auto &[name, fd] : fds) {
            int which = name == "user" ? 0 : name == "mnt" ? 2 : 1;
            if (which != pass) continue;
            if (::setns(fd.get(), 0) < 0) return Error::from_errno(util::cat("join ", name, " namespace"));
        }
    if (::fchdir(root.get()) < 0 || ::chroot(".") < 0 || ::chdir("/") < 0)
        return Error::from_errno("enter the container's root");
    return util::ok();
}

util::Status enter_pid_namespace(const State &st) {
    for (const auto &[name, path] : st.namespaces) {
        if (name != "pid") continue;
        auto fd = TRY_CTX(util::open_file(path, O_RDONLY), "namespace pid");
        if (::setns(fd.get(), CLONE_NEWPID) < 0) return Error::from_errno("join pid namespace");
    }
    return util::ok();
}

}  // namespace rt
