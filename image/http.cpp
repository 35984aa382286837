// img::Http on berth's own HTTP/1.1 transport (image/http_conn.hpp): request
// heads, response framing (Content-Length, chunked, to the end of the
// stream), keep-alive reuse of one connection, and redirects followed by
// hand so credentials never leave the registry's host.
#include "image/http.hpp"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "image/dynlibs.hpp"
#include "image/http_conn.hpp"
#include "image/tls.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

constexpr size_t kDropMax = 64 << 10;  ///< a redirect's body larger than this closes the connection instead

bool is_redirect(long status) { return status == 301 || status == 302 || status == 303 || status == 307 || status == 308; }

/// How the response's body is delimited.
struct Framing {
    enum Kind { None, Length, Chunked, UntilClose } kind = None;
    uint64_t length = 0;
    bool keep_alive = true;
};

util::Result<Framing> framing_of(const ResponseHead &h, const std::string &method) {
    Framing f;
    std::string connection;
    for (const auto &[k, v] : h.headers)
        if (k == "connection") connection += ascii_lower(v) + ",";
    f.keep_alive = h.http10 ? connection.find("keep-alive") != std::string::npos
                            : connection.find("close") == std::string::npos;
    if (method == "HEAD" || h.status == 204 || h.status == 304 || h.status < 200) return f;
    std::string te, cl;
    bool has_cl = false;
    for (const auto &[k, v] : h.headers) {
        if (k == "transfer-encoding") te += (te.empty() ? "" : ",") + ascii_lower(v);
        if (k == "content-length") {
            cl += (has_cl ? "," : "") + v;
            has_cl = true;
        }
    }
    if (!te.empty()) {
        auto codings = util::split(te, ',');
        if (util::trim(codings.back()) != "chunked")
            return util::Error::msg(util::cat("unsupported transfer-encoding ", util::quote(te)));
        f.kind = Framing::Chunked;
        if (has_cl) f.keep_alive = false;  // both: a smuggling attempt or a broken proxy; trust the chunks, once
        return f;
    }
    if (has_cl) {
        // Repeated values ("5, 5", or the header twice) must agree.
        std::optional<uint64_t> len;
        for (const auto &part : util::split(cl, ',')) {
            auto n = util::parse_int<uint64_t>(util::trim(part));
            if (!n || (len && *len != *n)) return util::Error::msg(util::cat("bad content-length ", util::quote(cl)));
            len = n;
        }
        f.kind = Framing::Length;
        f.length = *len;
        return f;
    }
    f.kind = Framing::UntilClose;
    f.keep_alive = false;
    return f;
}

bool has_header(const std::vector<std::string> &headers, std::string_view lower_name) {
    for (const auto &h : headers) {
        auto colon = h.find(':');
        if (colon != std::string::npos && ascii_lower(util::trim(std::string_view(h).substr(0, colon))) == lower_name) return true;
    }
    return false;
}

/// The request head; refuses header values that would split it.
util::Result<std::string> request_head(const HttpRequest &req, const Route &r, bool send_auth, uint64_t body_len,
                                       bool has_body) {
    const Url &u = r.url;
    std::string target = r.proxy && !u.tls ? util::cat("http://", u.authority, u.target) : u.target;
    for (char c : req.method)
        if (!std::isupper(static_cast<unsigned char>(c))) return util::Error::msg(util::cat("bad method ", util::quote(req.method)));
    std::string out = util::cat(req.method, ' ', target, " HTTP/1.1\r\nHost: ", u.authority, "\r\nUser-Agent: berth/0.1\r\n");
    if (!has_header(req.headers, "accept")) out += "Accept: */*\r\n";
    std::vector<const std::string *> lines;
    for (const auto &h : req.headers) lines.push_back(&h);
    if (send_auth && !req.auth_header.empty()) lines.push_back(&req.auth_header);
    if (r.proxy && !u.tls && !r.proxy->auth.empty()) lines.push_back(&r.proxy->auth);
    for (const std::string *h : lines) {
        if (h->find_first_of("\r\n") != std::string::npos || h->find(':') == std::string::npos)
            return util::Error::msg(util::cat("bad request header ", util::quote(h->substr(0, h->find_first_of("\r\n")))));
        out += *h + "\r\n";
    }
    if (has_body) out += util::cat("Content-Length: ", body_len, "\r\n");
    out += "\r\n";
    return out;
}

