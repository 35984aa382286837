// An image in the store: from a top digest (index or manifest) to the
// platform's manifest, its config and its unpacked layers. Used by import,
// inspect, run and gc; the registry client's pull ends in the same place.
#pragma once

#include <string>
#include <vector>

#include "image/config.hpp"
#include "image/manifest.hpp"
#include "image/store.hpp"
#include "image/unpack.hpp"

namespace img {

struct StoredImage {
    Digest manifest_digest;
    ImageManifest manifest;
    ImageConfig config;
};

/// Reads `top` from the store; an index selects `platform`. The manifest,
/// config and (with `need_layers`) every layer blob must be present.
util::Result<StoredImage> load_image(const Store &store, const Digest &top, const Platform &platform, bool need_layers = true);

/// Unpacks every layer of `image` not yet unpacked (checking each diff_id).
util::Status unpack_image(Store &store, const StoredImage &image, const UnpackLimits &limits = {});

/// The image a name or a digest designates: a ref name ("localhost/app:1"),
/// a manifest digest, or a unique prefix of one (at least 12 hex digits).
util::Result<Digest> find_image(const Store &store, std::string_view name_or_digest);

}  // namespace img
