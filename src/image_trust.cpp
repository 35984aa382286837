// The run-time trust check of a stored image (see image_trust.hpp).
#include "image_trust.hpp"

#include <algorithm>
#include <map>
#include <vector>

#include "image/auth.hpp"
#include "image/manifest.hpp"
#include "image/signature.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

using util::cat;
using util::quote;

/// Signatures by the digest they were found under (the manifest or an
/// index that lists it), with the index bodies that prove the listing.
struct Signatures {
    std::map<img::Digest, std::vector<img::SignedPayload>> by_digest;
    std::map<img::Digest, std::string> indexes;
    bool empty() const { return by_digest.empty(); }
};

/// True when `body` is an index, hashes to `d` and lists `manifest`.
bool index_lists(const img::Digest &d, std::string_view body, const img::Digest &manifest) {
    if (!(img::Digest::of(body) == d)) return false;
    auto idx = img::parse_index(body);
    if (!idx) return false;
    return std::any_of(idx->manifests.begin(), idx->manifests.end(), [&](const auto &m) { return m.digest == manifest; });
}

/// The stored record; a missing or unreadable one is an empty set (the
/// registry is asked instead), never an error.
Signatures load_record(const img::Store &store, const img::Digest &manifest) {
    Signatures out;
    auto text = util::read_file(store.signature_record_path(manifest), 4 << 20);
    if (!text) return out;
    auto v = util::json::parse(*text, "signature record");
    if (!v || !v->is_object()) return out;
    if (auto m = util::json::opt_string(*v, "manifest", ""); !m || !*m || **m != manifest.str()) return out;
    if (auto ix = util::json::opt_object(*v, "indexes", ""); ix && *ix) {
        for (const auto &[k, b64] : (*ix)->items()) {
            if (!b64.is_string()) continue;
            auto d = img::Digest::parse(k);
            auto body = img::base64_decode(b64.get<std::string>());
            if (d && body && index_lists(*d, *body, manifest)) out.indexes[*d] = *body;
        }
    }
    auto sigs = util::json::opt_array(*v, "signatures", "");
    if (!sigs || !*sigs) return out;
    for (const auto &e : **sigs) {
        if (!e.is_object()) continue;
        auto d = util::json::req_string(e, "digest", "");
        auto p = util::json::req_string(e, "payload", "");
        auto s = util::json::req_string(e, "signature", "");
        if (!d || !p || !s) continue;
        auto digest = img::Digest::parse(*d);
        auto payload = img::base64_decode(*p);
        if (!digest || !payload) continue;
        if (!(*digest == manifest) && !out.indexes.count(*digest)) continue;
        out.by_digest[*digest].push_back({*payload, *s});
    }
    return out;
}

util::Status save_record(const img::Store &store, const img::Digest &manifest, const Signatures &sigs) {
    util::json::Value v = util::json::Value::object();
    v["manifest"] = manifest.str();
    util::json::Value ix = util::json::Value::object();
    for (const auto &[d, body] : sigs.indexes) ix[d.str()] = img::base64_encode(body);
    v["indexes"] = ix;
    util::json::Value arr = util::json::Value::array();
    for (const auto &[d, list] : sigs.by_digest)
        for (const auto &sp : list) {
            util::json::Value e = util::json::Value::object();
            e["digest"] = d.str();
            e["payload"] = img::base64_encode(sp.payload);
            e["signature"] = sp.signature_b64;
            arr.push_back(e);
        }
    v["signatures"] = arr;
    std::string path = store.signature_record_path(manifest);
    // Shared, as a pull: gc and fsck (exclusive) never see the temporary.
    auto lock = TRY(store.lock_shared());
    TRY(util::mkdir_p(util::dirname(path), 0755));
    return util::atomic_write_file(path, util::json::dump(v) + "\n").context("save signature record");
}

