// URLs, proxies, Pace and Conn (see http_conn.hpp).
#include "image/http_conn.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "image/auth.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

constexpr size_t kLineMax = 8192;          ///< one status or header line
constexpr size_t kHeadMax = 64 << 10;      ///< all headers of a response
constexpr size_t kReadSize = 64 << 10;     ///< one receive

std::string secs(int64_t ms) { return util::cat((ms + 500) / 1000, " s"); }

/// A line from the peer, printable and short, for an error message.
std::string shown(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 60)) out.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : '?');
    if (s.size() > 60) out += "...";
    return util::quote(out);
}

const char *env(const char *name) {
    const char *v = std::getenv(name);
    return v && *v ? v : nullptr;
}

/// "a.b.c.d" or "a.b.c.d/n" as a (network, mask) pair.
std::optional<std::pair<uint32_t, uint32_t>> ipv4_range(std::string_view s) {
    unsigned bits = 32;
    if (auto slash = s.find('/'); slash != std::string_view::npos) {
        auto b = util::parse_int<unsigned>(s.substr(slash + 1));
        if (!b || *b > 32) return std::nullopt;
        bits = *b;
        s = s.substr(0, slash);
    }
    in_addr a{};
    if (inet_pton(AF_INET, std::string(s).c_str(), &a) != 1) return std::nullopt;
    uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    return std::pair(ntohl(a.s_addr) & mask, mask);
}

/// "host", "host:port", "[v6]" or "[v6]:port": host (lowercased, no brackets) and port text.
util::Result<std::pair<std::string, std::string_view>> split_authority(std::string_view auth) {
    std::string_view host = auth, port;
    if (auth.starts_with("[")) {
        auto close = auth.find(']');
        if (close == std::string_view::npos) return util::Error::msg("unterminated IPv6 address");
        host = auth.substr(1, close - 1);
        auto after = auth.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') return util::Error::msg("junk after the IPv6 address");
            port = after.substr(1);
        }
    } else if (auto colon = auth.rfind(':'); colon != std::string_view::npos) {
        host = auth.substr(0, colon);
        port = auth.substr(colon + 1);
    }
    if (host.empty()) return util::Error::msg("no host");
    return std::pair(ascii_lower(host), port);
}

}  // namespace

// ---------------------------------------------------------------- URLs and proxies

