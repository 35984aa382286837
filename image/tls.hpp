// TLS for the HTTP client, on OpenSSL's libssl opened at run time
// (image/dynlibs.hpp).
//
// A TlsSession does no socket I/O: OpenSSL reads ciphertext from and writes
// it to two memory BIOs, and the connection (image/http_conn.cpp) moves the
// bytes between them and its non-blocking socket with poll, under the
// request's deadline, stall check and rate limit, and with MSG_NOSIGNAL (a
// socket BIO would write(2) and could raise SIGPIPE). The peer is always
// verified: its chain against the system CAs or a CA file, its name (or IP
// address) against the host asked for, and, when one is given, its public
// key against a `sha256//<base64>` pin, as curl's --pinnedpubkey. A session
// may be kept in a file and offered by the next process (resumption: no
// certificate chain on the wire; the peer was verified when it was made).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "util/result.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace img {

/// Peer verification settings shared by the connections of one Http.
class TlsContext {
public:
    /// `ca_file` empty: the system's CAs. Opens libssl.
    static util::Result<TlsContext> create(const std::string &ca_file);
    SSL_CTX *get() const { return ctx_.get(); }

private:
    struct Free {
        void operator()(SSL_CTX *c) const;
    };
    std::unique_ptr<SSL_CTX, Free> ctx_;
    std::unique_ptr<bool> cas_loaded_;  ///< the system's CAs are in ctx_'s store (loaded on first use)
};

/// One TLS client session. The caller feeds it the bytes that arrived
/// (`feed`), sends what it produced (`take_output`), and retries the
/// operation that reported `want_input`.
class TlsSession {
public:
    /// A session for `host` (a name or an IP literal, without brackets):
    /// SNI for names, and the certificate must be for that name or address.
    static util::Result<TlsSession> start(const TlsContext &ctx, const std::string &host);

    /// One handshake step: true when done; false when it needs more input
    /// (send take_output() first). Errors: code EPROTO when the peer does
    /// not speak TLS, 0 when its certificate is refused.
    util::Result<bool> handshake();
    /// Checks the peer's public key against "sha256//<base64>[;sha256//...]".
    util::Status check_pin(std::string_view pins) const;

    /// Offers the session kept in `file` (by save_session, for this host),
    /// when it has not expired: the handshake then resumes it. A missing,
    /// expired or unreadable file is no error (a full handshake).
    void offer_session(const std::string &file);
    /// Keeps the current session in `file` (0600) when it can be resumed and
    /// differs from the one offered; call it after a response was read (a
    /// TLS 1.3 server sends its ticket after the handshake).
    util::Status save_session(const std::string &file);
    /// Whether the handshake resumed the offered session.
    bool resumed() const;

    /// Plaintext into `buf`: > 0 bytes; 0 with `*want_input` when it needs
    /// more ciphertext; 0 without it at the end of the stream.
    util::Result<size_t> read(char *buf, size_t len, bool *want_input);
    /// Encrypts all of `data` into the output (take_output).
    util::Status write(std::string_view data);

    /// Ciphertext that arrived on the socket; `feed_eof` when it closed.
    util::Status feed(std::string_view bytes);
    void feed_eof();
    /// Ciphertext to send, emptied.
    std::string take_output();

private:
    struct Free {
        void operator()(SSL *s) const;
    };
    std::unique_ptr<SSL, Free> ssl_;
    void *in_ = nullptr;   ///< BIO *: owned by ssl_
    void *out_ = nullptr;  ///< BIO *: owned by ssl_
    std::string offered_;  ///< the DER of the session offered or last saved
};

}  // namespace img
