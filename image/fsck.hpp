// `berth image fsck` and `berth image gc`: checking, repairing and
// collecting the store. Both hold the store lock exclusively, so no pull,
// import or run (which hold it shared) writes while they look.
#pragma once

#include <cstdint>
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
    uint64_t bytes_freed = 0;
};

/// Removes blobs and layers that no ref and no container uses
/// (containers/<id>/image.json: {"manifest": digest, "layers": [diff_id...]}),
/// and the signature records (signatures/<hex>.json) of manifests it keeps
/// no longer: a signature outlives nothing it signs.
util::Result<GcReport> gc(Store &store);

}  // namespace img
