#include <catch2/catch.hpp>

#include <vector>

#include "util/args.hpp"

namespace {

const util::OptSpec kSpecs[] = {
    {"bundle", 'b', true, "DIR", ""},
    {"detach", 'd', false, nullptr, ""},
    {"tty", 't', false, nullptr, ""},
    {"env", 'e', true, "K=V", ""},
};

util::Result<util::ParsedArgs> parse(std::vector<std::string> args, bool stop = false) {
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(a.data());
    return util::parse_args(static_cast<int>(argv.size()), argv.data(), kSpecs, stop);
}

}  // namespace

TEST_CASE("long, single-dash long, inline and short forms") {
    auto p = parse({"--bundle", "/b", "-detach", "id", "-e", "A=1", "--env=B=2", "-t"}).value();
    CHECK(p.get("bundle") == "/b");
    CHECK(p.has("detach"));
    CHECK(p.has("tty"));
    CHECK(p.get_all("env") == std::vector<std::string>{"A=1", "B=2"});
    CHECK(p.positional == std::vector<std::string>{"id"});
}

TEST_CASE("unknown options and missing values are errors") {
    auto u = parse({"--nope"});
    REQUIRE_FALSE(u.ok());
    CHECK(u.error().context == "unknown option `--nope`");
    CHECK_FALSE(parse({"--bundle"}).ok());
    CHECK_FALSE(parse({"--detach=maybe"}).ok());
    CHECK_FALSE(parse({"--detach=false"}).value().has("detach"));
}

TEST_CASE("stop at the first positional keeps the command's own options") {
    auto p = parse({"-d", "id", "sh", "-c", "--bundle"}, true).value();
    CHECK(p.has("detach"));
    CHECK(p.positional == std::vector<std::string>{"id", "sh", "-c", "--bundle"});
    auto q = parse({"--", "-x"}).value();
    CHECK(q.positional == std::vector<std::string>{"-x"});
}
