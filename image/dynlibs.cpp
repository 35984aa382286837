// Forwarding definitions for the functions image/ and `berth version` call
// in OpenSSL's libssl and libcrypto, libarchive and zlib (see dynlibs.hpp). Each has the
// prototype of the library's header, which the compiler checks against the
// header's declaration; the body looks the symbol up once and calls it.
#define OPENSSL_SUPPRESS_DEPRECATED 1  // SHA256_* (see digest.cpp)
#include "image/dynlibs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/err.h>
#include <zlib.h>

// The functions forwarded, one list a library: X(name, (parameters), (arguments)).
// The same lists give each DynLib the names load() checks, so a library
// without one of them is refused in load()'s error, never at the call.
// libssl: the TLS client of image/tls.cpp (its certificate and key
// helpers are libcrypto's, in the list below).
#define SSL_FORWARDS(X) \
    X(TLS_client_method, (void), ()) \
    X(SSL_CTX_new, (const SSL_METHOD *m), (m)) \
    X(SSL_CTX_free, (SSL_CTX *c), (c)) \
    X(SSL_CTX_ctrl, (SSL_CTX *c, int cmd, long larg, void *parg), (c, cmd, larg, parg)) \
    X(SSL_CTX_set_options, (SSL_CTX *c, uint64_t op), (c, op)) \
    X(SSL_CTX_set_verify, (SSL_CTX *c, int mode, SSL_verify_cb cb), (c, mode, cb)) \
    X(SSL_CTX_load_verify_file, (SSL_CTX *c, const char *file), (c, file)) \
    X(SSL_CTX_set_cert_verify_callback, (SSL_CTX *c, int (*cb)(X509_STORE_CTX *, void *), void *arg), (c, cb, arg)) \
    X(SSL_new, (SSL_CTX *c), (c)) \
    X(SSL_free, (SSL *s), (s)) \
    X(SSL_ctrl, (SSL *s, int cmd, long larg, void *parg), (s, cmd, larg, parg)) \
    X(SSL_set_bio, (SSL *s, BIO *r, BIO *w), (s, r, w)) \
    X(SSL_set_connect_state, (SSL *s), (s)) \
    X(SSL_set1_host, (SSL *s, const char *host), (s, host)) \
    X(SSL_get0_param, (SSL *s), (s)) \
    X(SSL_do_handshake, (SSL *s), (s)) \
    X(SSL_read, (SSL *s, void *buf, int n), (s, buf, n)) \
    X(SSL_write, (SSL *s, const void *buf, int n), (s, buf, n)) \
    X(SSL_get_error, (const SSL *s, int ret), (s, ret)) \
    X(SSL_get_verify_result, (const SSL *s), (s)) \
    X(SSL_get1_peer_certificate, (const SSL *s), (s)) \
    X(SSL_set_session, (SSL *s, SSL_SESSION *session), (s, session)) \
    X(SSL_get1_session, (SSL *s), (s)) \
    X(SSL_session_reused, (const SSL *s), (s)) \
    X(SSL_SESSION_free, (SSL_SESSION *session), (session)) \
    X(SSL_SESSION_is_resumable, (const SSL_SESSION *session), (session)) \
    X(SSL_SESSION_get_time, (const SSL_SESSION *session), (session)) \
    X(SSL_SESSION_get_timeout, (const SSL_SESSION *session), (session)) \
    X(SSL_SESSION_get_ticket_lifetime_hint, (const SSL_SESSION *session), (session)) \
    X(i2d_SSL_SESSION, (const SSL_SESSION *session, unsigned char **pp), (session, pp)) \
    X(d2i_SSL_SESSION, (SSL_SESSION **a, const unsigned char **pp, long length), (a, pp, length))
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
    X(PEM_write_bio_PrivateKey, (BIO *b, const EVP_PKEY *k, const EVP_CIPHER *enc, const unsigned char *kstr, int klen, pem_password_cb *cb, void *u), (b, k, enc, kstr, klen, cb, u)) \
    /* the TLS client (image/tls.cpp): memory BIOs, the peer's certificate, errors */ \
    X(BIO_read, (BIO *b, void *buf, int n), (b, buf, n)) \
    X(BIO_write, (BIO *b, const void *buf, int n), (b, buf, n)) \
    X(BIO_ctrl_pending, (BIO *b), (b)) \
    X(X509_free, (X509 *x), (x)) \
    X(X509_get0_pubkey, (const X509 *x), (x)) \
    X(i2d_PUBKEY, (const EVP_PKEY *k, unsigned char **out), (k, out)) \
    X(X509_VERIFY_PARAM_set1_ip_asc, (X509_VERIFY_PARAM *p, const char *ip), (p, ip)) \
    X(X509_verify_cert_error_string, (long n), (n)) \
    X(X509_verify_cert, (X509_STORE_CTX *c), (c)) \
    X(X509_STORE_CTX_get0_store, (const X509_STORE_CTX *c), (c)) \
    X(X509_STORE_set_default_paths, (X509_STORE *s), (s)) \
    X(ERR_get_error, (void), ()) \
    X(ERR_reason_error_string, (unsigned long e), (e)) \
    X(ERR_clear_error, (void), ())
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
constexpr const char *kSslSymbols[] = {SSL_FORWARDS(SYMBOL_NAME)};
constexpr const char *kCryptoSymbols[] = {CRYPTO_FORWARDS(SYMBOL_NAME)};
constexpr const char *kArchiveSymbols[] = {ARCHIVE_FORWARDS(SYMBOL_NAME)};
constexpr const char *kZlibSymbols[] = {ZLIB_FORWARDS(SYMBOL_NAME)};
#undef SYMBOL_NAME

}  // namespace

util::DynLib ssl("libssl.so.3", "OpenSSL (libssl.so.3)", kSslSymbols);
util::DynLib crypto("libcrypto.so.3", "OpenSSL (libcrypto.so.3)", kCryptoSymbols);
util::DynLib archive("libarchive.so.13", "libarchive (libarchive.so.13)", kArchiveSymbols);
util::DynLib zlib("libz.so.1", "zlib (libz.so.1)", kZlibSymbols);

util::Status load_local() {
    for (util::DynLib *l : {&crypto, &archive, &zlib}) TRY(l->load());
    return util::ok();
}

util::Status load_remote() { return crypto.load(); }

util::Status load_tls() {
    for (util::DynLib *l : {&crypto, &ssl}) TRY(l->load());
    return util::ok();
}

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
#define FORWARD_SSL(name, params, args) FORWARD(ssl, name, params, args)
#define FORWARD_CRYPTO(name, params, args) FORWARD(crypto, name, params, args)
#define FORWARD_ARCHIVE(name, params, args) FORWARD(archive, name, params, args)
#define FORWARD_ZLIB(name, params, args) FORWARD(zlib, name, params, args)

SSL_FORWARDS(FORWARD_SSL)
CRYPTO_FORWARDS(FORWARD_CRYPTO)
ARCHIVE_FORWARDS(FORWARD_ARCHIVE)
ZLIB_FORWARDS(FORWARD_ZLIB)
