// Layer unpacking: ordinary entries, whiteouts, special files, and every
// hostile-archive case, each fixture built here with libarchive's writer.
// After a hostile case nothing may exist outside the target directory.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <set>

#include "image/tests/tar_builder.hpp"
#include "image/unpack.hpp"
#include "util/file.hpp"
#include "util/tests/tmpdir.hpp"

using img::Compression;
using img::UnpackLimits;

namespace {

/// Everything under `dir`, as relative paths.
std::set<std::string> tree(const std::string &dir, const std::string &prefix = "") {
    std::set<std::string> out;
    DIR *d = opendir(dir.c_str());
    if (!d) return out;
    while (auto *e = readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        out.insert(prefix + n);
        struct stat st;
        if (lstat((dir + "/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode))
            for (auto &s : tree(dir + "/" + n, prefix + n + "/")) out.insert(s);
    }
    closedir(d);
    return out;
}

struct Sandbox {
    TempDir t;
    std::string target;
    Sandbox() {
        target = t / "in/target";
        REQUIRE(util::mkdir_p(target));
    }
    util::Result<img::UnpackStats> unpack(const std::string &bytes, Compression c = Compression::None,
                                          const UnpackLimits &limits = {}) {
        REQUIRE(util::atomic_write_file(t / "layer", bytes));
        auto in = util::open_file(t / "layer", O_RDONLY);
        REQUIRE(in);
        auto dir = util::open_file(target, O_RDONLY | O_DIRECTORY);
        REQUIRE(dir);
        return img::unpack_stream(in->get(), c, dir->get(), limits);
    }
    /// Nothing but the target (and the fixture) exists in the sandbox.
    void check_contained() {
        std::set<std::string> all = tree(t.path);
        for (const auto &p : all) {
            bool ok = p == "layer" || p == "in" || p == "in/target" || p.starts_with("in/target/");
            INFO(p);
            CHECK(ok);
        }
    }
    bool exists(const std::string &rel) const { return util::path_exists(target + "/" + rel); }
};

bool is_root() { return geteuid() == 0; }

}  // namespace

TEST_CASE("unpack files, dirs, symlinks, modes, mtimes, ownership; diff_id", "[unpack]") {
    for (Compression c : {Compression::None, Compression::Gzip}) {
        Sandbox s;
        TarBuilder b(c);
        b.dir("etc", {0755})
            .file("etc/hostname", "box\n", {0640, 1000, 1001, 1600000000})
            .file("./bin/tool", "#!/bin/sh\n", {04755})
            .symlink("bin/sh", "/bin/busybox")
            .dir("ro", {0500, 0, 0, 1500000000})
            .file("ro/inside", "x");
        std::string layer = b.finish();
        auto st = s.unpack(layer, c);
        if (!st) FAIL(st.error().message());
        // The diff_id is the sha256 of the uncompressed tar.
        if (c == Compression::None) CHECK(st->diff_id == img::Digest::of(layer));
        CHECK(st->entries == 6);
        CHECK(*util::read_file(s.target + "/etc/hostname") == "box\n");
        struct stat sb;
        REQUIRE(lstat((s.target + "/etc/hostname").c_str(), &sb) == 0);
        CHECK((sb.st_mode & 07777) == 0640);
        CHECK(sb.st_mtime == 1600000000);
        if (is_root()) {
            CHECK(sb.st_uid == 1000);
            CHECK(sb.st_gid == 1001);
        }
        REQUIRE(lstat((s.target + "/bin/tool").c_str(), &sb) == 0);
        CHECK((sb.st_mode & 07777) == 04755);  // set-id survives the chown
        char link[64] = {};
        REQUIRE(readlink((s.target + "/bin/sh").c_str(), link, sizeof link) > 0);
        CHECK(std::string(link) == "/bin/busybox");
        REQUIRE(lstat((s.target + "/ro").c_str(), &sb) == 0);
        CHECK((sb.st_mode & 07777) == 0500);
        CHECK(sb.st_mtime == 1500000000);
        s.check_contained();
    }
}

TEST_CASE("gzip diff_id is of the uncompressed stream", "[unpack]") {
    TarBuilder plain;
    plain.file("a", "hello");
    std::string raw = plain.finish();
    TarBuilder gz(Compression::Gzip);
    gz.file("a", "hello");
    std::string z = gz.finish();
    REQUIRE(z != raw);
    Sandbox s;
    auto st = s.unpack(z, Compression::Gzip);
    REQUIRE(st);
    CHECK(st->diff_id == img::Digest::of(raw));
    CHECK(st->tar_bytes == raw.size());
    CHECK(st->compressed_bytes == z.size());
    // Declared gzip, but plain: refused.
    Sandbox s2;
    CHECK_FALSE(s2.unpack(raw, Compression::Gzip));
}

TEST_CASE("zstd layers where libarchive has zstd", "[unpack]") {
    if (!img::zstd_supported()) {
        WARN("skipped: libarchive built without zstd");
        return;
    }
    TarBuilder b(Compression::Zstd);
    b.file("z", "zstd data");
    Sandbox s;
    REQUIRE(s.unpack(b.finish(), Compression::Zstd));
    CHECK(*util::read_file(s.target + "/z") == "zstd data");
}

TEST_CASE("hardlinks, fifos, xattrs", "[unpack][root]") {
    if (!is_root()) {
        WARN("skipped: needs root for mknod and trusted xattrs");
        return;
    }
    Sandbox s;
    TarBuilder b;
    b.file("data", "shared", {0644, 0, 0, 1600000000, {{"user.note", "hi"}, {"trusted.overlay.opaque", "y"}}})
        .hardlink("data2", "data")
        .fifo("run/pipe");
    REQUIRE(s.unpack(b.finish()));
    struct stat a, c;
    REQUIRE(lstat((s.target + "/data").c_str(), &a) == 0);
    REQUIRE(lstat((s.target + "/data2").c_str(), &c) == 0);
    CHECK(a.st_ino == c.st_ino);
    CHECK(a.st_nlink == 2);
    REQUIRE(lstat((s.target + "/run/pipe").c_str(), &a) == 0);
    CHECK(S_ISFIFO(a.st_mode));
    char v[16] = {};
    CHECK(lgetxattr((s.target + "/data").c_str(), "user.note", v, sizeof v) == 2);
    CHECK(std::string(v, 2) == "hi");
    // overlay markers never come from the archive itself
    CHECK(lgetxattr((s.target + "/data").c_str(), "trusted.overlay.opaque", v, sizeof v) < 0);
}

TEST_CASE("hostile: device nodes in a layer are not created", "[unpack][hostile]") {
    // A layer's block device 7:0 would be the host's loop device inside the
    // container; devices come from the runtime config only (docs/store.md).
    Sandbox s;
    TarBuilder b;
    b.blockdev("loop0", 7, 0).chardev("dev/mem", 1, 1).chardev("dev/null", 1, 3).chardev("zero-zero", 0, 0).file("after", "a");
    auto r = s.unpack(b.finish());
    if (!r) FAIL(r.error().message());
    CHECK(r->entries == 5);
    for (const char *p : {"loop0", "dev/mem", "dev/null", "zero-zero"}) {
        INFO(p);
        CHECK_FALSE(s.exists(p));
    }
    CHECK(*util::read_file(s.target + "/after") == "a");
    s.check_contained();
}

TEST_CASE("duplicate entries in one layer: the last one wins", "[unpack][hostile]") {
    Sandbox s;
    TarBuilder b;
    b.file("etc/motd", "first").file("etc/motd", "second").dir("d").dir("d").file("d/x", "x").file("f", "file")
        .symlink("f", "etc").file("s", "file again");
    auto r = s.unpack(b.finish());
    if (!r) FAIL(r.error().message());
    CHECK(*util::read_file(s.target + "/etc/motd") == "second");
    CHECK(*util::read_file(s.target + "/d/x") == "x");
    struct stat st;
    REQUIRE(lstat((s.target + "/f").c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK(*util::read_file(s.target + "/s") == "file again");
    s.check_contained();
}

TEST_CASE("a directory replaced by a symlink in the same layer", "[unpack][hostile]") {
    for (std::string target : {"elsewhere", "/", "../.."}) {
        Sandbox s;
        TarBuilder b;
        b.dir("lib").file("lib/libc.so", "c").dir("elsewhere").symlink("lib", target).file("after", "a");
        auto r = s.unpack(b.finish());
        INFO(target);
        if (!r) FAIL(r.error().message());
        struct stat st;
        REQUIRE(lstat((s.target + "/lib").c_str(), &st) == 0);
        CHECK(S_ISLNK(st.st_mode));
        CHECK(*util::read_file(s.target + "/after") == "a");
        CHECK(s.exists("elsewhere"));
        s.check_contained();
    }
}

TEST_CASE("whiteouts become overlay markers", "[unpack][root]") {
    if (!is_root()) {
        WARN("skipped: needs root for whiteout devices");
        return;
    }
    Sandbox s;
    TarBuilder b;
    b.dir("etc").file("etc/.wh.passwd", "").dir("var/cache").file("var/cache/.wh..wh..opq", "").file("var/cache/new", "n")
        .file("keep", "k").file(".wh.keep", "");  // a whiteout does not hide its own layer's file
    REQUIRE(s.unpack(b.finish()));
    struct stat st;
    REQUIRE(lstat((s.target + "/etc/passwd").c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK(st.st_rdev == makedev(0, 0));
    CHECK_FALSE(s.exists("etc/.wh.passwd"));
    char v[4] = {};
    CHECK(lgetxattr((s.target + "/var/cache").c_str(), "trusted.overlay.opaque", v, sizeof v) == 1);
    CHECK(v[0] == 'y');
    CHECK_FALSE(s.exists("var/cache/.wh..wh..opq"));
    CHECK(s.exists("var/cache/new"));
    CHECK(*util::read_file(s.target + "/keep") == "k");
}

TEST_CASE("hostile: .. paths are refused", "[unpack][hostile]") {
    for (std::string p : {"../escape", "a/../../escape", "./../escape"}) {
        Sandbox s;
        TarBuilder b;
        b.file(p, "evil");
        CHECK_FALSE(s.unpack(b.finish()));
        s.check_contained();
        CHECK_FALSE(util::path_exists(s.t / "in/escape"));
    }
}

TEST_CASE("hostile: absolute paths are contained", "[unpack][hostile]") {
    Sandbox s;
    TarBuilder b;
    b.file("/tmp/berth-absolute-escape", "evil");
    REQUIRE(s.unpack(b.finish()));
    CHECK_FALSE(util::path_exists("/tmp/berth-absolute-escape"));
    CHECK(s.exists("tmp/berth-absolute-escape"));
    s.check_contained();
}

TEST_CASE("hostile: symlink to / then a file under it", "[unpack][hostile]") {
    for (std::string target : {"/", "../..", "/tmp", "../../../../../../tmp"}) {
        Sandbox s;
        TarBuilder b;
        b.symlink("up", target).file("up/berth-symlink-escape", "evil");
        CHECK_FALSE(s.unpack(b.finish()));
        CHECK_FALSE(util::path_exists("/berth-symlink-escape"));
        CHECK_FALSE(util::path_exists("/tmp/berth-symlink-escape"));
        s.check_contained();
    }
    // A relative symlink that stays inside is followed.
    Sandbox s;
    TarBuilder b;
    b.dir("usr/lib").symlink("lib", "usr/lib").file("lib/libc.so", "c");
    auto r = s.unpack(b.finish());
    if (!r) FAIL(r.error().message());
    CHECK(*util::read_file(s.target + "/usr/lib/libc.so") == "c");
}

TEST_CASE("hostile: hardlink to a path outside", "[unpack][hostile]") {
    REQUIRE(util::atomic_write_file("/tmp/berth-hardlink-victim", "secret"));
    for (std::string target : {"../../berth-hardlink-victim", "/tmp/berth-hardlink-victim", "/etc/passwd", "missing"}) {
        Sandbox s;
        TarBuilder b;
        b.hardlink("stolen", target);
        CHECK_FALSE(s.unpack(b.finish()));
        CHECK_FALSE(s.exists("stolen"));
        s.check_contained();
    }
    // A hardlink through a symlink that points out.
    Sandbox s;
    TarBuilder b;
    b.symlink("out", "/tmp").hardlink("stolen", "out/berth-hardlink-victim");
    CHECK_FALSE(s.unpack(b.finish()));
    s.check_contained();
    unlink("/tmp/berth-hardlink-victim");
}

TEST_CASE("hostile: symlink loop", "[unpack][hostile]") {
    Sandbox s;
    TarBuilder b;
    b.symlink("a", "b").symlink("b", "a").file("a/x", "evil");
    CHECK_FALSE(s.unpack(b.finish()));
    s.check_contained();
    Sandbox s2;
    TarBuilder b2;
    b2.symlink("self", "self").file("self/x", "evil");
    CHECK_FALSE(s2.unpack(b2.finish()));
    s2.check_contained();
}

TEST_CASE("hostile: path through a regular file", "[unpack][hostile]") {
    Sandbox s;
    TarBuilder b;
    b.file("f", "regular").file("f/x", "evil");
    CHECK_FALSE(s.unpack(b.finish()));
    CHECK(*util::read_file(s.target + "/f") == "regular");
    s.check_contained();
}

TEST_CASE("hostile: decompression bomb", "[unpack][hostile]") {
    std::string zeros(32 << 20, '\0');
    TarBuilder b(Compression::Gzip);
    b.file("bomb", zeros);
    std::string z = b.finish();
    REQUIRE(z.size() < (1 << 20));
    UnpackLimits ratio;
    ratio.ratio = 100;
    ratio.ratio_floor = 1 << 20;
    Sandbox s;
    auto r = s.unpack(z, Compression::Gzip, ratio);
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("decompression bomb") != std::string::npos);
    UnpackLimits size;
    size.max_bytes = 4 << 20;
    Sandbox s2;
    auto r2 = s2.unpack(z, Compression::Gzip, size);
    REQUIRE_FALSE(r2);
    CHECK(r2.error().message().find("limit") != std::string::npos);
    // The same layer passes with the defaults.
    Sandbox s3;
    CHECK(s3.unpack(z, Compression::Gzip));
}

TEST_CASE("hostile: headers lying about sizes", "[unpack][hostile]") {
    std::string data(3000, 'A');
    TarBuilder b;
    b.file("first", data).file("second", "2");
    std::string tar = b.finish();
    SECTION("claims more than there is") {
        std::string t = tar;
        TarBuilder::patch_size(t, 0, 1ull << 33);
        Sandbox s;
        CHECK_FALSE(s.unpack(t));
        s.check_contained();
    }
    SECTION("claims less than there is") {
        std::string t = tar;
        TarBuilder::patch_size(t, 0, 10);
        Sandbox s;
        CHECK_FALSE(s.unpack(t));
        s.check_contained();
    }
    SECTION("claims more than the size limit") {
        std::string t = tar;
        TarBuilder::patch_size(t, 0, 1ull << 33);
        UnpackLimits l;
        l.max_bytes = 1 << 20;
        Sandbox s;
        CHECK_FALSE(s.unpack(t, Compression::None, l));
    }
}

TEST_CASE("hostile: truncated gzip stream", "[unpack][hostile]") {
    std::string body;
    for (int i = 0; i < 20000; ++i) body += std::to_string(i * 7919) + "\n";
    TarBuilder b(Compression::Gzip);
    b.file("text", body).file("after", "x");
    std::string z = b.finish();
    for (size_t cut : {z.size() - 4, z.size() / 2, size_t(10), size_t(30)}) {
        INFO(cut);
        Sandbox s;
        CHECK_FALSE(s.unpack(z.substr(0, cut), Compression::Gzip));
        s.check_contained();
    }
    // Corrupt a byte in the middle: the CRC or the inflate fails.
    std::string bad = z;
    bad[bad.size() / 2] ^= 0x55;
    Sandbox s;
    CHECK_FALSE(s.unpack(bad, Compression::Gzip));
}
