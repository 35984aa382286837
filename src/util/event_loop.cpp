// util::EventLoop: epoll for the fds, an ordered map of deadlines for the
// timers. Each watch is registered under a serial number (epoll's data), so
// an event read in a batch for an fd that was unwatched (and maybe watched
// again under the same number) by an earlier callback of that batch is
// recognised as stale and dropped.
#include "util/event_loop.hpp"

#include <time.h>

#include <cerrno>
#include <vector>

namespace util {

int64_t monotonic_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return Error::from_errno("epoll_create1");
    return std::unique_ptr<EventLoop>(new EventLoop(UniqueFd(ep)));
}

Status EventLoop::watch(int fd, uint32_t events, FdCallback cb) {
    uint64_t serial = next_serial_++;
    struct epoll_event ev = {};
    ev.events = events;
    ev.data.u64 = serial;
    auto it = fds_.find(fd);
    int op = it == fds_.end() ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(ep_.get(), op, fd, &ev) < 0) return Error::from_errno("epoll_ctl fd " + std::to_string(fd));
    if (it != fds_.end()) serials_.erase(it->second.serial);
    fds_[fd] = Watch{serial, events, std::make_shared<FdCallback>(std::move(cb))};
    serials_[serial] = fd;
    return {};
}

void EventLoop::unwatch(int fd) {
    auto it = fds_.find(fd);
    if (it == fds_.end()) return;
    serials_.erase(it->second.serial);
    fds_.erase(it);
    epoll_ctl(ep_.get(), EPOLL_CTL_DEL, fd, nullptr);  // fails only if already closed
}

EventLoop::TimerId EventLoop::after(int64_t ms, TimerCallback cb) {
    TimerId id = next_timer_++;
    int64_t due = monotonic_ms() + (ms < 0 ? 0 : ms);
    deadlines_.emplace(due, id);
    timers_.emplace(id, std::make_pair(due, std::move(cb)));
    return id;
}

void EventLoop::cancel(TimerId id) {
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    auto [lo, hi] = deadlines_.equal_range(it->second.first);
    for (auto d = lo; d != hi; ++d)
        if (d->second == id) {
            deadlines_.erase(d);
            break;
        }
    timers_.erase(it);
}

int64_t EventLoop::remaining(TimerId id) const {
    auto it = timers_.find(id);
    if (it == timers_.end()) return -1;
    int64_t left = it->second.first - monotonic_ms();
    return left < 0 ? 0 : left;
}

Status EventLoop::run_once(int max_ms) {
    int timeout = max_ms;
    if (!deadlines_.empty()) {
        int64_t left = deadlines_.begin()->first - monotonic_ms();
        if (left < 0) left = 0;
        if (timeout < 0 || left < timeout) timeout = int(left);
    }
    struct epoll_event evs[32];
    int n = epoll_wait(ep_.get(), evs, 32, timeout);
    if (n < 0 && errno != EINTR) return Error::from_errno("epoll_wait");
    // Callbacks of this batch, looked up now: a callback may unwatch an fd
    // whose event is later in the batch; its serial then no longer matches.
    for (int i = 0; i < n; ++i) {
        auto s = serials_.find(evs[i].data.u64);
        if (s == serials_.end()) continue;
        std::shared_ptr<FdCallback> cb = fds_.at(s->second).cb;  // alive while it runs
        (*cb)(evs[i].events);
    }
    // Timers due now; those a callback starts with 0 delay run on the next round.
    int64_t now = monotonic_ms();
    std::vector<TimerId> due;
    for (auto d = deadlines_.begin(); d != deadlines_.end() && d->first <= now; ++d) due.push_back(d->second);
    for (TimerId id : due) {
        auto it = timers_.find(id);
        if (it == timers_.end()) continue;  // cancelled by an earlier callback
        TimerCallback cb = std::move(it->second.second);
        cancel(id);
        cb();
    }
    return {};
}

Status EventLoop::run() {
    stopped_ = false;
    while (!stopped_) TRY(run_once());
    return {};
}

}  // namespace util
