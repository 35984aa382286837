// The hardware watchdog (/dev/watchdog, or the board's): opened with a
// timeout, fed only from the daemon's main loop heartbeat, so a hung loop
// resets the box; closed with the magic 'V' on a clean shutdown so the
// reset does not fire while the box powers off.
#pragma once

#include <string>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace svc {

class Watchdog {
public:
    /// Opens `device`, sets `timeout_s` (the driver may round it: timeout()).
    static util::Result<Watchdog> open(const std::string &device, int timeout_s);
    int timeout() const { return timeout_s_; }
    util::Status feed();
    /// Magic close: disarms the watchdog (where the driver allows it).
    util::Status disarm();

private:
    Watchdog(util::UniqueFd fd, int t) : fd_(std::move(fd)), timeout_s_(t) {}
    util::UniqueFd fd_;
    int timeout_s_;
};

}  // namespace svc
