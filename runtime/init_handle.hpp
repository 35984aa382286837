// A handle on the init of a container this process created, for callers
// that run containers without giving up the process: a CLI driver, a PID-1
// supervisor holding many containers, a test starting two at once.
//
// Nothing here blocks signals, sets the child subreaper or reaps anything
// but the init itself: those belong to the caller, which knows what else
// the process runs. fd() is a pidfd (Linux 5.3+) that becomes readable
// when the init exits, for poll/epoll; on older kernels it is -1 and the
// caller wakes on SIGCHLD (or polls try_wait()). The init stays our
// unreaped child until try_wait() returns its code, so its pid cannot be
// reused meanwhile and waitpid(pid) is always the right process.
#pragma once

#include <sys/types.h>

#include <optional>

#include "runtime/state.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace rt {

class InitHandle {
public:
    /// The init of `st`, which must be a child of this process (the
    /// container was created here by create_container).
    static util::Result<InitHandle> open(const State &st);

    pid_t pid() const { return pid_; }
    /// Readable once the init exited; -1 without pidfd_open.
    int fd() const { return pidfd_.get(); }
    /// Never blocks: the init's exit code (128 + N when killed by signal
    /// N) once it exited, reaping it; nullopt while it runs.
    util::Result<std::optional<int>> try_wait();
    /// Waits up to `timeout_ms` (-1: no limit) for the exit, then try_wait().
    /// Blocks only the calling thread, and touches no signal.
    util::Result<std::optional<int>> wait(int timeout_ms = -1);

private:
    InitHandle(pid_t pid, util::UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
    pid_t pid_;
    util::UniqueFd pidfd_;      ///< empty on kernels without pidfd_open
    std::optional<int> code_;   ///< set once the init is reaped
};

}  // namespace rt
