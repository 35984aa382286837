// Reaping for a process that is PID 1 or a child subreaper: every child
// that exits (a container's init, a health probe, a staging child, an
// orphan re-parented to us) is reaped here, on SIGCHLD, and its status goes
// to whoever registered its pid. Nothing else in the daemon calls wait*()
// on a pid the reaper may see (util::Child::release() after spawning).
#pragma once

#include <sys/types.h>

#include <functional>
#include <unordered_map>

namespace svc {

class Reaper {
public:
    /// Exit code, or 128 + N when killed by signal N.
    using Callback = std::function<void(int code)>;

    /// `cb` gets `pid`'s exit. Register a child in the same loop callback
    /// that started it, so it cannot be reaped before.
    void expect(pid_t pid, Callback cb) { owners_[pid] = std::move(cb); }
    void forget(pid_t pid) { owners_.erase(pid); }
    bool expecting(pid_t pid) const { return owners_.count(pid) != 0; }

    /// Reaps every exited child without blocking (call on SIGCHLD);
    /// returns how many were reaped. Orphans nobody expects are counted in
    /// orphans().
    int reap();
    unsigned long orphans() const { return orphans_; }

private:
    std::unordered_map<pid_t, Callback> owners_;
    unsigned long orphans_ = 0;
};

}  // namespace svc
