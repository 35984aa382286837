// Stored images end to end inside the store: unpack with diff_id checks,
// streaming unpack (one pass from the download), overlay and flattened
// rootfs (whiteouts), bundles (mounted again after a reboot), fsck repairs,
// gc (signature records, locks).
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "image/fsck.hpp"
#include "image/image.hpp"
#include "image/rootfs.hpp"
#include "image/tests/tar_builder.hpp"
#include "image/unpack.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/tests/tmpdir.hpp"

using namespace img;

namespace {

std::string desc(std::string_view mt, const std::string &data) {
    return "{\"mediaType\":\"" + std::string(mt) + "\",\"digest\":\"" + Digest::of(data).str() +
           "\",\"size\":" + std::to_string(data.size()) + "}";
}

/// Puts a two-layer image in the store and returns its manifest digest.
Digest make_image(Store &s, std::vector<std::string> *diff_ids = nullptr) {
    TarBuilder l1;
    l1.dir("etc").file("etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:7:7::/:/bin/sh\n").file("etc/old", "old")
        .dir("var/cache").file("var/cache/a", "a").file("bin/app", "#!/bin/sh\n", TarBuilder::Opts(0755));
    std::string t1 = l1.finish();
    TarBuilder l2;
    l2.file("etc/.wh.old", "").dir("var/cache").file("var/cache/.wh..wh..opq", "").file("var/cache/b", "b")
        .file("etc/new", "new");
    std::string t2 = l2.finish();
    TarBuilder g2(Compression::Gzip);
    g2.file("etc/.wh.old", "").dir("var/cache").file("var/cache/.wh..wh..opq", "").file("var/cache/b", "b")
        .file("etc/new", "new");
    std::string z2 = g2.finish();
    std::string cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"app\",\"Cmd\":[\"/bin/app\"]},"
                      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" +
                      Digest::of(t1).str() + "\",\"" + Digest::of(t2).str() + "\"]}}";
    std::string m = "{\"schemaVersion\":2,\"mediaType\":\"" + std::string(media::kOciManifest) + "\",\"config\":" +
                    desc(media::kOciConfig, cfg) + ",\"layers\":[" + desc(media::kOciLayer, t1) + "," +
                    desc(media::kOciLayerGzip, z2) + "]}";
    REQUIRE(s.put_blob(Digest::of(t1), t1));
    REQUIRE(s.put_blob(Digest::of(z2), z2));
    REQUIRE(s.put_blob(Digest::of(cfg), cfg));
    REQUIRE(s.put_blob(Digest::of(m), m));
    if (diff_ids) *diff_ids = {Digest::of(t1).str(), Digest::of(t2).str()};
    return Digest::of(m);
}

bool is_root() { return geteuid() == 0; }

}  // namespace

TEST_CASE("unpack an image into the store; layers are checked and complete", "[image][root]") {
    if (!is_root()) {
        WARN("skipped: needs root (whiteouts)");
        return;
    }
    TempDir t;
    auto s = Store::open(t.path);
    REQUIRE(s);
    Digest md = make_image(*s);
    auto img = load_image(*s, md, *Platform::parse("linux/amd64"));
    REQUIRE(img);
    REQUIRE(unpack_image(*s, *img));
    for (const auto &d : img->config.diff_ids) CHECK(s->has_layer(d));
    auto rep = fsck(*s, false);
    REQUIRE(rep);
    CHECK(rep->clean());
    CHECK(rep->layers_checked == 2);
}

TEST_CASE("a failed unpack leaves no half layer", "[image][root]") {
    if (!is_root()) {
        WARN("skipped: needs root (whiteouts)");
        return;
    }
    TempDir t;
    auto s = Store::open(t.path);
    Digest md = make_image(*s);
    auto img = load_image(*s, md, Platform::host());
    REQUIRE(img);
    // A wrong diff_id.
    Digest wrong = Digest::of("wrong");
    CHECK_FALSE(unpack_layer(*s, img->manifest.layers[0], wrong));
    CHECK_FALSE(s->has_layer(wrong));
    // A failure just before the rename.
    util::failpoint_arm("unpack.rename", util::FailAction::Error);
    CHECK_FALSE(unpack_layer(*s, img->manifest.layers[0], img->config.diff_ids[0]));
    util::failpoint_clear();
    CHECK_FALSE(s->has_layer(img->config.diff_ids[0]));
    DIR *d = opendir((t.path + "/layers").c_str());
    int entries = 0;
    while (auto *e = readdir(d))
        if (e->d_name[0] != '.' || (std::string(e->d_name) != "." && std::string(e->d_name) != "..")) ++entries;
    closedir(d);
    CHECK(entries == 0);
    REQUIRE(unpack_layer(*s, img->manifest.layers[0], img->config.diff_ids[0]));
}

