// The fetchers of fetcher.hpp.
#include "ota/tuf/fetcher.hpp"

#include <fcntl.h>
#include <time.h>

#include "image/dynlibs.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace ota::tuf {

std::string percent_encode(std::string_view s, bool keep_slash) {
    if (!keep_slash) return img::url_escape(s);
    std::vector<std::string> segments = util::split(s, '/');
    for (auto &segment : segments) segment = img::url_escape(segment);
    return util::join(segments, "/");
}

namespace {

/// "%C3%BC" -> "ü"; a malformed escape stays as it is, and so does "%2F":
/// a file name cannot hold '/', so a role named "a/b" is the file
/// "a%2Fb.json", as the client itself stores it, never a path elsewhere.
std::string percent_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '%' && i + 2 < s.size()) {
            auto v = util::parse_int<unsigned>(s.substr(i + 1, 2), 16);
            if (v && *v != '/') {
                out.push_back(static_cast<char>(*v));
                i += 2;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

}  // namespace

util::Result<std::optional<std::string>> FileFetcher::fetch(const std::string &url, size_t max_bytes) {
    // A file:// URL is percent-encoded (role names, target paths); a plain path is not.
    std::string path = url.starts_with("file://") ? percent_decode(std::string_view(url).substr(7)) : url;
    auto fd = util::open_file(path, O_RDONLY);
    if (!fd) {
        if (fd.error().code == ENOENT || fd.error().code == ENOTDIR) return std::optional<std::string>();
        return std::move(fd).error();
    }
    auto body = util::read_all(fd->get(), max_bytes);
    if (!body) {
        if (body.error().code == EFBIG) return util::Error::msg(util::cat(util::quote(url), ": more than ", max_bytes, " bytes"));
        return std::move(body).error().wrap(util::quote(url));
    }
    return std::optional<std::string>(std::move(*body));
}

util::Result<Conditional> Fetcher::fetch_if_changed(const std::string &url, size_t max_bytes, const Validators &) {
    Conditional c;
    c.body = TRY(fetch(url, max_bytes));
    return c;
}

util::Result<std::optional<std::string>> HttpFetcher::fetch(const std::string &url, size_t max_bytes) {
    auto c = TRY(fetch_if_changed(url, max_bytes, {}));
    return std::move(c.body);
}

util::Result<Conditional> HttpFetcher::fetch_if_changed(const std::string &url, size_t max_bytes, const Validators &have) {
    if (!http_) {
        TRY(img::dynlibs::load_remote());
        TRY(img::dynlibs::crypto.load());
        http_ = TRY(img::Http::create(opts_));
    }
    std::string body;
    img::HttpRequest req;
    req.url = url;
    // One validator: a server that has the ETag decides on it alone (RFC
    // 9110 13.1.3), so If-Modified-Since would be bytes sent for nothing.
    if (!have.etag.empty()) req.headers.push_back("If-None-Match: " + have.etag);
    else if (!have.last_modified.empty()) req.headers.push_back("If-Modified-Since: " + have.last_modified);
    req.body_limit = 64 << 10;  // error bodies only
    req.sink = [&](std::string_view chunk) -> util::Status {
        if (body.size() + chunk.size() > max_bytes)
            return util::Error::msg(util::cat(util::quote(url), ": more than ", max_bytes, " bytes"));
        body.append(chunk);
        return util::ok();
    };
    auto resp = TRY_CTX(http_->perform(req), util::cat("GET ", util::quote(url)));
    Conditional c;
    if (resp.status == 304 && !have.empty()) {
        c.not_modified = true;
        return c;
    }
    if (resp.status == 404 || resp.status == 403) return c;
    if (resp.status < 200 || resp.status > 299)
        return util::Error::msg(util::cat("GET ", util::quote(url), ": HTTP status ", resp.status));
    c.body = std::move(body);
    // Validators must fit on one header line of the next request.
    auto header_value = [&](std::string_view name) {
        auto v = resp.header(name);
        return v && v->size() <= 256 && v->find_first_of("\r\n") == std::string::npos ? *v : std::string();
    };
    c.validators.etag = header_value("etag");
    c.validators.last_modified = header_value("last-modified");
    if (!validators_settled(c.validators.last_modified, resp.header("date").value_or(""))) c.validators = {};
    return c;
}

namespace {

std::optional<int64_t> http_date(std::string_view s) {
    struct tm tm = {};
    std::string text(s);
    const char *end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end != '\0') return std::nullopt;
    return int64_t(::timegm(&tm));
}

}  // namespace

bool validators_settled(std::string_view last_modified, std::string_view date) {
    if (last_modified.empty()) return true;
    auto modified = http_date(last_modified), now = http_date(date);
    return modified && now && *now - *modified >= 2;
}

util::Result<std::optional<std::string>> UrlFetcher::fetch(const std::string &url, size_t max_bytes) {
    if (url.starts_with("http://") || url.starts_with("https://")) return http_.fetch(url, max_bytes);
    return file_.fetch(url, max_bytes);
}

util::Result<Conditional> UrlFetcher::fetch_if_changed(const std::string &url, size_t max_bytes, const Validators &have) {
    if (url.starts_with("http://") || url.starts_with("https://")) return http_.fetch_if_changed(url, max_bytes, have);
    return file_.fetch_if_changed(url, max_bytes, have);
}

}  // namespace ota::tuf
