// upper_to_layer_tree: the upper directory of a real overlay mount (a file
// of the lower layer deleted, a lower directory removed and made again,
// files added and changed) and hand-made markers become the OCI form.
// Needs root (overlay, whiteout devices, trusted.* attributes): skipped
// without it.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "cross/build/upper.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/tests/tmpdir.hpp"

namespace {

bool is_root() { return geteuid() == 0; }
/// Ends a test case that needs root (overlay, devices, trusted.*) with a warning.
#define SKIP_UNLESS_ROOT()                 \
    do {                                   \
        if (!is_root()) {                  \
            WARN("skipped: needs root");   \
            return;                        \
        }                                  \
    } while (0)

/// Everything under `dir`, as relative paths ("d/" for directories).
std::set<std::string> tree(const std::string &dir, const std::string &prefix = "") {
    std::set<std::string> out;
    auto names = util::list_dir(dir);
    if (!names) return out;
    for (const auto &n : *names) {
        struct stat st;
        REQUIRE(lstat((dir + "/" + n).c_str(), &st) == 0);
        if (S_ISDIR(st.st_mode)) {
            out.insert(prefix + n + "/");
            for (auto &s : tree(dir + "/" + n, prefix + n + "/")) out.insert(s);
        } else {
            out.insert(prefix + n);
        }
    }
    return out;
}

/// Names of the overlay attributes left on `path`.
std::set<std::string> overlay_attrs(const std::string &path) {
    char buf[4096];
    ssize_t n = llistxattr(path.c_str(), buf, sizeof buf);
    std::set<std::string> out;
    for (ssize_t at = 0; n > 0 && at < n; at += static_cast<ssize_t>(strlen(buf + at)) + 1) {
        std::string a = buf + at;
        if (a.find(".overlay.") != std::string::npos) out.insert(a);
    }
    return out;
}

void write(const std::string &path, const std::string &data) { REQUIRE(util::atomic_write_file(path, data)); }

/// An overlay of lower/ under merged/ with upper/ and work/, mounted as the
/// runner mounts it; unmounted at the end of the scope.
struct Overlay {
    TempDir t;
    std::string lower = t / "lower", upper = t / "upper", work = t / "work", merged = t / "merged";
    bool mounted = false;
    Overlay() {
        for (auto *d : {&lower, &upper, &work, &merged}) REQUIRE(util::mkdir_p(*d));
    }
    void mount() {
        std::string o = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work +
                        ",redirect_dir=off,metacopy=off,index=off";
        REQUIRE(::mount("overlay", merged.c_str(), "overlay", 0, o.c_str()) == 0);
        mounted = true;
    }
    void unmount() {
        if (mounted) REQUIRE(::umount2(merged.c_str(), 0) == 0);
        mounted = false;
    }
    ~Overlay() {
        if (mounted) ::umount2(merged.c_str(), MNT_DETACH);
    }
};

}  // namespace

