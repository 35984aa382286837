// The builder with a fake RUN runner: RUN's request, its layer, the cache
// (a step not run again), reproducible digests, and refusals of sources
// outside the context that leave nothing in the store.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "cross/build/builder.hpp"
#include "image/image.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char t[] = "/tmp/berth-build-test.XXXXXX";
        REQUIRE(mkdtemp(t));
        path = t;
    }
    ~TempDir() { (void)util::remove_tree(path); }
};

void write(const std::string &path, std::string_view data) {
    REQUIRE(util::mkdir_p(util::dirname(path)).ok());
    REQUIRE(util::atomic_write_file(path, data).ok());
}

/// Records each request; writes /ran-<n> into the upper directory.
class FakeRunner : public build::Runner {
public:
    util::Status run(const build::RunRequest &req) override {
        requests.push_back(req);
        write(util::cat(req.upper_dir, "/ran-", requests.size()), "x");
        return util::ok();
    }
    std::vector<build::RunRequest> requests;
};

struct Fixture {
    TempDir dir;
    std::string ctx = dir.path + "/ctx";
    img::Store store = img::Store::open(dir.path + "/store").value();
    FakeRunner runner;
    util::UniqueFd devnull{open("/dev/null", O_WRONLY | O_CLOEXEC)};

    build::BuildOptions options(std::string_view containerfile) {
        write(ctx + "/Containerfile", containerfile);
        build::BuildOptions o;
        o.context_dir = ctx;
        o.tags = {"test:1"};
        o.log_fd = devnull.get();
        return o;
    }
    size_t refs() { return store.list_refs().value().size(); }
    /// Builds `o` (which must succeed) and loads the image for this machine's platform.
    img::StoredImage built(const build::BuildOptions &o) {
        auto r = build::build(store, o, runner);
        INFO((r.ok() ? std::string() : r.error().message()));
        REQUIRE(r.ok());
        return img::load_image(store, r->images[0].manifest, img::Platform::host()).value();
    }
};

}  // namespace

TEST_CASE("RUN goes to the runner with the stage's env, cwd, user and shell", "[builder]") {
    Fixture f;
    write(f.ctx + "/a", "a");
    auto o = f.options("FROM scratch\nCOPY a /a\nARG V=1\nENV E=2\nWORKDIR /w\nUSER 7\nSHELL [\"/bin/ash\", \"-c\"]\nRUN echo $V\n");
    auto r = build::build(f.store, o, f.runner);
    REQUIRE(r.ok());
    REQUIRE(f.runner.requests.size() == 1);
    const auto &req = f.runner.requests[0];
    CHECK(req.argv == std::vector<std::string>{"/bin/ash", "-c", "echo $V"});
    CHECK(req.cwd == "/w");
    CHECK(req.user == "7");
    CHECK(req.lower_dirs.size() == 1);
    CHECK(std::find(req.env.begin(), req.env.end(), "E=2") != req.env.end());
    CHECK(std::find(req.env.begin(), req.env.end(), "V=1") != req.env.end());
    auto image = img::load_image(f.store, r->images[0].manifest, img::Platform::host()).value();
    REQUIRE(image.config.diff_ids.size() == 2);
    CHECK(util::path_exists(f.store.layer_path(image.config.diff_ids[1]) + "/rootfs/ran-1"));
}

TEST_CASE("an unchanged RUN step is not run again; --no-cache runs it", "[builder]") {
    Fixture f;
    auto o = f.options("FROM scratch\nRUN make\n");
    auto first = build::build(f.store, o, f.runner);
    REQUIRE(first.ok());
    auto second = build::build(f.store, o, f.runner);
    REQUIRE(second.ok());
    CHECK(f.runner.requests.size() == 1);
    CHECK(first->images[0].manifest == second->images[0].manifest);
    o.no_cache = true;
    REQUIRE(build::build(f.store, o, f.runner).ok());
    CHECK(f.runner.requests.size() == 2);
}