/// Sends the body: the string, or `body_len` bytes of `body_fd`.
util::Status send_body(Conn &c, const HttpRequest &req, Pace &pace) {
    if (req.body_fd < 0) return c.send(req.body, pace);
    std::string buf(64 << 10, '\0');
    uint64_t sent = 0;
    while (sent < req.body_len) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), req.body_len - sent));
        ssize_t n;
        do {
            n = ::read(req.body_fd, buf.data(), want);
        } while (n < 0 && errno == EINTR);
        if (n < 0) return util::Error::from_errno("read the request body");
        if (n == 0) return util::Error::msg(util::cat("request body ended after ", sent, " of ", req.body_len, " bytes"));
        TRY(c.send(std::string_view(buf.data(), static_cast<size_t>(n)), pace));
        sent += static_cast<uint64_t>(n);
    }
    return util::ok();
}

/// Where a response's body goes: the sink (2xx with one), nowhere (a
/// followed redirect), or HttpResponse::body within its limit.
class BodyOut {
public:
    BodyOut(const HttpRequest &req, HttpResponse &resp, bool drop) : req_(req), resp_(resp), drop_(drop) {}
    util::Status start() {
        if (drop_) return util::ok();
        sinking_ = resp_.status >= 200 && resp_.status < 300 && req_.sink;
        if (sinking_ && req_.check) return req_.check(resp_);
        return util::ok();
    }
    util::Status put(std::string_view data) {
        if (data.empty() || drop_) return util::ok();
        if (sinking_) return req_.sink(data);
        if (resp_.body.size() + data.size() > req_.body_limit)
            return util::Error::msg(util::cat("response body larger than ", req_.body_limit, " bytes"));
        resp_.body.append(data);
        return util::ok();
    }

private:
    const HttpRequest &req_;
    HttpResponse &resp_;
    bool drop_;
    bool sinking_ = false;
};

/// Errors of the transport and of the server's answer name the server;
/// those of the caller's sink, check or limits pass as they are.
#define NET(host, ...) TRY_CTX((__VA_ARGS__), host)

/// Reads the body as `f` frames it, into `out`.
util::Status read_body(Conn &c, const Framing &f, Pace &pace, BodyOut &out, const std::string &host) {
    switch (f.kind) {
        case Framing::None:
            return util::ok();
        case Framing::Length: {
            uint64_t got = 0;
            while (got < f.length) {
                auto part = NET(host, c.some(static_cast<size_t>(std::min<uint64_t>(f.length - got, 1 << 20)), pace));
                if (part.empty())
                    return util::Error::with_code(ECONNRESET, util::cat(host, ": body ended after ", got, " of ", f.length,
                                                                        " bytes (Content-Length)"));
                got += part.size();
                TRY(out.put(part));
            }
            if (NET(host, c.peek()) == Conn::After::Data)
                return util::Error::msg(util::cat(host, ": body longer than its Content-Length (", f.length, " bytes)"));
            return util::ok();
        }
        case Framing::Chunked: {
            for (;;) {
                std::string_view l = NET(host, c.line(1024, pace));
                std::string_view hex = util::trim(l.substr(0, l.find(';')));
                auto size = hex.size() <= 15 ? util::parse_int<uint64_t>(hex, 16) : std::nullopt;
                if (!size) return util::Error::msg(util::cat(host, ": bad chunk size ", util::quote(l.substr(0, 40))));
                if (*size == 0) break;
                uint64_t left = *size;
                while (left > 0) {
                    auto part = NET(host, c.some(static_cast<size_t>(std::min<uint64_t>(left, 1 << 20)), pace));
                    if (part.empty())
                        return util::Error::with_code(ECONNRESET, util::cat(host, ": body ended inside a chunk"));
                    left -= part.size();
                    TRY(out.put(part));
                }
                if (!NET(host, c.line(1024, pace)).empty())
                    return util::Error::msg(util::cat(host, ": chunk longer than its size"));
            }
            // Trailers, as bounded as headers, up to the empty line.
            size_t trailer = 0;
            for (;;) {
                std::string_view l = NET(host, c.line(8192, pace));
                if (l.empty()) break;
                if ((trailer += l.size()) > (64 << 10)) return util::Error::msg(util::cat(host, ": endless trailers"));
            }
            if (NET(host, c.peek()) == Conn::After::Data)
                return util::Error::msg(util::cat(host, ": data after the end of the chunked body"));
            return util::ok();
        }
        case Framing::UntilClose:
            for (;;) {
                auto part = NET(host, c.some(1 << 20, pace));
                if (part.empty()) return util::ok();
                TRY(out.put(part));
            }
    }
    return util::ok();
}

}  // namespace

