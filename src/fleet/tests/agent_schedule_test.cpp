// The fleet agent's poll schedule (schedule.hpp): jittered polls spread a
// fleet over the interval, full-jitter backoff grows and stops at its cap,
// and a success starts the backoff over. Seeded, so every run draws the same.
#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "fleet/schedule.hpp"

using fleet::Schedule;

namespace {

constexpr int64_t kInterval = 15 * 60 * 1000;
const Schedule::Params kParams{kInterval, 5000, 60 * 60 * 1000};

}  // namespace

TEST_CASE("the same seed draws the same schedule; another seed another one") {
    Schedule a(kParams, 42), b(kParams, 42), c(kParams, 43);
    std::vector<int64_t> da, db, dc;
    for (int i = 0; i < 20; i++) {
        da.push_back(i % 3 ? a.next_poll() : a.next_retry());
        db.push_back(i % 3 ? b.next_poll() : b.next_retry());
        dc.push_back(i % 3 ? c.next_poll() : c.next_retry());
    }
    CHECK(da == db);
    CHECK(da != dc);
}

TEST_CASE("polls are drawn uniformly within half an interval of it") {
    Schedule s(kParams, 7);
    constexpr int kDraws = 20000, kBuckets = 10;
    std::vector<int> buckets(kBuckets);
    double sum = 0;
    for (int i = 0; i < kDraws; i++) {
        int64_t d = s.next_poll();
        REQUIRE(d >= kInterval / 2);
        REQUIRE(d < kInterval / 2 + kInterval);
        sum += double(d);
        buckets[size_t((d - kInterval / 2) * kBuckets / kInterval)]++;
    }
    CHECK(sum / kDraws == Approx(double(kInterval)).epsilon(0.01));
    for (int n : buckets) CHECK(n == Approx(kDraws / kBuckets).epsilon(0.1));
}

TEST_CASE("a fleet started in the same second spreads its first polls over the first minute") {
    // 1000 devices (seeds 1..1000, as getrandom would give distinct ones)
    // boot together: no second of the minute gets more than 3x its share.
    constexpr int kDevices = 1000;
    std::vector<int> per_second(60);
    for (uint64_t seed = 1; seed <= kDevices; seed++) {
        int64_t d = Schedule(kParams, seed).first_poll();
        REQUIRE(d >= 0);
        REQUIRE(d < fleet::kFirstPollMaxMs);
        per_second[size_t(d / 1000)]++;
    }
    int busiest = *std::max_element(per_second.begin(), per_second.end());
    CHECK(busiest <= 3 * kDevices / 60);
    CHECK(std::count(per_second.begin(), per_second.end(), 0) == 0);
}

TEST_CASE("devices drift apart: after ten polls no two of a hundred are within a second of each other more than rarely") {
    constexpr int kDevices = 100;
    std::vector<int64_t> at(kDevices);
    for (int d = 0; d < kDevices; d++) {
        Schedule s(kParams, uint64_t(1000 + d));
        for (int i = 0; i < 10; i++) at[size_t(d)] += s.next_poll();
    }
    std::sort(at.begin(), at.end());
    int close = 0;
    for (size_t i = 1; i < at.size(); i++) close += at[i] - at[i - 1] < 1000;
    CHECK(close <= 5);
}

TEST_CASE("backoff ceilings double from the base and stop at the cap") {
    Schedule s({kInterval, 1000, 60000}, 3);
    std::vector<int64_t> ceilings;
    for (int i = 0; i < 10; i++) {
        ceilings.push_back(s.retry_ceiling());
        int64_t d = s.next_retry();
        REQUIRE(d >= 0);
        REQUIRE(d <= ceilings.back());
    }
    CHECK(ceilings == std::vector<int64_t>{1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000});
    CHECK(s.failures() == 10);
}

TEST_CASE("backoff is full jitter: uniform between zero and the ceiling") {
    Schedule s({kInterval, 1000, 8000}, 11);
    for (int i = 0; i < 5; i++) (void)s.next_retry();  // at the cap now
    constexpr int kDraws = 20000;
    double sum = 0;
    int low = 0;
    for (int i = 0; i < kDraws; i++) {
        int64_t d = s.next_retry();
        REQUIRE(d <= 8000);
        sum += double(d);
        low += d < 800;
    }
    CHECK(sum / kDraws == Approx(4000).epsilon(0.02));
    CHECK(low == Approx(kDraws / 10).epsilon(0.1));  // the lowest tenth is as likely as any other
}

TEST_CASE("a successful poll starts the backoff over") {
    Schedule s({kInterval, 1000, 60000}, 5);
    for (int i = 0; i < 4; i++) (void)s.next_retry();
    CHECK(s.retry_ceiling() == 16000);
    (void)s.next_poll();
    CHECK(s.failures() == 0);
    CHECK(s.retry_ceiling() == 1000);
}
