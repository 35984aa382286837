// Manifest and index parsing, media types and platform selection.
#include <catch2/catch.hpp>

#include "image/manifest.hpp"
#include "util/json.hpp"

using namespace img;

namespace {

std::string desc_json(const std::string &mt, const std::string &data, const std::string &platform_json = "") {
    std::string s = "{\"mediaType\":\"" + mt + "\",\"digest\":\"" + Digest::of(data).str() + "\",\"size\":" +
                    std::to_string(data.size());
    if (!platform_json.empty()) s += ",\"platform\":" + platform_json;
    return s + "}";
}

std::string multi_arch_index() {
    std::string m = std::string(media::kOciManifest);
    return "{\"schemaVersion\":2,\"mediaType\":\"" + std::string(media::kOciIndex) + "\",\"manifests\":[" +
           desc_json(m, "amd64", "{\"os\":\"linux\",\"architecture\":\"amd64\"}") + "," +
           desc_json(m, "armv6", "{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v6\"}") + "," +
           desc_json(m, "armv7", "{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}") + "," +
           desc_json(m, "arm64", "{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}") + "," +
           desc_json(m, "attest", "{\"os\":\"unknown\",\"architecture\":\"unknown\"}") + "]}";
}

}  // namespace

TEST_CASE("manifest parsing", "[manifest]") {
    std::string m = "{\"schemaVersion\":2,\"mediaType\":\"" + std::string(media::kDockerManifest) + "\",\"config\":" +
                    desc_json(std::string(media::kDockerConfig), "cfg") + ",\"layers\":[" +
                    desc_json(std::string(media::kDockerLayerGzip), "l1") + "," +
                    desc_json(std::string(media::kOciLayer), "l2") + "]}";
    CHECK(*manifest_kind(m) == ManifestKind::Manifest);
    auto p = parse_manifest(m);
    REQUIRE(p);
    CHECK(p->config.digest == Digest::of("cfg"));
    REQUIRE(p->layers.size() == 2);
    CHECK(*layer_compression(p->layers[0].media_type) == Compression::Gzip);
    CHECK(*layer_compression(p->layers[1].media_type) == Compression::None);
    CHECK(*layer_compression(media::kOciLayerZstd) == Compression::Zstd);
    // OCI allows an absent mediaType: told apart by the fields.
    std::string bare = "{\"schemaVersion\":2,\"config\":" + desc_json(std::string(media::kOciConfig), "c") + ",\"layers\":[]}";
    CHECK(*manifest_kind(bare) == ManifestKind::Manifest);
    CHECK(parse_manifest(bare));
}

TEST_CASE("bad manifests", "[manifest]") {
    std::string cfg = desc_json(std::string(media::kOciConfig), "c");
    for (const std::string &bad : std::vector<std::string>{
             std::string("not json"), std::string("[]"), "{\"schemaVersion\":1,\"config\":" + cfg + ",\"layers\":[]}",
             "{\"schemaVersion\":2,\"layers\":[]}", "{\"schemaVersion\":2,\"config\":" + cfg + "}",
             "{\"schemaVersion\":2,\"config\":" + cfg + ",\"layers\":[" + desc_json("text/plain", "x") + "]}",
             "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"sha256:zz\",\"size\":1},\"layers\":[]}",
             "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"" + Digest::of("").str() +
                 "\",\"size\":-1},\"layers\":[]}",
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"config\":" + cfg +
                 ",\"layers\":[]}",
         }) {
        INFO(bad);
        CHECK_FALSE(parse_manifest(bad));
    }
    CHECK_FALSE(manifest_kind("{\"mediaType\":\"application/vnd.docker.distribution.manifest.v1+json\"}"));
}

TEST_CASE("platform selection from a multi-arch index", "[manifest]") {
    auto idx = parse_index(multi_arch_index());
    REQUIRE(idx);
    CHECK(idx->manifests.size() == 5);
    CHECK(*manifest_kind(multi_arch_index()) == ManifestKind::Index);
    auto pick = [&](const char *p) { return select_platform(*idx, *Platform::parse(p)); };
    CHECK(pick("linux/amd64")->digest == Digest::of("amd64"));
    CHECK(pick("linux/arm/v7")->digest == Digest::of("armv7"));
    CHECK(pick("linux/arm/v6")->digest == Digest::of("armv6"));
    CHECK(pick("linux/arm64")->digest == Digest::of("arm64"));  // v8 == no variant
    CHECK(pick("linux/arm64/v8")->digest == Digest::of("arm64"));
    CHECK(pick("linux/arm/v8")->digest == Digest::of("armv7"));  // highest lower variant
    CHECK_FALSE(pick("linux/arm/v5"));
    CHECK_FALSE(pick("linux/riscv64"));
    CHECK_FALSE(pick("windows/amd64"));
    auto host = select_platform(*idx, Platform::host());
#if defined(__x86_64__)
    CHECK(host->digest == Digest::of("amd64"));
#endif
    CHECK(Platform::parse("linux/aarch64")->str() == "linux/arm64");
    CHECK_FALSE(Platform::parse("linux"));
    CHECK_FALSE(Platform::parse("linux/arm/v7/x"));
}
