// When the fleet agent next asks the repository (agent.hpp): the poll
// interval with jitter, and full-jitter exponential backoff after errors.
//
// A fleet must never poll in lockstep: devices that boot together (a power
// cut over a city) or that all saw the repository fail at once would
// otherwise hit it in the same second, again and again. So every wait is
// drawn at random from a seeded generator (tests seed it and check the
// distribution; the agent seeds it from getrandom):
//
//   first poll   uniform in [0, min(interval, kFirstPollMaxMs))  a device
//                checks soon after it starts, a fleet spread over a minute
//   next poll    uniform in [interval/2, 3*interval/2)  the mean stays the
//                interval while devices drift apart (the interval may be
//                another one, the agent's while a broker pushes)
//   retry n      uniform in [0, min(cap, base * 2^(n-1))]  ("full jitter":
//                the n-th error in a row; a success starts over)
#pragma once

#include <cstdint>

namespace fleet {

inline constexpr int64_t kFirstPollMaxMs = 60 * 1000;

/// A small seeded generator (SplitMix64): the same seed gives the same
/// sequence on every platform.
class Rng {
public:
    explicit Rng(uint64_t seed) : state_(seed) {}
    uint64_t next();
    /// Uniform in [lo, hi) (lo when hi <= lo).
    int64_t uniform(int64_t lo, int64_t hi);

private:
    uint64_t state_;
};

class Schedule {
public:
    struct Params {
        int64_t interval_ms = 15 * 60 * 1000;
        int64_t backoff_base_ms = 5 * 1000;
        int64_t backoff_max_ms = 60 * 60 * 1000;
    };
    Schedule(Params p, uint64_t seed);

    int64_t first_poll();
    /// After a successful refresh; resets the failure count.
    int64_t next_poll() { return next_poll(p_.interval_ms); }
    int64_t next_poll(int64_t interval_ms);
    /// A poll wait around `interval_ms`, the failure count kept.
    int64_t jittered(int64_t interval_ms);
    /// After a failed one: counts it and draws its wait.
    int64_t next_retry();
    unsigned failures() const { return failures_; }
    /// The upper bound of the next retry's wait (base * 2^failures, capped).
    int64_t retry_ceiling() const;

private:
    Params p_;
    Rng rng_;
    unsigned failures_ = 0;
};

}  // namespace fleet
