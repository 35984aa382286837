// Indexes that point at indexes: nested ones resolve to the platform's
// manifest; a cycle between two indexes is refused with an error that
// names the cycle (not "no manifest for platform ..."). Real digests cannot
// form a cycle, so the cycle is planted in a store as files under made-up
// digests, the way a corrupted or hostile store would hold it.
#include <catch2/catch.hpp>

#include <map>

#include "image/image.hpp"
#include "image/manifest.hpp"
#include "util/file.hpp"
#include "util/tests/tmpdir.hpp"

using namespace img;

namespace {

std::string entry(std::string_view mt, const Digest &d, size_t size, const char *arch) {
    std::string p = arch ? std::string(",\"platform\":{\"os\":\"linux\",\"architecture\":\"") + arch + "\"}" : "";
    return "{\"mediaType\":\"" + std::string(mt) + "\",\"digest\":\"" + d.str() + "\",\"size\":" + std::to_string(size) + p +
           "}";
}

std::string index_of(const std::vector<std::string> &entries) {
    std::string out = "{\"schemaVersion\":2,\"mediaType\":\"" + std::string(media::kOciIndex) + "\",\"manifests\":[";
    for (size_t i = 0; i < entries.size(); i++) out += (i ? "," : "") + entries[i];
    return out + "]}";
}

Digest fake(char c) { return *Digest::parse("sha256:" + std::string(64, c)); }

}  // namespace

TEST_CASE("a cycle between two indexes is refused, naming the cycle", "[manifest][index]") {
    TempDir tmp;
    auto store = Store::open(tmp.path);
    REQUIRE(store);
    Digest a = fake('a'), b = fake('b');
    std::string body_a = index_of({entry(media::kOciIndex, b, 200, "amd64")});
    std::string body_b = index_of({entry(media::kOciIndex, a, 200, "amd64")});
    REQUIRE(util::atomic_write_file(store->blob_path(a), body_a));
    REQUIRE(util::atomic_write_file(store->blob_path(b), body_b));
    auto img = load_image(*store, a, *Platform::parse("linux/amd64"));
    REQUIRE(!img);
    std::string msg = img.error().message();
    INFO(msg);
    CHECK(msg.find("index cycle") != std::string::npos);
    CHECK(msg.find(a.str() + " -> " + b.str() + " -> " + a.str()) != std::string::npos);
    CHECK(msg.find("no manifest for platform") == std::string::npos);
}

TEST_CASE("an index that names itself is a cycle", "[manifest][index]") {
    Digest a = fake('a');
    std::string body = index_of({entry(media::kOciIndex, a, 200, nullptr)});
    auto r = resolve_platform(a, body, *Platform::parse("linux/amd64"),
                              [&](const Descriptor &) -> util::Result<std::string> { return body; });
    REQUIRE(!r);
    CHECK(r.error().message() == "index cycle: " + a.str() + " -> " + a.str());
}

TEST_CASE("a nested index resolves to the platform's manifest", "[manifest][index]") {
    std::string man = "{\"schemaVersion\":2,\"mediaType\":\"" + std::string(media::kOciManifest) +
                      "\",\"config\":{\"mediaType\":\"" + std::string(media::kOciConfig) + "\",\"digest\":\"" +
                      Digest::of("{}").str() + "\",\"size\":2},\"layers\":[]}";
    std::string inner = index_of({entry(media::kOciManifest, Digest::of(man), man.size(), "amd64")});
    std::string outer = index_of({entry(media::kOciIndex, Digest::of(inner), inner.size(), nullptr)});
    std::map<std::string, std::string> blobs{{Digest::of(man).str(), man}, {Digest::of(inner).str(), inner}};
    int loads = 0;
    auto r = resolve_platform(Digest::of(outer), outer, *Platform::parse("linux/amd64"),
                              [&](const Descriptor &d) -> util::Result<std::string> {
                                  loads++;
                                  return blobs.at(d.digest.str());
                              });
    REQUIRE(r);
    CHECK(r->desc.digest == Digest::of(man));
    CHECK(r->body == man);
    CHECK(r->indexes == std::vector<std::string>{inner});
    CHECK(loads == 2);
}

TEST_CASE("an image manifest for the platform is preferred to a nested index", "[manifest][index]") {
    Digest m = fake('1'), i = fake('2');
    auto idx = parse_index(index_of({entry(media::kOciIndex, i, 10, nullptr), entry(media::kOciIndex, i, 10, "amd64"),
                                     entry(media::kOciManifest, m, 10, "amd64")}));
    REQUIRE(idx);
    auto d = select_platform(*idx, *Platform::parse("linux/amd64"));
    REQUIRE(d);
    CHECK(d->digest == m);
}

TEST_CASE("indexes nested too deep are refused", "[manifest][index]") {
    // Index n names index n+1 (digits of a made-up digest); none repeats, none is a manifest.
    static constexpr std::string_view kHex = "0123456789abcdef";
    auto body_for = [](size_t n) { return index_of({entry(media::kOciIndex, fake(kHex[n]), 10, nullptr)}); };
    auto r = resolve_platform(fake('0'), body_for(1), *Platform::parse("linux/amd64"),
                              [&](const Descriptor &d) -> util::Result<std::string> {
                                  return body_for(kHex.find(d.digest.hex()[0]) + 1);
                              });
    REQUIRE(!r);
    CHECK(r.error().message().find("nested deeper than") != std::string::npos);
}
