// Layer unpacking: a (gzip|zstd|plain) tar stream becomes a directory tree,
// in one streaming pass that also computes the layer's diff_id.
//
// Layers are untrusted. Every entry is created with *at() calls relative to
// a directory fd obtained by util::mkdir_all_in_root(Scope::Beneath), never
// through libarchive's disk writer, so nothing is ever written outside the
// target: `..` components are refused, leading `/` is stripped, a path
// through a symlink that leaves the root or through a regular file fails,
// a hardlink must name an earlier entry inside the target. Sizes are capped
// (total and compression ratio) against decompression bombs. Character
// and block devices are not created (docs/store.md): the rootfs is nodev
// and a container's devices come from its runtime config. Entries of the
// same name replace each other: the last one in the layer wins.
//
// Whiteouts are stored the way overlayfs reads them, so stored layers stack
// directly: `.wh.<name>` becomes a 0/0 character device `<name>` and
// `.wh..wh..opq` the xattr trusted.overlay.opaque=y on its directory. The
// flattened-copy fallback (rootfs.cpp) interprets the same markers.
#pragma once

#include <pthread.h>

#include <cstdint>
#include <memory>
#include <optional>
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

/// A layer being unpacked into layers/.tmp-<hex>.<pid>/rootfs, under the
/// layer's lock (locks/layer-<hex>, which also tells fsck the temporary is
/// in use). It becomes layers/<hex> only through commit(); destroyed
/// uncommitted, it removes the temporary directory.
class LayerTmp {
public:
    /// Takes the layer lock; nullopt when the layer is already unpacked.
    static util::Result<std::optional<LayerTmp>> begin(Store &store, const Digest &diff_id);
    LayerTmp(LayerTmp &&other) noexcept;
    LayerTmp &operator=(LayerTmp &&) = delete;
    ~LayerTmp();

    int rootfs_fd() const { return rootfs_.get(); }
    /// Checks that `stats` (of the stream unpacked into rootfs_fd()) has the
    /// expected diff_id, writes layer.json and syncs the filesystem.
    util::Status seal(const Descriptor &layer, const UnpackStats &stats);
    /// Renames the sealed directory into place (and syncs the rename).
    util::Status commit(const Descriptor &layer);

private:
    LayerTmp(Store &store, const Digest &diff_id) : store_(&store), diff_id_(diff_id) {}
    Store *store_;
    Digest diff_id_;
    std::string tmp_;  ///< removed by the destructor while non-empty
    util::UniqueFd lock_, rootfs_;
    bool sealed_ = false;
};

/// The unpacking half of a one-pass pull: the bytes of a layer blob, fed in
/// order while they download, go through a socketpair to a thread that runs
/// unpack_stream (every containment check and limit above, unchanged) into a
/// LayerTmp. The download and the unpack overlap, and the layer is read from
/// the network once, never back from the store.
///
/// The bytes are unverified while they are unpacked: the tree goes to the
/// temporary directory, which commit() renames into place only once the
/// blob is in the store, which it enters only after fetch_blob checked its
/// size and digest (and commit checks the diff_id). Destroyed uncommitted
/// (a failed or mismatched download), it ends the stream, waits for the
/// thread and removes the temporary directory.
class StreamingUnpack {
public:
    /// Takes the layer lock and starts the thread; null when the layer is
    /// already unpacked.
    static util::Result<std::unique_ptr<StreamingUnpack>> start(Store &store, const Descriptor &layer, const Digest &diff_id,
                                                                const UnpackLimits &limits = {});
    StreamingUnpack(const StreamingUnpack &) = delete;
    StreamingUnpack &operator=(const StreamingUnpack &) = delete;
    ~StreamingUnpack();

    /// Passes the next bytes of the blob to the unpacker; blocks while it is
    /// behind. Fails with the unpacker's error once it stopped on one.
    util::Status feed(std::string_view data);
    /// Ends the stream, waits for the unpacker (which also checked the
    /// diff_id and synced the tree), then, the blob being verified and
    /// stored, moves the layer into place.
    util::Status commit();

private:
    StreamingUnpack(Store &store, const Descriptor &layer, LayerTmp tmp, const UnpackLimits &limits)
        : store_(store), layer_(layer), tmp_(std::move(tmp)), limits_(limits) {}
    static void *run(void *self);
    void end_stream();

    Store &store_;
    Descriptor layer_;
    LayerTmp tmp_;
    UnpackLimits limits_;
    Compression compression_ = Compression::None;
    util::UniqueFd write_fd_, read_fd_;  ///< read_fd_ belongs to the thread once it runs
    pthread_t thread_{};
    bool running_ = false;
    std::optional<util::Status> result_;  ///< the unpack and seal, set by the thread; read after the join
};

}  // namespace img
