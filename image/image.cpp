// Loading and unpacking stored images (see image.hpp).
#include "image/image.hpp"

#include "image/reference.hpp"
#include "util/strings.hpp"

namespace img {

using util::cat;
using util::Error;
using util::quote;

util::Result<StoredImage> load_image(const Store &store, const Digest &top, const Platform &platform, bool need_layers) {
    std::string what = cat("image ", top.str());
    if (!store.has_blob(top)) return Error::with_code(ENOENT, cat(what, ": manifest not in the store"));
    std::string text = TRY_CTX(store.read_blob(top, 4 << 20), what);
    auto kind = TRY_CTX(manifest_kind(text), what);
    Digest mdigest = top;
    if (kind == ManifestKind::Index) {
        auto load = [&](const Descriptor &d) -> util::Result<std::string> {
            if (!store.has_blob(d.digest)) return Error::with_code(ENOENT, cat("manifest ", d.digest.str(), " not in the store"));
            return store.read_blob(d.digest, 4 << 20);
        };
        auto pm = TRY_CTX(resolve_platform(top, text, platform, load), what);
        mdigest = pm.desc.digest;
        text = std::move(pm.body);
    }
    auto m = TRY_CTX(parse_manifest(text), what);
    if (!store.has_blob(m.config.digest)) return Error::with_code(ENOENT, cat(what, ": config not in the store"));
    std::string ctext = TRY_CTX(store.read_blob(m.config.digest, 16 << 20), what);
    auto c = TRY_CTX(parse_image_config(ctext), what);
    if (c.diff_ids.size() != m.layers.size())
        return Error::msg(cat(what, ": the manifest has ", m.layers.size(), " layers, the config ", c.diff_ids.size(), " diff_ids"));
    if (need_layers)
        for (const auto &l : m.layers)
            if (!store.has_blob(l.digest)) return Error::with_code(ENOENT, cat(what, ": layer ", l.digest.str(), " not in the store"));
    return StoredImage{mdigest, std::move(m), std::move(c)};
}

util::Status unpack_image(Store &store, const StoredImage &image, const UnpackLimits &limits) {
    for (size_t i = 0; i < image.manifest.layers.size(); ++i)
        TRY(unpack_layer(store, image.manifest.layers[i], image.config.diff_ids[i], limits));
    return util::ok();
}

util::Result<Digest> find_image(const Store &store, std::string_view s) {
    if (auto r = TRY(store.get_ref(std::string(s)))) return *r;
    // A reference in another spelling ("localhost/app" for "localhost/app:latest").
    if (auto ref = Reference::parse(s); ref) {
        if (auto r = TRY(store.get_ref(ref->str()))) return *r;
    }
    if (auto d = Digest::parse(s); d && store.has_blob(*d)) return *d;
    std::string_view hex = s.starts_with("sha256:") ? s.substr(7) : s;
    if (hex.size() >= 12) {
        std::optional<Digest> found;
        for (const auto &[name, d] : TRY(store.list_refs())) {
            if (d.hex().starts_with(hex)) {
                if (found && !(*found == d)) return Error::msg(cat("image ", quote(s), ": ambiguous digest prefix"));
                found = d;
            }
        }
        if (found) return *found;
    }
    return Error::with_code(ENOENT, cat("image ", quote(s), ": not in the store"));
}

}  // namespace img