TEST_CASE("a changed input before a RUN runs it again", "[builder]") {
    Fixture f;
    write(f.ctx + "/a", "1");
    auto o = f.options("FROM scratch\nCOPY a /a\nRUN make\n");
    REQUIRE(build::build(f.store, o, f.runner).ok());
    write(f.ctx + "/a", "2");
    REQUIRE(build::build(f.store, o, f.runner).ok());
    CHECK(f.runner.requests.size() == 2);
}

TEST_CASE("the same build in two places at two epochs of the files gives one digest", "[builder]") {
    Fixture f1, f2;
    write(f1.ctx + "/b/y", "y");
    write(f1.ctx + "/a", "a");
    write(f2.ctx + "/a", "a");
    write(f2.ctx + "/b/y", "y");
    struct timespec t[2] = {{1000, 0}, {1000, 0}};
    REQUIRE(utimensat(AT_FDCWD, (f2.ctx + "/a").c_str(), t, 0) == 0);
    const char *cf = "FROM scratch\nCOPY . /app/\nENV A=1\nCMD [\"/app/a\"]\n";
    auto r1 = build::build(f1.store, f1.options(cf), f1.runner);
    auto r2 = build::build(f2.store, f2.options(cf), f2.runner);
    REQUIRE(r1.ok());
    REQUIRE(r2.ok());
    CHECK(r1->images[0].manifest == r2->images[0].manifest);
}

TEST_CASE("COPY from outside the context is refused and nothing is tagged", "[builder]") {
    Fixture f;
    write(f.dir.path + "/secret", "s");
    write(f.ctx + "/a", "a");
    auto r = build::build(f.store, f.options("FROM scratch\nCOPY a /a\nRUN x\nCOPY ../secret /s\n"), f.runner);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "Containerfile:4: COPY: `../secret` is outside the build context");
    CHECK(f.refs() == 0);
    CHECK(f.store.list_blobs().value().empty());
    CHECK(util::list_dir(f.store.root() + "/layers").value().empty());
}

TEST_CASE("a symlink in the context pointing out of it is refused", "[builder]") {
    Fixture f;
    write(f.dir.path + "/secret", "s");
    REQUIRE(util::mkdir_p(f.ctx + "/d").ok());
    REQUIRE(symlink("../../secret", (f.ctx + "/d/link").c_str()) == 0);
    REQUIRE(symlink("/etc/passwd", (f.ctx + "/abs").c_str()) == 0);
    auto top = build::build(f.store, f.options("FROM scratch\nCOPY d/link /s\n"), f.runner);
    REQUIRE_FALSE(top.ok());
    CHECK(top.error().message() == "Containerfile:2: COPY: `d/link` leads outside the build context");
    auto inside = build::build(f.store, f.options("FROM scratch\nCOPY d /d\n"), f.runner);
    REQUIRE_FALSE(inside.ok());
    CHECK(inside.error().message() == "Containerfile:2: COPY: `d/link` is a symlink to `../../secret`, outside the build context");
    auto abs = build::build(f.store, f.options("FROM scratch\nCOPY abs /s\n"), f.runner);
    REQUIRE_FALSE(abs.ok());
    CHECK(f.refs() == 0);
}

TEST_CASE("the ignore file keeps files out of COPY", "[builder]") {
    Fixture f;
    write(f.ctx + "/keep", "k");
    write(f.ctx + "/skip.log", "s");
    write(f.ctx + "/logs/x.log", "s");
    write(f.ctx + "/logs/important.log", "i");
    write(f.ctx + "/.containerignore", "*.log\nlogs\n!logs/important.log\n");
    auto r = build::build(f.store, f.options("FROM scratch\nCOPY . /app/\n"), f.runner);
    REQUIRE(r.ok());
    auto image = img::load_image(f.store, r->images[0].manifest, img::Platform::host()).value();
    std::string root = f.store.layer_path(image.config.diff_ids[0]) + "/rootfs/app";
    CHECK(util::path_exists(root + "/keep"));
    CHECK_FALSE(util::path_exists(root + "/skip.log"));
    CHECK_FALSE(util::path_exists(root + "/logs/x.log"));
    CHECK(util::path_exists(root + "/logs/important.log"));
}