std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (auto &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

util::Result<Url> parse_url(std::string_view s) {
    auto bad = [&](std::string_view why) { return util::Error::msg(util::cat("bad URL ", shown(s), ": ", why)); };
    for (char c : s)
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return bad("control characters or spaces");
    Url u;
    auto p = s.find("://");
    if (p == std::string_view::npos) return bad("no scheme");
    std::string scheme = ascii_lower(s.substr(0, p));
    if (scheme == "https") u.tls = true;
    else if (scheme != "http") return bad("only http and https are supported");
    auto rest = s.substr(p + 3);
    auto end = rest.find_first_of("/?#");
    std::string_view auth = rest.substr(0, end);
    std::string_view tail = end == std::string_view::npos ? "" : rest.substr(end);
    if (auth.find('@') != std::string_view::npos) return bad("credentials in URLs are not supported");
    auto hp = split_authority(auth);
    if (!hp) return bad(hp.error().context);
    auto [host, port] = std::move(*hp);
    u.host = std::move(host);
    u.port = u.tls ? 443 : 80;
    if (!port.empty()) {
        auto n = util::parse_int<uint16_t>(port);
        if (!n || *n == 0) return bad("bad port");
        u.port = *n;
    }
    bool v6 = u.host.find(':') != std::string::npos;
    u.authority = v6 ? util::cat('[', u.host, ']') : u.host;
    if (u.port != (u.tls ? 443 : 80)) u.authority += util::cat(':', u.port);
    tail = tail.substr(0, tail.find('#'));
    u.target = tail.empty() || tail[0] != '/' ? util::cat('/', tail) : std::string(tail);
    return u;
}

bool no_proxy_matches(std::string_view list, std::string_view host) {
    std::string h = ascii_lower(host);
    auto addr = ipv4_range(h);
    for (const auto &raw : util::split(list, ',')) {
        std::string e = ascii_lower(util::trim(raw));
        if (e.empty()) continue;
        if (e == "*") return true;
        if (e.starts_with("[") && e.ends_with("]")) e = e.substr(1, e.size() - 2);
        if (addr) {
            auto r = ipv4_range(e);
            if (r && (addr->first & r->second) == r->first) return true;
            continue;
        }
        if (e.starts_with(".")) e.erase(0, 1);
        if (h == e || (h.size() > e.size() && h.ends_with(e) && h[h.size() - e.size() - 1] == '.')) return true;
    }
    return false;
}

util::Result<std::optional<Proxy>> proxy_for(const Url &u) {
    const char *no = env("no_proxy");
    if (!no) no = env("NO_PROXY");
    if (no && no_proxy_matches(no, u.host)) return std::optional<Proxy>();
    const char *v = u.tls ? env("https_proxy") : env("http_proxy");
    if (!v && u.tls) v = env("HTTPS_PROXY");
    if (!v) v = env("all_proxy");
    if (!v) v = env("ALL_PROXY");
    if (!v) return std::optional<Proxy>();
    std::string_view s = v;
    auto bad = [&](std::string_view why) { return util::Error::msg(util::cat("proxy ", shown(s), ": ", why)); };
    if (auto p = s.find("://"); p != std::string_view::npos) {
        if (ascii_lower(s.substr(0, p)) != "http") return bad("only http:// proxies are supported");
        s.remove_prefix(p + 3);
    }
    s = s.substr(0, s.find_first_of("/?#"));
    Proxy p;
    if (auto at = s.rfind('@'); at != std::string_view::npos) {  // http://user:password@host:port
        p.auth = "Proxy-Authorization: Basic " + base64_encode(s.substr(0, at));
        s.remove_prefix(at + 1);
    }
    auto hp = split_authority(s);
    if (!hp) return bad(hp.error().context);
    p.host = std::move(hp->first);
    p.port = 1080;  // libcurl's default proxy port
    if (!hp->second.empty()) {
        auto n = util::parse_int<uint16_t>(hp->second);
        if (!n || *n == 0) return bad("bad port");
        p.port = *n;
    }
    return std::optional<Proxy>(std::move(p));
}

std::string Route::key() const {
    std::string k = util::cat(url.tls ? "https://" : "http://", url.host, ':', url.port);
    if (proxy) k += util::cat(" via ", proxy->host, ':', proxy->port);
    return k;
}

// ---------------------------------------------------------------- Pace

Pace::Pace(const HttpOptions &o, int64_t deadline_ms) {
    started_ms_ = window_ms_ = monotonic_ms();
    deadline_ms_ = deadline_ms;
    if (deadline_ms_ == 0 && o.timeout_s > 0) deadline_ms_ = started_ms_ + o.timeout_s * 1000;
    speed_limit_ = o.speed_limit;
    if (o.limit_rate > 0) speed_limit_ = std::min(speed_limit_, o.limit_rate / 2);  // never below our own cap
    if (speed_limit_ > 0 && o.speed_time_s > 0) {
        stall_ms_ = o.speed_time_s * 1000;
        stall_bytes_ = static_cast<uint64_t>(speed_limit_) * static_cast<uint64_t>(o.speed_time_s);
    }
    limit_rate_ = o.limit_rate;
}

util::Error Pace::stalled_error(int64_t now) const {
    return util::Error::with_code(ETIMEDOUT, util::cat("stalled: ", moved_ - window_bytes_, " bytes in ",
                                                       secs(now - window_ms_), " (under ", speed_limit_, " bytes/s)"));
}

util::Error Pace::deadline_error(int64_t now) const {
    int64_t ms = now - started_ms_;
    bool slow = speed_limit_ > 0 && moved_ * 1000 < static_cast<uint64_t>(speed_limit_ * std::max<int64_t>(ms, 1));
    return util::Error::with_code(ETIME, util::cat(slow ? "stalled: " : "", moved_, " bytes in ", secs(ms),
                                                   slow ? util::cat(" (under ", speed_limit_, " bytes/s)") : ""));
}

util::Status Pace::tick() {
    int64_t now = monotonic_ms();
    if (deadline_ms_ > 0 && now >= deadline_ms_) return deadline_error(now);
    if (stall_ms_ > 0) {
        if (moved_ - window_bytes_ >= stall_bytes_) {
            window_ms_ = now;
            window_bytes_ = moved_;
        } else if (now - window_ms_ >= stall_ms_) {
            return stalled_error(now);
        }
    }
    return util::ok();
}

util::Result<bool> Pace::wait(int fd, short events, int64_t until_ms) {
    for (;;) {
        TRY(tick());
        int64_t now = monotonic_ms();
        if (until_ms > 0 && now >= until_ms) return false;
        int64_t ms = 1000;
        if (deadline_ms_ > 0) ms = std::min(ms, deadline_ms_ - now);
        if (stall_ms_ > 0) ms = std::min(ms, window_ms_ + stall_ms_ - now);
        if (until_ms > 0) ms = std::min(ms, until_ms - now);
        pollfd p{fd, events, 0};
        int rc = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(ms, 0)));
        if (rc < 0 && errno != EINTR) return util::Error::from_errno("poll");
        if (rc > 0) return true;  // ready, or an error the next call reports
    }
}

