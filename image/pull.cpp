// pull_image: resolve, enforce policy, fetch, store (see pull.hpp).
#include "image/pull.hpp"

#include "image/signature.hpp"
#include "image/signature_record.hpp"
#include "image/unpack.hpp"
#include "util/json.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

/// A manifest or index, from the store or the registry, digest-checked.
struct Resolved {
    Digest digest;
    std::string body;
};

util::Result<Resolved> get_by_digest(Registry &reg, Store &store, const std::string &repo, const Digest &d, PullResult &res) {
    if (store.has_blob(d)) {
        // Without the store lock (see pull_image) gc may remove it meanwhile: then it comes from the registry.
        if (auto body = store.read_blob(d, 4 << 20)) return Resolved{d, std::move(*body)};
    }
    auto m = TRY(reg.get_manifest(repo, d.str()));
    if (!m) return util::Error::msg(util::cat("manifest ", d.str(), " not found in ", util::quote(repo)));
    res.manifest_bytes += m->body.size();
    return Resolved{m->digest, std::move(m->body)};
}

util::Status check_media_types(const ImageManifest &m) {
    if (m.config.media_type != media::kOciConfig && m.config.media_type != media::kDockerConfig)
        return util::Error::msg(util::cat("config has media type ", util::quote(m.config.media_type), ", not an image config"));
    for (const auto &l : m.layers) TRY_CTX(layer_compression(l.media_type), util::cat("layer ", l.digest.str()));
    return util::ok();
}

}  // namespace

std::string store_ref_name(const Reference &ref) {
    if (!ref.tag.empty()) return ref.name() + ":" + ref.tag;
    return ref.str();
}

util::Result<std::vector<Digest>> config_diff_ids(std::string_view json) {
    auto v = TRY(util::json::parse(json, "image config"));
    TRY(util::json::expect_object(v, "image config"));
    auto rootfs = TRY(util::json::opt_object(v, "rootfs", ""));
    if (!rootfs) return util::Error::msg("image config has no `rootfs`");
    std::vector<Digest> out;
    for (const auto &s : TRY(util::json::opt_string_array(*rootfs, "diff_ids", "rootfs")))
        out.push_back(TRY_CTX(Digest::parse(s), "`rootfs.diff_ids`"));
    return out;
}

