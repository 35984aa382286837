// rt::CreateOptions::stdio: the container's fds 0-2 are the fds given (a
// supervisor's log file, /dev/null), the creating process's own stay as
// they were, and no copy of them is left open in it. Needs root and a
// static busybox; skips otherwise.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "runtime/container.hpp"
#include "runtime/tests/busybox_bundle.hpp"
#include "runtime/init_handle.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace {

using rt::testing::static_busybox;

int open_fds() {
    int n = 0;
    auto d = util::Dir::open("/proc/self/fd");
    REQUIRE(d);
    while (auto e = d->next()) {
        if (!*e) break;
        n++;
    }
    return n;
}

/// A state root and a busybox bundle running `sh -c script`, removed at the end.
struct StdioBundle {
    std::string dir, root, bundle;
    std::string id = util::cat("stdio-", ::getpid());
    explicit StdioBundle(const std::string &script) {
        char tmpl[] = "/tmp/berth-stdio.XXXXXX";
        dir = ::mkdtemp(tmpl);
        ::chmod(dir.c_str(), 0755);
        root = dir + "/state";
        bundle = dir + "/bundle";
        rt::testing::make_busybox_rootfs(bundle + "/rootfs");
        auto spec = rt::testing::sh_spec(script, util::cat("berth-stdio-", ::getpid()));
        REQUIRE(util::atomic_write_file(bundle + "/config.json", util::json::dump(spec)));
    }
    ~StdioBundle() {
        (void)rt::delete_container(root, id, true);
        (void)util::remove_tree(dir);
    }
};

}  // namespace

TEST_CASE("a container's stdio are the fds given at create, not the creator's") {
    if (::geteuid() != 0 || !static_busybox()) {
        WARN("skipped: needs root and a static busybox");
        return;
    }
    StdioBundle b("read x; echo \"out $x\"; echo err >&2");
    REQUIRE(util::atomic_write_file(b.dir + "/in", "hello\n"));
    auto in = util::open_file(b.dir + "/in", O_RDONLY);
    auto log = util::open_file(b.dir + "/log", O_WRONLY | O_APPEND | O_CREAT, 0600);
    REQUIRE(in);
    REQUIRE(log);
    struct stat own_before, own_after;
    REQUIRE(::fstat(1, &own_before) == 0);
    const int fds_before = open_fds();

    rt::CreateOptions o;
    o.root = b.root;
    o.id = b.id;
    o.bundle = b.bundle;
    o.stdio[0] = in->get();
    o.stdio[1] = o.stdio[2] = log->get();
    auto st = rt::create_container(o);
    INFO((st ? "" : st.error().message()));
    REQUIRE(st);
    {
        auto h = rt::InitHandle::open(*st);
        REQUIRE(h);
        REQUIRE(rt::start_container(b.root, b.id));
        auto code = h->wait(10000);
        REQUIRE(code);
        REQUIRE(code->has_value());
        CHECK(**code == 0);
    }

    CHECK(util::read_file(b.dir + "/log").value_or("") == "out hello\nerr\n");
    REQUIRE(::fstat(1, &own_after) == 0);
    CHECK(own_before.st_ino == own_after.st_ino);
    CHECK(own_before.st_dev == own_after.st_dev);
    CHECK(open_fds() == fds_before);  // no copy of the stdio fds left
}

TEST_CASE("a bad stdio fd fails create and leaves no container") {
    if (::geteuid() != 0 || !static_busybox()) {
        WARN("skipped: needs root and a static busybox");
        return;
    }
    StdioBundle b("true");
    rt::CreateOptions o;
    o.root = b.root;
    o.id = b.id;
    o.bundle = b.bundle;
    o.stdio[1] = 999;  // not open
    auto st = rt::create_container(o);
    REQUIRE_FALSE(st);
    CHECK(st.error().message().find("stdio") != std::string::npos);
    CHECK_FALSE(rt::container_state(b.root, b.id));
}
