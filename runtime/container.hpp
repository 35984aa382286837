// The container lifecycle behind the runc-compatible commands: create,
// start, state, kill, delete, list (`run` is create + start + a wait on
// the init's handle, init_handle.hpp, driven by the caller).
//
// `create` parses and checks everything first, then builds the container
// step by step, each step with its undo (util::ScopeGuard): state dir,
// cgroup, exec fifo, the cloned init; any failure unwinds them all, so bad
// input leaves no mount (the mounts live in the init's namespace and die
// with it), no cgroup and no state behind.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "runtime/state.hpp"
#include "util/result.hpp"

namespace rt {

struct CreateOptions {
    std::string root = kDefaultStateRoot;  ///< --root
    std::string id;
    std::string bundle;          ///< --bundle (default: cwd)
    std::string console_socket;  ///< --console-socket
    /// Instead of console_socket: this process's own end of a connected
    /// AF_UNIX socket the pty master is sent on (ignored without a terminal).
    int console_fd = -1;
    std::string pid_file;        ///< --pid-file
    bool no_pivot = false;
    bool no_new_keyring = false;
    int preserve_fds = 0;
    bool systemd_cgroup = false;
    /// The container's fds 0, 1 and 2 (without a terminal): this process's
    /// fds to give it, -1 for this process's own. A supervisor points them
    /// at a log file without touching its own stdio.
    int stdio[3] = {-1, -1, -1};
};

/// Creates the container; returns once its init waits on the exec fifo.
util::Result<State> create_container(const CreateOptions &opts);
/// Lets the init exec the user process (opens the exec fifo), runs poststart hooks.
util::Status start_container(const std::string &root, const std::string &id);
// Neither call blocks past the container's setup, nor touches the signal
// mask, the child subreaper or any child but the init: waiting for the
// container (init_handle.hpp), reaping its orphans and forwarding signals
// are the caller's, as `berth run` (src/cmd/run_bundle.cpp) and a supervisor
// each do them their own way.

/// The state and its live status.
util::Result<std::pair<State, Status>> container_state(const std::string &root, const std::string &id);
/// Sends `sig` to the init, or with `all` to every process of its cgroup.
util::Status kill_container(const std::string &root, const std::string &id, int sig, bool all);
/// Removes a stopped (or, with force, any) container: processes, cgroup,
/// state; poststop hooks. A state dir left by a crashed create is removed too.
/// Returns the state that was removed (none when there was no readable one),
/// for callers that clean up what the bundle held.
util::Result<std::optional<State>> delete_container(const std::string &root, const std::string &id, bool force);
/// Every container with its live status.
util::Result<std::vector<std::pair<State, Status>>> list_containers(const std::string &root);

/// "KILL", "SIGKILL", "9" -> 9.
util::Result<int> parse_signal(std::string_view s);

}  // namespace rt
