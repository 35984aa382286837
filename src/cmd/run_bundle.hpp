// `berth run` of a bundle in the foreground, as runc does it: the driver
// around the runtime's non-blocking calls (create, start, the init's
// handle). This process becomes the child subreaper, so the container's
// orphans are reaped here; SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
// SIGUSR2 and SIGWINCH are passed on to the container's init; a terminal
// without --console-socket is proxied to our stdio. The signal mask is
// restored on every return, and the subreaper flag is left set (the
// process ends soon after, and orphans may still arrive).
#pragma once

#include <signal.h>

#include <initializer_list>

#include "runtime/container.hpp"
#include "util/result.hpp"

namespace cmd {

/// Blocks `sigs` for this scope; the previous mask comes back at its end.
class BlockedSignals {
public:
    explicit BlockedSignals(std::initializer_list<int> sigs);
    ~BlockedSignals();
    BlockedSignals(const BlockedSignals &) = delete;
    BlockedSignals &operator=(const BlockedSignals &) = delete;
    const sigset_t &set() const { return set_; }

private:
    sigset_t set_, old_;
};

/// create + start. Detached: returns 0 at once. Otherwise waits for the
/// init (see above), deletes the container unless `keep`, and returns its
/// exit code (128 + N when killed by signal N).
util::Result<int> run_bundle(const rt::CreateOptions &opts, bool detach, bool keep);

}  // namespace cmd
