// Unit tests of the logic of `exec` (the process built from flags or a
// process.json) and of `features`. Entering a container is covered by
// integration/ops_test.sh against the real binary.
#include <catch2/catch.hpp>

#include <linux/capability.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "runtime/exec.hpp"
#include "runtime/features.hpp"
#include "util/file.hpp"

namespace {

bool has(const std::vector<int> &v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

rt::Process base_process() {
    rt::Process p;
    p.args = {"/bin/sleep", "100"};
    p.env = {"PATH=/bin", "A=1"};
    p.cwd = "/srv";
    p.user.uid = 5;
    p.user.gid = 6;
    p.no_new_privileges = true;
    p.terminal = true;
    p.console_size = std::make_pair(10u, 20u);
    p.capabilities.bounding = p.capabilities.effective = p.capabilities.permitted = {CAP_KILL};
    return p;
}

}  // namespace

TEST_CASE("exec_process: the container's process with runc's overrides", "[exec]") {
    rt::Process base = base_process();
    rt::ExecRequest req;
    req.args = {"/bin/sh", "-c", "id"};
    req.env = {"B=2"};
    req.cwd = "/tmp";
    req.user = "1000:1001";
    req.additional_gids = {7};
    req.caps = {"CAP_NET_ADMIN", "sys_admin"};
    auto p = rt::exec_process(req, &base);
    REQUIRE(p);
    CHECK(p->args == req.args);
    CHECK(p->env == std::vector<std::string>{"PATH=/bin", "A=1", "B=2"});
    CHECK(p->cwd == "/tmp");
    CHECK(p->user.uid == 1000);
    CHECK(p->user.gid == 1001);
    CHECK(p->user.additional_gids == std::vector<uint32_t>{7});
    CHECK(has(p->capabilities.bounding, CAP_NET_ADMIN));
    CHECK(has(p->capabilities.effective, CAP_SYS_ADMIN));
    CHECK(has(p->capabilities.permitted, CAP_KILL));
    CHECK(p->capabilities.ambient.empty());      // no inheritable in the spec: no ambient
    CHECK(p->capabilities.inheritable.empty());  // never added by --cap
    CHECK(!p->terminal);                          // only --tty makes one
    CHECK(!p->console_size);
    CHECK(p->no_new_privileges);                  // kept from the spec

    rt::ExecRequest tty;
    tty.args = {"sh"};
    tty.tty = true;
    auto t = rt::exec_process(tty, &base);
    REQUIRE(t);
    CHECK(t->terminal);
    CHECK(t->user.uid == 5);  // unchanged without --user
    CHECK(t->cwd == "/srv");

    // Without a spec process (no `process` in config.json) the defaults apply.
    auto bare = rt::exec_process(tty, nullptr);
    REQUIRE(bare);
    CHECK(bare->cwd == "/");
}

TEST_CASE("exec_process refuses bad flags, naming them", "[exec]") {
    rt::Process base = base_process();
    rt::ExecRequest none;
    auto r = rt::exec_process(none, &base);
    REQUIRE(!r);
    CHECK_THAT(r.error().message(), Catch::Contains("no command"));

    rt::ExecRequest cap;
    cap.args = {"x"};
    cap.caps = {"CAP_NOPE"};
    auto c = rt::exec_process(cap, &base);
    REQUIRE(!c);
    CHECK_THAT(c.error().message(), Catch::Contains("CAP_NOPE"));

    for (const char *u : {"abc", "1:x", "1:2:3", "", "-1"}) {
        rt::User user;
        INFO(u);
        auto st = rt::parse_exec_user(u, user);
        REQUIRE(!st);
        CHECK_THAT(st.error().message(), Catch::Contains("--user"));
    }
    rt::User ok;
    REQUIRE(rt::parse_exec_user("42", ok));
    CHECK(ok.uid == 42);
    CHECK(ok.gid == 0);
}

TEST_CASE("exec_process reads --process files", "[exec]") {
    char dir[] = "/tmp/berth-exec-XXXXXX";
    REQUIRE(mkdtemp(dir));
    std::string good = std::string(dir) + "/p.json", bad = std::string(dir) + "/bad.json",
                broken = std::string(dir) + "/broken.json";
    REQUIRE(util::atomic_write_file(good, R"({"args": ["/bin/echo", "hi"], "env": ["X=1"], "cwd": "/w",
        "user": {"uid": 3, "gid": 4}, "terminal": true, "consoleSize": {"height": 5, "width": 9}})"));
    REQUIRE(util::atomic_write_file(bad, R"({"args": "notalist"})"));
    REQUIRE(util::atomic_write_file(broken, R"({"args": [)"));
    rt::Process base = base_process();
    rt::ExecRequest req;
    req.process_file = good;
    auto p = rt::exec_process(req, &base);
    REQUIRE(p);
    CHECK(p->args == std::vector<std::string>{"/bin/echo", "hi"});
    CHECK(p->env == std::vector<std::string>{"X=1"});  // the file replaces, nothing is merged
    CHECK(p->cwd == "/w");
    CHECK(p->user.uid == 3);
    CHECK(p->terminal);
    REQUIRE(p->console_size);
    CHECK(p->console_size->first == 5);

    req.process_file = bad;
    auto b = rt::exec_process(req, &base);
    REQUIRE(!b);
    CHECK_THAT(b.error().message(), Catch::Contains("process.args"));
    req.process_file = broken;
    auto br = rt::exec_process(req, &base);
    REQUIRE(!br);
    CHECK_THAT(br.error().message(), Catch::Contains("broken.json"));
    req.process_file = std::string(dir) + "/missing.json";
    auto m = rt::exec_process(req, &base);
    REQUIRE(!m);
    CHECK_THAT(m.error().message(), Catch::Contains("missing.json"));
    (void)util::remove_tree(dir);
}

TEST_CASE("features_json has the structure of features.md", "[features]") {
    auto f = rt::features_json();
    CHECK(f["ociVersionMin"] == rt::kOciVersionMin);
    CHECK(f["ociVersionMax"] == rt::kOciVersionMax);
    CHECK(f["hooks"].size() == 6);
    const auto &opts = f["mountOptions"];
    auto has_opt = [&](const char *o) { return std::find(opts.begin(), opts.end(), o) != opts.end(); };
    CHECK(has_opt("rbind"));
    CHECK(has_opt("nosuid"));
    CHECK(has_opt("rro"));
    CHECK(!has_opt("idmap"));  // refused by the spec parser, so not claimed
    const auto &l = f["linux"];
    CHECK(l["namespaces"].size() == 8);
    CHECK(l["capabilities"].size() >= 38);
    CHECK(l["cgroup"]["v1"] == true);
    CHECK(l["cgroup"]["systemd"] == false);
    CHECK(l["seccomp"].is_object());
    CHECK(l["mountExtensions"]["idmap"]["enabled"] == false);
}
