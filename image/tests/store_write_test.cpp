// How the store writes: every blob goes through util::AtomicFile, so a put
// that fails leaves neither the blob nor a temporary, a partial download is
// kept for the next pull until it is committed, and fsck recognises a blob
// temporary that a kill left behind.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include "image/fsck.hpp"
#include "image/store.hpp"
#include "util/dir.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/tests/tmpdir.hpp"

using img::Digest;
using img::Store;

namespace {

std::vector<std::string> names(const std::string &dir) { return util::list_dir(dir).value(); }

/// A fresh store in a temporary directory.
struct TempStore {
    TempDir t;
    Store s = Store::open(t.path).value();
};

}  // namespace

TEST_CASE("put_blob_fd of content that does not hash to the digest leaves nothing", "[store]") {
    TempStore ts;
    auto &t = ts.t;
    auto *s = &ts.s;
    REQUIRE(util::atomic_write_file(t / "src", "wrong bytes"));
    auto in = util::open_file(t / "src", O_RDONLY).value();
    CHECK_FALSE(s->put_blob_fd(Digest::of("right bytes"), in.get()));
    CHECK(names(t / "blobs/sha256").empty());
    CHECK(names(t / "ingest").size() == 1);  // the blob's lock file only
}

TEST_CASE("put_blob stopped at any failpoint leaves no blob and no temporary", "[store]") {
    for (const char *fp : {"store.put.write", "store.put.rename", "atomic_write.fsync", "atomic_write.rename"}) {
        DYNAMIC_SECTION(fp) {
            TempStore ts;
            auto &t = ts.t;
            auto *s = &ts.s;
            util::failpoint_arm(fp, util::FailAction::Error);
            auto st = s->put_blob(Digest::of("data"), "data");
            util::failpoint_clear();
            CHECK_FALSE(st);
            CHECK(names(t / "blobs/sha256").empty());
        }
    }
}

TEST_CASE("a partial download survives its AtomicFile and commits into blobs", "[store]") {
    TempStore ts;
    Store *s = &ts.s;
    Digest d = Digest::of("partial+rest");
    auto lock = s->lock_blob(d);
    REQUIRE(lock);
    {
        auto part = s->open_ingest(d);
        REQUIRE(part);
        REQUIRE(part->write("partial"));
    }
    CHECK(*util::read_file(s->ingest_path(d)) == "partial");
    auto part = s->open_ingest(d);
    REQUIRE(part);
    REQUIRE(lseek(part->fd(), 0, SEEK_END) == 7);
    REQUIRE(part->write("+rest"));
    REQUIRE(s->commit_ingest(*part, d, 12, false));
    CHECK(s->has_blob(d));
    CHECK_FALSE(util::path_exists(s->ingest_path(d)));
}

TEST_CASE("fsck removes a blob temporary a kill left behind", "[store][fsck]") {
    TempStore ts;
    auto &t = ts.t;
    REQUIRE(util::atomic_write_file(t / "blobs/sha256/.berth-tmp-abc.1.1", "half"));
    auto rep = img::fsck(ts.s, true);
    REQUIRE(rep);
    REQUIRE(rep->problems.size() == 1);
    CHECK(rep->problems[0].starts_with("stale temporary"));
    CHECK(names(t / "blobs/sha256").empty());
}

TEST_CASE("commit_ingest without a partial download fails and creates nothing", "[store]") {
    TempStore ts;
    Digest d = Digest::of("");
    auto st = ts.s.commit_ingest(d, 0, false);
    REQUIRE_FALSE(st);
    CHECK(st.error().code == ENOENT);
    CHECK_FALSE(util::path_exists(ts.s.ingest_path(d)));
    CHECK_FALSE(ts.s.has_blob(d));
}
