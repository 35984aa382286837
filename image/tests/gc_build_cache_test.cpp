// `berth image gc` and the build cache (build-cache/<hex>, written by
// `berth build`, each naming a layer blob): an entry whose blob gc removes
// goes with it, and so does one whose blob was already gone; an entry whose
// blob gc keeps stays.
#include <catch2/catch.hpp>

#include "image/fsck.hpp"
#include "util/file.hpp"
#include "util/tests/tmpdir.hpp"

using namespace img;

namespace {

/// Writes build-cache/<name> naming `blob` as its layer.
void cache_entry(const TempDir &t, const std::string &name, const Digest &blob) {
    REQUIRE(util::mkdir_p(t / "build-cache", 0700));
    REQUIRE(util::atomic_write_file(t / ("build-cache/" + name), "{\"digest\":\"" + blob.str() + "\",\"diff_id\":\"" +
                                                                    Digest::of("tar of " + blob.str()).str() + "\",\"size\":5}\n"));
}

}  // namespace

TEST_CASE("gc removes the build-cache entries of the blobs it removes", "[image][gc]") {
    TempDir t;
    auto s = Store::open(t.path);
    REQUIRE(s);
    std::string unused = "a layer only a cached step names";
    REQUIRE(s->put_blob(Digest::of(unused), unused));
    std::string name(64, 'a');
    cache_entry(t, name, Digest::of(unused));
    auto g = gc(*s);
    REQUIRE(g);
    CHECK(g->blobs_removed == 1);
    CHECK(g->cache_entries_removed == 1);
    CHECK_FALSE(util::path_exists(t / ("build-cache/" + name)));
}

TEST_CASE("gc removes build-cache entries whose blob is already missing", "[image][gc]") {
    TempDir t;
    auto s = Store::open(t.path);
    REQUIRE(s);
    std::string name(64, 'b');
    cache_entry(t, name, Digest::of("a blob an earlier gc removed"));
    auto g = gc(*s);
    REQUIRE(g);
    CHECK(g->cache_entries_removed == 1);
    CHECK_FALSE(util::path_exists(t / ("build-cache/" + name)));
}

TEST_CASE("gc keeps the build-cache entries of the blobs it keeps", "[image][gc]") {
    TempDir t;
    auto s = Store::open(t.path);
    REQUIRE(s);
    // A manifest with one layer, tagged: gc keeps the layer blob and its entry.
    std::string layer = "a layer an image uses", cfg = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
    std::string m = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{"
                    "\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" +
                    Digest::of(cfg).str() + "\",\"size\":" + std::to_string(cfg.size()) +
                    "},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" +
                    Digest::of(layer).str() + "\",\"size\":" + std::to_string(layer.size()) + "}]}";
    for (const auto &b : {layer, cfg, m}) REQUIRE(s->put_blob(Digest::of(b), b));
    REQUIRE(s->set_ref("localhost/app:1", Digest::of(m)));
    std::string name(64, 'c');
    cache_entry(t, name, Digest::of(layer));
    auto g = gc(*s);
    REQUIRE(g);
    CHECK(g->blobs_removed == 0);
    CHECK(g->cache_entries_removed == 0);
    CHECK(util::path_exists(t / ("build-cache/" + name)));
    CHECK(s->has_blob(Digest::of(layer)));
}
