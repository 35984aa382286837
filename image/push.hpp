// Pushing an image to a registry: blobs first (skipped when the registry has
// them, mounted from another repository of the same registry when asked,
// else uploaded monolithically or in chunks), then each platform manifest of
// an index by digest, then the top manifest or index under the tag.
//
// The source is a local blob directory laid out as blobs/sha256/<hex>: the
// store (a ref's manifest) or an OCI image layout directory (its index.json).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "image/digest.hpp"
#include "image/reference.hpp"
#include "image/registry.hpp"
#include "image/store.hpp"
#include "util/result.hpp"

namespace img {

struct PushSource {
    std::string blob_dir;  ///< holds sha256/<hex>
    Digest top;            ///< the manifest or index to push
    std::string media_type;
};

/// "oci:DIR[:TAG]" -> the layout's manifest for TAG (or its only manifest).
util::Result<PushSource> layout_source(const std::string &dir, const std::string &tag);
/// A store ref ("host/repo:tag") -> its manifest.
util::Result<PushSource> store_source(const Store &store, const std::string &ref_name);

struct PushOptions {
    uint64_t chunk = 0;         ///< 0: monolithic uploads
    std::string mount_from;     ///< repository (same registry) to try cross-repo mounts from
    std::function<void(std::string_view event, std::string_view detail)> note;
};

struct PushResult {
    Digest top = Digest::of("");
    int uploaded = 0, mounted = 0, existing = 0;
    uint64_t bytes = 0;
};

util::Result<PushResult> push_image(Registry &reg, const PushSource &src, const Reference &dest, const PushOptions &opts);

}  // namespace img
