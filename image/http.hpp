// berth's HTTP/1.1 client, for the registry client, blob fetches, the TUF
// fetcher and the fleet agent.
//
// One Http object keeps one connection alive between requests to the same
// server (image/http_conn.hpp: plain TCP, or TLS on OpenSSL's libssl opened
// at the first https:// URL). Redirects are followed here, so that the
// Authorization header is dropped when a redirect leaves the host (blob GETs
// are redirected to object storage with its own signed URL). TLS always
// verifies the peer, against the system CAs or a CA file, optionally pinned
// to a public key; proxies come from the usual environment variables
// (http_proxy, https_proxy, no_proxy). Cellular links get a receive rate
// limit, a stall check (a transfer moving under `speed_limit` bytes/s for
// `speed_time_s` seconds is abandoned, like curl's --speed-limit/--speed-time)
// and a deadline: each request carries the instant by which it must end, its
// operation's (Registry and fetch_blob set one per manifest or blob, retries
// included). Servers are input: status lines, headers and body framing are
// checked, and headers and kept bodies have size limits.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace img {

struct HttpOptions {
    std::string ca_file;          ///< PEM CA bundle; empty: the system's
    std::string pinned_key;       ///< "sha256//<base64>[;sha256//...]" (curl's --pinnedpubkey); empty: none
    int64_t limit_rate = 0;       ///< receive bytes/s; 0: unlimited
    long timeout_s = 0;           ///< one operation (a request and its retries); 0: none
    long connect_timeout_s = 30;
    int64_t speed_limit = 1024;   ///< a transfer under this many bytes/s...
    long speed_time_s = 30;       ///< ...for this many seconds has stalled; 0 in either: never
    /// A directory where TLS sessions are kept across processes (one file a
    /// host and port, 0600, until the ticket's lifetime ends), so the next
    /// process's handshake resumes without the certificate chain; empty: none.
    std::string tls_session_dir;
};

struct HttpResponse {
    long status = 0;
    /// Header names lowercased, of the final response only.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;  ///< when no sink was given (or for error statuses)
    std::string url;   ///< the URL that answered (after redirects)
    std::optional<std::string> header(std::string_view lower_name) const;
};

/// Receives the body of a 2xx response. Returning an error aborts the transfer.
using HttpSink = std::function<util::Status(std::string_view)>;

struct HttpRequest {
    std::string method = "GET";
    std::string url;
    std::vector<std::string> headers;  ///< "Name: value"
    std::string auth_header;           ///< "Authorization: ..."; dropped on cross-host redirects
    std::string body;                  ///< request body (PUT/PATCH/POST)
    int body_fd = -1;                  ///< alternatively: stream `body_len` bytes from this fd
    uint64_t body_len = 0;
    HttpSink sink;                     ///< streams a 2xx body; else it lands in HttpResponse::body
    /// Called once, before the first byte of a 2xx body reaches `sink`, with
    /// the status and headers; an error aborts the transfer (nothing is sunk).
    std::function<util::Status(const HttpResponse &)> check;
    size_t body_limit = 4 << 20;       ///< max bytes kept in HttpResponse::body
    bool follow_redirects = true;
    /// monotonic_ms() by which the request (redirects included) must end;
    /// 0: HttpOptions::timeout_s from its start, if any.
    int64_t deadline_ms = 0;
    /// SO_RCVBUF of the connection, when > 0: blob downloads keep it small,
    /// so that a kill loses little of what the server already sent.
    int recv_buffer = 0;
};

class Conn;
class TlsContext;

class Http {
public:
    static util::Result<Http> create(HttpOptions opts);
    Http(Http &&) noexcept;
    Http &operator=(Http &&) noexcept;
    ~Http();

    /// Performs the request. A non-2xx status is NOT an error here; transport
    /// failures are: ECONNRESET, ECONNREFUSED, ETIMEDOUT (a stall),
    /// EHOSTUNREACH when a retry may help (see http_retryable), ETIME when
    /// the deadline passed (Registry::deadline_error words it), EPROTO when
    /// the server does not speak TLS, code 0 when a retry will not help
    /// (certificates, pinning, a malformed answer).
    util::Result<HttpResponse> perform(const HttpRequest &req);

    const HttpOptions &options() const { return opts_; }

    /// Whether the server of `url` answers a TLS ClientHello in plain
    /// text (HTTP's 400): a test without libssl (a few hundred bytes on one connection
    /// against ~3 MiB and a key exchange), for Registry::choose_scheme's
    /// loopback rule. False when it speaks TLS, cannot be reached, goes
    /// through a proxy or does not answer within 2 s; that is, when only a
    /// real handshake can tell.
    bool answers_in_plain_http(const std::string &url);

private:
    explicit Http(HttpOptions opts);
    util::Result<HttpResponse> perform_once(const HttpRequest &req, const std::string &url, bool send_auth, off_t body_start);
    HttpOptions opts_;
    std::unique_ptr<TlsContext> tls_;  ///< made at the first https:// request
    std::unique_ptr<Conn> conn_;       ///< the kept-alive connection, if any
};

/// CLOCK_MONOTONIC in milliseconds: what deadlines are measured on.
int64_t monotonic_ms();

/// True for errors worth retrying: dropped or refused connections, timeouts,
/// and (by convention of the registry client) EAGAIN for 5xx/429 answers.
bool http_retryable(const util::Error &e);

/// "https://host:port/path?q" -> "host:port" (lowercased); empty when unparsable.
std::string url_host(std::string_view url);
/// Resolves a Location header against the URL it came from.
std::string resolve_url(std::string_view base, std::string_view location);
/// Percent-encodes a query component.
std::string url_escape(std::string_view s);

}  // namespace img
