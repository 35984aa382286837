// A layer from a directory tree, reproducibly (docs/build.md): a tar of the
// tree in byte order of the names, owners and modes as they are, mtimes
// clamped to the epoch given, no atime/ctime or host user names, xattrs
// kept (security.capability), hard links as tar links; gzip at a fixed
// level with no name and no time. Returns the compressed digest and size
// and the uncompressed diff_id, and stores the blob in the store.
#pragma once

#include <cstdint>
#include <string>

#include "image/digest.hpp"
#include "image/store.hpp"
#include "util/result.hpp"

namespace build {

struct LayerBlob {
    img::Digest digest;   ///< of the gzip blob, as the manifest names it
    img::Digest diff_id;  ///< of the uncompressed tar, as the config names it
    uint64_t size = 0;
};

/// `tree_dir` holds the layer's files in OCI layer form (whiteouts as .wh.
/// files). `epoch` clamps every mtime.
util::Result<LayerBlob> write_layer(img::Store &store, const std::string &tree_dir, int64_t epoch);

}  // namespace build
