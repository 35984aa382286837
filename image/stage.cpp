// Image -> staged bundle (see stage.hpp).
#include "image/stage.hpp"

#include <algorithm>
#include <optional>

#include "image/pull.hpp"
#include "image/trust.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using util::cat;
using util::Error;
using util::quote;

/// The manifest the store holds for `ref`, if any.
util::Result<std::optional<Digest>> stored_manifest(const Store &store, const Reference &ref) {
    for (const std::string &name : {store_ref_name(ref), ref.str()}) {
        auto d = TRY(store.get_ref(name));
        if (!d) continue;
        // A reference pinned to a digest must name what the store holds;
        // else it is pulled (by digest: only what is missing is fetched).
        if (ref.digest && !(*ref.digest == *d)) return std::nullopt;
        return d;
    }
    return std::nullopt;
}

/// Fails unless the stored `image` (reached through `top`) is for
/// `want`, by select_platform's rules. An index already selected it; a
/// manifest says its platform only in its config (one without os and
/// architecture cannot tell, and is taken).
util::Status check_platform(const StoredImage &image, const Digest &top, const Platform &want) {
    const Platform &have = image.config.platform;
    if (!(image.manifest_digest == top) || (have.os.empty() && have.architecture.empty())) return util::ok();
    ImageIndex one;
    one.manifests.push_back(Descriptor{std::string(media::kOciManifest), image.manifest_digest, 0, have, {}});
    if (!select_platform(one, want)) return Error::msg(cat("its manifest is for ", have.str(), ", not ", want.str()));
    return util::ok();
}

/// The volume directories create_bundle makes for `image` (see runtime_config)
/// that do not exist yet: the prefix's own directory when it is new, else
/// each new volume's. Image volumes a berth kept under their legacy name
/// move first (migrate_legacy_volume), so they count as existing.
util::Result<std::vector<std::string>> new_volume_dirs(const Store &store, const StoredImage &image,
                                                       const RuntimeConfigOptions &rc) {
    std::string base = rc.volumes_dir.empty() ? store.device().volumes() : rc.volumes_dir;
    std::vector<std::string> out;
    for (const auto &dest : image.config.volumes) {
        TRY(migrate_legacy_volume(base, rc.volume_prefix, dest));
        std::string dir = volume_dir(base, rc.volume_prefix, dest), owner = util::dirname(dir);
        if (!util::path_exists(owner)) {
            if (std::find(out.begin(), out.end(), owner) == out.end()) out.push_back(owner);
        } else if (!util::path_exists(dir)) {
            out.push_back(dir);
        }
    }
    return out;
}

}  // namespace

util::Result<StagedBundle> stage_bundle(Store &store, const Reference &ref, const std::string &id, const StageOptions &o) {
    if (!o.policy) return Error::msg("stage an image without a policy");
    if (util::path_exists(store.device().container(id)))
        return Error::with_code(EEXIST, cat("a bundle for container ", quote(id), " already exists in ", quote(store.root())));
    auto note = [&](std::string_view e, std::string_view d) {
        if (o.note) o.note(e, d);
    };
    // The registry, opened once and only when needed; closed before the
    // bundle is assembled.
    std::optional<Registry> reg;
    auto registry = [&]() -> util::Result<Registry *> {
        if (!reg) reg.emplace(TRY(o.open_registry(ref)));
        return &*reg;
    };

    // 1. The image: the store's for this platform, else pulled (the pull
    // checks signatures before it fetches any blob; an outright rejection
    // needs no registry).
    TRY(check_not_rejected(*o.policy, ref));
    std::optional<Digest> top;
    std::optional<StoredImage> image;
    std::string other_platform;  // what the store holds instead, for the error
    if (auto d = TRY(stored_manifest(store, ref))) {
        auto stored = TRY_CTX(load_image(store, *d, o.platform, true), cat("image ", quote(ref.str())));
        if (auto fits = check_platform(stored, *d, o.platform); fits) {
            image = std::move(stored);
        } else {
            other_platform = cat("the store's ", quote(ref.str()), " is ", stored.config.platform.str(), ", not ",
                                 o.platform.str());
            note("platform", other_platform);
        }
    }
    if (!image) {
        PullOptions po;
        po.platform = o.platform;
        po.policy = o.policy;
        po.fetch = o.fetch;
        po.note = o.note;
        po.unpack = false;  // step 3, after the trust check
        auto pulled = [&]() -> util::Result<PullResult> {
            return TRY_CTX(pull_image(*TRY(registry()), store, ref, po), cat("pull ", quote(ref.str())));
        }();
        if (!pulled) return other_platform.empty() ? std::move(pulled).error() : std::move(pulled).error().wrap(other_platform);
        note("pulled", cat(pulled->ref_name, " ", pulled->manifest.str()));
        if (!(pulled->top == pulled->manifest)) top = pulled->top;
        image = TRY_CTX(load_image(store, pulled->manifest, o.platform, true), cat("image ", quote(ref.str())));
        TRY_CTX(check_platform(*image, pulled->top, o.platform), cat("image ", quote(ref.str())));
    }

    // 2. Trust, before anything is unpacked.
    TrustCheck tc{ref, image->manifest_digest, top, registry};
    note("trusted", TRY(check_trust(store, *o.policy, tc)));
    reg.reset();

    // 3. Layers and bundle.
    std::vector<std::string> unpacking;  // the layers this call unpacks, for the progress display
    for (size_t i = 0; i < image->config.diff_ids.size(); i++)
        if (!store.has_layer(image->config.diff_ids[i])) unpacking.push_back(image->manifest.layers[i].digest.str());
    TRY_CTX(unpack_image(store, *image), cat("image ", quote(ref.str())));
    for (const auto &d : unpacking) note("unpacked", d);
    RuntimeConfigOptions rc = o.runtime;
    rc.annotations[kStoreAnnotation] = store.root();
    rc.annotations[kImageAnnotation] = ref.str();
    rc.annotations[kManifestAnnotation] = image->manifest_digest.str();
    StagedBundle out;
    out.new_volumes = TRY_CTX(new_volume_dirs(store, *image, rc), cat("image ", quote(ref.str())));
    util::ScopeGuard undo_volumes([&] {
        for (const auto &v : out.new_volumes) (void)util::remove_tree(v);
    });
    out.bundle = TRY(create_bundle(store, id, *image, o.rootfs, rc));
    undo_volumes.dismiss();
    out.image = std::move(*image);
    return out;
}

}  // namespace img
