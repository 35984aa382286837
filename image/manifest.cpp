// Manifest, index and platform handling (see manifest.hpp).
#include "image/manifest.hpp"

#include "util/json.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using util::cat;
using util::Error;
using util::quote;
namespace json = util::json;

util::Result<std::map<std::string, std::string>> parse_annotations(const json::Value &obj, std::string_view where) {
    std::map<std::string, std::string> out;
    const json::Value *a = TRY(json::opt_object(obj, "annotations", where));
    if (!a) return out;
    for (auto it = a->begin(); it != a->end(); ++it) {
        if (!it.value().is_string())
            return Error::msg(cat('`', json::field_path(json::field_path(where, "annotations"), it.key()), "`: expected a string"));
        out[it.key()] = it.value().get<std::string>();
    }
    return out;
}

util::Result<Platform> parse_platform_obj(const json::Value &p, std::string_view where) {
    TRY(json::expect_object(p, where));
    Platform out;
    out.os = TRY(json::req_string(p, "os", where));
    out.architecture = TRY(json::req_string(p, "architecture", where));
    out.variant = TRY(json::opt_string(p, "variant", where)).value_or("");
    return out;
}

util::Result<Descriptor> parse_descriptor(const json::Value &d, std::string_view where) {
    TRY(json::expect_object(d, where));
    std::string mt = TRY(json::req_string(d, "mediaType", where));
    std::string ds = TRY(json::req_string(d, "digest", where));
    auto digest = TRY_CTX(Digest::parse(ds), cat('`', json::field_path(where, "digest"), '`'));
    auto size = TRY(json::opt_int(d, "size", where));
    if (!size || *size < 0) return Error::msg(cat('`', json::field_path(where, "size"), "`: expected a size >= 0"));
    Descriptor out{mt, digest, *size, std::nullopt, {}};
    if (d.contains("platform")) out.platform = TRY(parse_platform_obj(d["platform"], json::field_path(where, "platform")));
    out.annotations = TRY(parse_annotations(d, where));
    return out;
}

util::Result<json::Value> parse_object(std::string_view text, std::string_view what) {
    auto v = TRY(json::parse(text, what));
    TRY(json::expect_object(v, what));
    return v;
}

/// "v7" -> 7; anything else -> -1.
int variant_number(std::string_view v) {
    if (v.size() < 2 || v[0] != 'v') return -1;
    return util::parse_int<int>(v.substr(1)).value_or(-1);
}

std::string norm_variant(const Platform &p) {
    if (p.architecture == "arm64" && (p.variant.empty() || p.variant == "v8")) return "v8";
    return p.variant;
}

}  // namespace

