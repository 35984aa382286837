// Forwarding definitions for the functions image/ and `berth version` call
// in libcurl, libcrypto, libarchive and zlib (see dynlibs.hpp). Each has the
// prototype of the library's header, which the compiler checks against the
// header's declaration; the body looks the symbol up once and calls it.
#define OPENSSL_SUPPRESS_DEPRECATED 1  // SHA256_* (see digest.cpp)
#define CURL_DISABLE_TYPECHECK 1       // curl_easy_setopt/getinfo are macros otherwise
#include "image/dynlibs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <zlib.h>

#include <cstdarg>

// The functions forwarded, one list a library: X(name, (parameters), (arguments)).
// The same lists give each DynLib the names load() checks, so a library
// without one of them is refused in load()'s error, never at the call.
#define CURL_FORWARDS(X) \
    X(curl_global_init, (long flags), (flags)) \
    X(curl_version_info, (CURLversion v), (v)) \
    X(curl_easy_init, (void), ()) \
    X(curl_easy_reset, (CURL *h), (h)) \
    X(curl_easy_perform, (CURL *h), (h)) \
    X(curl_easy_cleanup, (CURL *h), (h)) \
    X(curl_easy_strerror, (CURLcode c), (c)) \
    X(curl_slist_append, (struct curl_slist *l, const char *s), (l, s)) \
    X(curl_slist_free_all, (struct curl_slist *l), (l))
// curl_easy_setopt and curl_easy_getinfo are variadic: written out below.
#define CRYPTO_FORWARDS(X) \
    X(OpenSSL_version, (int t), (t)) \
    X(SHA256_Init, (SHA256_CTX *c), (c)) \
    X(SHA256_Update, (SHA256_CTX *c, const void *data, size_t len), (c, data, len)) \
    X(SHA256_Final, (unsigned char *md, SHA256_CTX *c), (md, c)) \
    X(EVP_sha256, (void), ()) \
    X(EVP_MD_CTX_new, (void), ()) \
    X(EVP_MD_CTX_free, (EVP_MD_CTX *c), (c)) \
    X(EVP_DigestSignInit, (EVP_MD_CTX *c, EVP_PKEY_CTX **pc, const EVP_MD *t, ENGINE *e, EVP_PKEY *k), (c, pc, t, e, k)) \
    X(EVP_DigestSign, (EVP_MD_CTX *c, unsigned char *sig, size_t *siglen, const unsigned char *tbs, size_t n), (c, sig, siglen, tbs, n)) \
    X(EVP_DigestVerifyInit, (EVP_MD_CTX *c, EVP_PKEY_CTX **pc, const EVP_MD *t, ENGINE *e, EVP_PKEY *k), (c, pc, t, e, k)) \
    X(EVP_DigestVerify, (EVP_MD_CTX *c, const unsigned char *sig, size_t siglen, const unsigned char *tbs, size_t n), (c, sig, siglen, tbs, n)) \
    X(EVP_EncodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n)) \
    X(EVP_DecodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n)) \
    X(d2i_PUBKEY, (EVP_PKEY **a, const unsigned char **pp, long length), (a, pp, length)) \
    X(EVP_PKEY_free, (EVP_PKEY *k), (k)) \
    X(EVP_PKEY_get_base_id, (const EVP_PKEY *k), (k)) \
    X(EVP_PKEY_get_group_name, (const EVP_PKEY *k, char *name, size_t size, size_t *len), (k, name, size, len)) \
    X(BIO_new_mem_buf, (const void *buf, int len), (buf, len)) \
    X(BIO_free, (BIO *b), (b)) \
    X(PEM_read_bio_PUBKEY, (BIO *b, EVP_PKEY **k, pem_password_cb *cb, void *u), (b, k, cb, u)) \
    X(PEM_read_bio_PrivateKey, (BIO *b, EVP_PKEY **k, pem_password_cb *cb, void *u), (b, k, cb, u)) \
    X(EVP_sha512, (void), ()) \
    X(EVP_Digest, (const void *d, size_t n, unsigned char *md, unsigned int *len, const EVP_MD *t, ENGINE *e), (d, n, md, len, t, e)) \
    X(EVP_PKEY_new_raw_public_key, (int type, ENGINE *e, const unsigned char *k, size_t n), (type, e, k, n)) \
    X(EVP_PKEY_get_bits, (const EVP_PKEY *k), (k)) \
    X(EVP_PKEY_CTX_set_rsa_padding, (EVP_PKEY_CTX *c, int pad), (c, pad)) \
    X(EVP_PKEY_CTX_set_rsa_pss_saltlen, (EVP_PKEY_CTX *c, int len), (c, len)) \
    /* TUF signing keys (ota/tuf/signer.cpp) */ \
    X(EVP_PKEY_CTX_new_id, (int id, ENGINE *e), (id, e)) \
    X(EVP_PKEY_CTX_free, (EVP_PKEY_CTX *c), (c)) \
    X(EVP_PKEY_keygen_init, (EVP_PKEY_CTX *c), (c)) \
    X(EVP_PKEY_keygen, (EVP_PKEY_CTX *c, EVP_PKEY **k), (c, k)) \
    X(EVP_PKEY_CTX_set_ec_paramgen_curve_nid, (EVP_PKEY_CTX *c, int nid), (c, nid)) \
    X(EVP_PKEY_CTX_set_rsa_keygen_bits, (EVP_PKEY_CTX *c, int bits), (c, bits)) \
    X(EVP_PKEY_get_raw_public_key, (const EVP_PKEY *k, unsigned char *pub, size_t *len), (k, pub, len)) \
    X(BIO_new, (const BIO_METHOD *m), (m)) \
    X(BIO_s_mem, (void), ()) \
    X(BIO_ctrl, (BIO *b, int cmd, long larg, void *parg), (b, cmd, larg, parg)) \
    X(PEM_write_bio_PUBKEY, (BIO *b, const EVP_PKEY *k), (b, k)) \
    X(PEM_write_bio_PrivateKey, (BIO *b, const EVP_PKEY *k, const EVP_CIPHER *enc, const unsigned char *kstr, int klen, pem_password_cb *cb, void *u), (b, k, enc, kstr, klen, cb, u))