util::Result<size_t> Pace::throttle(size_t want) {
    if (limit_rate_ <= 0) return want;
    for (;;) {
        TRY(tick());
        int64_t now = monotonic_ms();
        // The average since the start may not pass the limit.
        int64_t allowed_at = started_ms_ + static_cast<int64_t>(received_ * 1000 / static_cast<uint64_t>(limit_rate_));
        if (now >= allowed_at) break;
        int64_t ms = std::min<int64_t>(allowed_at - now, 1000);
        if (deadline_ms_ > 0) ms = std::min(ms, deadline_ms_ - now);
        if (ms > 0) ::poll(nullptr, 0, static_cast<int>(ms));
    }
    // Small receives keep the pace smooth: a tenth of a second's worth.
    return std::min(want, std::max<size_t>(static_cast<size_t>(limit_rate_ / 10), 512));
}

void Pace::received(size_t n) {
    received_ += n;
    moved_ += n;
}

void Pace::sent(size_t n) { moved_ += n; }

// ---------------------------------------------------------------- Conn

util::Result<Conn> Conn::open(const Route &r, const HttpOptions &o, const TlsContext *tls, Pace &pace, int rcvbuf) {
    Conn c;
    c.key_ = r.key();
    const std::string &host = r.proxy ? r.proxy->host : r.url.host;
    uint16_t port = r.proxy ? r.proxy->port : r.url.port;
    std::string hop = r.proxy ? util::cat("proxy ", host, ':', port) : util::cat(host, ':', port);
    TRY(pace.tick());
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo *res = nullptr;
    std::string port_s = util::cat(port);
    if (int rc = ::getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res); rc != 0)
        return util::Error::with_code(EHOSTUNREACH, util::cat("could not resolve ", hop, ": ", gai_strerror(rc)));
    util::CPtr<addrinfo, freeaddrinfo> addrs(res);
    int64_t connect_until = pace.started_ms() + o.connect_timeout_s * 1000;
    if (o.connect_timeout_s <= 0) connect_until = 0;
    util::Error last = util::Error::with_code(ECONNREFUSED, util::cat("connect to ", hop, ": no address"));
    for (addrinfo *a = res; a; a = a->ai_next) {
        util::UniqueFd fd(::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) return util::Error::from_errno("socket");
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        if (rcvbuf > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        int rc;
        do {
            rc = ::connect(fd.get(), a->ai_addr, a->ai_addrlen);
        } while (rc < 0 && errno == EINTR);
        if (rc < 0 && errno != EINPROGRESS) {
            last = util::Error::from_errno(util::cat("connect to ", hop));
            continue;
        }
        if (rc < 0) {
            if (!TRY(pace.wait(fd.get(), POLLOUT, connect_until)))
                return util::Error::with_code(ETIMEDOUT, util::cat("connect to ", hop, ": timed out after ", o.connect_timeout_s, " s"));
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                last = util::Error::with_code(err, util::cat("connect to ", hop));
                continue;
            }
        }
        c.fd_ = std::move(fd);
        c.rcvbuf_ = rcvbuf;
        break;
    }
    if (!c.fd_) {
        // Refused, unreachable: all the same to a caller deciding on a retry.
        if (last.code != ECONNREFUSED && last.code != ENETUNREACH && last.code != EHOSTUNREACH) last.code = ECONNREFUSED;
        return last;
    }
    if (r.url.tls) {
        if (r.proxy) TRY(c.tunnel(r, pace));
        c.tls_ = TRY(TlsSession::start(*tls, r.url.host));
        if (!o.tls_session_dir.empty()) {
            // One file a host and port, so a session is offered only to the server it came from.
            std::string name = util::cat("tls-session-", r.url.host, '-', r.url.port);
            for (auto &ch : name)
                if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-') ch = '_';
            c.session_file_ = util::path_join(o.tls_session_dir, name);
            c.tls_->offer_session(c.session_file_);
        }
        TRY(c.handshake(pace, connect_until, o.connect_timeout_s));  // curl's connect timeout covers it too
        if (!o.pinned_key.empty()) TRY(c.tls_->check_pin(o.pinned_key));
    }
    return c;
}

