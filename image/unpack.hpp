// Layer unpacking: a (gzip|zstd|plain) tar stream becomes a directory tree,
// in one streaming pass that also computes the layer's diff_id.
//
// Layers are untrusted. Every entry is created with *at() calls relative to
// a directory fd obtained by util::mkdir_all_in_root(Scope::Beneath), never
// through libarchive's disk writer, so nothing is ever written outside the
// target: `..` components are refused, leading `/` is stripped, a path
// through a symlink that leaves the root or through a regular file fails,
// a hardlink must name an earlier entry inside the target. Sizes are capped
// (total and compression ratio) against decompression bombs.
//
// Whiteouts are stored the way overlayfs reads them, so stored layers stack
// directly: `.wh.<name>` becomes a 0/0 character device `<name>` and
// `.wh..wh..opq` the xattr trusted.overlay.opaque=y on its directory. The
// flattened-copy fallback (rootfs.cpp) interprets the same markers.
#pragma once

#include <cstdint>
#include <string>

#include "image/digest.hpp"
#include "image/manifest.hpp"
#include "image/store.hpp"
#include "util/result.hpp"

namespace img {

struct UnpackLimits {
    uint64_t max_bytes = uint64_t(8) << 30;        ///< uncompressed tar bytes, and file data
    uint64_t ratio = 200;                          ///< uncompressed / compressed, once past ratio_floor
    uint64_t ratio_floor = uint64_t(64) << 20;     ///< ratio is not checked below this many bytes
    uint64_t max_entries = 1000000;
};

struct UnpackStats {
    Digest diff_id;          ///< sha256 of the uncompressed tar stream
    uint64_t tar_bytes = 0;  ///< its length
    uint64_t compressed_bytes = 0;
    uint64_t entries = 0;
};

/// Unpacks the tar stream read from `in_fd` into the directory `target_dirfd`
/// (normally empty). On error the target holds a partial tree: the caller
/// removes it. Whiteouts become overlay markers (see above), which needs root.
util::Result<UnpackStats> unpack_stream(int in_fd, Compression compression, int target_dirfd,
                                        const UnpackLimits &limits = {});

/// True when libarchive was built with zstd.
bool zstd_supported();

/// Unpacks the stored layer blob `layer` into layers/<diff_id-hex>/rootfs of
/// the store: into layers/.tmp-<hex>.<pid> first, checks the diff_id, syncs,
/// then renames into place. Does nothing when the layer is already there.
/// A failure or crash leaves no directory under the final name.
util::Status unpack_layer(Store &store, const Descriptor &layer, const Digest &diff_id,
                          const UnpackLimits &limits = {});

}  // namespace img
