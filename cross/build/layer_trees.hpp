// The directory trees of a build's layers (its bases' and the ones its
// steps make), made quickly for the steps that need them. A layer the
// store has not unpacked yet is extracted
// first into a scratch tmpfs the build mounted (where creating thousands of
// files costs almost nothing, while on a journaled disk each costs a
// journal update), its diff_id checked as the store checks it; RUN and COPY
// use that tree at once. The store's own copy (layers/<hex>, the crash-safe
// unpack of image/unpack.hpp: temporary, syncfs, rename) is made at the
// same time by a worker process from the stored blob, on the other core
// while the steps run, and the build waits for it before it tags anything,
// so a finished build leaves the store exactly as an unpack in line would.
// Without a scratch tmpfs, or for a layer too large for the memory free,
// the layer is unpacked into the store in line, as before.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "image/manifest.hpp"
#include "image/store.hpp"
#include "util/process.hpp"
#include "util/result.hpp"

namespace build {

class LayerTrees {
public:
    /// `scratch`: a tmpfs directory of this build (empty: none).
    LayerTrees(img::Store &store, std::string scratch) : store_(store), scratch_(std::move(scratch)) {}
    LayerTrees(const LayerTrees &) = delete;
    LayerTrees &operator=(const LayerTrees &) = delete;
    /// Kills the workers still running and removes their temporaries.
    ~LayerTrees();

    /// Makes the tree of `layer` (whose uncompressed content is `diff_id`)
    /// available to root().
    util::Status need(const img::Descriptor &layer, const img::Digest &diff_id);
    /// The layer's tree: the store's, or its scratch copy while the store's is made.
    std::string root(const img::Digest &diff_id) const;
    /// Whether base layers get scratch copies (else importers may as well unpack as they copy).
    bool scratch() const { return !scratch_.empty(); }
    /// Waits for every worker; fails with the first one's error.
    util::Status finish();

private:
    struct Worker {
        util::Child child;
        std::string diff_hex;
        util::UniqueFd err;  ///< what the worker says when it fails
    };
    img::Store &store_;
    std::string scratch_;
    std::map<std::string, std::string> scratch_roots_;  ///< diff_id -> tree in scratch_
    std::vector<Worker> workers_;
};

/// Mounts a tmpfs at `dir` (created); false when that failed (the build
/// then unpacks into the store in line). The caller has a mount namespace
/// of its own, where the mount vanishes with it however it ends.
bool mount_scratch(const std::string &dir);

}  // namespace build