TEST_CASE("flattened and overlay rootfs agree, whiteouts applied", "[image][root]") {
    if (!is_root()) {
        WARN("skipped: needs root");
        return;
    }
    TempDir t;
    auto s = Store::open(t.path);
    Digest md = make_image(*s);
    auto img = load_image(*s, md, Platform::host());
    REQUIRE(unpack_image(*s, *img));
    std::vector<std::pair<const char *, RootfsMode>> modes = {{"flat", RootfsMode::Flatten}};
    if (overlay_available(t.path)) modes.push_back({"ovl", RootfsMode::Overlay});
    else WARN("overlay part skipped: overlayfs not available");
    for (auto [id, mode] : modes) {
        INFO(id);
        auto b = create_bundle(*s, id, *img, mode, {});
        if (!b) FAIL(b.error().message());
        CHECK(b->overlay == (mode == RootfsMode::Overlay));
        CHECK(util::path_exists(b->rootfs + "/etc/passwd"));
        CHECK(util::path_exists(b->rootfs + "/etc/new"));
        CHECK_FALSE(util::path_exists(b->rootfs + "/etc/old"));        // whiteout
        CHECK_FALSE(util::path_exists(b->rootfs + "/var/cache/a"));    // opaque directory
        CHECK(*util::read_file(b->rootfs + "/var/cache/b") == "b");
        struct stat st;
        REQUIRE(stat((b->rootfs + "/bin/app").c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0755);
        auto cfg = util::json::parse(*util::read_file(b->dir + "/config.json"), "config.json");
        REQUIRE(cfg);
        CHECK((*cfg)["process"]["user"]["uid"] == 7);
        // Writes go to the container, never to the shared layer.
        REQUIRE(util::atomic_write_file(b->rootfs + "/etc/passwd", "changed"));
        CHECK(*util::read_file(s->layer_path(img->config.diff_ids[0]) + "/rootfs/etc/passwd") != "changed");
        CHECK_FALSE(create_bundle(*s, id, *img, mode, {}));  // exists
    }
    // gc keeps what containers use even without a ref.
    auto g = gc(*s);
    REQUIRE(g);
    CHECK(g->layers_removed == 0);
    for (auto [id, mode] : modes) REQUIRE(remove_bundle(*s, id));
    auto g2 = gc(*s);
    REQUIRE(g2);
    CHECK(g2->layers_removed == 2);
    CHECK(g2->blobs_removed == 4);
}

namespace {

/// Runs `check` on a bundle (id "flat", then "ovl" where overlayfs works)
/// of the test image, in a fresh store; the bundle is removed after.
void for_each_rootfs_mode(const std::function<void(Store &, const Bundle &)> &check) {
    TempDir t;
    auto s = Store::open(t.path);
    auto img = load_image(*s, make_image(*s), Platform::host());
    REQUIRE(unpack_image(*s, *img));
    std::vector<std::pair<const char *, RootfsMode>> modes = {{"flat", RootfsMode::Flatten}};
    if (overlay_available(t.path)) modes.push_back({"ovl", RootfsMode::Overlay});
    for (auto [id, mode] : modes) {
        INFO(id);
        auto b = create_bundle(*s, id, *img, mode, {});
        if (!b) FAIL(b.error().message());
        check(*s, *b);
        REQUIRE(remove_bundle(*s, id));
        CHECK_FALSE(util::path_exists(b->dir));
    }
}

bool mounted_nodev(const std::string &path) {
    struct statvfs sv;
    REQUIRE(statvfs(path.c_str(), &sv) == 0);
    return (sv.f_flag & ST_NODEV) != 0;
}

}  // namespace

TEST_CASE("a container's rootfs is mounted nodev whether overlay or flattened", "[image][root]") {
    if (!is_root()) {
        WARN("skipped: needs root");
        return;
    }
    for_each_rootfs_mode([](Store &, const Bundle &b) { CHECK(mounted_nodev(b.rootfs)); });
}

TEST_CASE("mount_bundle mounts an unmounted rootfs again, nodev, and leaves a mounted one", "[image][root]") {
    if (!is_root()) {
        WARN("skipped: needs root");
        return;
    }
    for_each_rootfs_mode([](Store &s, const Bundle &b) {
        std::string id = util::basename(b.dir);
        REQUIRE(util::atomic_write_file(b.rootfs + "/etc/written", "kept"));
        REQUIRE(mount_bundle(s, id));  // mounted: nothing to do
        REQUIRE(umount2(b.rootfs.c_str(), 0) == 0);  // as after a reboot
        REQUIRE(mount_bundle(s, id));
        CHECK(*util::read_file(b.rootfs + "/etc/written") == "kept");  // the writable layer is back
        CHECK(util::path_exists(b.rootfs + "/etc/new"));
        CHECK(mounted_nodev(b.rootfs));
        REQUIRE(umount2(b.rootfs.c_str(), 0) == 0);
        CHECK(umount2(b.rootfs.c_str(), 0) < 0);  // mounted once, not stacked
        REQUIRE(mount_bundle(s, id));
    });
}

TEST_CASE("fsck repairs corrupted blobs and stale temporaries", "[image][fsck]") {
    TempDir t;
    auto s = Store::open(t.path);
    Digest md = make_image(*s);
    REQUIRE(s->set_ref("localhost/app:1", md));
    REQUIRE(fsck(*s, false)->clean());
    // Stale temporaries of every kind, and a partial download without state.
    REQUIRE(util::atomic_write_file(t / "ingest/0123.put", "x"));
    REQUIRE(util::atomic_write_file(t / ("ingest/" + std::string(64, 'a')), "partial"));
    REQUIRE(util::atomic_write_file(t / ("ingest/" + std::string(64, 'b')), "resumable"));
    REQUIRE(util::atomic_write_file(t / ("ingest/" + std::string(64, 'b') + ".state"), "{}"));
    REQUIRE(util::mkdir_p(t / ("layers/.tmp-" + std::string(64, 'c') + ".99")));
    REQUIRE(util::mkdir_p(t / ("layers/" + std::string(64, 'd'))));
    REQUIRE(util::atomic_write_file(t / "refs/.berth-tmp-x.1.1", "{"));
    // Corrupt the config blob in place.
    auto img = load_image(*s, md, Platform::host());
    REQUIRE(img);
    Digest cfg = img->manifest.config.digest;
    {
        int fd = open(s->blob_path(cfg).c_str(), O_WRONLY);
        REQUIRE(pwrite(fd, "X", 1, 3) == 1);
        close(fd);
    }
    auto r = fsck(*s, false);
    REQUIRE(r);
    CHECK(r->problems.size() >= 6);
    CHECK(r->repaired == 0);
    auto fixed = fsck(*s, true);
    REQUIRE(fixed);
    CAPTURE(fixed->problems);
    CHECK(fixed->repaired == static_cast<int>(fixed->problems.size()));
    CHECK_FALSE(s->has_blob(cfg));
    CHECK(util::path_exists(t / ("ingest/" + std::string(64, 'b'))));  // resumable: kept
    CHECK_FALSE(util::path_exists(t / ("ingest/" + std::string(64, 'a'))));
    CHECK_FALSE(s->get_ref("localhost/app:1")->has_value());  // its config is gone
    auto again = fsck(*s, false);
    REQUIRE(again);
    CAPTURE(again->problems);
    CHECK(again->clean());
    // The image can be stored again.
    make_image(*s);
}

TEST_CASE("a hostile layer in the store: refused, no layer, fsck clean", "[image][fsck]") {
    TempDir t;
    auto s = Store::open(t / "store");
    REQUIRE(s);
    TarBuilder b;
    b.symlink("up", "/").file("up/" + t.path.substr(1) + "/escaped", "evil");
    std::string tar = b.finish();
    std::string cfg = "{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" +
                      Digest::of(tar).str() + "\"]}}";
    std::string m = "{\"schemaVersion\":2,\"config\":" + desc(media::kOciConfig, cfg) + ",\"layers\":[" +
                    desc(media::kOciLayer, tar) + "]}";
    REQUIRE(s->put_blob(Digest::of(tar), tar));
    REQUIRE(s->put_blob(Digest::of(cfg), cfg));
    REQUIRE(s->put_blob(Digest::of(m), m));
    auto img = load_image(*s, Digest::of(m), Platform::host());
    REQUIRE(img);
    CHECK_FALSE(unpack_image(*s, *img));
    CHECK_FALSE(s->has_layer(img->config.diff_ids[0]));
    CHECK_FALSE(util::path_exists(t / "escaped"));
    auto r = fsck(*s, false);
    REQUIRE(r);
    CAPTURE(r->problems);
    CHECK(r->clean());
}

namespace {

/// A gzip layer (blob, descriptor, diff_id) of `files` name -> content.
struct GzLayer {
    std::string blob;
    Descriptor desc;
    Digest diff_id;
};

GzLayer gz_layer(const std::vector<std::pair<std::string, std::string>> &files) {
    TarBuilder plain, gz(Compression::Gzip);
    for (const auto &[n, c] : files) {
        plain.file(n, c);
        gz.file(n, c);
    }
    GzLayer l;
    l.blob = gz.finish();
    l.diff_id = Digest::of(plain.finish());
    l.desc.media_type = std::string(media::kOciLayerGzip);
    l.desc.digest = Digest::of(l.blob);
    l.desc.size = static_cast<int64_t>(l.blob.size());
    return l;
}

/// Feeds `blob` in 777-byte pieces (as a download would); the first error.
util::Status feed_all(StreamingUnpack &s, std::string_view blob) {
    for (size_t off = 0; off < blob.size(); off += 777) TRY(s.feed(blob.substr(off, 777)));
    return util::ok();
}

size_t tmp_layers(const std::string &root) {
    size_t n = 0;
    DIR *d = opendir((root + "/layers").c_str());
    while (auto *e = readdir(d))
        if (std::string(e->d_name).starts_with(".tmp-")) ++n;
    closedir(d);
    return n;
}

}  // namespace

TEST_CASE("streaming unpack: the layer appears only once its blob is stored", "[image][stream]") {
    TempDir t;
    auto s = Store::open(t.path);
    REQUIRE(s);
    std::string big(3 << 20, '\0');
    for (size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>((i * 2654435761u) >> 13);
    GzLayer l = gz_layer({{"etc/hostname", "gw\n"}, {"data/big", big}});

    // Fed completely, but the blob never entered the store: no layer, no temporary.
    {
        auto su = StreamingUnpack::start(*s, l.desc, l.diff_id);
        REQUIRE(su);
        REQUIRE(*su);
        REQUIRE(feed_all(**su, l.blob));
        auto st = (*su)->commit();
        REQUIRE_FALSE(st);
        CHECK(st.error().message().find("not verified") != std::string::npos);
    }
    CHECK_FALSE(s->has_layer(l.diff_id));
    CHECK(tmp_layers(t.path) == 0);

    // Abandoned half-way (a dropped or mismatched download): nothing left, lock released.
    {
        auto su = StreamingUnpack::start(*s, l.desc, l.diff_id);
        REQUIRE(su);
        REQUIRE(feed_all(**su, std::string_view(l.blob).substr(0, l.blob.size() / 2)));
        CHECK(tmp_layers(t.path) == 1);
    }
    CHECK(tmp_layers(t.path) == 0);

    // A wrong diff_id in the config: refused after the stream, nothing left.
    REQUIRE(s->put_blob(l.desc.digest, l.blob));
    {
        auto su = StreamingUnpack::start(*s, l.desc, Digest::of("another tar"));
        REQUIRE(su);
        REQUIRE(feed_all(**su, l.blob));
        auto st = (*su)->commit();
        REQUIRE_FALSE(st);
        CHECK(st.error().message().find("the config says") != std::string::npos);
    }
    CHECK(tmp_layers(t.path) == 0);

    // The real thing: stream, blob stored (verified), commit.
    {
        auto su = StreamingUnpack::start(*s, l.desc, l.diff_id);
        REQUIRE(su);
        REQUIRE(feed_all(**su, l.blob));
        REQUIRE((*su)->commit());
    }
    CHECK(s->has_layer(l.diff_id));
    CHECK(*util::read_file(s->layer_path(l.diff_id) + "/rootfs/data/big") == big);
    CHECK(*util::read_file(s->layer_path(l.diff_id) + "/rootfs/etc/hostname") == "gw\n");
    auto again = StreamingUnpack::start(*s, l.desc, l.diff_id);
    REQUIRE(again);
    CHECK_FALSE(*again);  // already unpacked
    auto r = fsck(*s, false);
    REQUIRE(r);
    CAPTURE(r->problems);
    CHECK(r->clean());
}

TEST_CASE("streaming unpack: hostile layers and bombs are refused as in unpack_stream", "[image][stream]") {
    TempDir t;
    auto s = Store::open(t / "store");
    REQUIRE(s);
    // An entry through a symlink that leaves the root.
    TarBuilder b(Compression::Gzip);
    b.symlink("up", "/").file("up/" + t.path.substr(1) + "/escaped", "evil");
    std::string blob = b.finish();
    Descriptor d{std::string(media::kOciLayerGzip), Digest::of(blob), static_cast<int64_t>(blob.size()), {}, {}};
    {
        auto su = StreamingUnpack::start(*s, d, Digest::of("x"));
        REQUIRE(su);
        auto fed = feed_all(**su, blob);
        auto st = fed ? (*su)->commit() : fed;
        CHECK_FALSE(st);
    }
    CHECK_FALSE(util::path_exists(t / "escaped"));
    CHECK(tmp_layers(t / "store") == 0);

    // A bomb: 64 MiB of zeros past the limit stops the unpacker, and feed says so.
    std::string zeros(80 << 20, '\0');
    TarBuilder z(Compression::Gzip);
    z.file("zeros", zeros);
    std::string bomb = z.finish();
    Descriptor bd{std::string(media::kOciLayerGzip), Digest::of(bomb), static_cast<int64_t>(bomb.size()), {}, {}};
    UnpackLimits lim;
    lim.max_bytes = 16 << 20;
    auto su = StreamingUnpack::start(*s, bd, Digest::of("y"), lim);
    REQUIRE(su);
    util::Status st = util::ok();
    for (int i = 0; i < 50 && st; i++) st = feed_all(**su, bomb);  // keeps feeding until the unpacker's error comes back
    REQUIRE_FALSE(st);
    CHECK(st.error().message().find("larger than the limit") != std::string::npos);
}

TEST_CASE("gc drops the signature records of manifests it removes", "[image][gc]") {
    TempDir t;
    auto s = Store::open(t.path);
    REQUIRE(s);
    Digest md = make_image(*s);
    REQUIRE(s->set_ref("localhost/app:1", md));
    Digest gone = Digest::of("a manifest that was collected");
    REQUIRE(util::mkdir_p(t / "signatures"));
    REQUIRE(util::atomic_write_file(s->signature_record_path(md), "{\"manifest\":\"" + md.str() + "\"}\n"));
    REQUIRE(util::atomic_write_file(s->signature_record_path(gone), "{\"manifest\":\"" + gone.str() + "\"}\n"));
    // fsck reports the orphan record; gc removes it and keeps the live one.
    auto r = fsck(*s, false);
    REQUIRE(r);
    CHECK(r->problems.size() == 1);
    auto g = gc(*s);
    REQUIRE(g);
    CHECK(g->signatures_removed == 1);
    CHECK(g->blobs_removed == 0);
    CHECK(util::path_exists(s->signature_record_path(md)));
    CHECK_FALSE(util::path_exists(s->signature_record_path(gone)));
    CHECK(fsck(*s, false)->clean());
    // The image goes: its record goes with it.
    REQUIRE(s->remove_ref("localhost/app:1"));
    g = gc(*s);
    REQUIRE(g);
    CHECK(g->signatures_removed == 1);
    CHECK(g->blobs_removed == 4);
    CHECK_FALSE(util::path_exists(s->signature_record_path(md)));
    CHECK(fsck(*s, false)->clean());
}

/// Polls /proc/locks (for 10 s at most) until process `pid` waits for an
/// exclusive flock on the file of inode `ino`; false at the deadline.
static bool wait_for_blocked_flock(pid_t pid, ino_t ino) {
    const std::string want_pid = " " + std::to_string(pid) + " ";
    const std::string want_ino = ":" + std::to_string(ino) + " ";
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen("/proc/locks", "re");
        REQUIRE(f);
        char line[512];
        bool found = false;
        while (!found && fgets(line, sizeof line, f)) {
            std::string l = line;
            found = l.find(" -> FLOCK") != std::string::npos && l.find(want_pid) != std::string::npos &&
                    l.find(want_ino) != std::string::npos;
        }
        fclose(f);
        if (found) return true;
        usleep(10 * 1000);
    }
    return false;
}

TEST_CASE("gc waits for writers holding the store lock shared", "[image][gc]") {
    TempDir t;
    auto s = Store::open(t.path);
    REQUIRE(s);
    Digest md = make_image(*s);  // no ref: all of it is garbage, once nobody writes
    auto shared = s->lock_shared();
    REQUIRE(shared);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        shared->reset();  // the parent's copy holds the lock
        auto g = gc(*s);
        _exit(g && g->blobs_removed == 4 ? 0 : 1);
    }
    // gc is seen waiting: its blocked flock request on locks/store is listed
    // in /proc/locks ("N: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE ...").
    struct stat lock_st {};
    REQUIRE(stat((t.path + "/locks/store").c_str(), &lock_st) == 0);
    CHECK(wait_for_blocked_flock(pid, lock_st.st_ino));
    int status = 0;
    CHECK(waitpid(pid, &status, WNOHANG) == 0);  // still waiting
    CHECK(s->has_blob(md));
    shared->reset();
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    CHECK_FALSE(s->has_blob(md));
}