TEST_CASE("COPY --from a stage, --chown by name and --chmod", "[builder]") {
    Fixture f;
    write(f.ctx + "/etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n");
    write(f.ctx + "/etc/group", "root:x:0:\nstaff:x:1001:\n");
    write(f.ctx + "/bin/tool", "#!/bin/sh\n");
    auto o = f.options(
        "FROM scratch AS base\nCOPY etc /etc/\n"
        "FROM scratch AS tools\nCOPY bin/tool /out/tool\n"
        "FROM base\nCOPY --from=tools --chown=app:staff --chmod=0750 /out/tool /usr/bin/tool\n");
    auto image = f.built(o);
    REQUIRE(image.config.diff_ids.size() == 2);
    struct stat st;
    REQUIRE(stat((f.store.layer_path(image.config.diff_ids[1]) + "/rootfs/usr/bin/tool").c_str(), &st) == 0);
    CHECK(st.st_uid == 1000);
    CHECK(st.st_gid == 1001);
    CHECK((st.st_mode & 07777) == 0750);
}

TEST_CASE("--target builds that stage only", "[builder]") {
    Fixture f;
    auto o = f.options("FROM scratch AS one\nENV S=one\nFROM scratch AS two\nRUN never\n");
    o.target = "one";
    auto r = build::build(f.store, o, f.runner);
    REQUIRE(r.ok());
    CHECK(f.runner.requests.empty());
    o.target = "three";
    auto bad = build::build(f.store, o, f.runner);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message() == "--target three: no stage of that name in Containerfile");
}

