// `exec`: running another process inside a running container.
//
// The process comes either from a process.json (`--process`, parsed like the
// spec's `process`) or from the container's own `process` with runc's
// overrides (args, --env appended, --cwd, --user, --cap, --tty,
// --no-new-privs). The container's seccomp filter applies to it as to the init.
//
// How it enters, following runc's nsenter: berth joins the init's pid
// namespace itself (setns on a pid namespace only affects children), forks;
// the child waits until berth has moved it into the container's cgroup (from
// the host, so the container's memory limit never has to hold berth), then
// joins the other namespaces, user first and mount last, and the init's root
// (rt::enter_container), sets up the console if asked, and goes through the
// same process setup as the init (rt::setup_process_and_exec). Without
// --detach berth waits and returns the process's exit code (128+signal when
// killed), forwarding the signals it receives.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/spec.hpp"
#include "runtime/state.hpp"
#include "util/result.hpp"

namespace rt {

/// What `berth exec` was asked for, before it is turned into a Process.
struct ExecRequest {
    std::string process_file;            ///< --process: a process.json ("-" is not accepted)
    std::vector<std::string> args;       ///< the command, when no --process
    std::vector<std::string> env;        ///< --env, appended
    std::optional<std::string> cwd;      ///< --cwd
    std::optional<std::string> user;     ///< --user uid[:gid]
    std::vector<uint32_t> additional_gids;  ///< --additional-gids
    std::vector<std::string> caps;       ///< --cap, added to bounding/effective/permitted
    std::optional<bool> tty;             ///< --tty given
    std::optional<bool> no_new_privs;    ///< --no-new-privs given
    std::string apparmor, process_label; ///< --apparmor, --process-label
};

/// The process to run: from `req.process_file` or from `base` (the
/// container's `process`) with the request's overrides. Errors name the flag.
util::Result<Process> exec_process(const ExecRequest &req, const Process *base);

/// Parses runc's `--user uid[:gid]` into `user` (numeric ids only).
util::Status parse_exec_user(std::string_view s, User &user);

struct ExecOptions {
    std::string console_socket;  ///< --console-socket
    std::string pid_file;        ///< --pid-file
    bool detach = false;         ///< --detach
    int preserve_fds = 0;        ///< --preserve-fds
    bool systemd_cgroup = false; ///< the global --systemd-cgroup
    /// --cgroup: sub-cgroups to join (cgroup::parse_sub_cgroups); empty: the container's.
    std::vector<std::pair<std::string, std::string>> sub_cgroups;
};

/// Runs `proc` inside the container `st` (status must be running). Returns
/// the process's exit code, or 0 with --detach once it has started.
util::Result<int> exec_in_container(const State &st, const Spec &spec, const Process &proc, const ExecOptions &opts);

}  // namespace rt
