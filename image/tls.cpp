// TlsContext and TlsSession on libssl with memory BIOs (see tls.hpp).
#include "image/tls.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <climits>
#include <ctime>

#include "image/auth.hpp"
#include "image/dynlibs.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

BIO *bio(void *p) { return static_cast<BIO *>(p); }

/// The reason of OpenSSL's first queued error ("wrong version number"),
/// and the queue emptied.
std::string ssl_reason(std::string_view fallback) {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        if (!out.empty()) continue;
        if (const char *r = ERR_reason_error_string(e)) out = r;
    }
    return out.empty() ? std::string(fallback) : out;
}

/// Verifies the peer's chain against the system's CAs, loaded on the first
/// certificate to check rather than with the context: a loopback registry
/// probed for TLS that turns out to speak plain HTTP never pays for parsing
/// a CA bundle (Registry::choose_scheme).
/// `loaded`: the context's flag (TlsContext::cas_loaded_).
int verify_with_system_cas(X509_STORE_CTX *x, void *loaded_flag) {
    bool &loaded = *static_cast<bool *>(loaded_flag);
    if (!loaded) {
        loaded = true;
        X509_STORE_set_default_paths(X509_STORE_CTX_get0_store(x));  // missing paths: the chain fails to verify
    }
    return X509_verify_cert(x);
}

bool is_ip_literal(const std::string &host) {
    unsigned char buf[16];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

void TlsContext::Free::operator()(SSL_CTX *c) const { SSL_CTX_free(c); }
void TlsSession::Free::operator()(SSL *s) const { SSL_free(s); }

util::Result<TlsContext> TlsContext::create(const std::string &ca_file) {
    TRY(dynlibs::load_tls());
    TlsContext t;
    t.ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!t.ctx_) return util::Error::msg(util::cat("tls: ", ssl_reason("cannot create a context")));
    SSL_CTX *c = t.ctx_.get();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    // A peer that closes without close_notify ends the stream; the HTTP
    // framing (Content-Length, chunks) tells a complete body from a cut one.
    SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    if (ca_file.empty()) {
        t.cas_loaded_ = std::make_unique<bool>(false);
        SSL_CTX_set_cert_verify_callback(c, verify_with_system_cas, t.cas_loaded_.get());
    } else if (SSL_CTX_load_verify_file(c, ca_file.c_str()) != 1) {
        return util::Error::msg(util::cat("tls: CA file ", util::quote(ca_file), ": ", ssl_reason("cannot load")));
    }
    return t;
}

util::Result<TlsSession> TlsSession::start(const TlsContext &ctx, const std::string &host) {
    TlsSession s;
    s.ssl_.reset(SSL_new(ctx.get()));
    if (!s.ssl_) return util::Error::msg(util::cat("tls: ", ssl_reason("cannot create a session")));
    SSL *ssl = s.ssl_.get();
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    if (!in || !out) {
        BIO_free(in);
        BIO_free(out);
        return util::Error::msg("tls: out of memory");
    }
    BIO_set_mem_eof_return(in, -1);  // empty: "retry", until feed_eof
    SSL_set_bio(ssl, in, out);       // the session owns both now
    s.in_ = in;
    s.out_ = out;
    SSL_set_connect_state(ssl);
    if (is_ip_literal(host)) {
        // No SNI for addresses (RFC 6066); the certificate must name the address.
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1)
            return util::Error::msg(util::cat("tls: bad address ", util::quote(host)));
    } else {
        if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1 || SSL_set1_host(ssl, host.c_str()) != 1)
            return util::Error::msg(util::cat("tls: bad host name ", util::quote(host)));
    }
    return s;
}

util::Result<bool> TlsSession::handshake() {
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl_.get());
    if (rc == 1) return true;
    int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_READ) return false;
    long verify = SSL_get_verify_result(ssl_.get());
    if (verify != X509_V_OK) {
        ERR_clear_error();
        return util::Error::msg(util::cat("tls: certificate refused: ", X509_verify_cert_error_string(verify)));
    }
    // Anything else means the peer does not speak TLS (a plain-http server
    // answers the ClientHello with text), or hung up during the handshake.
    return util::Error::with_code(EPROTO, util::cat("tls handshake: ",
                                                    ssl_reason(err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL
                                                                   ? "connection closed"
                                                                   : "failed")));
}

