// The fleet agent's outbox (outbox.hpp): reports kept in order across a
// reopen, the oldest dropped first to stay within the bound, sent ones
// removed, the file written only at sync(), and nothing left behind but
// the one file.
#include <catch2/catch.hpp>
#include <string>

#include "fleet/outbox.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/tests/tmpdir.hpp"

namespace {


std::string report(int seq) { return util::cat("{\"seq\":", seq, ",\"pad\":\"", std::string(20, 'x'), "\"}"); }

}  // namespace

TEST_CASE("an outbox that does not exist opens empty") {
    TempDir s;
    auto o = fleet::Outbox::open((s / "outbox"), 1024);
    REQUIRE(o);
    CHECK(o->empty());
    CHECK(!util::path_exists((s / "outbox")));
}

TEST_CASE("reports come back in the order they were queued, after a reopen") {
    TempDir s;
    {
        auto o = fleet::Outbox::open((s / "outbox"), 4096);
        REQUIRE(o);
        for (int i = 1; i <= 5; i++) REQUIRE(o->push(report(i)));
        REQUIRE(o->sync());
    }
    auto o = fleet::Outbox::open((s / "outbox"), 4096);
    REQUIRE(o);
    REQUIRE(o->entries().size() == 5);
    for (int i = 1; i <= 5; i++) CHECK(o->entries()[size_t(i - 1)] == report(i));
    CHECK(*util::read_file((s / "outbox")) == util::cat(report(1), '\n', report(2), '\n', report(3), '\n', report(4), '\n', report(5), '\n'));
}

TEST_CASE("the oldest reports are dropped first to stay within the bound") {
    TempDir s;
    size_t line = report(1).size() + 1;
    auto o = fleet::Outbox::open((s / "outbox"), 3 * line + line / 2);  // room for three
    REQUIRE(o);
    for (int i = 1; i <= 10; i++) {
        REQUIRE(o->push(report(i)));
        CHECK(o->bytes() <= 3 * line + line / 2);
    }
    REQUIRE(o->entries().size() == 3);
    CHECK(o->entries()[0] == report(8));
    CHECK(o->entries()[2] == report(10));
    CHECK(o->dropped() == 7);
    REQUIRE(o->sync());
    auto size = util::read_file((s / "outbox"));
    REQUIRE(size);
    CHECK(size->size() == o->bytes());
    CHECK(o->bytes() == report(8).size() + report(9).size() + report(10).size() + 3);
}

TEST_CASE("a file over a lowered bound keeps its newest reports") {
    TempDir s;
    size_t line = report(1).size() + 1;
    {
        auto o = fleet::Outbox::open((s / "outbox"), 100 * line);
        REQUIRE(o);
        for (int i = 1; i <= 6; i++) REQUIRE(o->push(report(i)));
        REQUIRE(o->sync());
    }
    auto o = fleet::Outbox::open((s / "outbox"), 2 * line);
    REQUIRE(o);
    REQUIRE(o->entries().size() == 2);
    CHECK(o->entries()[0] == report(5));
    CHECK(util::read_file((s / "outbox"))->size() == 2 * line);
}

TEST_CASE("sent reports are removed from the front") {
    TempDir s;
    auto o = fleet::Outbox::open((s / "outbox"), 4096);
    REQUIRE(o);
    for (int i = 1; i <= 4; i++) REQUIRE(o->push(report(i)));
    REQUIRE(o->sync());
    REQUIRE(o->pop(3));
    REQUIRE(o->entries().size() == 1);
    CHECK(o->entries()[0] == report(4));
    REQUIRE(o->push(report(5)));
    REQUIRE(o->sync());
    auto again = fleet::Outbox::open((s / "outbox"), 4096);
    REQUIRE(again);
    REQUIRE(again->entries().size() == 2);
    CHECK(again->entries()[0] == report(4));
}

TEST_CASE("a pushed report is in the file only after sync()") {
    TempDir s;
    auto o = fleet::Outbox::open((s / "outbox"), 4096);
    REQUIRE(o);
    REQUIRE(o->push(report(1)));
    CHECK(!o->synced());
    CHECK(!util::path_exists((s / "outbox")));
    REQUIRE(o->sync());
    CHECK(o->synced());
    CHECK(*util::read_file((s / "outbox")) == util::cat(report(1), '\n'));
}

TEST_CASE("acknowledging every report removes the file; acknowledging some leaves it until the next write") {
    TempDir s;
    auto o = fleet::Outbox::open((s / "outbox"), 4096);
    REQUIRE(o);
    for (int i = 1; i <= 3; i++) REQUIRE(o->push(report(i)));
    REQUIRE(o->sync());
    REQUIRE(o->pop(1));
    CHECK(o->synced());  // what is queued is in the file (with one acknowledged report more)
    CHECK(util::read_file((s / "outbox"))->size() == 3 * (report(1).size() + 1));
    REQUIRE(o->pop(2));
    CHECK(!util::path_exists((s / "outbox")));
}

TEST_CASE("reports acknowledged before any sync() never touch the disk") {
    TempDir s;
    auto o = fleet::Outbox::open((s / "outbox"), 4096);
    REQUIRE(o);
    REQUIRE(o->push(report(1)));
    REQUIRE(o->pop(1));
    CHECK(o->synced());
    REQUIRE(o->sync());
    CHECK(!util::path_exists((s / "outbox")));
}

TEST_CASE("a report over the whole bound, or of two lines, is refused and the queue kept") {
    TempDir s;
    auto o = fleet::Outbox::open((s / "outbox"), 64);
    REQUIRE(o);
    REQUIRE(o->push("{\"a\":1}"));
    auto st = o->push(std::string(100, 'x'));
    REQUIRE(!st);
    CHECK_THAT(st.error().message(), Catch::Contains("over the bound"));
    CHECK(!o->push("{}\n{}"));
    CHECK(o->entries().size() == 1);
}

TEST_CASE("only the outbox file is left in its directory (no temporaries)") {
    TempDir s;
    auto o = fleet::Outbox::open((s / "outbox"), 256);
    REQUIRE(o);
    for (int i = 0; i < 30; i++) {
        REQUIRE(o->push(report(i)));
        REQUIRE(o->sync());
    }
    REQUIRE(o->pop(2));
    auto names = util::list_dir(s.path);
    REQUIRE(names);
    CHECK(*names == std::vector<std::string>{"outbox"});
}
