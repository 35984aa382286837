// The store's record of an image's signatures, so that a signed image keeps
// running on a device that is offline: <store>/signatures/<manifest hex>.json
// (Store::signature_record_path). `berth image pull` writes it with the
// signatures that satisfied the policy, `berth run IMAGE` reads it (and
// writes it when it had to ask the registry). It holds signatures, not
// verdicts: readers verify them again under the policy in force. gc drops
// a record with its manifest; fsck repairs broken ones.
//
//   {"manifest": "sha256:<M>",
//    "indexes": {"sha256:<I>": "<base64 of the index>"},       (index-level signatures)
//    "signatures": [{"digest": "sha256:<M or I>", "payload": "<base64>", "signature": "<base64 DER>"}]}
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "image/digest.hpp"
#include "image/signature.hpp"
#include "image/store.hpp"
#include "util/result.hpp"

namespace img {

struct SignatureRecord {
    /// Signatures by the digest they were made for: the manifest, or an
    /// index that lists it.
    std::map<Digest, std::vector<SignedPayload>> by_digest;
    /// The bodies of those indexes, which prove that they list the manifest.
    std::map<Digest, std::string> indexes;
    bool empty() const { return by_digest.empty(); }
};

/// True when `body` hashes to `d`, is an index and lists `manifest`.
bool index_lists(const Digest &d, std::string_view body, const Digest &manifest);

/// The stored record of `manifest`. A missing or unreadable one is an empty
/// record (the registry is asked instead), never an error; entries that do
/// not belong to `manifest` are dropped.
SignatureRecord load_signature_record(const Store &store, const Digest &manifest);

/// Writes the record of `manifest` (atomically). The caller holds the
/// store's shared lock, so gc and fsck never see the temporary.
util::Status save_signature_record(const Store &store, const Digest &manifest, const SignatureRecord &record);

}  // namespace img
