// Staging an image into a bundle: from a reference to containers/<id> with
// an assembled rootfs and config.json, ready for runtime/ to run. Shared by
// `berth run IMAGE`, the updater and `berth build`, so all of them find,
// pull, trust and unpack an image the same way:
//
//   1. the image: the store's when its ref names a manifest for the wanted
//      platform, else pulled through the trust policy (img::pull_image
//      checks signatures before any layer is fetched). A stored image of
//      another platform is never used: it is pulled for the platform asked
//      for, and where that fails the error says what the store holds;
//   2. the trust check of the stored image (trust.hpp), before any layer
//      is unpacked: what the policy refuses never reaches the disk as a
//      rootfs;
//   3. the layers unpacked (diff_ids checked), the bundle assembled under
//      <store>/containers/<id> (create_bundle: overlay, else a copy).
//
// A failure leaves no bundle; the caller owns the one returned
// (remove_bundle).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "image/fetch.hpp"
#include "image/image.hpp"
#include "image/manifest.hpp"
#include "image/policy.hpp"
#include "image/reference.hpp"
#include "image/registry.hpp"
#include "image/rootfs.hpp"
#include "image/store.hpp"
#include "util/result.hpp"

namespace img {

/// The annotations a staged bundle's config.json carries (and so the
/// runtime state of its container).
inline constexpr const char *kStoreAnnotation = "berth.store";              ///< the store holding its bundle
inline constexpr const char *kImageAnnotation = "berth.image";              ///< the reference it runs
inline constexpr const char *kManifestAnnotation = "berth.image.manifest";  ///< the manifest digest

struct StageOptions {
    Platform platform = Platform::host();
    const Policy *policy = nullptr;  ///< required
    /// Opens the registry of a reference (TLS, auth, retries): called at
    /// most once, only when the image or its signatures must be fetched.
    std::function<util::Result<Registry>(const Reference &)> open_registry;
    FetchOptions fetch;  ///< progress of a pull
    std::function<void(std::string_view event, std::string_view detail)> note;
    RootfsMode rootfs = RootfsMode::Auto;
    /// The runtime config (args, env, hostname, volume prefix, ...); the
    /// three annotations above are added.
    RuntimeConfigOptions runtime;
};

struct StagedBundle {
    Bundle bundle;
    StoredImage image;
    /// The volume directories this staging created (none existed before):
    /// a caller running an anonymous container removes them with it.
    std::vector<std::string> new_volumes;
};

/// Stages `ref` as the bundle of container `id` in `store`.
util::Result<StagedBundle> stage_bundle(Store &store, const Reference &ref, const std::string &id, const StageOptions &o);

}  // namespace img
