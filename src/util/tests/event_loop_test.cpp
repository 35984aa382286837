// util::EventLoop: fds and timers dispatched, and nothing called after it
// was unwatched or cancelled, even from the same batch.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "util/event_loop.hpp"

using util::EventLoop;

namespace {
std::pair<util::UniqueFd, util::UniqueFd> make_pipe() {
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    return {util::UniqueFd(p[0]), util::UniqueFd(p[1])};
}
}  // namespace

TEST_CASE("event loop calls the callback of a readable fd") {
    auto loop = EventLoop::create().value();
    auto [r, w] = make_pipe();
    int calls = 0;
    REQUIRE(loop->watch(r.get(), EPOLLIN, [&](uint32_t ev) { calls++; CHECK((ev & EPOLLIN) != 0); }).ok());
    REQUIRE(loop->run_once(0).ok());
    CHECK(calls == 0);
    REQUIRE(write(w.get(), "x", 1) == 1);
    REQUIRE(loop->run_once(1000).ok());
    CHECK(calls == 1);
}

TEST_CASE("event loop never calls an fd unwatched earlier in the same batch") {
    auto loop = EventLoop::create().value();
    auto [r1, w1] = make_pipe();
    auto [r2, w2] = make_pipe();
    int calls = 0;
    // Whichever fd comes first unwatches the other.
    int a = r1.get(), b = r2.get();
    REQUIRE(loop->watch(a, EPOLLIN, [&](uint32_t) { calls++; loop->unwatch(b); }).ok());
    REQUIRE(loop->watch(b, EPOLLIN, [&](uint32_t) { calls++; loop->unwatch(a); }).ok());
    REQUIRE(write(w1.get(), "x", 1) == 1);
    REQUIRE(write(w2.get(), "x", 1) == 1);
    REQUIRE(loop->run_once(1000).ok());
    CHECK(calls == 1);
}

TEST_CASE("event loop fires timers in deadline order and skips cancelled ones") {
    auto loop = EventLoop::create().value();
    std::vector<int> order;
    loop->after(20, [&] { order.push_back(2); });
    auto cancelled = loop->after(10, [&] { order.push_back(99); });
    loop->after(5, [&] { order.push_back(1); });
    loop->cancel(cancelled);
    CHECK(loop->remaining(cancelled) == -1);
    int64_t start = util::monotonic_ms();
    while (order.size() < 2 && util::monotonic_ms() - start < 5000) REQUIRE(loop->run_once().ok());
    CHECK(order == std::vector<int>{1, 2});
}

TEST_CASE("event loop timer callbacks may cancel a timer due in the same round") {
    auto loop = EventLoop::create().value();
    int fired = 0;
    EventLoop::TimerId second = 0;
    loop->after(0, [&] { fired++; loop->cancel(second); });
    second = loop->after(0, [&] { fired += 10; });
    int64_t start = util::monotonic_ms();
    while (loop->remaining(second) >= 0 && util::monotonic_ms() - start < 5000) REQUIRE(loop->run_once(10).ok());
    REQUIRE(loop->run_once(0).ok());
    CHECK(fired == 1);
}

TEST_CASE("event loop run() returns after stop()") {
    auto loop = EventLoop::create().value();
    loop->after(1, [&] { loop->stop(); });
    REQUIRE(loop->run().ok());
    CHECK(loop->stopped());
}