void Conn::save_tls_session() {
    if (tls_ && !session_file_.empty()) (void)tls_->save_session(session_file_);  // a cache: a failure costs a full handshake
}

util::Status Conn::tunnel(const Route &r, Pace &pace) {
    std::string authority = r.url.host.find(':') != std::string::npos ? util::cat('[', r.url.host, ']') : r.url.host;
    authority += util::cat(':', r.url.port);
    std::string req = util::cat("CONNECT ", authority, " HTTP/1.1\r\nHost: ", authority, "\r\n");
    if (!r.proxy->auth.empty()) req += r.proxy->auth + "\r\n";
    req += "Proxy-Connection: Keep-Alive\r\n\r\n";
    TRY(send(req, pace));
    auto head = TRY_CTX(read_head(*this, pace), util::cat("proxy ", r.proxy->host, ':', r.proxy->port));
    if (head.status / 100 != 2) {
        int code = head.status == 407 || head.status == 403 ? 0 : ECONNREFUSED;
        return util::Error::with_code(code, util::cat("proxy ", r.proxy->host, ':', r.proxy->port, " answered ", head.status,
                                                      " to CONNECT ", authority));
    }
    if (pos_ < in_.size()) return util::Error::msg(util::cat("proxy ", r.proxy->host, ':', r.proxy->port, ": data after its CONNECT answer"));
    return util::ok();
}

util::Status Conn::handshake(Pace &pace, int64_t until_ms, long timeout_s) {
    for (;;) {
        bool done = TRY(tls_->handshake());
        TRY(flush_tls(pace));
        if (done) return util::ok();
        char buf[16 << 10];
        auto got = raw_recv(buf, sizeof buf, pace, until_ms);
        if (!got && got.error().code == ETIMEDOUT && until_ms > 0 && monotonic_ms() >= until_ms)
            return util::Error::with_code(ETIMEDOUT, util::cat("tls handshake: timed out after ", timeout_s, " s"));
        size_t n = TRY(std::move(got));
        if (n == 0) tls_->feed_eof();
        else TRY(tls_->feed(std::string_view(buf, n)));
    }
}