/// Does every sigstoreSigned requirement of `d` hold for some signature in `sigs`?
util::Status satisfies(const img::PolicyDecision &d, const TrustCheck &c, const Signatures &sigs) {
    for (const auto &req : d.requirements) {
        if (req.type != img::Requirement::Type::SigstoreSigned) continue;
        std::vector<std::string> why;
        bool ok = false;
        for (const auto &[digest, list] : sigs.by_digest) {
            auto st = img::verify_signatures(list, req, c.ref, digest);
            if (st) {
                ok = true;
                break;
            }
            if (std::find(why.begin(), why.end(), st.error().message()) == why.end()) why.push_back(st.error().message());
        }
        if (!ok) return util::Error::msg(why.empty() ? std::string("image is not signed") : util::join(why, "; "));
    }
    return util::ok();
}

/// The index a tag names in the registry, when it lists `c.manifest`
/// (signatures of a multi-arch image are often made on the index).
util::Result<std::optional<std::pair<img::Digest, std::string>>> registry_index(const img::Store &store, img::Registry &reg,
                                                                               const TrustCheck &c) {
    std::optional<img::Digest> top = c.top;
    if (!top && !c.ref.tag.empty()) {
        auto head = TRY(reg.head_manifest(c.ref.repository, c.ref.tag));
        if (head && head->digest) top = *head->digest;
    }
    if (!top || *top == c.manifest) return std::nullopt;
    std::string body;
    if (store.has_blob(*top)) {  // a pull stores the index it selected from
        body = TRY(store.read_blob(*top, 4 << 20));
    } else {
        auto m = TRY(reg.get_manifest(c.ref.repository, top->str()));
        if (!m) return std::nullopt;
        body = std::move(m->body);
    }
    if (!index_lists(*top, body, c.manifest)) return std::nullopt;
    return std::make_pair(*top, std::move(body));
}

}  // namespace

util::Status check_not_rejected(const img::Policy &policy, const img::Reference &ref) {
    auto decision = policy.lookup(ref);
    for (const auto &req : decision.requirements)
        if (req.type == img::Requirement::Type::Reject)
            return util::Error::msg(cat("policy for ", quote(ref.str()), " (scope ", decision.scope,
                                        "): rejected (unsigned images do not run; configure a key)"));
    return util::ok();
}

util::Result<std::string> check_trust(const img::Store &store, const img::Policy &policy, const TrustCheck &c) {
    TRY(check_not_rejected(policy, c.ref));
    auto decision = policy.lookup(c.ref);
    std::string what = cat("policy for ", quote(c.ref.str()), " (scope ", decision.scope, ")");
    bool need_signatures = false;
    for (const auto &req : decision.requirements)
        if (req.type == img::Requirement::Type::SigstoreSigned) need_signatures = true;
    if (!need_signatures) return cat(what, ": accepted without signatures");

    auto stored = load_record(store, c.manifest);
    if (!stored.empty() && satisfies(decision, c, stored)) return cat(what, ": signature verified (stored)");

    // None stored (or none that verifies any more): the registry's.
    std::string unreachable = cat(what, ": no stored signature verifies, and the registry's cannot be fetched");
    auto reg = TRY_CTX(c.registry(), unreachable);
    Signatures fetched;
    fetched.by_digest[c.manifest] = TRY_CTX(img::fetch_signatures(*reg, c.ref.repository, c.manifest), unreachable);
    if (auto ix = TRY_CTX(registry_index(store, *reg, c), unreachable)) {
        fetched.indexes[ix->first] = ix->second;
        fetched.by_digest[ix->first] = TRY_CTX(img::fetch_signatures(*reg, c.ref.repository, ix->first), unreachable);
    }
    for (auto it = fetched.by_digest.begin(); it != fetched.by_digest.end();)
        it = it->second.empty() ? fetched.by_digest.erase(it) : std::next(it);
    TRY_CTX(satisfies(decision, c, fetched), what);
    TRY_CTX(save_record(store, c.manifest, fetched), what);
    return cat(what, ": signature verified (registry)");
}

}  // namespace cmd
