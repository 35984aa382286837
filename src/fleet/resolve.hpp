// Resolving the broker's host name off the daemon's event loop.
//
// getaddrinfo(3) blocks, for seconds when a name server is slow or gone,
// and glibc has no non-blocking resolver without threads. The fleet agent
// reconnects from the loop that supervises the device's containers, so the
// name is resolved in a forked child that writes the first address (numeric
// text) to a pipe the loop watches; a child still running at the timeout is
// killed. A host that is already an address needs none of this.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "util/event_loop.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace fleet {

/// Whether `host` is an IPv4 or IPv6 address (no resolution needed).
bool is_numeric_host(std::string_view host);

class Resolver {
public:
    /// The address as numeric text, or why there is none.
    using Done = std::function<void(util::Result<std::string> address)>;
    explicit Resolver(util::EventLoop &loop) : loop_(loop) {}
    ~Resolver() { cancel(); }
    Resolver(const Resolver &) = delete;
    Resolver &operator=(const Resolver &) = delete;

    /// Starts resolving `host` (TCP addresses of any family); `done` runs
    /// later on the loop, never inside start(). One at a time: a start()
    /// while one runs cancels it.
    void start(const std::string &host, int64_t timeout_ms, Done done);
    /// Stops a resolution in progress; its `done` is not called.
    void cancel();
    bool running() const { return pid_ > 0; }

private:
    void finish(util::Result<std::string> r);
    void readable();
    /// Stops watching and waits for the child, killing it first when `kill`.
    void stop(bool kill);

    util::EventLoop &loop_;
    pid_t pid_ = -1;
    util::UniqueFd rd_;
    std::string buf_, host_;
    util::EventLoop::TimerId timer_ = 0;
    Done done_;
    bool child_closed_ = false;  ///< the child closed its end: it exited
};

}  // namespace fleet