#define ARCHIVE_FORWARDS(X) \
    X(archive_version_string, (void), ()) \
    X(archive_version_details, (void), ()) \
    X(archive_read_new, (void), ()) \
    X(archive_read_free, (struct archive *a), (a)) \
    X(archive_read_support_filter_gzip, (struct archive *a), (a)) \
    X(archive_read_support_filter_zstd, (struct archive *a), (a)) \
    X(archive_read_support_format_tar, (struct archive *a), (a)) \
    X(archive_read_support_format_raw, (struct archive *a), (a)) \
    X(archive_read_open, (struct archive *a, void *data, archive_open_callback *o, archive_read_callback *r, archive_close_callback *c), (a, data, o, r, c)) \
    X(archive_read_next_header, (struct archive *a, struct archive_entry **e), (a, e)) \
    X(archive_read_data, (struct archive *a, void *buf, size_t n), (a, buf, n)) \
    X(archive_read_data_block, (struct archive *a, const void **buf, size_t *n, la_int64_t *off), (a, buf, n, off)) \
    X(archive_error_string, (struct archive *a), (a)) \
    X(archive_filter_code, (struct archive *a, int n), (a, n)) \
    X(archive_entry_pathname, (struct archive_entry *e), (e)) \
    X(archive_entry_hardlink, (struct archive_entry *e), (e)) \
    X(archive_entry_symlink, (struct archive_entry *e), (e)) \
    X(archive_entry_filetype, (struct archive_entry *e), (e)) \
    X(archive_entry_perm, (struct archive_entry *e), (e)) \
    X(archive_entry_size, (struct archive_entry *e), (e)) \
    X(archive_entry_uid, (struct archive_entry *e), (e)) \
    X(archive_entry_gid, (struct archive_entry *e), (e)) \
    X(archive_entry_rdevmajor, (struct archive_entry *e), (e)) \
    X(archive_entry_rdevminor, (struct archive_entry *e), (e)) \
    X(archive_entry_mtime, (struct archive_entry *e), (e)) \
    X(archive_entry_mtime_nsec, (struct archive_entry *e), (e)) \
    X(archive_entry_atime, (struct archive_entry *e), (e)) \
    X(archive_entry_atime_nsec, (struct archive_entry *e), (e)) \
    X(archive_entry_atime_is_set, (struct archive_entry *e), (e)) \
    X(archive_entry_xattr_reset, (struct archive_entry *e), (e)) \
    X(archive_entry_xattr_next, (struct archive_entry *e, const char **name, const void **value, size_t *size), (e, name, value, size))