util::Result<size_t> Conn::raw_recv(char *buf, size_t len, Pace &pace, int64_t until_ms) {
    len = TRY(pace.throttle(len));
    for (;;) {
        ssize_t n = ::recv(fd_.get(), buf, len, MSG_DONTWAIT);
        if (n >= 0) {
            pace.received(static_cast<size_t>(n));
            if (n > 0) got_bytes_ = true;
            return static_cast<size_t>(n);
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            int e = errno == ECONNREFUSED ? ECONNRESET : errno;
            return util::Error::with_code(e == EPIPE ? ECONNRESET : e, "receive");
        }
        if (!TRY(pace.wait(fd_.get(), POLLIN, until_ms))) return util::Error::with_code(ETIMEDOUT, "receive");
    }
}

util::Status Conn::raw_send(std::string_view data, Pace &pace) {
    while (!data.empty()) {
        ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) {
            pace.sent(static_cast<size_t>(n));
            data.remove_prefix(static_cast<size_t>(n));
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            int e = errno == EPIPE ? ECONNRESET : errno;
            return util::Error::with_code(e, "send");
        }
        TRY(pace.wait(fd_.get(), POLLOUT));
    }
    return util::ok();
}

util::Status Conn::flush_tls(Pace &pace) {
    std::string out = tls_->take_output();
    return raw_send(out, pace);
}

util::Status Conn::send(std::string_view data, Pace &pace) {
    if (!tls_) return raw_send(data, pace);
    while (!data.empty()) {
        auto part = data.substr(0, 64 << 10);
        TRY(tls_->write(part));
        TRY(flush_tls(pace));
        data.remove_prefix(part.size());
    }
    return util::ok();
}

util::Result<size_t> Conn::fill(Pace &pace) {
    if (pos_ > 0 && pos_ == in_.size()) {
        in_.clear();
        pos_ = 0;
    } else if (pos_ > (256 << 10)) {
        in_.erase(0, pos_);
        pos_ = 0;
    }
    if (eof_) return size_t{0};
    size_t old = in_.size();
    in_.resize(old + kReadSize);
    if (!tls_) {
        auto n = raw_recv(in_.data() + old, kReadSize, pace);
        in_.resize(old + (n ? *n : 0));
        if (!n) return std::move(n).error();
        if (*n == 0) eof_ = true;
        return *n;
    }
    for (;;) {
        bool want = false;
        auto n = tls_->read(in_.data() + old, kReadSize, &want);
        if (!n) {
            in_.resize(old);
            return std::move(n).error();
        }
        if (auto st = flush_tls(pace); !st) {
            in_.resize(old);
            return std::move(st).error();
        }
        if (*n > 0 || !want) {
            in_.resize(old + *n);
            if (*n == 0) eof_ = true;
            return *n;
        }
        char buf[kReadSize];
        auto got = raw_recv(buf, sizeof buf, pace);
        if (!got) {
            in_.resize(old);
            return std::move(got).error();
        }
        if (*got == 0) tls_->feed_eof();
        else TRY(tls_->feed(std::string_view(buf, *got)));
    }
}

util::Result<std::string_view> Conn::line(size_t max, Pace &pace) {
    size_t scanned = pos_;
    for (;;) {
        auto nl = in_.find('\n', scanned);
        if (nl != std::string::npos && nl - pos_ <= max + 1) {
            std::string_view l(in_.data() + pos_, nl - pos_);
            pos_ = nl + 1;
            if (l.ends_with('\r')) l.remove_suffix(1);
            return l;
        }
        if (in_.size() - pos_ > max + 1)
            return util::Error::msg(util::cat("response line longer than ", max, " bytes"));
        scanned = in_.size();
        size_t off = pos_;
        size_t n = TRY(fill(pace));
        scanned -= off - pos_;  // fill() may have moved the buffer
        if (n == 0)
            return util::Error::with_code(ECONNRESET, got_bytes_ ? "connection closed in the response" : "empty reply from server");
    }
}

