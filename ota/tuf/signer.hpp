// The signing half of TUF's keys, for the fleet controller (`berth fleet`):
// key generation, private keys read from and written to PEM files, the
// public Key a role lists with its key id, and signatures that
// ota/tuf/crypto.hpp (and securesystemslib, python-tuf, tuf-js) verify.
//
// The three key types of crypto.hpp, through OpenSSL's libcrypto (opened at
// run time through image/dynlibs, as crypto.cpp does):
//   - ecdsa-sha2-nistp256 (the default): keytype "ecdsa", a PEM
//     SubjectPublicKeyInfo on P-256, ASN.1 DER signatures over SHA-256;
//   - ed25519: keytype "ed25519", the raw public key as 64 hex digits;
//   - rsassa-pss-sha256: keytype "rsa", 3072-bit keys, a PEM public key,
//     PSS with MGF1-SHA-256 and a 32-byte salt.
// Private keys are unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"), as
// `openssl genpkey` writes them. A key id is the SHA-256 of the canonical
// JSON of the public key entry, as securesystemslib computes it.
#pragma once

#include <string>
#include <string_view>

#include "ota/tuf/crypto.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace ota::tuf {

enum class KeyType { Ecdsa, Ed25519, RsaPss };

/// "ecdsa-sha2-nistp256" (or "ecdsa"), "ed25519", "rsassa-pss-sha256" (or
/// "rsa"); anything else is refused by name.
util::Result<KeyType> parse_key_type(std::string_view name);
/// The scheme name: "ecdsa-sha2-nistp256", "ed25519", "rsassa-pss-sha256".
const char *key_type_name(KeyType t);

/// The public key entry of a role's "keys": {"keytype", "keyval": {"public"}, "scheme"}.
util::json::Value key_json(const Key &k);
/// The key id of `k`: lowercase hex SHA-256 of key_json's canonical form.
util::Result<std::string> key_id(const Key &k);
/// The TUF key of a PEM public key file (`delegate --key`): its type follows
/// from the key (an EC P-256, Ed25519 or RSA key of at least 2048 bits).
util::Result<Key> public_key_from_pem(std::string_view pem);

class PrivateKey {
public:
    /// A new key of type `t` from OpenSSL's random generator.
    static util::Result<PrivateKey> generate(KeyType t);
    /// Reads a PEM private key (PKCS#8, or the traditional EC/RSA forms);
    /// its type follows from the key as in public_key_from_pem.
    static util::Result<PrivateKey> from_pem(std::string_view pem);

    /// The public key as a role lists it, and its id.
    const Key &public_key() const { return public_; }
    const std::string &keyid() const { return keyid_; }
    /// The private key as PKCS#8 PEM (what from_pem reads back).
    const std::string &pem() const { return pem_; }
    /// The public key as PEM (what public_key_from_pem reads), whatever the type.
    const std::string &public_pem() const { return public_pem_; }
    /// The hex signature over `data`.
    util::Result<std::string> sign(std::string_view data) const;

private:
    std::string pem_, public_pem_;
    KeyType type_ = KeyType::Ecdsa;
    Key public_;
    std::string keyid_;
};

}  // namespace ota::tuf
