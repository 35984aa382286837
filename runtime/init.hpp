// The container's init between clone and exec: the child half of `create`.
//
// The runtime clones it into the new namespaces (and, with clone3, into its
// cgroup2 directory) and talks to it over a SOCK_SEQPACKET socketpair. The
// init first enters its v1 cgroups itself (cgroup::SelfJoin; the runtime
// does it instead when prestart or createRuntime hooks must find it there).
// It waits for the go-ahead (sent once the runtime has written the uid/gid
// maps, saved the state and run the createRuntime hooks; it carries the
// state JSON for the in-container hooks) where it needs it: before anything
// else with a new user namespace, or a new cgroup namespace it is not yet
// in the cgroups of; otherwise only before the createContainer hooks, so
// the rootfs is built meanwhile. It joins namespaces given by path,
// unshares the cgroup namespace, builds the rootfs, sets up the console,
// hostname, personality and the process (process_setup.hpp), reports "ok"
// (or the error, one line) and blocks opening the exec fifo for writing
// until `start` opens it for reading. Then startContainer hooks, seccomp,
// execve. An init that fails exits with the go-ahead possibly unread; the
// runtime still reads its report (container.cpp, recv_from_init).
//
// It is not dumpable until it execs, so the host's other processes (and the
// container's) cannot ptrace it or open its /proc files.
#pragma once

#include <vector>

#include "runtime/cgroup.hpp"
#include "runtime/hooks.hpp"
#include "runtime/namespaces.hpp"
#include "runtime/spec.hpp"

namespace rt {

struct InitArgs {
    const Spec *spec = nullptr;
    const hooks::Hooks *hooks = nullptr;
    std::vector<ns::Join> *joins = nullptr;
    int sync_fd = -1;     ///< the init's end of the socketpair
    int fifo_fd = -1;     ///< O_PATH fd of <state dir>/exec.fifo
    int console_fd = -1;  ///< --console-socket connection, or -1
    bool no_pivot = false;
    bool no_new_keyring = false;
    int preserve_fds = 0;
    /// The container's cgroup in each hierarchy (cgroup::Manager::dirs()):
    /// the init binds them without waiting to be moved into them.
    std::vector<std::pair<std::string, std::string>> cgroup_dirs;
    /// Set: the init enters its v1 cgroups itself, first of all (the
    /// runtime moves it into cgroup2 unless `in_cgroup_v2`). Null: the
    /// runtime moves it everywhere before the go-ahead.
    cgroup::SelfJoin *self_join = nullptr;
    /// Born in its cgroup2 directory (CLONE_INTO_CGROUP), or none exists.
    bool in_cgroup_v2 = false;
};

/// Runs in the cloned child; never returns (execs or _exits).
[[noreturn]] void run_init(InitArgs &args);

/// Messages on the sync socket.
inline constexpr const char *kSyncOk = "ok";
inline constexpr const char *kSyncErrorPrefix = "error:";

}  // namespace rt
