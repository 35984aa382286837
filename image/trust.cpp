// The run-time trust check of a stored image (see trust.hpp).
#include "image/trust.hpp"

#include <algorithm>
#include <vector>

#include "image/manifest.hpp"
#include "image/signature.hpp"
#include "image/signature_record.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using util::cat;
using util::quote;

using Signatures = SignatureRecord;

/// Does every requirement of `d` hold with the signatures in `sigs`?
util::Status satisfies(const PolicyDecision &d, const TrustCheck &c, const Signatures &sigs) {
    std::vector<Digest> digests;
    for (const auto &[digest, list] : sigs.by_digest) digests.push_back(digest);
    return check_requirements(d, c.ref, digests, [&](const Digest &digest) {
        return util::Result<const std::vector<SignedPayload> *>(&sigs.by_digest.at(digest));
    });
}

/// The index a tag names in the registry, when it lists `c.manifest`
/// (signatures of a multi-arch image are often made on the index).
util::Result<std::optional<std::pair<Digest, std::string>>> registry_index(const Store &store, Registry &reg,
                                                                               const TrustCheck &c) {
    std::optional<Digest> top = c.top;
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

util::Status check_not_rejected(const Policy &policy, const Reference &ref) {
    auto decision = policy.lookup(ref);
    return check_not_rejected(decision).context(policy_context(decision, ref));
}

util::Result<std::string> check_trust(const Store &store, const Policy &policy, const TrustCheck &c) {
    TRY(check_not_rejected(policy, c.ref));
    auto decision = policy.lookup(c.ref);
    std::string what = policy_context(decision, c.ref);
    bool need_signatures = false;
    for (const auto &req : decision.requirements)
        if (req.type == Requirement::Type::SigstoreSigned) need_signatures = true;
    if (!need_signatures) return cat(what, ": accepted without signatures");

    auto stored = load_signature_record(store, c.manifest);
    if (!stored.empty() && satisfies(decision, c, stored)) return cat(what, ": signature verified (stored)");

    // None stored (or none that verifies any more): the registry's.
    std::string unreachable = cat(what, ": no stored signature verifies, and the registry's cannot be fetched");
    auto reg = TRY_CTX(c.registry(), unreachable);
    Signatures fetched;
    fetched.by_digest[c.manifest] = TRY_CTX(fetch_signatures(*reg, c.ref.repository, c.manifest), unreachable);
    if (auto ix = TRY_CTX(registry_index(store, *reg, c), unreachable)) {
        fetched.indexes[ix->first] = ix->second;
        fetched.by_digest[ix->first] = TRY_CTX(fetch_signatures(*reg, c.ref.repository, ix->first), unreachable);
    }
    for (auto it = fetched.by_digest.begin(); it != fetched.by_digest.end();)
        it = it->second.empty() ? fetched.by_digest.erase(it) : std::next(it);
    TRY_CTX(satisfies(decision, c, fetched), what);
    {
        // Shared, as a pull: gc and fsck (exclusive) never see the temporary.
        auto lock = TRY_CTX(store.lock_shared(), what);
        TRY_CTX(save_signature_record(store, c.manifest, fetched), what);
    }
    return cat(what, ": signature verified (registry)");
}

}  // namespace img
