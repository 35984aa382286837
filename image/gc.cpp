// `berth image gc` (see fsck.hpp): marks what refs and containers use,
// from manifests (and the manifests of an index) to configs, layer blobs
// and unpacked layers, then removes the rest, the signature records of
// the manifests that went and the build-cache entries of the blobs that went, under the exclusive store lock (pulls, imports
// and runs hold it shared, so nothing they are writing is collected).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "image/fsck.hpp"
#include "image/image.hpp"
#include "image/store_scan.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace img {

using util::cat;
using scan::hex_digest;
using scan::list_dir;
using scan::lock_busy;

void InUse::mark_manifest(const Store &store, const Digest &d) {
    blobs.insert(d.str());
    auto text = store.read_blob(d, 4 << 20);
    if (!text) return;
    auto kind = manifest_kind(*text);
    if (!kind) return;
    std::vector<Digest> manifests;
    if (*kind == ManifestKind::Index) {
        auto idx = parse_index(*text);
        if (!idx) return;
        for (const auto &m : idx->manifests) {
            blobs.insert(m.digest.str());
            manifests.push_back(m.digest);
        }
    } else {
        manifests.push_back(d);
    }
    for (const auto &md : manifests) {
        auto mt = store.read_blob(md, 4 << 20);
        if (!mt) continue;
        auto m = parse_manifest(*mt);
        if (!m) continue;
        blobs.insert(m->config.digest.str());
        for (const auto &l : m->layers) blobs.insert(l.digest.str());
        if (auto ct = store.read_blob(m->config.digest, 16 << 20); ct)
            if (auto c = parse_image_config(*ct); c)
                for (const auto &id : c->diff_ids) layers.insert(std::string(id.hex()));
    }
}

util::Result<InUse> in_use(const Store &store) {
    InUse use;
    for (const auto &[name, d] : TRY(store.list_refs())) use.mark_manifest(store, d);
    std::string containers = store.device().containers();
    for (const auto &id : list_dir(containers)) {
        auto text = util::read_file(cat(containers, "/", id, "/image.json"), 1 << 20);
        if (!text) continue;
        auto v = util::json::parse(*text, "image.json");
        if (!v || !v->is_object()) continue;
        if (auto m = util::json::opt_string(*v, "manifest", ""); m && *m)
            if (auto d = Digest::parse(**m); d) use.mark_manifest(store, *d);
        if (auto ls = util::json::opt_string_array(*v, "layers", ""); ls)
            for (const auto &s : *ls)
                if (auto d = Digest::parse(s); d) use.layers.insert(std::string(d->hex()));
    }
    return use;
}

util::Result<GcReport> gc(Store &store) {
    auto lock = TRY_CTX(store.lock_exclusive(), "gc");
    GcReport rep;
    auto use = TRY_CTX(in_use(store), "gc");
    const std::set<std::string> &keep_blobs = use.blobs, &keep_layers = use.layers;
    // A record names the manifest it admitted; it goes with that manifest,
    // first (a crash then leaves a manifest without its record, which the
    // next gc collects, never a record without its manifest).
    std::string sigs = store.root() + "/signatures";
    for (const auto &n : list_dir(sigs)) {
        if (!n.ends_with(".json")) continue;  // temporaries: fsck's
        auto d = hex_digest(std::string_view(n).substr(0, n.size() - 5));
        if (!d || keep_blobs.count(d->str())) continue;
        std::string p = cat(sigs, "/", n);
        struct stat st;
        uint64_t size = ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
        if (::unlink(p.c_str()) < 0 && errno != ENOENT) return util::Error::from_errno(cat("gc: remove ", util::quote(p)));
        ++rep.signatures_removed;
        rep.bytes_freed += size;
    }
    if (rep.signatures_removed) TRY_CTX(util::fsync_dir(sigs), "gc");
    for (const auto &d : TRY_CTX(store.list_blobs(), "gc")) {
        if (keep_blobs.count(d.str())) continue;
        if (lock_busy(cat(store.root(), "/ingest/", d.hex(), ".lock"))) continue;
        uint64_t size = store.blob_size(d).value_or(0);
        TRY_CTX(store.remove_blob(d), "gc");
        ++rep.blobs_removed;
        rep.bytes_freed += size;
    }
    std::string layers = store.root() + "/layers";
    for (const auto &n : list_dir(layers)) {
        if (!hex_digest(n) || keep_layers.count(n)) continue;
        if (lock_busy(cat(store.root(), "/locks/layer-", n))) continue;
        TRY_CTX(util::remove_tree(cat(layers, "/", n)), "gc");
        ++rep.layers_removed;
    }
    if (rep.blobs_removed) TRY_CTX(util::fsync_dir(store.root() + "/blobs/sha256"), "gc");
    // `berth build`'s cache entries (build-cache/<hex>) name a layer blob;
    // builds ignore an entry whose blob is gone, so it goes too, after the
    // blob (a crash in between leaves such an entry, which the next gc removes).
    std::string cache = store.root() + "/build-cache";
    for (const auto &n : list_dir(cache)) {
        if (n.starts_with(".")) continue;  // temporaries: fsck's
        std::string p = cat(cache, "/", n);
        auto text = util::read_file(p, 1 << 16);
        auto v = text ? util::json::parse(*text, "cache entry") : util::Result<util::json::Value>(text.error());
        if (!v || !v->is_object()) continue;
        auto d = Digest::parse(v->value("digest", ""));
        if (!d || store.has_blob(*d)) continue;
        if (::unlink(p.c_str()) < 0 && errno != ENOENT) return util::Error::from_errno(cat("gc: remove ", util::quote(p)));
        ++rep.cache_entries_removed;
    }
    if (rep.cache_entries_removed) TRY_CTX(util::fsync_dir(cache), "gc");
    return rep;
}

}  // namespace img
