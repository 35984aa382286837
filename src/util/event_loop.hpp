// One thread's event loop: file descriptors (epoll) and monotonic timers.
//
// The daemon is single-threaded: its signals (a signalfd), the pidfds of
// container inits, the log files it follows, health probes' sockets and the
// control socket all wake one epoll_wait, and every timeout (restart
// backoff, health intervals, grace periods, the watchdog heartbeat) is a
// timer here. Callbacks run on the loop's thread and may watch, unwatch,
// start or cancel anything, themselves included: an fd unwatched or a
// timer cancelled while a batch is dispatched is never called afterwards,
// even when its number is reused at once.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace util {

/// Milliseconds of CLOCK_MONOTONIC.
int64_t monotonic_ms();

class EventLoop {
public:
    using FdCallback = std::function<void(uint32_t events)>;
    using TimerCallback = std::function<void()>;
    using TimerId = uint64_t;  ///< never 0: 0 is "no timer"

    static Result<std::unique_ptr<EventLoop>> create();

    /// Calls `cb` with the EPOLL* events whenever `fd` is ready for `events`
    /// (level-triggered). The fd stays the caller's; unwatch it before closing.
    /// Watching an fd again replaces its events and callback.
    Status watch(int fd, uint32_t events, FdCallback cb);
    void unwatch(int fd);
    bool watching(int fd) const { return fds_.count(fd) != 0; }

    /// Calls `cb` once, `ms` milliseconds from now.
    TimerId after(int64_t ms, TimerCallback cb);
    /// Does nothing for 0, a fired or a cancelled timer.
    void cancel(TimerId id);
    /// Milliseconds until timer `id` fires (0 if due), or -1 when it is not pending.
    int64_t remaining(TimerId id) const;

    /// Waits up to `max_ms` (-1: until an fd or a timer is due), then runs
    /// every callback that is due. EINTR is not an error.
    Status run_once(int max_ms = -1);
    /// run_once until stop() is called.
    Status run();
    void stop() { stopped_ = true; }
    bool stopped() const { return stopped_; }

private:
    EventLoop(UniqueFd ep) : ep_(std::move(ep)) {}
    struct Watch {
        uint64_t serial;
        uint32_t events;
        std::shared_ptr<FdCallback> cb;
    };
    UniqueFd ep_;
    std::unordered_map<int, Watch> fds_;
    std::unordered_map<uint64_t, int> serials_;  ///< serial -> fd, of the live watches
    uint64_t next_serial_ = 1;
    std::multimap<int64_t, TimerId> deadlines_;
    std::unordered_map<TimerId, std::pair<int64_t, TimerCallback>> timers_;
    TimerId next_timer_ = 1;
    bool stopped_ = false;
};

}  // namespace util
