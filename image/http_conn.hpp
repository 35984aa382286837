// The transport under img::Http: URLs, proxies, the clock of a request and
// one connection (plain TCP or TLS over it) with buffered reads.
//
// Every socket is non-blocking and every wait is a poll(2) bounded by the
// request's Pace: its deadline, the stall check (under `speed_limit` bytes/s
// for `speed_time_s` seconds, bytes sent and received alike) and the receive
// rate limit. Proxies come from http_proxy, https_proxy (or HTTPS_PROXY),
// all_proxy (or ALL_PROXY) and no_proxy (or NO_PROXY), read as libcurl reads
// them (the upper-case HTTP_PROXY is ignored, as there: CGI sets it from a
// request header); http:// goes to the proxy in absolute form, https://
// through a CONNECT tunnel.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "image/http.hpp"
#include "image/tls.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace img {

struct Url {
    bool tls = false;
    std::string host;       ///< lowercased, without the brackets of an IPv6 literal
    uint16_t port = 0;
    std::string authority;  ///< for Host: host, bracketed when IPv6, ":port" unless the scheme's default
    std::string target;     ///< path and query ("/" at least), no fragment
};

/// ASCII lowercase (header names, hosts, schemes).
std::string ascii_lower(std::string_view s);

/// Parses an http:// or https:// URL; errors name what is wrong with it.
util::Result<Url> parse_url(std::string_view url);

/// The proxy a request to `u` goes through, from the environment as libcurl
/// reads it; nullopt: direct.
struct Proxy {
    std::string host;
    uint16_t port = 0;
    std::string auth;  ///< "Proxy-Authorization: Basic ..." when the proxy URL has credentials
};
util::Result<std::optional<Proxy>> proxy_for(const Url &u);
/// no_proxy's rule: "*", host names (matching subdomains too, a leading dot
/// optional), IP addresses and IPv4 CIDR ranges, comma-separated.
bool no_proxy_matches(std::string_view no_proxy, std::string_view host);

/// The clock of one request (redirects included).
class Pace {
public:
    /// `deadline_ms`: monotonic; 0: HttpOptions::timeout_s from now, if any.
    Pace(const HttpOptions &o, int64_t deadline_ms);

    /// The deadline or the stall check has run out: the error to return.
    util::Status tick();
    /// Waits until `fd` is ready for `events`, ticking at least once a
    /// second. With `until_ms` (monotonic), returns false when that passes
    /// first (a connect timeout).
    util::Result<bool> wait(int fd, short events, int64_t until_ms = 0);
    /// Waits while receiving more would exceed the rate limit; returns how
    /// many bytes the next receive may take (at most `want`).
    util::Result<size_t> throttle(size_t want);
    void received(size_t n);
    void sent(size_t n);
    int64_t deadline_ms() const { return deadline_ms_; }
    int64_t started_ms() const { return started_ms_; }

private:
    util::Error stalled_error(int64_t now) const;
    util::Error deadline_error(int64_t now) const;
    int64_t started_ms_ = 0;
    int64_t deadline_ms_ = 0;    ///< 0: none
    int64_t speed_limit_ = 0;
    uint64_t stall_bytes_ = 0;   ///< fewer bytes than this in `stall_ms_`...
    int64_t stall_ms_ = 0;       ///< ...is a stall; 0: no check
    int64_t window_ms_ = 0;      ///< the stall window started here...
    uint64_t window_bytes_ = 0;  ///< ...at this many bytes moved
    uint64_t moved_ = 0;         ///< bytes received and sent
    int64_t limit_rate_ = 0;     ///< receive bytes/s; 0: unlimited
    uint64_t received_ = 0;
};

/// A response's status line and headers.
struct ResponseHead {
    long status = 0;
    bool http10 = false;
    std::vector<std::pair<std::string, std::string>> headers;  ///< names lowercased
};

/// Where a connection goes: the first hop (the proxy, or the server), and
/// whether TLS runs to the server (through a CONNECT tunnel with a proxy).
struct Route {
    Url url;
    std::optional<Proxy> proxy;
    /// Requests with equal keys may share a connection.
    std::string key() const;
};

class Conn {
public:
    /// Connects (within the connect timeout and the deadline), tunnels
    /// through the proxy for TLS, and does the TLS handshake. `rcvbuf` > 0
    /// sets SO_RCVBUF before the connect.
    static util::Result<Conn> open(const Route &r, const HttpOptions &o, const TlsContext *tls, Pace &pace, int rcvbuf);

    util::Status send(std::string_view data, Pace &pace);
    /// The next line, without its CRLF (or LF); an error when it is longer
    /// than `max`, ECONNRESET when the connection ends first.
    util::Result<std::string_view> line(size_t max, Pace &pace);
    /// Up to `max` bytes, buffered ones first; empty at the end of the stream.
    util::Result<std::string_view> some(size_t max, Pace &pace);
    /// What arrived beyond what was read, checked without waiting.
    enum class After { Quiet, Data, Closed };
    util::Result<After> peek();
    /// A kept-alive connection is still usable: not closed by the peer,
    /// nothing unasked-for waiting on it.
    bool reusable();
    /// Whether anything of a response has arrived on it since `mark_request`.
    bool got_bytes() const { return got_bytes_; }
    void mark_request() { got_bytes_ = false; }
    void set_rcvbuf(int bytes);
    const std::string &key() const { return key_; }
    /// Keeps the TLS session for the next process (HttpOptions::tls_session_dir), if any.
    void save_tls_session();

private:
    util::Result<size_t> fill(Pace &pace);
    /// 0 at the end of the stream; ETIMEDOUT when `until_ms` (monotonic, 0: none) passes first.
    util::Result<size_t> raw_recv(char *buf, size_t len, Pace &pace, int64_t until_ms = 0);
    util::Status raw_send(std::string_view data, Pace &pace);
    util::Status flush_tls(Pace &pace);
    util::Status tunnel(const Route &r, Pace &pace);
    util::Status handshake(Pace &pace, int64_t until_ms, long timeout_s);

    util::UniqueFd fd_;
    std::optional<TlsSession> tls_;
    std::string in_;   ///< received plaintext...
    size_t pos_ = 0;   ///< ...of which this much was consumed
    bool eof_ = false;
    bool got_bytes_ = false;
    int rcvbuf_ = 0;
    std::string key_;
    std::string session_file_;  ///< where this host's TLS session is kept; empty: nowhere
};

/// Reads a status line and headers, skipping 1xx responses. Hostile input
/// (bad status lines, folded or endless headers) is a one-line error.
util::Result<ResponseHead> read_head(Conn &c, Pace &pace);

}  // namespace img
