// fleet::Schedule: poll jitter and full-jitter backoff; see schedule.hpp.
#include "fleet/schedule.hpp"

#include <algorithm>

namespace fleet {

uint64_t Rng::next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t Rng::uniform(int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    return lo + int64_t(next() % uint64_t(hi - lo));  // the modulo bias is below 2^-40 for spans under 2^24 s
}

Schedule::Schedule(Params p, uint64_t seed) : p_(p), rng_(seed) {
    p_.interval_ms = std::max<int64_t>(p_.interval_ms, 1);
    p_.backoff_base_ms = std::max<int64_t>(p_.backoff_base_ms, 1);
    p_.backoff_max_ms = std::max(p_.backoff_max_ms, p_.backoff_base_ms);
}

int64_t Schedule::first_poll() { return rng_.uniform(0, std::min(p_.interval_ms, kFirstPollMaxMs)); }

int64_t Schedule::next_poll(int64_t interval_ms) {
    failures_ = 0;
    return jittered(interval_ms);
}

int64_t Schedule::jittered(int64_t interval_ms) {
    interval_ms = std::max<int64_t>(interval_ms, 1);
    return rng_.uniform(interval_ms / 2, interval_ms / 2 + interval_ms);
}

int64_t Schedule::retry_ceiling() const {
    int64_t ceiling = p_.backoff_base_ms;
    for (unsigned i = 0; i < failures_ && ceiling < p_.backoff_max_ms; i++) ceiling *= 2;
    return std::min(ceiling, p_.backoff_max_ms);
}

int64_t Schedule::next_retry() {
    int64_t ceiling = retry_ceiling();
    failures_++;
    return rng_.uniform(0, ceiling + 1);
}

}  // namespace fleet
