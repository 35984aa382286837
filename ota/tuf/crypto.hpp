// The public-key and hash primitives of TUF metadata, through OpenSSL's
// libcrypto (opened at run time through image/dynlibs, as image signatures
// are).
//
// Keys, as securesystemslib and tuf-js write them:
//   - keytype "ecdsa" (or the older "ecdsa-sha2-nistp256"), scheme
//     "ecdsa-sha2-nistp256": a PEM SubjectPublicKeyInfo on P-256; the
//     signature is hex of ASN.1 DER over SHA-256 — the default;
//   - keytype "ed25519", scheme "ed25519": 64 hex digits of the raw key (or
//     a PEM); the signature is 128 hex digits;
//   - keytype "rsa", scheme "rsassa-pss-sha256": a PEM; RSASSA-PSS with
//     SHA-256 and MGF1-SHA-256, salt length as the signature says (signers
//     differ: digest length or maximum).
// Anything else is refused by name. Hashes: sha256 and sha512; an unknown
// algorithm is an error, never skipped.
#pragma once

#include <string>
#include <string_view>

#include "util/result.hpp"

namespace ota::tuf {

struct Key {
    std::string keytype;
    std::string scheme;
    std::string public_value;  ///< keyval.public as written

    /// What makes two key entries the same key whatever their key ids.
    std::string identity() const { return keytype + '\n' + scheme + '\n' + public_value; }
};

/// Checks that the key's type and scheme are supported and that its public
/// value parses (loads libcrypto).
util::Status check_key(const Key &key);
/// Opens libcrypto (image/dynlibs.hpp): an error saying it could not be
/// loaded, which no signature check may report as a bad signature.
util::Status crypto_ready();
/// Verifies hex signature `sig_hex` over `data` under `key`.
util::Status verify_signature(const Key &key, std::string_view data, std::string_view sig_hex);
/// Lowercase hex of `algorithm` ("sha256", "sha512") over `data`.
util::Result<std::string> hash_hex(std::string_view algorithm, std::string_view data);

}  // namespace ota::tuf
