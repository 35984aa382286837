// Unit tests of runtime/hooks: parsing and running real hook programs
// (/bin/sh scripts in a temporary directory).
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

#include "runtime/hooks.hpp"
#include "util/file.hpp"

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/berth-hooks-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() { (void)util::remove_tree(path); }
};

std::string slurp(const std::string &p) {
    auto r = util::read_file(p);
    return r ? *r : std::string("<missing>");
}

rt::hooks::Hook sh(const std::string &script, std::optional<int> timeout = std::nullopt) {
    rt::hooks::Hook h;
    h.path = "/bin/sh";
    h.args = {"sh", "-c", script};
    h.env = {"PATH=/usr/bin:/bin", "HOOKVAR=hello"};
    h.timeout = timeout;
    return h;
}

}  // namespace

TEST_CASE("parse_hooks reads every kind and checks fields", "[hooks]") {
    auto doc = util::json::parse(R"({
        "prestart": [{"path": "/bin/a", "args": ["a", "1"], "env": ["X=1"], "timeout": 5}],
        "createRuntime": [{"path": "/bin/b"}],
        "poststop": [{"path": "/bin/c"}, {"path": "/bin/d"}]
    })", "hooks");
    REQUIRE(doc);
    auto h = rt::hooks::parse_hooks(&*doc);
    REQUIRE(h);
    REQUIRE(h->prestart.size() == 1);
    CHECK(h->prestart[0].path == "/bin/a");
    CHECK(h->prestart[0].args == std::vector<std::string>{"a", "1"});
    CHECK(h->prestart[0].env == std::vector<std::string>{"X=1"});
    CHECK(h->prestart[0].timeout == 5);
    CHECK(h->create_runtime.size() == 1);
    CHECK(h->poststop.size() == 2);
    CHECK(h->of(rt::hooks::Kind::Poststop)[1].path == "/bin/d");
    CHECK(!h->empty());
    // Round trip.
    auto j = rt::hooks::hooks_to_json(*h);
    auto h2 = rt::hooks::parse_hooks(&j);
    REQUIRE(h2);
    CHECK(h2->poststop.size() == 2);
    CHECK(h2->prestart[0].timeout == 5);

    auto none = rt::hooks::parse_hooks(nullptr);
    REQUIRE(none);
    CHECK(none->empty());
}

TEST_CASE("parse_hooks names the bad field", "[hooks]") {
    struct Case { const char *json, *needle; };
    const Case cases[] = {
        {R"({"prestart": [{"path": "bin/a"}]})", "`hooks.prestart[0].path`"},
        {R"({"prestart": [{"path": "/a", "timeout": 0}]})", "`hooks.prestart[0].timeout`: must be greater than zero"},
        {R"({"poststart": [{"path": "/a", "args": "x"}]})", "hooks.poststart[0]"},
        {R"({"createContainer": [{"args": ["x"]}]})", "path"},
        {R"({"prestart": {"path": "/a"}})", "hooks.prestart"},
        {R"([1])", "hooks"},
    };
    for (const auto &c : cases) {
        auto doc = util::json::parse(c.json, "hooks");
        REQUIRE(doc);
        auto h = rt::hooks::parse_hooks(&*doc);
        INFO(c.json);
        REQUIRE(!h);
        CHECK_THAT(h.error().message(), Catch::Contains(c.needle));
    }
}

TEST_CASE("run_hook passes the state on stdin, args and exactly the env", "[hooks]") {
    TempDir d;
    std::string out = d.path + "/out";
    auto st = rt::hooks::run_hook(sh("cat > " + out + "; echo \"$0 $HOOKVAR ${HOME:-nohome}\" >> " + out), R"({"id":"c1"})");
    REQUIRE(st);
    CHECK(slurp(out) == "{\"id\":\"c1\"}sh hello nohome\n");
}

TEST_CASE("run_hook: a hook that never reads its stdin does not block", "[hooks]") {
    std::string big(200000, 'x');  // larger than a default pipe
    auto st = rt::hooks::run_hook(sh("exit 0"), big);
    CHECK(st);
}

TEST_CASE("run_hook reports exit status, signal and output", "[hooks]") {
    auto st = rt::hooks::run_hook(sh("echo oops >&2; exit 3"), "{}");
    REQUIRE(!st);
    CHECK_THAT(st.error().message(), Catch::Contains("exited with status 3"));
    CHECK_THAT(st.error().message(), Catch::Contains("oops"));

    auto killed = rt::hooks::run_hook(sh("kill -9 $$"), "{}");
    REQUIRE(!killed);
    CHECK_THAT(killed.error().message(), Catch::Contains("killed by signal 9"));

    rt::hooks::Hook missing;
    missing.path = "/nonexistent/hook";
    auto m = rt::hooks::run_hook(missing, "{}");
    REQUIRE(!m);
    CHECK_THAT(m.error().message(), Catch::Contains("cannot execute"));
}

TEST_CASE("run_hook kills a hook at its timeout", "[hooks]") {
    auto t0 = std::chrono::steady_clock::now();
    auto st = rt::hooks::run_hook(sh("sleep 30", 1), "{}");
    auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE(!st);
    CHECK(st.error().code == ETIMEDOUT);
    CHECK_THAT(st.error().message(), Catch::Contains("timeout of 1s"));
    CHECK(took < std::chrono::seconds(10));
    CHECK(took >= std::chrono::milliseconds(900));
}

TEST_CASE("run_hooks: fatal kinds stop at the first failure, poststart/poststop go on", "[hooks]") {
    TempDir d;
    std::string out = d.path + "/log";
    std::vector<rt::hooks::Hook> list = {sh("echo 1 >> " + out), sh("exit 1"), sh("echo 3 >> " + out)};

    auto st = rt::hooks::run_hooks(rt::hooks::Kind::Prestart, list, "{}");
    REQUIRE(!st);
    CHECK_THAT(st.error().message(), Catch::StartsWith("prestart hook 1 `/bin/sh`: exited with status 1"));
    CHECK(slurp(out) == "1\n");

    REQUIRE(util::remove_tree(out));
    auto post = rt::hooks::run_hooks(rt::hooks::Kind::Poststop, list, "{}");
    CHECK(post);
    CHECK(slurp(out) == "1\n3\n");

    CHECK(rt::hooks::is_fatal(rt::hooks::Kind::CreateRuntime));
    CHECK(rt::hooks::is_fatal(rt::hooks::Kind::StartContainer));
    CHECK(!rt::hooks::is_fatal(rt::hooks::Kind::Poststart));
}
