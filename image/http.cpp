// libcurl behind img::Http: one easy handle, options set afresh per request,
// redirects followed by hand so credentials never leave the registry's host.
#include "image/http.hpp"

#include <curl/curl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "image/dynlibs.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

struct GlobalInit {
    GlobalInit() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

struct Transfer {
    CURL *h = nullptr;
    const HttpRequest *req = nullptr;
    HttpResponse *resp = nullptr;
    util::Status sink_error;
    bool sink_failed = false;
    bool body_too_big = false;
    bool checked = false;
    uint64_t sent = 0;
    // The stall check and the deadline (on_progress).
    int64_t started_ms = 0;
    int64_t deadline_ms = 0;     ///< 0: none
    uint64_t stall_bytes = 0;    ///< fewer bytes than this in `stall_ms`...
    int64_t stall_ms = 0;        ///< ...is a stall; 0: no check
    int64_t window_ms = 0;       ///< the stall window started here...
    uint64_t window_bytes = 0;   ///< ...at this many bytes moved
    uint64_t moved = 0;          ///< bytes received and sent so far
    bool stalled = false, deadline_hit = false;
};

int on_progress(void *user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
    auto *t = static_cast<Transfer *>(user);
    int64_t now = monotonic_ms();
    t->moved = static_cast<uint64_t>(dlnow) + static_cast<uint64_t>(ulnow);
    if (t->deadline_ms > 0 && now >= t->deadline_ms) {
        t->deadline_hit = true;
        return 1;
    }
    if (t->stall_ms > 0) {
        if (t->moved - t->window_bytes >= t->stall_bytes) {
            t->window_ms = now;
            t->window_bytes = t->moved;
        } else if (now - t->window_ms >= t->stall_ms) {
            t->stalled = true;
            return 1;
        }
    }
    return 0;
}

std::string secs(int64_t ms) { return util::cat((ms + 500) / 1000, " s"); }

size_t on_header(char *data, size_t size, size_t n, void *user) {
    auto *t = static_cast<Transfer *>(user);
    size_t len = size * n;
    std::string_view line(data, len);
    if (line.starts_with("HTTP/")) {
        t->resp->headers.clear();  // a new response (1xx, or after a proxy CONNECT)
        return len;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return len;
    t->resp->headers.emplace_back(lower(util::trim(line.substr(0, colon))),
                                  std::string(util::trim(line.substr(colon + 1))));
    return len;
}

size_t on_body(char *data, size_t size, size_t n, void *user) {
    auto *t = static_cast<Transfer *>(user);
    size_t len = size * n;
    long code = 0;
    curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 300 && code < 400) return len;  // redirect bodies are dropped
    if (code >= 200 && code < 300 && t->req->sink) {
        if (!t->checked && t->req->check) {
            t->checked = true;
            t->resp->status = code;
            auto st = t->req->check(*t->resp);
            if (!st) {
                t->sink_error = std::move(st);
                t->sink_failed = true;
                return 0;
            }
        }
        auto st = t->req->sink(std::string_view(data, len));
        if (!st) {
            t->sink_error = std::move(st);
            t->sink_failed = true;
            return 0;
        }
        return len;
    }
    if (t->resp->body.size() + len > t->req->body_limit) {
        t->body_too_big = true;
        return 0;
    }
    t->resp->body.append(data, len);
    return len;
}

size_t on_read(char *buf, size_t size, size_t n, void *user) {
    auto *t = static_cast<Transfer *>(user);
    size_t want = size * n;
    const HttpRequest &r = *t->req;
    if (r.body_fd >= 0) {
        uint64_t left = r.body_len - t->sent;
        if (left < want) want = static_cast<size_t>(left);
        if (want == 0) return 0;
        ssize_t got;
        do {
            got = ::read(r.body_fd, buf, want);
        } while (got < 0 && errno == EINTR);
        if (got <= 0) return CURL_READFUNC_ABORT;
        t->sent += static_cast<uint64_t>(got);
        return static_cast<size_t>(got);
    }
    size_t left = r.body.size() - t->sent;
    if (left < want) want = left;
    std::copy_n(r.body.data() + t->sent, want, buf);
    t->sent += want;
    return want;
}

util::Error transport_error(CURLcode rc, const char *errbuf, const std::string &url) {
    std::string what = util::cat(errbuf[0] ? errbuf : curl_easy_strerror(rc));
    std::string ctx = util::cat(url_host(url), ": ", what);
    switch (rc) {
        case CURLE_COULDNT_CONNECT:
            return util::Error::with_code(ECONNREFUSED, ctx);
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            return util::Error::with_code(EHOSTUNREACH, ctx);
        case CURLE_OPERATION_TIMEDOUT:
            return util::Error::with_code(ETIMEDOUT, ctx);
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return util::Error::with_code(ECONNRESET, ctx);
        case CURLE_SSL_CONNECT_ERROR:
            return util::Error::with_code(EPROTO, ctx);  // no TLS handshake at all (a plain-http server?)
        default:
            return util::Error::msg(ctx);  // certificate, pinning, bad URL: retrying will not help
    }
}

/// A transfer the stall check or the deadline ended, as one line.
util::Error slow_error(const Transfer &t, int64_t speed_limit, const std::string &url) {
    int64_t now = monotonic_ms();
    if (t.stalled)
        return util::Error::with_code(ETIMEDOUT, util::cat(url_host(url), ": stalled: ", t.moved - t.window_bytes, " bytes in ",
                                                           secs(now - t.window_ms), " (under ", speed_limit, " bytes/s)"));
    int64_t ms = now - t.started_ms;
    bool slow = speed_limit > 0 && t.moved * 1000 < static_cast<uint64_t>(speed_limit * std::max<int64_t>(ms, 1));
    return util::Error::with_code(ETIME, util::cat(url_host(url), slow ? ": stalled: " : ": ", t.moved, " bytes in ", secs(ms),
                                                   slow ? util::cat(" (under ", speed_limit, " bytes/s)") : ""));
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
    // libcurl is opened here, the first time anything talks to a registry.
    TRY(dynlibs::load_remote());
    static GlobalInit init;
    CURL *h = curl_easy_init();
    if (!h) return util::Error::msg("curl_easy_init failed");
    return Http(h, std::move(opts));
}

Http::Http(Http &&o) noexcept : h_(std::exchange(o.h_, nullptr)), opts_(std::move(o.opts_)) {}

Http &Http::operator=(Http &&o) noexcept {
    if (this != &o) {
        if (h_) curl_easy_cleanup(h_);
        h_ = std::exchange(o.h_, nullptr);
        opts_ = std::move(o.opts_);
    }
    return *this;
}

Http::~Http() {
    if (h_) curl_easy_cleanup(h_);
}

util::Result<HttpResponse> Http::perform_once(const HttpRequest &req, const std::string &url, bool send_auth) {
    CURL *h = h_;
    curl_easy_reset(h);
    HttpResponse resp;
    Transfer t;
    t.h = h;
    t.req = &req;
    t.resp = &resp;
    char errbuf[CURL_ERROR_SIZE] = {0};

    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "berth/" "0.1");
    // The deadline and the stall check run in on_progress, which curl calls
    // at least once a second, also while nothing arrives; curl's own
    // timeouts are a backstop a little later.
    t.started_ms = t.window_ms = monotonic_ms();
    t.deadline_ms = req.deadline_ms;
    if (t.deadline_ms == 0 && opts_.timeout_s > 0) t.deadline_ms = t.started_ms + opts_.timeout_s * 1000;
    int64_t speed_limit = opts_.speed_limit;
    if (opts_.limit_rate > 0) speed_limit = std::min(speed_limit, opts_.limit_rate / 2);  // never below our own cap
    if (speed_limit > 0 && opts_.speed_time_s > 0) {
        t.stall_ms = opts_.speed_time_s * 1000;
        t.stall_bytes = static_cast<uint64_t>(speed_limit) * static_cast<uint64_t>(opts_.speed_time_s);
    }
    long connect_s = opts_.connect_timeout_s;
    if (t.deadline_ms > 0) {
        int64_t left = t.deadline_ms - t.started_ms;
        if (left <= 0) return util::Error::with_code(ETIME, util::cat(url_host(url), ": no time left for the request"));
        connect_s = std::min<long>(connect_s, static_cast<long>(left / 1000 + 1));
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(left + 2000));
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, connect_s);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
    if (opts_.limit_rate > 0) curl_easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE, static_cast<curl_off_t>(opts_.limit_rate));
    if (!opts_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, opts_.ca_file.c_str());
    if (!opts_.pinned_key.empty()) curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, opts_.pinned_key.c_str());
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    // Blob bodies: fewer, larger callbacks (each is a write(2) and a hash update).
    if (req.sink) curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);

    curl_slist *raw = nullptr;
    for (const auto &hd : req.headers) raw = curl_slist_append(raw, hd.c_str());
    if (send_auth && !req.auth_header.empty()) raw = curl_slist_append(raw, req.auth_header.c_str());
    raw = curl_slist_append(raw, "Expect:");
    util::CPtr<curl_slist, curl_slist_free_all> hdrs(raw);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs.get());

    bool has_body = !req.body.empty() || req.body_fd >= 0;
    if (req.method == "HEAD") {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (req.method == "PUT" || req.method == "PATCH" || (req.method == "POST" && has_body)) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &t);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                         static_cast<curl_off_t>(req.body_fd >= 0 ? req.body_len : req.body.size()));
        if (req.method != "PUT") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    } else if (req.method == "POST") {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    } else if (req.method != "GET") {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }

    CURLcode rc = curl_easy_perform(h);
    if (t.sink_failed) return std::move(t.sink_error).error();
    if (t.body_too_big) return util::Error::msg(util::cat("response body larger than ", req.body_limit, " bytes"));
    if (t.stalled || t.deadline_hit || (rc == CURLE_OPERATION_TIMEDOUT && t.deadline_ms > 0 && monotonic_ms() >= t.deadline_ms))
        return slow_error(t, speed_limit, url);
    if (rc != CURLE_OK) return transport_error(rc, errbuf, url);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
    resp.url = url;
    return resp;
}

util::Result<HttpResponse> Http::perform(const HttpRequest &req) {
    std::string url = req.url;
    std::string origin = url_host(url);
    bool send_auth = true;
    off_t body_start = req.body_fd >= 0 ? ::lseek(req.body_fd, 0, SEEK_CUR) : 0;
    for (int hop = 0; hop < 10; hop++) {
        if (hop > 0 && req.body_fd >= 0 && ::lseek(req.body_fd, body_start, SEEK_SET) < 0)
            return util::Error::from_errno("rewind request body");
        auto resp = TRY(perform_once(req, url, send_auth));
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
    return lower(host);
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