int64_t monotonic_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool http_retryable(const util::Error &e) {
    switch (e.code) {
        case ECONNRESET:
        case ECONNREFUSED:
        case ETIMEDOUT:
        case EHOSTUNREACH:
        case ENETUNREACH:
        case EAGAIN:
            return true;
        default:
            return false;
    }
}

std::optional<std::string> HttpResponse::header(std::string_view lower_name) const {
    for (const auto &[k, v] : headers)
        if (k == lower_name) return v;
    return std::nullopt;
}

util::Result<Http> Http::create(HttpOptions opts) {
    TRY(dynlibs::load_remote());
    return Http(std::move(opts));
}

Http::Http(HttpOptions opts) : opts_(std::move(opts)) {}
Http::Http(Http &&) noexcept = default;
Http &Http::operator=(Http &&) noexcept = default;
Http::~Http() = default;

util::Result<HttpResponse> Http::perform_once(const HttpRequest &req, const std::string &url, bool send_auth,
                                              off_t body_start) {
    std::string host = url_host(url);
    Route route;
    route.url = TRY(parse_url(url));
    route.proxy = TRY(proxy_for(route.url));
    Pace pace(opts_, req.deadline_ms);
    if (pace.deadline_ms() > 0 && pace.deadline_ms() <= pace.started_ms())
        return util::Error::with_code(ETIME, util::cat(host, ": no time left for the request"));
    if (route.url.tls && !tls_) tls_ = std::make_unique<TlsContext>(TRY_CTX(TlsContext::create(opts_.ca_file), host));
    bool has_body = !req.body.empty() || req.body_fd >= 0 || req.method == "PUT" || req.method == "PATCH" ||
                    req.method == "POST";
    uint64_t body_len = req.body_fd >= 0 ? req.body_len : req.body.size();
    std::string head = TRY(request_head(req, route, send_auth, body_len, has_body));
    for (int attempt = 0;; attempt++) {
        bool reused = conn_ && conn_->key() == route.key() && conn_->reusable();
        if (!reused) {
            conn_.reset();
            conn_ = std::make_unique<Conn>(NET(host, Conn::open(route, opts_, tls_.get(), pace, req.recv_buffer)));
        }
        Conn &c = *conn_;
        c.set_rcvbuf(req.recv_buffer);
        c.mark_request();
        HttpResponse resp;
        resp.url = url;
        auto r = [&]() -> util::Status {
            auto sent = c.send(head, pace);
            if (sent && has_body) sent = send_body(c, req, pace);
            // A server may answer before it has read the whole body (a 401
            // to an upload): read that answer, else report the send error.
            auto h = read_head(c, pace);
            if (!h) return sent ? std::move(h).error().wrap(host) : std::move(sent).error().wrap(host);
            auto f = TRY_CTX(framing_of(*h, req.method), host);
            resp.status = h->status;
            resp.headers = std::move(h->headers);
            if (!sent) f.keep_alive = false;
            bool drop = is_redirect(resp.status) && req.follow_redirects;
            if (drop && (f.kind != Framing::Length || f.length > kDropMax)) {
                conn_.reset();  // an unread body: the connection cannot carry another request
                return util::ok();
            }
            BodyOut out(req, resp, drop);
            TRY(out.start());
            TRY(read_body(c, f, pace, out, host));
            c.save_tls_session();  // a TLS 1.3 ticket arrives with the first response
            if (!f.keep_alive) conn_.reset();
            return util::ok();
        }();
        if (r) return resp;
        // A kept-alive connection the server closed meanwhile: once more on
        // a new one, when nothing of an answer came and the body can be sent again.
        bool rewound = req.body_fd < 0 || ::lseek(req.body_fd, body_start, SEEK_SET) >= 0;
        bool retry = reused && attempt == 0 && conn_ && !conn_->got_bytes() && r.error().code == ECONNRESET && rewound;
        conn_.reset();
        if (!retry) return std::move(r).error();
    }
}

