#include <catch2/catch.hpp>

#include "util/result.hpp"
#include "util/strings.hpp"

using util::Error;
using util::Result;
using util::Status;

namespace {

int g_reached_after = 0;

Result<int> parse_positive(int v) {
    if (v <= 0) return Error::with_code(EINVAL, util::cat("value ", v));
    return v;
}

Result<int> doubled(int v) {
    int x = TRY(parse_positive(v));
    g_reached_after++;
    return x * 2;
}

Result<int> doubled_with_context(int v) { return TRY_CTX(doubled(v), "read config") + 0; }

Status outer(int v) {
    TRY_CTX(doubled_with_context(v), "create `web`");
    return util::ok();
}

}  // namespace

TEST_CASE("TRY yields the value on success") {
    g_reached_after = 0;
    auto r = doubled(21);
    REQUIRE(r.ok());
    CHECK(*r == 42);
    CHECK(g_reached_after == 1);
}

TEST_CASE("TRY returns the error early and keeps errno") {
    g_reached_after = 0;
    auto r = doubled(-1);
    REQUIRE_FALSE(r.ok());
    CHECK(g_reached_after == 0);
    CHECK(r.error().code == EINVAL);
    CHECK(r.error().context == "value -1");
}

TEST_CASE("each layer adds context, outermost first") {
    auto s = outer(0);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == EINVAL);
    CHECK(s.error().message() == "create `web`: read config: value 0: Invalid argument");
}

TEST_CASE("Result::context leaves success alone") {
    auto r = parse_positive(3).context("ignored");
    REQUIRE(r.ok());
    CHECK(*r == 3);
}

TEST_CASE("from_errno captures errno") {
    errno = ENOENT;
    auto e = Error::from_errno("open `config.json`");
    CHECK(e.message() == "open `config.json`: No such file or directory");
    CHECK(Error::msg("bad digest").message() == "bad digest");
}

TEST_CASE("strings helpers") {
    CHECK(util::cat("pid ", 42, ' ', -7, " ", true, " ", std::string("x")) == "pid 42 -7 true x");
    CHECK(util::parse_int<int>("123") == 123);
    CHECK_FALSE(util::parse_int<int>("12a").has_value());
    CHECK_FALSE(util::parse_int<int>("").has_value());
    CHECK(util::split("a,b,,c", ',') == std::vector<std::string>{"a", "b", "", "c"});
    CHECK(util::trim("  x \n") == "x");
}
