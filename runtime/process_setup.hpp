// The last steps of every container process, shared by the init (create)
// and by `exec`: rlimits, oom_score_adj, user
// (setgroups/setgid/setuid with keepcaps), capabilities, umask, cwd (refusing
// one that resolves outside the container, CVE-2024-21626), the fd check (no
// fd but 0-2, the preserved ones and our own may survive, CVE-2024-21626),
// env, no_new_privs, AppArmor/SELinux exec label, seccomp, then execve with
// args[0] looked up in the container's PATH.
//
// enter_container() is the first half of `exec`: join the init's namespaces
// (user first, mount last), then its root, from the saved State.
#pragma once

#include <memory>
#include <vector>

#include "runtime/security.hpp"
#include "runtime/spec.hpp"
#include "runtime/state.hpp"
#include "util/result.hpp"

namespace rt {

struct ProcessSetup {
    const Process *process = nullptr;
    std::shared_ptr<security::SeccompFilter> seccomp;  ///< may be null
    /// fds 3 .. 3+preserve_fds-1 reach the process (runc's --preserve-fds).
    int preserve_fds = 0;
    /// Called after the fd check and cwd, before seccomp and exec (the
    /// init waits on the exec fifo and runs startContainer hooks here).
    /// May be empty. An error aborts the exec.
    util::Status (*before_exec)(void *ctx) = nullptr;
    void *before_exec_ctx = nullptr;
    /// fds we still need until before_exec returns; they must be O_CLOEXEC.
    std::vector<int> internal_fds;
};

/// Sets the process up and execs it. Returns only on failure. Runs in the
/// container: after namespaces and the root are set up (or joined).
util::Status setup_process_and_exec(const ProcessSetup &setup);

/// For `exec`: in a child of berth, joins the namespaces saved in `st`
/// (except pid, which only applies to children: the caller forks after this)
/// and chroots into the init's root (/proc/<pid>/root). Checks the init is
/// still the same process first.
util::Status enter_container(const State &st);
/// Joins the pid namespace of the init (call before the final fork).
util::Status enter_pid_namespace(const State &st);

/// Looks `name` up in the PATH of `env` (execvp's rules, in the current root).
/// A name with a slash is returned as is.
util::Result<std::string> find_in_path(const std::string &name, const std::vector<std::string> &env);

}  // namespace rt