util::Result<PullResult> pull_image(Registry &reg, Store &store, const Reference &ref, const PullOptions &opts) {
    if (!opts.policy) return util::Error::msg("pull without a policy");
    auto note = [&](std::string_view e, std::string_view d) {
        if (opts.note) opts.note(e, d);
    };
    const std::string &repo = ref.repository;
    PullResult res;

    // 1. Resolve. HEAD first: it names the digest without transferring the body.
    Resolved top{Digest::of(""), ""};
    if (ref.digest) {
        top = TRY(get_by_digest(reg, store, repo, *ref.digest, res));
    } else {
        auto head = TRY(reg.head_manifest(repo, ref.tag));
        if (!head) return util::Error::msg(util::cat("image ", util::quote(ref.str()), " not found"));
        if (head->digest) {
            top = TRY(get_by_digest(reg, store, repo, *head->digest, res));
        } else {
            auto m = TRY(reg.get_manifest(repo, ref.tag));
            if (!m) return util::Error::msg(util::cat("image ", util::quote(ref.str()), " not found"));
            res.manifest_bytes += m->body.size();
            top = Resolved{m->digest, std::move(m->body)};
        }
    }
    res.top = top.digest;
    Resolved man = Resolved{top.digest, top.body};
    std::vector<Digest> alternates;
    std::string index_body;
    auto kind = TRY_CTX(manifest_kind(top.body), util::cat("manifest ", top.digest.str()));
    if (kind == ManifestKind::Index) {
        auto load = [&](const Descriptor &d) -> util::Result<std::string> {
            return std::move(TRY(get_by_digest(reg, store, repo, d.digest, res)).body);
        };
        auto pm = TRY_CTX(resolve_platform(top.digest, top.body, opts.platform, load), util::quote(ref.str()));
        note("platform", util::cat(opts.platform.str(), " -> ", pm.desc.digest.str()));
        man = Resolved{pm.desc.digest, std::move(pm.body)};
        alternates.push_back(man.digest);
        index_body = std::move(top.body);
    }
    res.manifest = man.digest;
    auto manifest = TRY_CTX(parse_manifest(man.body), util::cat("manifest ", man.digest.str()));
    TRY_CTX(check_media_types(manifest), util::cat("manifest ", man.digest.str()));

    // 2. Policy, before any blob is fetched.
    auto decision = opts.policy->lookup(ref);
    SignatureRecord signatures;
    TRY(enforce_policy(reg, decision, ref, res.top, alternates, &signatures.by_digest));
    if (!index_body.empty()) signatures.indexes[res.top] = index_body;
    note("verified", util::cat(ref.str(), " (", res.top.str(), ", policy scope ", decision.scope, ")"));

    // The store lock, from the first blob to the ref, so gc and fsck
    // (exclusive) never remove a blob, a partial download or a layer this
    // pull has fetched but not yet reached from its ref. Not before: the
    // manifests and signatures above need none, and a stalled registry
    // should keep gc waiting as little as possible (each step has its
    // deadline, --timeout).
    auto shared = TRY_CTX(store.lock_shared(), "pull");

    // 3. Config, then layers: one pass each, download -> hash -> decompress
    // -> extract. Nothing was downloaded before the manifest digest and the
    // policy were checked above. A layer is extracted while it downloads,
    // into a temporary directory (StreamingUnpack) that becomes the layer
    // only after the blob's size and digest were checked and it entered the
    // store, and the diff_id matched; a mismatch discards both.
    auto fetch = [&](const Descriptor &b, const FetchOptions &fo) -> util::Result<FetchStats> {
        if (b.size < 0) return util::Error::msg(util::cat("blob ", b.digest.str(), " has a negative size"));
        auto st = TRY(fetch_blob(reg, store, repo, b.digest, static_cast<uint64_t>(b.size), fo));
        if (st.already_stored) {
            res.blobs_skipped++;
        } else {
            res.blobs_fetched++;
            res.downloaded += st.downloaded;
            res.resumed_bytes += st.resumed_from;
            res.drops += st.drops;
        }
        return st;
    };
    TRY(fetch(manifest.config, opts.fetch));
    std::vector<Digest> diff_ids;
    if (opts.unpack) {
        auto cfg = TRY(store.read_blob(manifest.config.digest, 16 << 20));
        diff_ids = TRY_CTX(config_diff_ids(cfg), util::cat("config ", manifest.config.digest.str()));
        if (diff_ids.size() != manifest.layers.size())
            return util::Error::msg(util::cat("config lists ", diff_ids.size(), " diff_ids for ", manifest.layers.size(), " layers"));
    }
    std::vector<bool> unpack_later(manifest.layers.size());  // fetched now, not streamed: step 4 tells when unpacked
    for (size_t i = 0; i < manifest.layers.size(); i++) {
        const Descriptor &l = manifest.layers[i];
        std::unique_ptr<StreamingUnpack> stream;  // null: nothing to unpack, or unpacked in step 4
        if (opts.unpack && !store.has_blob(l.digest))
            stream = TRY_CTX(StreamingUnpack::start(store, l, diff_ids[i]), util::cat("unpack layer ", l.digest.str()));
        FetchOptions fo = opts.fetch;
        if (stream) fo.tee = [&stream](std::string_view bytes) { return stream->feed(bytes); };
        auto st = TRY(fetch(l, fo));
        // Committed at once: this process holds one layer lock at a time,
        // so two pulls sharing layers in another order cannot deadlock.
        // Not streamed (a resumed partial, stored meanwhile), dropping it
        // removes the temporary and the lock; step 4 unpacks the stored blob.
        if (stream && st.streamed) {
            TRY(stream->commit());
            note("unpacked", l.digest.str());
        } else {
            unpack_later[i] = !st.already_stored;
        }
    }

    // 4. Manifests, layers not unpacked on the way, then the ref.
    if (!index_body.empty() && !store.has_blob(res.top)) TRY(store.put_blob(res.top, index_body));
    if (!store.has_blob(man.digest)) TRY(store.put_blob(man.digest, man.body));
    // After the manifest (fsck calls a record without one an orphan): the
    // signatures that passed, so the image also runs with the registry away.
    if (!signatures.empty()) TRY(save_signature_record(store, man.digest, signatures));
    if (opts.unpack)
        for (size_t i = 0; i < diff_ids.size(); i++) {
            TRY(unpack_layer(store, manifest.layers[i], diff_ids[i]));  // its errors name the layer
            if (unpack_later[i]) note("unpacked", manifest.layers[i].digest.str());
        }
    res.ref_name = store_ref_name(ref);
    TRY(store.set_ref(res.ref_name, man.digest));
    return res;
}

}  // namespace img
