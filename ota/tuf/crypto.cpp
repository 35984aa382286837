// Signature verification and hashing for TUF with OpenSSL's EVP interface:
// one EVP_DigestVerify per key type (the key's own digest for ECDSA and
// RSA-PSS, none for Ed25519, which hashes itself).
#include "ota/tuf/crypto.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <optional>

#include "image/dynlibs.hpp"
#include "util/fd.hpp"
#include "util/strings.hpp"

namespace ota::tuf {
namespace {

using Pkey = util::CPtr<EVP_PKEY, EVP_PKEY_free>;
using MdCtx = util::CPtr<EVP_MD_CTX, EVP_MD_CTX_free>;
using Bio = util::CPtr<BIO, BIO_free>;

enum class Kind { Ecdsa, Ed25519, RsaPss };

util::Result<Kind> kind_of(const Key &k) {
    if ((k.keytype == "ecdsa" || k.keytype == "ecdsa-sha2-nistp256") && k.scheme == "ecdsa-sha2-nistp256") return Kind::Ecdsa;
    if (k.keytype == "ed25519" && k.scheme == "ed25519") return Kind::Ed25519;
    if (k.keytype == "rsa" && k.scheme == "rsassa-pss-sha256") return Kind::RsaPss;
    return util::Error::msg(util::cat("unsupported key type ", util::quote(k.keytype), " with scheme ", util::quote(k.scheme)));
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

util::Result<std::string> hex_decode(std::string_view hex, std::string_view what) {
    if (hex.size() % 2 != 0) return util::Error::msg(util::cat(what, " is not hex (odd length)"));
    std::string out(hex.size() / 2, '\0');
    for (size_t i = 0; i < out.size(); i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return util::Error::msg(util::cat(what, " is not hex"));
        out[i] = static_cast<char>(hi * 16 + lo);
    }
    return out;
}

/// The DER of a "PUBLIC KEY" PEM block (SubjectPublicKeyInfo); nullopt
/// when `pem` is not one such block.
std::optional<std::string> spki_der(std::string_view pem) {
    constexpr std::string_view kBegin = "-----BEGIN PUBLIC KEY-----", kEnd = "-----END PUBLIC KEY-----";
    size_t b = pem.find(kBegin), e = pem.find(kEnd);
    if (b == std::string_view::npos || e == std::string_view::npos || e < b) return std::nullopt;
    std::string base64;
    for (char c : pem.substr(b + kBegin.size(), e - b - kBegin.size()))
        if (c != '\n' && c != '\r' && c != ' ' && c != '\t') base64.push_back(c);
    if (base64.empty() || base64.size() % 4 != 0 || base64.size() > 16384) return std::nullopt;
    std::string der(base64.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(der.data()), reinterpret_cast<const unsigned char *>(base64.data()),
                            static_cast<int>(base64.size()));
    if (n < 0) return std::nullopt;
    size_t pad = base64.ends_with("==") ? 2 : base64.ends_with('=') ? 1 : 0;
    der.resize(size_t(n) - pad);
    return der;
}

util::Result<Pkey> load_pem(std::string_view pem) {
    // OpenSSL 3's PEM reader goes through its decoder machinery, which costs
    // three times d2i_PUBKEY on the DER (0.37 against 0.12 ms a P-256 key
    // here): a refresh loads four keys. Other PEM blocks take the long way.
    if (auto der = spki_der(pem)) {
        const auto *p = reinterpret_cast<const unsigned char *>(der->data());
        Pkey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der->size())));
        if (!key || p != reinterpret_cast<const unsigned char *>(der->data()) + der->size())
            return util::Error::msg("public key is not a PEM public key");
        return key;
    }
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return util::Error::msg("out of memory");
    Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!key) return util::Error::msg("public key is not a PEM public key");
    return key;
}

util::Result<Pkey> load_key(const Key &k, Kind kind) {
    TRY(img::dynlibs::crypto.load());
    if (kind == Kind::Ed25519 && !k.public_value.starts_with("-----BEGIN")) {
        auto raw = TRY(hex_decode(k.public_value, "ed25519 public key"));
        if (raw.size() != 32) return util::Error::msg("ed25519 public key is not 32 bytes");
        Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char *>(raw.data()),
                                             raw.size()));
        if (!key) return util::Error::msg("ed25519 public key does not load");
        return key;
    }
    auto key = TRY(load_pem(k.public_value));
    int id = EVP_PKEY_get_base_id(key.get());
    switch (kind) {
    case Kind::Ecdsa: {
        if (id != EVP_PKEY_EC) return util::Error::msg("ecdsa public key is not an EC key");
        char group[64] = {0};
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(key.get(), group, sizeof group, &glen) != 1 || std::string_view(group) != "prime256v1")
            return util::Error::msg(util::cat("ecdsa public key is not on curve P-256 (", group, ")"));
        break;
    }
    case Kind::Ed25519:
        if (id != EVP_PKEY_ED25519) return util::Error::msg("ed25519 public key is not an Ed25519 key");
        break;
    case Kind::RsaPss:
        if (id != EVP_PKEY_RSA && id != EVP_PKEY_RSA_PSS) return util::Error::msg("rsa public key is not an RSA key");
        if (EVP_PKEY_get_bits(key.get()) < 2048) return util::Error::msg("rsa public key is shorter than 2048 bits");
        break;
    }
    return key;
}

}  // namespace

util::Status crypto_ready() { return img::dynlibs::crypto.load(); }

util::Status check_key(const Key &key) {
    auto kind = TRY(kind_of(key));
    TRY(load_key(key, kind));
    return util::ok();
}

util::Status verify_signature(const Key &k, std::string_view data, std::string_view sig_hex) {
    auto kind = TRY(kind_of(k));
    auto key = TRY(load_key(k, kind));
    auto sig = TRY(hex_decode(sig_hex, "signature"));
    MdCtx ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX *pctx = nullptr;
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, kind == Kind::Ed25519 ? nullptr : EVP_sha256(), nullptr, key.get()) != 1)
        return util::Error::msg("cannot set up signature verification");
    if (kind == Kind::RsaPss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                                 EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1))
        return util::Error::msg("cannot set up RSA-PSS verification");
    int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char *>(sig.data()), sig.size(),
                              reinterpret_cast<const unsigned char *>(data.data()), data.size());
    if (rc != 1) return util::Error::msg("signature does not verify");
    return util::ok();
}

util::Result<std::string> hash_hex(std::string_view algorithm, std::string_view data) {
    const EVP_MD *md = nullptr;
    TRY(img::dynlibs::crypto.load());
    if (algorithm == "sha256") md = EVP_sha256();
    else if (algorithm == "sha512") md = EVP_sha512();
    else return util::Error::msg(util::cat("unsupported hash algorithm ", util::quote(algorithm)));
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1)
        return util::Error::msg(util::cat(algorithm, " failed"));
    return util::hex_encode(out, len);
}

}  // namespace ota::tuf
