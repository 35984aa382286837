// Starting other programs with nothing leaked into them.
//
// The child gets only the fds it is given (0, 1, 2 and `keep_fds`), an empty
// signal mask and default signal dispositions, whatever the parent had.
// Between fork and exec only async-signal-safe calls are made.
#pragma once

#include <sys/types.h>

#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace util {

struct SpawnOptions {
    std::optional<std::vector<std::string>> env;  ///< nullopt: inherit the parent's
    std::string cwd;                               ///< empty: inherit
    int stdin_fd = -1;   ///< -1: inherit fd 0
    int stdout_fd = -1;  ///< -1: inherit fd 1
    int stderr_fd = -1;  ///< -1: inherit fd 2
    std::vector<int> keep_fds;  ///< further fds passed through at the same numbers
    bool new_session = false;
};

/// A started child that this process owns. Move-only. wait() reaps it;
/// destroyed (or assigned over) while it still runs, it is killed with
/// SIGKILL and reaped, so no child outlives its owner unnoticed and no
/// zombie is left. release() gives it up (a detached process).
class Child {
public:
    Child() = default;
    explicit Child(pid_t pid) : pid_(pid) {}
    Child(Child &&o) noexcept : pid_(o.release()) {}
    /// Kills and reaps the child held so far, then takes `o`'s.
    Child &operator=(Child &&o) noexcept;
    Child(const Child &) = delete;
    Child &operator=(const Child &) = delete;
    ~Child() { terminate(); }

    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0; }
    /// Waits for exit; returns the exit code, or 128 + signal number.
    Result<int> wait();
    Status kill(int sig);
    /// Stops owning the child (it is no longer waited for); returns its pid.
    pid_t release() { return std::exchange(pid_, -1); }

private:
    /// SIGKILL and reap, when a child is held.
    void terminate() noexcept;
    pid_t pid_ = -1;  ///< -1 once reaped or released
};

/// Starts argv[0] (searched in PATH when it has no slash).
Result<Child> spawn(const std::vector<std::string> &argv, const SpawnOptions &opts = {});
/// spawn + wait.
Result<int> run_process(const std::vector<std::string> &argv, const SpawnOptions &opts = {});

/// In a child just forked to run code of `parent` (no exec): it dies with
/// the parent (PR_SET_PDEATHSIG SIGKILL; _exit(1) at once when the parent
/// is already gone) and blocks no signal.
void become_worker_of(pid_t parent);

/// Turns a wait status into an exit code (128 + signal for a kill).
int exit_code_from_status(int status);

/// Closes every fd >= `first` except those in `keep` (close_range, with a
/// /proc/self/fd walk where the kernel lacks it). Async-signal-safe.
void close_fds_from(int first, const int *keep, size_t nkeep);

}  // namespace util
