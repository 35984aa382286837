// `berth image fsck` and `berth image gc`: checking, repairing and
// collecting the store. Both hold the store lock exclusively, so no pull,
// import or run (which hold it shared) writes while they look.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "image/store.hpp"

namespace img {

struct FsckReport {
    std::vector<std::string> problems;  ///< one line each, what was wrong (and what was done)
    int repaired = 0;
    int blobs_checked = 0;
    int layers_checked = 0;
    int refs_checked = 0;
    bool clean() const { return problems.empty(); }
};

/// Checks the store; with `repair`, removes stale temporaries, partial
/// downloads without resume state, corrupted blobs, incomplete layers and
/// refs to missing manifests.
util::Result<FsckReport> fsck(Store &store, bool repair);

struct GcReport {
    int blobs_removed = 0;
    int layers_removed = 0;
    int signatures_removed = 0;  ///< signature records of manifests that went
    int cache_entries_removed = 0;  ///< build-cache entries whose layer blob is gone
    uint64_t bytes_freed = 0;
};

/// What is in use: blobs ("sha256:<hex>") and unpacked layers (diff_id hex).
struct InUse {
    std::set<std::string> blobs, layers;
    /// Marks the manifest or index `d` and what it names (manifests,
    /// configs, layer blobs, the configs' unpacked layers).
    void mark_manifest(const Store &store, const Digest &d);
};

/// What every ref and every container (containers/<id>/image.json) reaches.
/// The caller holds the store's exclusive lock for the answer to stay true.
util::Result<InUse> in_use(const Store &store);

/// Removes blobs and layers that no ref and no container uses
/// (containers/<id>/image.json: {"manifest": digest, "layers": [diff_id...]}),
/// the signature records (signatures/<hex>.json) of manifests it keeps
/// no longer: a signature outlives nothing it signs; and `berth build`'s
/// cache entries (build-cache/<hex>) whose layer blob is no longer stored.
util::Result<GcReport> gc(Store &store);

}  // namespace img
