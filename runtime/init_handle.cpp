// The container init's handle; see init_handle.hpp.
#include "runtime/init_handle.hpp"

#include <errno.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>

#include "util/process.hpp"
#include "util/strings.hpp"
#include "util/syscalls.hpp"

namespace rt {

using util::Error;

util::Result<InitHandle> InitHandle::open(const State &st) {
    if (st.pid <= 0) return Error::msg(util::cat("container ", util::quote(st.id), " has no init"));
    // Only a child can be waited for; WNOWAIT leaves an exited one as it is.
    siginfo_t si{};
    if (::waitid(P_PID, static_cast<id_t>(st.pid), &si, WEXITED | WNOHANG | WNOWAIT) < 0)
        return Error::from_errno(util::cat("container ", util::quote(st.id), ": init ", st.pid, " is not a child of this process"));
    util::UniqueFd fd(util::sys::pidfd_open(st.pid, 0));
    if (!fd && errno != ENOSYS) return Error::from_errno(util::cat("pidfd_open ", st.pid));
    return InitHandle(st.pid, std::move(fd));
}

util::Result<std::optional<int>> InitHandle::try_wait() {
    if (code_) return code_;
    int status = 0;
    pid_t r;
    do r = ::waitpid(pid_, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r < 0) return Error::from_errno(util::cat("wait for the container init ", pid_));
    if (r == 0) return std::optional<int>();
    code_ = util::exit_code_from_status(status);
    pidfd_.reset();
    return code_;
}

util::Result<std::optional<int>> InitHandle::wait(int timeout_ms) {
    timespec start{};
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (auto code = TRY(try_wait())) return code;
        int left = -1;
        if (timeout_ms >= 0) {
            timespec now{};
            ::clock_gettime(CLOCK_MONOTONIC, &now);
            long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (elapsed >= timeout_ms) return std::optional<int>();
            left = static_cast<int>(timeout_ms - elapsed);
        }
        if (pidfd_) {
            struct pollfd p = {pidfd_.get(), POLLIN, 0};
            if (::poll(&p, 1, left) < 0 && errno != EINTR) return Error::from_errno("poll the init's pidfd");
        } else {
            // No pidfd: a short sleep between checks (SIGCHLD is the caller's).
            struct timespec ts = {0, 5 * 1000 * 1000};
            if (left >= 0 && left < 5) ts.tv_nsec = left * 1000 * 1000;
            ::nanosleep(&ts, nullptr);
        }
    }
}

}  // namespace rt
