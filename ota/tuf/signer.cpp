// TUF signing keys with OpenSSL's EVP interface: EVP_PKEY_keygen for new
// keys, PEM for storage, EVP_DigestSign for signatures (SHA-256 for ECDSA
// and RSA-PSS, none for Ed25519, which hashes itself), the mirror of
// crypto.cpp's verification.
#include "ota/tuf/signer.hpp"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "image/dynlibs.hpp"
#include "ota/tuf/canonical.hpp"
#include "util/fd.hpp"
#include "util/strings.hpp"

namespace ota::tuf {
namespace {

using Pkey = util::CPtr<EVP_PKEY, EVP_PKEY_free>;
using PkeyCtx = util::CPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using MdCtx = util::CPtr<EVP_MD_CTX, EVP_MD_CTX_free>;
using Bio = util::CPtr<BIO, BIO_free>;

constexpr int kRsaBits = 3072;
constexpr int kPssSaltLength = 32;  ///< the digest's length, as securesystemslib signs

util::Result<KeyType> type_of(EVP_PKEY *key) {
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
        char group[64] = {0};
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(key, group, sizeof group, &glen) != 1 || std::string_view(group) != "prime256v1")
            return util::Error::msg(util::cat("EC key is not on curve P-256 (", group, ")"));
        return KeyType::Ecdsa;
    }
    case EVP_PKEY_ED25519: return KeyType::Ed25519;
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(key) < 2048) return util::Error::msg("RSA key is shorter than 2048 bits");
        return KeyType::RsaPss;
    default: return util::Error::msg("key is not an EC P-256, Ed25519 or RSA key");
    }
}

/// What a memory BIO holds.
std::string bio_string(BIO *bio) {
    char *data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

util::Result<std::string> public_pem_of(EVP_PKEY *key) {
    Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) return util::Error::msg("cannot write the public key as PEM");
    return bio_string(bio.get());
}

util::Result<Key> tuf_key(EVP_PKEY *key, KeyType t) {
    Key k;
    k.scheme = key_type_name(t);
    if (t == KeyType::Ed25519) {
        unsigned char raw[32];
        size_t n = sizeof raw;
        if (EVP_PKEY_get_raw_public_key(key, raw, &n) != 1 || n != sizeof raw)
            return util::Error::msg("cannot read the ed25519 public key");
        k.keytype = "ed25519";
        k.public_value = util::hex_encode(raw, n);
        return k;
    }
    k.keytype = t == KeyType::Ecdsa ? "ecdsa" : "rsa";
    k.public_value = TRY(public_pem_of(key));
    return k;
}

util::Result<Pkey> read_private(std::string_view pem) {
    TRY(img::dynlibs::crypto.load());
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return util::Error::msg("out of memory");
    // An empty passphrase: an encrypted key fails here instead of prompting.
    Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char *>("")));
    if (!key) return util::Error::msg("not an unencrypted PEM private key");
    return key;
}

}  // namespace

util::Result<KeyType> parse_key_type(std::string_view name) {
    if (name == "ecdsa-sha2-nistp256" || name == "ecdsa") return KeyType::Ecdsa;
    if (name == "ed25519") return KeyType::Ed25519;
    if (name == "rsassa-pss-sha256" || name == "rsa") return KeyType::RsaPss;
    return util::Error::msg(
        util::cat("unknown key type ", util::quote(name), " (ecdsa-sha2-nistp256, ed25519 or rsassa-pss-sha256)"));
}

const char *key_type_name(KeyType t) {
    switch (t) {
    case KeyType::Ecdsa: return "ecdsa-sha2-nistp256";
    case KeyType::Ed25519: return "ed25519";
    case KeyType::RsaPss: return "rsassa-pss-sha256";
    }
    return "?";
}

util::json::Value key_json(const Key &k) {
    util::json::Value v = util::json::Value::object();
    v["keytype"] = k.keytype;
    v["keyval"] = util::json::Value::object();
    v["keyval"]["public"] = k.public_value;
    v["scheme"] = k.scheme;
    return v;
}

util::Result<std::string> key_id(const Key &k) {
    auto canonical = TRY(canonical_json(key_json(k)));
    return hash_hex("sha256", canonical);
}

util::Result<Key> public_key_from_pem(std::string_view pem) {
    TRY(img::dynlibs::crypto.load());
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return util::Error::msg("out of memory");
    Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!key) return util::Error::msg("not a PEM public key");
    return tuf_key(key.get(), TRY(type_of(key.get())));
}

util::Result<PrivateKey> PrivateKey::generate(KeyType t) {
    TRY(img::dynlibs::crypto.load());
    int id = t == KeyType::Ecdsa ? EVP_PKEY_EC : t == KeyType::Ed25519 ? EVP_PKEY_ED25519 : EVP_PKEY_RSA;
    PkeyCtx ctx(EVP_PKEY_CTX_new_id(id, nullptr));
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1) return util::Error::msg("cannot set up key generation");
    if (t == KeyType::Ecdsa && EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), NID_X9_62_prime256v1) != 1)
        return util::Error::msg("cannot select curve P-256");
    if (t == KeyType::RsaPss && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), kRsaBits) != 1)
        return util::Error::msg("cannot set the RSA key size");
    EVP_PKEY *raw = nullptr;
    if (EVP_PKEY_keygen(ctx.get(), &raw) != 1) return util::Error::msg(util::cat(key_type_name(t), " key generation failed"));
    Pkey key(raw);
    Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        return util::Error::msg("cannot write the private key as PEM");
    return from_pem(bio_string(bio.get()));
}

util::Result<PrivateKey> PrivateKey::from_pem(std::string_view pem) {
    auto key = TRY(read_private(pem));
    PrivateKey k;
    k.pem_ = std::string(pem);
    k.type_ = TRY(type_of(key.get()));
    k.public_ = TRY(tuf_key(key.get(), k.type_));
    k.public_pem_ = TRY(public_pem_of(key.get()));
    k.keyid_ = TRY(key_id(k.public_));
    return k;
}

util::Result<std::string> PrivateKey::sign(std::string_view data) const {
    auto key = TRY(read_private(pem_));
    MdCtx ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX *pctx = nullptr;
    if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, type_ == KeyType::Ed25519 ? nullptr : EVP_sha256(), nullptr,
                                   key.get()) != 1)
        return util::Error::msg("cannot set up signing");
    if (type_ == KeyType::RsaPss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                                     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, kPssSaltLength) != 1))
        return util::Error::msg("cannot set up RSA-PSS signing");
    auto in = reinterpret_cast<const unsigned char *>(data.data());
    size_t len = 0;
    if (EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1) return util::Error::msg("signing failed");
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char *>(sig.data()), &len, in, data.size()) != 1)
        return util::Error::msg("signing failed");
    return util::hex_encode(reinterpret_cast<const unsigned char *>(sig.data()), len);
}

}  // namespace ota::tuf