util::Result<Compression> layer_compression(std::string_view mt) {
    if (mt == media::kOciLayer || mt == "application/vnd.oci.image.layer.nondistributable.v1.tar") return Compression::None;
    if (mt == media::kOciLayerGzip || mt == media::kDockerLayerGzip || mt == media::kDockerForeignLayerGzip ||
        mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
        return Compression::Gzip;
    if (mt == media::kOciLayerZstd || mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")
        return Compression::Zstd;
    return Error::msg(cat("unsupported layer media type ", quote(mt)));
}

util::Result<Platform> Platform::parse(std::string_view s) {
    auto parts = util::split(s, '/');
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
        return Error::msg(cat("platform ", quote(s), ": expected os/arch[/variant]"));
    Platform p{parts[0], parts[1], parts.size() == 3 ? parts[2] : ""};
    if (p.architecture == "aarch64") p.architecture = "arm64";
    if (p.architecture == "x86_64") p.architecture = "amd64";
    if (p.architecture == "armhf") p = {p.os, "arm", "v7"};
    return p;
}

Platform Platform::host() {
#if defined(__aarch64__)
    return {"linux", "arm64", "v8"};
#elif defined(__arm__)
#if defined(__ARM_ARCH) && __ARM_ARCH >= 7
    return {"linux", "arm", "v7"};
#elif defined(__ARM_ARCH) && __ARM_ARCH == 6
    return {"linux", "arm", "v6"};
#else
    return {"linux", "arm", "v5"};
#endif
#elif defined(__x86_64__)
    return {"linux", "amd64", ""};
#elif defined(__i386__)
    return {"linux", "386", ""};
#else
    return {"linux", "unknown", ""};
#endif
}

std::string Platform::str() const {
    return variant.empty() ? cat(os, '/', architecture) : cat(os, '/', architecture, '/', variant);
}

util::Result<ManifestKind> manifest_kind(std::string_view text, std::string_view hint) {
    auto v = TRY(parse_object(text, "manifest"));
    std::string mt = TRY(json::opt_string(v, "mediaType", "")).value_or(std::string(hint));
    if (mt == media::kOciManifest || mt == media::kDockerManifest) return ManifestKind::Manifest;
    if (mt == media::kOciIndex || mt == media::kDockerList) return ManifestKind::Index;
    if (!mt.empty()) return Error::msg(cat("manifest: unsupported media type ", quote(mt)));
    if (v.contains("manifests")) return ManifestKind::Index;
    if (v.contains("layers")) return ManifestKind::Manifest;
    return Error::msg("manifest: neither an image manifest nor an index");
}

util::Result<ImageManifest> parse_manifest(std::string_view text) {
    auto v = TRY(parse_object(text, "manifest"));
    auto schema = TRY(json::opt_int(v, "schemaVersion", ""));
    if (schema != 2) return Error::msg("manifest: `schemaVersion` must be 2");
    std::string mt = TRY(json::opt_string(v, "mediaType", "")).value_or(std::string(media::kOciManifest));
    if (mt != media::kOciManifest && mt != media::kDockerManifest)
        return Error::msg(cat("manifest: unexpected media type ", quote(mt)));
    if (!v.contains("config")) return Error::msg("manifest: `config` is missing");
    auto config = TRY_CTX(parse_descriptor(v["config"], "config"), "manifest");
    ImageManifest m{mt, config, {}, {}};
    const json::Value *layers = TRY_CTX(json::opt_array(v, "layers", ""), "manifest");
    if (!layers) return Error::msg("manifest: `layers` is missing");
    for (size_t i = 0; i < layers->size(); ++i) {
        auto d = TRY_CTX(parse_descriptor((*layers)[i], cat("layers[", i, ']')), "manifest");
        TRY_CTX(layer_compression(d.media_type), cat("manifest: `layers[", i, "]`"));
        m.layers.push_back(std::move(d));
    }
    m.annotations = TRY_CTX(parse_annotations(v, ""), "manifest");
    return m;
}

util::Result<ImageIndex> parse_index(std::string_view text) {
    auto v = TRY(parse_object(text, "index"));
    auto schema = TRY(json::opt_int(v, "schemaVersion", ""));
    if (schema != 2) return Error::msg("index: `schemaVersion` must be 2");
    ImageIndex idx;
    idx.media_type = TRY(json::opt_string(v, "mediaType", "")).value_or(std::string(media::kOciIndex));
    if (idx.media_type != media::kOciIndex && idx.media_type != media::kDockerList)
        return Error::msg(cat("index: unexpected media type ", quote(idx.media_type)));
    const json::Value *ms = TRY_CTX(json::opt_array(v, "manifests", ""), "index");
    if (!ms) return Error::msg("index: `manifests` is missing");
    for (size_t i = 0; i < ms->size(); ++i)
        idx.manifests.push_back(TRY_CTX(parse_descriptor((*ms)[i], cat("manifests[", i, ']')), "index"));
    idx.annotations = TRY_CTX(parse_annotations(v, ""), "index");
    return idx;
}

util::Result<Descriptor> select_platform(const ImageIndex &index, const Platform &want) {
    const Descriptor *best = nullptr;
    int best_score = -1;
    std::string want_variant = norm_variant(want);
    int want_n = variant_number(want_variant);
    for (const auto &d : index.manifests) {
        bool nested = d.media_type == media::kOciIndex || d.media_type == media::kDockerList;
        if (!nested && d.media_type != media::kOciManifest && d.media_type != media::kDockerManifest) continue;
        if (!d.platform) {
            if (nested && best_score < 0) {  // an index for several platforms: the last resort
                best = &d;
                best_score = 0;
            }
            continue;
        }
        const Platform &p = *d.platform;
        if (p.os != want.os || p.architecture != want.architecture) continue;
        std::string v = norm_variant(p);
        int score = -1;
        if (v == want_variant || want_variant.empty()) {
            score = 1000;
        } else if (want.architecture == "arm") {
            // An armv7 host runs v6 and v5 binaries; an image without a variant is taken last.
            int n = variant_number(v);
            if (v.empty()) score = 2;
            else if (n > 0 && want_n > 0 && n < want_n) score = 10 + n;
        }
        if (score > 0 && !nested) score++;  // a manifest for the platform before an index for it
        if (score > best_score) {
            best = &d;
            best_score = score;
        }
    }
    if (!best) {
        std::vector<std::string> have;
        for (const auto &d : index.manifests)
            if (d.platform) have.push_back(d.platform->str());
        return Error::msg(cat("no manifest for platform ", want.str(), " (the index has: ",
                              have.empty() ? std::string("none") : util::join(have, ", "), ")"));
    }
    return *best;
}

util::Result<PlatformManifest> resolve_platform(const Digest &top, std::string_view top_body, const Platform &want,
                                                const ManifestLoader &load) {
    std::vector<Digest> chain{top};
    PlatformManifest out;
    std::string body(top_body);
    for (;;) {
        auto index = TRY_CTX(parse_index(body), cat("index ", chain.back().str()));
        auto d = TRY_CTX(select_platform(index, want), cat("index ", chain.back().str()));
        for (const auto &seen : chain) {
            if (!(seen == d.digest)) continue;
            std::string path;
            for (const auto &c : chain) path += c.str() + " -> ";
            return Error::msg(cat("index cycle: ", path, d.digest.str()));
        }
        if (static_cast<int>(chain.size()) > kMaxIndexDepth)
            return Error::msg(cat("index ", top.str(), ": indexes nested deeper than ", kMaxIndexDepth, " levels"));
        std::string next = TRY(load(d));
        if (TRY_CTX(manifest_kind(next, d.media_type), cat("manifest ", d.digest.str())) == ManifestKind::Manifest) {
            out.desc = std::move(d);
            out.body = std::move(next);
            return out;
        }
        chain.push_back(d.digest);
        out.indexes.push_back(next);
        body = std::move(next);
    }
}

}  // namespace img