util::Status TlsSession::check_pin(std::string_view pins) const {
    util::CPtr<X509, X509_free> cert(SSL_get1_peer_certificate(ssl_.get()));
    EVP_PKEY *key = cert ? X509_get0_pubkey(cert.get()) : nullptr;
    int len = key ? i2d_PUBKEY(key, nullptr) : -1;
    if (len <= 0) return util::Error::msg("tls: no public key to check the pin against");
    std::string der(static_cast<size_t>(len), '\0');
    auto *p = reinterpret_cast<unsigned char *>(der.data());
    i2d_PUBKEY(key, &p);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(der.data(), der.size(), md, &md_len, EVP_sha256(), nullptr) != 1)
        return util::Error::msg("tls: sha256 of the peer's public key failed");
    std::string have = "sha256//" + base64_encode(std::string_view(reinterpret_cast<char *>(md), md_len));
    for (const auto &pin : util::split(pins, ';'))
        if (util::trim(pin) == have) return util::ok();
    return util::Error::msg(util::cat("tls: public key ", have, " does not match the pinned key"));
}

// A kept session: "<unix seconds it expires>\n" and the DER of the SSL_SESSION.
void TlsSession::offer_session(const std::string &file) {
    auto text = util::read_file(file, 64 << 10);
    if (!text) return;
    auto nl = text->find('\n');
    auto expires = nl == std::string::npos ? std::nullopt : util::parse_int<int64_t>(std::string_view(*text).substr(0, nl));
    if (!expires || *expires <= int64_t(time(nullptr))) return;
    std::string der = text->substr(nl + 1);
    const auto *p = reinterpret_cast<const unsigned char *>(der.data());
    util::CPtr<SSL_SESSION, SSL_SESSION_free> session(d2i_SSL_SESSION(nullptr, &p, long(der.size())));
    ERR_clear_error();
    if (session && SSL_set_session(ssl_.get(), session.get()) == 1) offered_ = std::move(der);
    ERR_clear_error();
}

util::Status TlsSession::save_session(const std::string &file) {
    util::CPtr<SSL_SESSION, SSL_SESSION_free> session(SSL_get1_session(ssl_.get()));
    if (!session || !SSL_SESSION_is_resumable(session.get())) return util::ok();
    int len = i2d_SSL_SESSION(session.get(), nullptr);
    if (len <= 0) return util::ok();
    std::string der(static_cast<size_t>(len), '\0');
    auto *p = reinterpret_cast<unsigned char *>(der.data());
    i2d_SSL_SESSION(session.get(), &p);
    if (der == offered_) return util::ok();
    // The session's lifetime, and the server's for its ticket when it named one.
    int64_t life = int64_t(SSL_SESSION_get_timeout(session.get()));
    if (unsigned long hint = SSL_SESSION_get_ticket_lifetime_hint(session.get()); hint > 0 && int64_t(hint) < life) life = int64_t(hint);
    int64_t expires = int64_t(SSL_SESSION_get_time(session.get())) + life;
    // A cache: lost in a power cut it costs one full handshake, so no fsync.
    TRY(util::atomic_write_file(file, util::cat(expires, '\n', der), 0600, util::Durability::ProcessCrash));
    offered_ = std::move(der);
    return util::ok();
}

bool TlsSession::resumed() const { return SSL_session_reused(ssl_.get()) == 1; }

util::Result<size_t> TlsSession::read(char *buf, size_t len, bool *want_input) {
    *want_input = false;
    ERR_clear_error();
    int rc = SSL_read(ssl_.get(), buf, static_cast<int>(std::min<size_t>(len, INT_MAX)));
    if (rc > 0) return static_cast<size_t>(rc);
    int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_READ) {
        *want_input = true;
        return size_t{0};
    }
    if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
    return util::Error::with_code(ECONNRESET, util::cat("tls: ", ssl_reason("read failed")));
}

util::Status TlsSession::write(std::string_view data) {
    while (!data.empty()) {
        ERR_clear_error();
        int n = static_cast<int>(std::min<size_t>(data.size(), 1 << 20));
        int rc = SSL_write(ssl_.get(), data.data(), n);
        if (rc <= 0) return util::Error::with_code(ECONNRESET, util::cat("tls: ", ssl_reason("write failed")));
        data.remove_prefix(static_cast<size_t>(rc));
    }
    return util::ok();
}

util::Status TlsSession::feed(std::string_view bytes) {
    if (!bytes.empty() && BIO_write(bio(in_), bytes.data(), static_cast<int>(bytes.size())) != static_cast<int>(bytes.size()))
        return util::Error::msg("tls: out of memory");
    return util::ok();
}

void TlsSession::feed_eof() { BIO_set_mem_eof_return(bio(in_), 0); }

std::string TlsSession::take_output() {
    std::string out(BIO_ctrl_pending(bio(out_)), '\0');
    if (out.empty()) return out;
    int n = BIO_read(bio(out_), out.data(), static_cast<int>(out.size()));
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
}

}  // namespace img
