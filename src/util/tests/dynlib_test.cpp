// DynLib: a library that is not there, or lacks a symbol callers need, is an
// error naming it, the same on every call; one that is there gives its symbols.
#include <catch2/catch.hpp>

#include "util/dynlib.hpp"

namespace {
constexpr const char *kNone[] = {"strlen"};
}

TEST_CASE("DynLib reports a missing library by name, every time", "[dynlib]") {
    util::DynLib lib("libberth-no-such-library.so.7", "the test library (libberth-no-such-library.so.7)", kNone);
    auto st = lib.load();
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.error().message(), Catch::StartsWith("cannot load the test library (libberth-no-such-library.so.7): "));
    auto again = lib.load();
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().message() == st.error().message());
}

TEST_CASE("DynLib opens a library and finds its symbols", "[dynlib]") {
    // libc is always there (under qemu-user too, from the sysroot).
    constexpr const char *names[] = {"strlen"};
    util::DynLib libc("libc.so.6", "libc", names);
    REQUIRE(libc.load().ok());
    using Strlen = size_t (*)(const char *);
    auto f = reinterpret_cast<Strlen>(libc.symbol("strlen"));
    REQUIRE(f != nullptr);
    CHECK(f("berth") == 5);
}

TEST_CASE("DynLib refuses a library without a symbol its callers need", "[dynlib]") {
    constexpr const char *names[] = {"strlen", "berth_no_such_function"};
    util::DynLib libc("libc.so.6", "libc", names);
    auto st = libc.load();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message() == "cannot load libc: it has no berth_no_such_function (too old?)");
}