TEST_CASE("a step's deletions, replaced directories and changes become whiteouts, opaque markers and files",
          "[upper][root]") {
    SKIP_UNLESS_ROOT();
    Overlay o;
    REQUIRE(util::mkdir_p(o.lower + "/etc/keep"));
    REQUIRE(util::mkdir_p(o.lower + "/var/cache/old"));
    write(o.lower + "/etc/gone", "from the base\n");
    write(o.lower + "/etc/changed", "v1\n");
    write(o.lower + "/etc/keep/same", "untouched\n");
    write(o.lower + "/var/cache/old/a", "a\n");
    o.mount();
    const std::string m = o.merged;
    REQUIRE(unlink((m + "/etc/gone").c_str()) == 0);
    write(m + "/etc/changed", "v2\n");
    write(m + "/etc/new", "added\n");
    REQUIRE(util::remove_tree(m + "/var/cache"));
    REQUIRE(util::mkdir_p(m + "/var/cache"));
    write(m + "/var/cache/fresh", "fresh\n");
    o.unmount();

    auto r = build::upper_to_layer_tree(o.upper);
    if (!r) FAIL(r.error().message());
    std::set<std::string> want = {
        "etc/", "etc/.wh.gone", "etc/changed", "etc/new",
        "var/", "var/cache/", "var/cache/.wh..wh..opq", "var/cache/fresh",
    };
    CHECK(tree(o.upper) == want);
    struct stat st;
    REQUIRE(lstat((o.upper + "/etc/.wh.gone").c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK(st.st_size == 0);
    CHECK(*util::read_file(o.upper + "/etc/changed") == "v2\n");
    for (const auto &p : {"", "/etc", "/etc/changed", "/var", "/var/cache"}) {
        INFO(p);
        CHECK(overlay_attrs(o.upper + p).empty());
    }
}

TEST_CASE("an opaque directory keeps its times, owner and other attributes", "[upper][root]") {
    SKIP_UNLESS_ROOT();
    TempDir t;
    std::string d = t / "opq";
    REQUIRE(util::mkdir_p(d));
    REQUIRE(chown(d.c_str(), 1000, 1000) == 0);
    REQUIRE(setxattr(d.c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0);
    REQUIRE(setxattr(d.c_str(), "trusted.overlay.origin", "\0\xfb", 2, 0) == 0);
    REQUIRE(setxattr(d.c_str(), "trusted.berth-test", "kept", 4, 0) == 0);
    struct timespec times[2] = {{1600000000, 0}, {1600000000, 0}};
    REQUIRE(utimensat(AT_FDCWD, d.c_str(), times, 0) == 0);

    auto r = build::upper_to_layer_tree(t.path);
    if (!r) FAIL(r.error().message());
    struct stat st;
    REQUIRE(lstat((d + "/.wh..wh..opq").c_str(), &st) == 0);
    CHECK(st.st_uid == 1000);
    CHECK((st.st_mode & 07777) == 0600);
    REQUIRE(lstat(d.c_str(), &st) == 0);
    CHECK(st.st_mtime == 1600000000);
    CHECK(overlay_attrs(d).empty());
    char v[8];
    CHECK(getxattr(d.c_str(), "trusted.berth-test", v, sizeof v) == 4);
}

TEST_CASE("an xattr whiteout and a user.overlay opaque directory are converted too", "[upper][root]") {
    SKIP_UNLESS_ROOT();
    TempDir t;
    write(t / "xw", "");
    REQUIRE(setxattr((t / "xw").c_str(), "trusted.overlay.whiteout", "", 0, 0) == 0);
    REQUIRE(util::mkdir_p(t / "u"));
    if (setxattr((t / "u").c_str(), "user.overlay.opaque", "y", 1, 0) != 0) {
        WARN("skipped: no user xattrs on /tmp");
        return;
    }
    REQUIRE(mknod((t / "u/dev").c_str(), S_IFCHR | 0, makedev(0, 0)) == 0);
    auto r = build::upper_to_layer_tree(t.path);
    if (!r) FAIL(r.error().message());
    CHECK(tree(t.path) == std::set<std::string>{".wh.xw", "u/", "u/.wh..wh..opq", "u/.wh.dev"});
}

TEST_CASE("a file the step named .wh.* is refused: it would read as a deletion", "[upper]") {
    TempDir t;
    REQUIRE(util::mkdir_p(t / "etc"));
    write(t / "etc/.wh.passwd", "");
    auto r = build::upper_to_layer_tree(t.path);
    REQUIRE(!r);
    CHECK(r.error().message().find("/etc/.wh.passwd") != std::string::npos);
}

TEST_CASE("a metacopy file is refused: its data is not in the upper directory", "[upper][root]") {
    SKIP_UNLESS_ROOT();
    TempDir t;
    write(t / "f", "");
    REQUIRE(setxattr((t / "f").c_str(), "trusted.overlay.metacopy", "", 0, 0) == 0);
    auto r = build::upper_to_layer_tree(t.path);
    REQUIRE(!r);
    CHECK(r.error().message().find("metacopy") != std::string::npos);
}