TEST_CASE("the automatic platform args and build args reach the stage", "[builder]") {
    Fixture f;
    auto o = f.options("ARG TAG=x\nFROM scratch\nARG TARGETARCH\nARG TAG\nARG B=def\nENV ARCH=$TARGETARCH T=$TAG B=$B\n");
    o.build_args["B"] = "given";
    o.platforms = {"linux/arm/v7"};
    auto r = build::build(f.store, o, f.runner);
    REQUIRE(r.ok());
    auto image = img::load_image(f.store, r->images[0].manifest, img::Platform{"linux", "arm", "v7"}).value();
    CHECK(image.config.platform.architecture == "arm");
    CHECK(image.config.env == std::vector<std::string>{
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ARCH=arm", "T=x", "B=given"});
}

TEST_CASE("several platforms make an index naming each", "[builder]") {
    Fixture f;
    auto o = f.options("FROM scratch\nARG TARGETARCH\nENV A=$TARGETARCH\n");
    o.platforms = {"linux/arm64", "linux/amd64"};
    auto r = build::build(f.store, o, f.runner);
    REQUIRE(r.ok());
    REQUIRE(r->index);
    CHECK(r->images.size() == 2);
    auto arm = img::load_image(f.store, *r->index, img::Platform{"linux", "arm64", ""}).value();
    CHECK(arm.config.env.back() == "A=arm64");
    CHECK(f.store.get_ref("localhost/test:1").value() == r->index);
}

TEST_CASE("FROM and COPY substitute ARGs declared before them", "[builder]") {
    Fixture f;
    write(f.ctx + "/files/one", "1");
    auto o = f.options("ARG BASE=scratch\nARG STAGE=first\nFROM ${BASE} AS first\nARG SRC=files\nCOPY $SRC/one /dst/${SRC}-copy\n"
                       "FROM $STAGE\nENV DONE=yes\n");
    auto image = f.built(o);
    REQUIRE(image.config.diff_ids.size() == 1);
    CHECK(util::path_exists(f.store.layer_path(image.config.diff_ids[0]) + "/rootfs/dst/files-copy"));
    CHECK(image.config.env.back() == "DONE=yes");
}

TEST_CASE("a RUN that fails stops the build with its line and stores nothing", "[builder]") {
    struct Failing : build::Runner {
        util::Status run(const build::RunRequest &) override { return util::Error::msg("exit status 2"); }
    } failing;
    Fixture f;
    write(f.ctx + "/a", "a");
    auto r = build::build(f.store, f.options("FROM scratch\nCOPY a /a\nRUN false\n"), failing);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "Containerfile:3: RUN: exit status 2");
    CHECK(f.refs() == 0);
    CHECK(f.store.list_blobs().value().empty());
}

TEST_CASE("a RUN's history names the ARGs passed to it, as podman writes it", "[builder]") {
    Fixture f;
    auto r = build::build(f.store, f.options("FROM scratch\nARG V=1\nRUN echo $V\nSHELL [\"/bin/ash\", \"-c\"]\n"
                                             "ARG W\nRUN [\"/bin/true\"]\n"), f.runner);
    REQUIRE(r.ok());
    auto config = util::json::parse(f.store.read_blob(r->images[0].config).value(), "config").value();
    CHECK(config["history"][1]["created_by"] == "|1 V=1 /bin/sh -c echo $V");
    CHECK_FALSE(config["history"][1].contains("empty_layer"));
    CHECK(config["history"][3]["created_by"] == "/bin/sh -c #(nop) ARG V");
    CHECK(config["history"][4]["created_by"] == "|1 V=1 /bin/sh -c [\"/bin/true\"]");
    CHECK(f.runner.requests[1].argv == std::vector<std::string>{"/bin/true"});
}

TEST_CASE("COPY --from a stage named by a stage ARG builds that stage", "[builder]") {
    Fixture f;
    write(f.ctx + "/x", "x");
    auto o = f.options("FROM scratch AS tools\nCOPY x /x\nFROM scratch\nARG FROM=tools\nCOPY --from=$FROM /x /y\n");
    auto image = f.built(o);
    REQUIRE(image.config.diff_ids.size() == 1);
    CHECK(util::path_exists(f.store.layer_path(image.config.diff_ids[0]) + "/rootfs/y"));
}

TEST_CASE("COPY follows the base's symlinked directories and into existing directories", "[builder]") {
    Fixture f;
    REQUIRE(util::mkdir_p(f.ctx + "/root/usr/bin").ok());
    REQUIRE(symlink("usr/bin", (f.ctx + "/root/bin").c_str()) == 0);
    REQUIRE(util::mkdir_p(f.ctx + "/root/opt/app").ok());
    write(f.ctx + "/tool", "t");
    auto o = f.options("FROM scratch\nCOPY root/ /\nCOPY tool /bin/tool\nCOPY tool /opt/app\n");
    auto r = build::build(f.store, o, f.runner);
    REQUIRE(r.ok());
    auto image = img::load_image(f.store, r->images[0].manifest, img::Platform::host()).value();
    REQUIRE(image.config.diff_ids.size() == 3);
    std::string second = f.store.layer_path(image.config.diff_ids[1]) + "/rootfs";
    CHECK(util::path_exists(second + "/usr/bin/tool"));
    CHECK_FALSE(util::path_exists(second + "/bin"));
    CHECK(util::path_exists(f.store.layer_path(image.config.diff_ids[2]) + "/rootfs/opt/app/tool"));
    auto config = util::json::parse(f.store.read_blob(r->images[0].config).value(), "config").value();
    CHECK(config["history"][1]["created_by"].get<std::string>().ends_with(" in /bin/tool "));
}

TEST_CASE("a stored base of another platform is refused", "[builder]") {
    Fixture f;
    auto base = f.options("FROM scratch\nENV BASE=1\n");
    base.tags = {"base:1"};
    base.platforms = {"linux/amd64"};
    REQUIRE(build::build(f.store, base, f.runner).ok());
    auto o = f.options("FROM localhost/base:1\nENV APP=1\n");
    o.platforms = {"linux/arm64"};
    auto r = build::build(f.store, o, f.runner);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "Containerfile:1: FROM localhost/base:1: the image is for linux/amd64, not linux/arm64");
    o.platforms = {"linux/amd64"};
    CHECK(build::build(f.store, o, f.runner).ok());
}