bool Http::answers_in_plain_http(const std::string &url) {
    // A TLS 1.2 ClientHello record a TLS server answers with a record of its
    // own (a ServerHello or an alert: 0x16 or 0x15); its random holds a
    // CRLF CRLF, so an HTTP server sees a bad request line and answers 400
    // in text.
    static constexpr unsigned char kHello[] = {
        0x16, 0x03, 0x01, 0x00, 0x2d,  // handshake record, 45 bytes
        0x01, 0x00, 0x00, 0x29,        // client_hello, 41 bytes
        0x03, 0x03,                    // TLS 1.2
        'b', 'e', 'r', 't', 'h', ' ', 'a', 's', 'k', 's', ':', ' ', 'p', 'l', 'a', 'i', 'n', ' ', 'h', 't', 't', 'p',
        '?', ' ', ' ', ' ', ' ', ' ', '\r', '\n', '\r', '\n',  // random (32 bytes)
        0x00,                          // no session id
        0x00, 0x02, 0xc0, 0x2b,        // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        0x01, 0x00,                    // no compression
    };
    static_assert(sizeof kHello == 5 + 45);
    auto u = parse_url(url);
    if (!u || !u->tls) return false;
    auto proxy = proxy_for(*u);
    if (!proxy || *proxy) return false;
    Route route;
    route.url = std::move(*u);
    route.url.tls = false;  // the TCP connection only
    HttpOptions o = opts_;
    o.speed_limit = 0;
    Pace pace(o, monotonic_ms() + 2000);
    auto c = Conn::open(route, o, nullptr, pace, 0);
    if (!c || !c->send(std::string_view(reinterpret_cast<const char *>(kHello), sizeof kHello), pace)) return false;
    std::string got;
    while (got.size() < 5) {
        auto part = c->some(5 - got.size(), pace);
        if (!part || part->empty()) break;
        got += *part;
    }
    // TLS records start with a content type of 20 to 23; an HTTP server's
    // answer with text ("HTTP/1.1 400", or an HTTP/0.9-style error page).
    return !got.empty() && std::isprint(static_cast<unsigned char>(got[0]));
}

util::Result<HttpResponse> Http::perform(const HttpRequest &req) {
    std::string url = req.url;
    std::string origin = url_host(url);
    bool send_auth = true;
    off_t body_start = req.body_fd >= 0 ? ::lseek(req.body_fd, 0, SEEK_CUR) : 0;
    for (int hop = 0; hop < 10; hop++) {
        if (hop > 0 && req.body_fd >= 0 && ::lseek(req.body_fd, body_start, SEEK_SET) < 0)
            return util::Error::from_errno("rewind request body");
        auto resp = TRY(perform_once(req, url, send_auth, body_start));
        bool redirect = resp.status == 301 || resp.status == 302 || resp.status == 303 || resp.status == 307 ||
                        resp.status == 308;
        if (!redirect || !req.follow_redirects) return resp;
        auto loc = resp.header("location");
        if (!loc) return util::Error::msg(util::cat("redirect ", resp.status, " without a location"));
        url = resolve_url(url, *loc);
        if (url_host(url) != origin) send_auth = false;  // never hand the registry's token to another host
    }
    return util::Error::msg(util::cat("too many redirects from ", util::quote(req.url)));
}

std::string url_host(std::string_view url) {
    auto p = url.find("://");
    if (p == std::string_view::npos) return "";
    auto rest = url.substr(p + 3);
    auto end = rest.find_first_of("/?#");
    auto host = rest.substr(0, end);
    if (auto at = host.rfind('@'); at != std::string_view::npos) host = host.substr(at + 1);
    return ascii_lower(host);
}

std::string resolve_url(std::string_view base, std::string_view loc) {
    if (loc.find("://") != std::string_view::npos) return std::string(loc);
    auto p = base.find("://");
    if (p == std::string_view::npos) return std::string(loc);
    if (loc.starts_with("//")) return util::cat(base.substr(0, p + 1), loc);
    auto slash = base.find('/', p + 3);
    std::string_view origin = slash == std::string_view::npos ? base : base.substr(0, slash);
    if (loc.starts_with("/")) return util::cat(origin, loc);
    std::string_view path = slash == std::string_view::npos ? "/" : base.substr(slash);
    path = path.substr(0, path.find_first_of("?#"));
    path = path.substr(0, path.rfind('/') + 1);
    return util::cat(origin, path, loc);
}

std::string url_escape(std::string_view s) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

}  // namespace img
