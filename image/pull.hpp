// Pulling an image from a registry into the store, in the order that keeps
// a device safe and a cellular link cheap:
//   1. resolve the reference: HEAD the manifest (its digest), then GET it by
//      digest unless the store already has it; an index selects the platform;
//   2. enforce the trust policy (signatures) on the manifest digest BEFORE any
//      config or layer is downloaded, let alone unpacked;
//   3. fetch the config, then the layers not yet in the store (resumable),
//      each in one pass: the bytes written to the partial blob also go to
//      an unpacker thread extracting into a temporary directory, which
//      becomes the layer only after the blob's digest and the diff_id were
//      checked (StreamingUnpack, unpack.hpp);
//   4. store the manifests, unpack the layers that were not streamed (a
//      resumed download, a blob already stored), set the ref last.
// A failure at any step leaves no ref, so nothing half-pulled can run. The
// store's shared lock is held from step 3 on, so gc and fsck wait for the
// pull's blobs, not for its manifest and signature lookups.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "image/fetch.hpp"
#include "image/manifest.hpp"
#include "image/policy.hpp"
#include "image/reference.hpp"
#include "image/registry.hpp"
#include "image/store.hpp"
#include "util/result.hpp"

namespace img {

struct PullOptions {
    Platform platform = Platform::host();
    const Policy *policy = nullptr;  ///< required: there is no "no policy"
    FetchOptions fetch;
    bool unpack = true;
    std::function<void(std::string_view event, std::string_view detail)> note;
};

struct PullResult {
    Digest manifest = Digest::of("");  ///< the platform manifest (what the ref names)
    Digest top = Digest::of("");    ///< what the reference resolved to (an index, or = manifest)
    std::string ref_name;           ///< the store ref that was set
    uint64_t downloaded = 0;        ///< blob bytes received (manifests excluded)
    uint64_t manifest_bytes = 0;    ///< manifest/index bytes received
    uint64_t resumed_bytes = 0;     ///< bytes found in partial downloads
    int blobs_fetched = 0, blobs_skipped = 0, drops = 0;
};

util::Result<PullResult> pull_image(Registry &reg, Store &store, const Reference &ref, const PullOptions &opts);

/// The diff_ids of an image config (rootfs.diff_ids), in layer order.
util::Result<std::vector<Digest>> config_diff_ids(std::string_view config_json);

/// The store ref name for a reference: "host/repo:tag", or "host/repo@digest".
std::string store_ref_name(const Reference &ref);

}  // namespace img
