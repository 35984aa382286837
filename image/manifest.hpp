// OCI image manifests and indexes, Docker schema 2 manifests and manifest
// lists, their media types, and the choice of one platform's manifest from
// an index (linux/arm/v7, linux/arm64, linux/amd64, ...).
//
// Parsing is strict where a mistake would matter (digests, sizes, media
// types of layers) and lenient elsewhere (unknown fields are ignored, as
// the spec asks). Media-type constants live in img::media so that they do
// not collide with the registry client's.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "image/digest.hpp"
#include "util/result.hpp"

namespace img {

namespace media {
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}  // namespace media

enum class Compression { None, Gzip, Zstd };

/// The compression a layer media type implies; an error for a non-layer type.
util::Result<Compression> layer_compression(std::string_view media_type);

struct Platform {
    std::string os;            ///< "linux"
    std::string architecture;  ///< "arm", "arm64", "amd64"
    std::string variant;       ///< "v7", "v8", or empty

    /// Parses "os/arch[/variant]" (as --platform takes it).
    static util::Result<Platform> parse(std::string_view s);
    /// The platform this binary was built for (linux/arm/v7 on armhf).
    static Platform host();
    std::string str() const;
};

struct Descriptor {
    std::string media_type;
    Digest digest;
    int64_t size = 0;
    std::optional<Platform> platform;
    std::map<std::string, std::string> annotations;
};

struct ImageManifest {
    std::string media_type;
    Descriptor config;
    std::vector<Descriptor> layers;
    std::map<std::string, std::string> annotations;
};

struct ImageIndex {
    std::string media_type;
    std::vector<Descriptor> manifests;
    std::map<std::string, std::string> annotations;
};

enum class ManifestKind { Manifest, Index };

/// Tells a manifest from an index by its mediaType field (or, when absent
/// as OCI allows, by the presence of "manifests" / "layers"). `hint` is
/// the Content-Type the registry sent, or empty.
util::Result<ManifestKind> manifest_kind(std::string_view json, std::string_view hint = "");
util::Result<ImageManifest> parse_manifest(std::string_view json);
util::Result<ImageIndex> parse_index(std::string_view json);

/// Picks the manifest for `want` from an index. Matches os and architecture
/// exactly; the variant exactly, else (arm) the highest lower variant the
/// host can run (v7 runs v6 and v5), and arm64's "v8" equals no variant.
/// An entry that is itself an index (nested, as some exporters write) is a
/// candidate when its platform matches or it has none; an image manifest
/// for the platform is preferred to it.
util::Result<Descriptor> select_platform(const ImageIndex &index, const Platform &want);

/// The bytes of a manifest or index by its descriptor (from the store, a
/// registry or a layout), checked against its digest by the loader.
using ManifestLoader = std::function<util::Result<std::string>(const Descriptor &)>;

struct PlatformManifest {
    Descriptor desc;                    ///< the image manifest chosen
    std::string body;                   ///< its bytes
    std::vector<std::string> indexes;   ///< bodies of the nested indexes passed through (not the top)
};

/// How deep indexes may nest below the top one.
inline constexpr int kMaxIndexDepth = 8;

/// Follows `want` from the index `top` (its digest and bytes) down to an
/// image manifest, through nested indexes loaded with `load`. An index that
/// leads back to one already on the way is refused as a cycle, naming it
/// ("index cycle: sha256:a.. -> sha256:b.. -> sha256:a.."); so is nesting
/// deeper than kMaxIndexDepth.
util::Result<PlatformManifest> resolve_platform(const Digest &top, std::string_view top_body, const Platform &want,
                                                const ManifestLoader &load);

}  // namespace img
