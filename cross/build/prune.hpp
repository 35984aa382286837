// `berth build prune`: the build cache's garbage collection. What builds
// leave in the store besides their images: cache entries
// (build-cache/<hex>, one per step, naming its layer), the layer blobs and
// unpacked trees only those entries keep, RUN --mount=type=cache
// directories (build-cache-mounts/), and the scratch space of builds that
// were killed (build-tmp/<pid>). An entry's time is its last use (a cache
// hit touches it).
//
// Under the store's exclusive lock, which every build holds shared for
// its whole run (as pulls and imports do): a prune waits for running
// builds, and a build started meanwhile waits for the prune. A blob or
// unpacked layer goes only when no ref, no container and no remaining
// cache entry reaches it (what `berth image gc` keeps is kept).
#pragma once

#include <cstdint>
#include <optional>

#include "image/store.hpp"
#include "util/result.hpp"

namespace build {

struct PruneOptions {
    /// Keep the most recently used entries whose layers add up to at most
    /// this many bytes (compressed, as stored).
    std::optional<uint64_t> keep_bytes;
    /// Remove only entries (and cache mounts) unused for longer than this.
    std::optional<int64_t> unused_for_s;
    /// Neither bound: everything goes.
};

struct PruneReport {
    int entries_removed = 0;
    int entries_kept = 0;
    int blobs_removed = 0;
    int layers_removed = 0;
    int cache_mounts_removed = 0;
    int scratch_removed = 0;
    uint64_t bytes_freed = 0;  ///< blobs'
};

util::Result<PruneReport> prune(img::Store &store, const PruneOptions &options, int64_t now);

/// "500000", "512K", "100M", "2G" (powers of 1024).
util::Result<uint64_t> parse_size(std::string_view s);

}  // namespace build
