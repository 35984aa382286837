// Image config -> runtime config: users from the image's /etc/passwd and
// /etc/group, Entrypoint/Cmd/Env/WorkingDir, Volumes, StopSignal, Labels.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "image/config.hpp"
#include "util/file.hpp"
#include "util/tests/tmpdir.hpp"

using namespace img;

namespace {
const char *kConfig = R"({"architecture":"arm","variant":"v7","os":"linux",
 "config":{"User":"app","Env":["PATH=/app/bin:/bin","A=1"],"Entrypoint":["/app/run"],"Cmd":["--serve"],
  "WorkingDir":"/app","Volumes":{"/data":{}},"StopSignal":"SIGINT","Labels":{"version":"2.0"}},
 "rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}})";
}

TEST_CASE("image config parsing", "[config]") {
    auto c = parse_image_config(kConfig);
    REQUIRE(c);
    CHECK(c->platform.str() == "linux/arm/v7");
    CHECK(c->diff_ids.size() == 1);
    CHECK(c->user == "app");
    CHECK(c->volumes == std::vector<std::string>{"/data"});
    CHECK(c->labels.at("version") == "2.0");
    CHECK_FALSE(parse_image_config("{\"config\":{}}"));
    CHECK_FALSE(parse_image_config("{\"rootfs\":{\"diff_ids\":[\"md5:x\"]}}"));
    CHECK_FALSE(parse_image_config("{\"rootfs\":{},\"config\":{\"Cmd\":\"sh\"}}"));
}

TEST_CASE("users resolved in the image's passwd and group", "[config]") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "etc"));
    REQUIRE(util::atomic_write_file(t / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"));
    REQUIRE(util::atomic_write_file(t / "etc/group", "root:x:0:\napp:x:1001:\nstaff:x:50:app,other\naudio:x:29:other\n"));
    auto fd = util::open_file(t.path, O_RDONLY | O_DIRECTORY);
    REQUIRE(fd);
    auto u = resolve_user(fd->get(), "app");
    REQUIRE(u);
    CHECK(u->uid == 1000);
    CHECK(u->gid == 1001);
    CHECK(u->home == "/home/app");
    CHECK(u->additional_gids == std::vector<uint32_t>{50});
    CHECK(resolve_user(fd->get(), "app:staff")->gid == 50);
    CHECK(resolve_user(fd->get(), "1000")->uid == 1000);
    CHECK(resolve_user(fd->get(), "4242:4343")->gid == 4343);
    CHECK(resolve_user(fd->get(), "")->uid == 0);
    CHECK_FALSE(resolve_user(fd->get(), "nobody"));
    CHECK_FALSE(resolve_user(fd->get(), "app:nogroup"));
    // A hostile image whose /etc/passwd is a symlink to the host's: read inside the rootfs only.
    TempDir h;
    REQUIRE(util::mkdir_p(h / "etc"));
    REQUIRE(symlink("/etc/passwd", (h / "etc/passwd").c_str()) == 0);
    auto hfd = util::open_file(h.path, O_RDONLY | O_DIRECTORY);
    CHECK_FALSE(resolve_user(hfd->get(), "root"));  // the host has root; the image has no passwd
}

TEST_CASE("runtime config from the image config", "[config]") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "rootfs/etc"));
    REQUIRE(util::atomic_write_file(t / "rootfs/etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n"));
    auto fd = util::open_file(t / "rootfs", O_RDONLY | O_DIRECTORY);
    auto c = parse_image_config(kConfig);
    RuntimeConfigOptions o;
    o.volumes_dir = t / "volumes";
    o.volume_prefix = "web";
    o.extra_env = {"A=2"};
    auto r = runtime_config(*c, fd->get(), o);
    REQUIRE(r);
    auto &v = *r;
    CHECK(v["process"]["args"] == util::json::Value::array({"/app/run", "--serve"}));
    CHECK(v["process"]["user"]["uid"] == 1000);
    CHECK(v["process"]["cwd"] == "/app");
    auto env = v["process"]["env"];
    CHECK(std::find(env.begin(), env.end(), "PATH=/app/bin:/bin") != env.end());
    CHECK(std::find(env.begin(), env.end(), "A=2") != env.end());
    CHECK(std::find(env.begin(), env.end(), "A=1") == env.end());
    CHECK(std::find(env.begin(), env.end(), "HOME=/home/app") != env.end());
    CHECK(v["process"]["capabilities"]["bounding"].size() == 11);
    CHECK(v["annotations"]["org.opencontainers.image.stopSignal"] == "SIGINT");
    CHECK(v["annotations"]["version"] == "2.0");
    bool vol = false;
    for (auto &m : v["mounts"])
        if (m["destination"] == "/data") {
            vol = true;
            CHECK(m["source"] == t / "volumes/web_data");
        }
    CHECK(vol);
    CHECK(util::path_exists(t / "volumes/web_data"));
    CHECK(v["linux"]["namespaces"].size() == 5);
    CHECK(v["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW");
    CHECK(v["linux"]["maskedPaths"].size() == 11);
    o.args = {"/bin/sh"};
    CHECK(runtime_config(*c, fd->get(), o)->at("process").at("args") == util::json::Value::array({"/app/run", "/bin/sh"}));
}