#define ZLIB_FORWARDS(X) \
    X(zlibVersion, (void), ()) \
    X(deflateInit2_, (z_streamp s, int level, int method, int bits, int mem, int strategy, const char *v, int size), (s, level, method, bits, mem, strategy, v, size)) \
    X(deflate, (z_streamp s, int flush), (s, flush)) \
    X(deflateEnd, (z_streamp s), (s))

namespace img::dynlibs {
namespace {

#define SYMBOL_NAME(name, params, args) #name,
constexpr const char *kCurlSymbols[] = {CURL_FORWARDS(SYMBOL_NAME) "curl_easy_setopt", "curl_easy_getinfo"};
constexpr const char *kCryptoSymbols[] = {CRYPTO_FORWARDS(SYMBOL_NAME)};
constexpr const char *kArchiveSymbols[] = {ARCHIVE_FORWARDS(SYMBOL_NAME)};
constexpr const char *kZlibSymbols[] = {ZLIB_FORWARDS(SYMBOL_NAME)};
#undef SYMBOL_NAME

}  // namespace

util::DynLib curl("libcurl.so.4", "libcurl (libcurl.so.4)", kCurlSymbols);
util::DynLib crypto("libcrypto.so.3", "OpenSSL (libcrypto.so.3)", kCryptoSymbols);
util::DynLib archive("libarchive.so.13", "libarchive (libarchive.so.13)", kArchiveSymbols);
util::DynLib zlib("libz.so.1", "zlib (libz.so.1)", kZlibSymbols);

util::Status load_local() {
    for (util::DynLib *l : {&crypto, &archive, &zlib}) TRY(l->load());
    return util::ok();
}

util::Status load_remote() { return curl.load(); }

namespace {

template <typename F> struct Fn;
template <typename R, typename... A> struct Fn<R (*)(A...)> { using Ret = R; };

/// The library's `name`, looked up on the first call of this forwarder.
template <typename F> F lookup(util::DynLib &lib, const char *name) { return reinterpret_cast<F>(lib.symbol(name)); }

}  // namespace
}  // namespace img::dynlibs

// Defines `name` with the header's return type and the given parameters,
// calling the library's.
#define FORWARD(lib, name, params, args)                                                            \
    extern "C" auto name params -> img::dynlibs::Fn<decltype(&::name)>::Ret {                       \
        static const auto real = img::dynlibs::lookup<decltype(&::name)>(img::dynlibs::lib, #name); \
        return real args;                                                                           \
    }
#define FORWARD_CURL(name, params, args) FORWARD(curl, name, params, args)
#define FORWARD_CRYPTO(name, params, args) FORWARD(crypto, name, params, args)
#define FORWARD_ARCHIVE(name, params, args) FORWARD(archive, name, params, args)
#define FORWARD_ZLIB(name, params, args) FORWARD(zlib, name, params, args)

CURL_FORWARDS(FORWARD_CURL)
CRYPTO_FORWARDS(FORWARD_CRYPTO)
ARCHIVE_FORWARDS(FORWARD_ARCHIVE)
ZLIB_FORWARDS(FORWARD_ZLIB)

// The two variadic ones take exactly one value after the option; its type
// follows from the option's number range, as in curl's own setopt.
extern "C" CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...) {
    static const auto real = img::dynlibs::lookup<decltype(&::curl_easy_setopt)>(img::dynlibs::curl, "curl_easy_setopt");
    va_list ap;
    va_start(ap, opt);
    CURLcode rc;
    if (opt < CURLOPTTYPE_OBJECTPOINT)
        rc = real(h, opt, va_arg(ap, long));
    else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
        rc = real(h, opt, va_arg(ap, curl_off_t));
    else  // object, string, function and blob pointers
        rc = real(h, opt, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

extern "C" CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...) {
    static const auto real = img::dynlibs::lookup<decltype(&::curl_easy_getinfo)>(img::dynlibs::curl, "curl_easy_getinfo");
    va_list ap;
    va_start(ap, info);
    CURLcode rc = real(h, info, va_arg(ap, void *));  // always a pointer to the result
    va_end(ap);
    return rc;
}
