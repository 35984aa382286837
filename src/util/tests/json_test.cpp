#include <catch2/catch.hpp>

#include "util/json.hpp"

namespace json = util::json;

TEST_CASE("parse reports where malformed input breaks") {
    auto r = json::parse("{\n  \"a\": tru\n}", "config.json");
    REQUIRE_FALSE(r.ok());
    INFO(r.error().message());
    CHECK(r.error().message().rfind("config.json: line ", 0) == 0);
    CHECK(r.error().message().find("invalid literal") != std::string::npos);
    CHECK_FALSE(json::parse("", "x").ok());
    CHECK_FALSE(json::parse("{} trailing", "x").ok());
}

TEST_CASE("parse refuses absurd nesting instead of exhausting the stack") {
    std::string deep(100000, '[');
    auto r = json::parse(deep, "bomb");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("nesting") != std::string::npos);
}

TEST_CASE("typed accessors name the field and the type") {
    auto v = json::parse(R"({"process":{"args":"sh","cwd":"/","user":{"uid":-1},"ok":true,"list":["a",1]}})", "c")
                 .value();
    const auto &p = v["process"];
    auto args = json::opt_string_array(p, "args", "process");
    REQUIRE_FALSE(args.ok());
    CHECK(args.error().message() == "`process.args`: expected an array, got a string: Invalid argument");
    CHECK(json::req_string(p, "cwd", "process").value() == "/");
    auto uid = json::opt_uint(p["user"], "uid", "process.user");
    REQUIRE_FALSE(uid.ok());
    CHECK(uid.error().context == "`process.user.uid`: must not be negative");
    CHECK(json::opt_bool(p, "ok", "process").value() == true);
    CHECK_FALSE(json::opt_bool(p, "absent", "process").value().has_value());
    auto list = json::opt_string_array(p, "list", "process");
    REQUIRE_FALSE(list.ok());
    CHECK(list.error().context == "`process.list[1]`: expected a string, got an integer");
    auto missing = json::req_string(p, "nothing", "process");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().context == "`process.nothing`: missing");
}

TEST_CASE("opt_uint accepts non-negative integers built in code") {
    json::Value v = json::Value::object();
    v["n"] = 38;
    v["neg"] = -1;
    CHECK(json::opt_uint(v, "n", "").value() == 38u);
    CHECK_FALSE(json::opt_uint(v, "neg", "").ok());
}

TEST_CASE("dump never aborts on invalid UTF-8") {
    json::Value v = std::string("\xff\xfe");
    CHECK_FALSE(json::dump(v).empty());
}