util::Result<std::string_view> Conn::some(size_t max, Pace &pace) {
    if (pos_ == in_.size()) TRY(fill(pace));
    size_t n = std::min(max, in_.size() - pos_);
    std::string_view out(in_.data() + pos_, n);
    pos_ += n;
    return out;
}

util::Result<Conn::After> Conn::peek() {
    if (pos_ < in_.size()) return After::Data;
    if (eof_) return After::Closed;
    char buf[kReadSize];
    ssize_t n;
    do {
        n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return After::Quiet;
        return After::Closed;
    }
    if (n > 0) got_bytes_ = true;
    if (!tls_) {
        if (n == 0) {
            eof_ = true;
            return After::Closed;
        }
        in_.assign(buf, static_cast<size_t>(n));
        pos_ = 0;
        return After::Data;
    }
    // TLS: the bytes may be only a session ticket or an alert.
    if (n == 0) tls_->feed_eof();
    else TRY(tls_->feed(std::string_view(buf, static_cast<size_t>(n))));
    bool want = false;
    in_.resize(kReadSize);
    pos_ = 0;
    auto got = tls_->read(in_.data(), kReadSize, &want);
    in_.resize(got ? *got : 0);
    if (!got) return std::move(got).error();
    if (*got > 0) return After::Data;
    if (want) return After::Quiet;
    eof_ = true;
    return After::Closed;
}

bool Conn::reusable() {
    if (!fd_) return false;
    auto p = peek();
    return p && *p == After::Quiet;
}

void Conn::set_rcvbuf(int bytes) {
    if (bytes <= 0 || bytes == rcvbuf_) return;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    rcvbuf_ = bytes;
}

// ---------------------------------------------------------------- response heads

util::Result<ResponseHead> read_head(Conn &c, Pace &pace) {
    for (;;) {
        ResponseHead h;
        std::string_view sl = TRY(c.line(kLineMax, pace));
        // HTTP/1.x SSS[ reason]
        if (sl.size() < 12 || !sl.starts_with("HTTP/1.") || (sl[7] != '0' && sl[7] != '1') || sl[8] != ' ' ||
            !std::isdigit(static_cast<unsigned char>(sl[9])) || !std::isdigit(static_cast<unsigned char>(sl[10])) ||
            !std::isdigit(static_cast<unsigned char>(sl[11])) || (sl.size() > 12 && sl[12] != ' '))
            return util::Error::msg(util::cat("bad status line ", shown(sl)));
        h.http10 = sl[7] == '0';
        h.status = (sl[9] - '0') * 100 + (sl[10] - '0') * 10 + (sl[11] - '0');
        if (h.status < 100) return util::Error::msg(util::cat("bad status line ", shown(sl)));
        size_t total = sl.size();
        for (;;) {
            std::string_view l = TRY(c.line(kLineMax, pace));
            if (l.empty()) break;
            total += l.size() + 2;
            if (total > kHeadMax) return util::Error::msg(util::cat("response headers longer than ", kHeadMax, " bytes"));
            if (l[0] == ' ' || l[0] == '\t') return util::Error::msg(util::cat("folded header line ", shown(l)));
            auto colon = l.find(':');
            if (colon == std::string_view::npos || colon == 0 || l.substr(0, colon).find_first_of(" \t") != std::string_view::npos)
                return util::Error::msg(util::cat("bad header line ", shown(l)));
            h.headers.emplace_back(ascii_lower(l.substr(0, colon)), std::string(util::trim(l.substr(colon + 1))));
        }
        if (h.status >= 200 || h.status == 101) return h;
        // 1xx (100 Continue, 103 Early Hints): informational, the answer follows.
    }
}

}  // namespace img
