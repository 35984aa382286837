// svc::Reaper: waitpid(-1, WNOHANG) until nothing is left, each status
// handed to its owner (the owner is dropped first, so a callback may
// register the pid of a process it starts at once).
#include "daemon/reaper.hpp"

#include <sys/wait.h>

#include <cerrno>

namespace svc {

int Reaper::reap() {
    int n = 0;
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR) continue;
        if (pid <= 0) break;  // 0: children left, none exited; ECHILD: none left
        ++n;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        auto it = owners_.find(pid);
        if (it == owners_.end()) {
            ++orphans_;
            continue;
        }
        Callback cb = std::move(it->second);
        owners_.erase(it);
        cb(code);
    }
    return n;
}

}  // namespace svc
