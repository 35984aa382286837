// Sigstore "simple signing" signatures, as cosign and containers/image store
// them in a registry (cosign specs/SIGNATURE_SPEC.md):
//
// - the signatures of manifest sha256:<hex> live in the same repository as
//   an OCI manifest under the tag `sha256-<hex>.sig`;
// - each of its layers of media type application/vnd.dev.cosign.simplesigning.v1+json
//   is a payload {"critical":{"identity":{"docker-reference":R},
//   "image":{"docker-manifest-digest":D},"type":"cosign container image signature"},
//   "optional":{...}};
// - the layer annotation dev.cosignproject.cosign/signature holds base64 of
//   an ASN.1 DER ECDSA signature over SHA-256 of the payload bytes.
//
// Verification checks, for at least one payload: the signature under one of
// the policy's keys, the type, D == the manifest digest pulled, and R against
// the policy's identity rule. Signing writes exactly that payload, a config
// {"architecture":"","os":"","config":{},"rootfs":{...diff_ids:[payload digest]}}
// byte-identical to containers/image's, and appends to an existing .sig manifest.
// An index is signed with each manifest it lists, so that upstream tools,
// which check the platform manifest they copy, accept it; berth accepts
// either an index signature or the platform manifest's (docs/policy.md).
#pragma once

#include <functional>
#include <map>

#include <string>
#include <string_view>
#include <vector>

#include "image/digest.hpp"
#include "image/policy.hpp"
#include "image/reference.hpp"
#include "image/registry.hpp"
#include "util/result.hpp"

namespace img {

inline constexpr std::string_view kSimpleSigningType = "application/vnd.dev.cosign.simplesigning.v1+json";
inline constexpr std::string_view kSignatureAnnotation = "dev.cosignproject.cosign/signature";
inline constexpr std::string_view kCosignType = "cosign container image signature";

/// The tag holding the signatures of `manifest`: "sha256-<hex>.sig".
std::string signature_tag(const Digest &manifest);

struct SimpleSigningPayload {
    std::string docker_reference;
    std::string manifest_digest;
};

/// Parses a payload and checks its `critical.type`.
util::Result<SimpleSigningPayload> parse_payload(std::string_view payload);
/// The payload berth signs: {"critical":{...},"optional":{"creator":"berth <version>"}}.
std::string make_payload(std::string_view docker_reference, const Digest &manifest);

/// Verifies base64 DER ECDSA `sig_b64` over SHA-256(payload) under PEM public key `pub_pem`.
util::Status verify_blob_signature(std::string_view pub_pem, std::string_view payload, std::string_view sig_b64);
/// Signs `payload` with a PEM EC private key; returns base64 DER ECDSA.
util::Result<std::string> sign_blob(std::string_view priv_pem, std::string_view payload);

/// One payload + signature pair, as found in a .sig manifest.
struct SignedPayload {
    std::string payload;
    std::string signature_b64;
};

/// Checks the `signatures` of image `manifest` pulled as `pulled` against
/// one sigstoreSigned requirement; succeeds when any signature satisfies it.
util::Status verify_signatures(const std::vector<SignedPayload> &signatures, const Requirement &req,
                               const Reference &pulled, const Digest &manifest);

/// Fetches the signatures of `manifest` from the registry (none: empty list).
util::Result<std::vector<SignedPayload>> fetch_signatures(Registry &reg, const std::string &repo, const Digest &manifest);

/// "policy for `<pulled>` (scope <scope>)": what policy errors are about.
std::string policy_context(const PolicyDecision &decision, const Reference &pulled);

/// The error a `reject` requirement of `decision` gives; ok when it has none.
util::Status check_not_rejected(const PolicyDecision &decision);

/// The signatures made for `digest`, or nullptr when there are none.
using SignatureSource = std::function<util::Result<const std::vector<SignedPayload> *>(const Digest &digest)>;

/// Checks every requirement of `decision` for `pulled`, whose signatures may
/// have been made for any of `digests` (its manifest, and indexes listing
/// it). `signatures_of` is asked for a digest only when the ones before it
/// did not satisfy a requirement. The error says why each was refused.
util::Status check_requirements(const PolicyDecision &decision, const Reference &pulled, const std::vector<Digest> &digests,
                                const SignatureSource &signatures_of);

/// Checks every requirement of `decision` for image `manifest` of `pulled`.
/// `alternates` are further digests a signature may name (an index's
/// platform manifest); signatures are fetched lazily. On success, `fetched`
/// (when given) receives every signature fetched, by the digest it was
/// found under, for the store's signature record.
util::Status enforce_policy(Registry &reg, const PolicyDecision &decision, const Reference &pulled, const Digest &manifest,
                            const std::vector<Digest> &alternates = {},
                            std::map<Digest, std::vector<SignedPayload>> *fetched = nullptr);

/// Signs image `manifest` as `docker_reference` with the key and pushes the
/// signature to `repo` (appending to existing signatures).
util::Status sign_image(Registry &reg, const std::string &repo, const Digest &manifest, std::string_view docker_reference,
                        std::string_view priv_pem);

/// Signs image `top` of `repo` as `docker_reference` and, when it is an
/// index, every manifest it lists, as `skopeo copy --all
/// --sign-by-sigstore-private-key` does: containers/image checks the
/// signature of the platform manifest it copies, not the index's. Returns
/// the digests signed, the listed manifests first and `top` last.
util::Result<std::vector<Digest>> sign_image_and_platforms(Registry &reg, const std::string &repo, const Digest &top,
                                                           std::string_view docker_reference, std::string_view priv_pem);

}  // namespace img
