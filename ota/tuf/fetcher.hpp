// How the TUF client gets bytes: the Fetcher seam, with one implementation
// for http(s):// over image/'s HTTP client (img::Http) and one for file:// URLs and
// plain paths (tests, a USB stick, a repository mirrored to disk).
//
// Every fetch has a byte cap: a body that grows past it is abandoned with an
// error (an endless-data attack costs at most the cap). "Not found" (HTTP
// 404 or 403, ENOENT) is an answer, not an error: the root rotation walk
// ends on it.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "image/http.hpp"
#include "util/result.hpp"

namespace ota::tuf {

/// What identifies a version of a file to its server (HTTP's validators),
/// so a later fetch can ask "changed since?".
struct Validators {
    std::string etag;           ///< the ETag header, as sent
    std::string last_modified;  ///< the Last-Modified header, as sent
    bool empty() const { return etag.empty() && last_modified.empty(); }
};

/// A conditional fetch's answer.
struct Conditional {
    bool not_modified = false;          ///< the server still has the version `have` names (HTTP 304)
    std::optional<std::string> body;    ///< otherwise: as fetch() (nullopt: not found)
    Validators validators;              ///< of `body`, when the server gave them
};

class Fetcher {
public:
    virtual ~Fetcher() = default;
    /// The body at `url`, at most `max_bytes` long; nullopt when not found.
    virtual util::Result<std::optional<std::string>> fetch(const std::string &url, size_t max_bytes) = 0;
    /// fetch(), unless the server says the version `have` names is still
    /// current. The default (no validators outside HTTP) always fetches.
    virtual util::Result<Conditional> fetch_if_changed(const std::string &url, size_t max_bytes, const Validators &have);
};

/// file:///abs/path URLs (percent-decoded, except that %2F stays in the
/// file name) and plain paths.
class FileFetcher : public Fetcher {
public:
    util::Result<std::optional<std::string>> fetch(const std::string &url, size_t max_bytes) override;
};

/// http:// and https:// through img::Http: one object for all of a
/// client's fetches, so they share one kept-alive connection.
/// fetch_if_changed sends If-None-Match / If-Modified-Since.
class HttpFetcher : public Fetcher {
public:
    explicit HttpFetcher(img::HttpOptions opts = {}) : opts_(std::move(opts)) {}
    util::Result<std::optional<std::string>> fetch(const std::string &url, size_t max_bytes) override;
    util::Result<Conditional> fetch_if_changed(const std::string &url, size_t max_bytes, const Validators &have) override;

private:
    img::HttpOptions opts_;
    std::optional<img::Http> http_;  ///< created on the first fetch
};

/// Whether validators may be kept for a response with these Last-Modified
/// and Date headers (RFC 9110 dates): a file modified in the second the
/// server answered may change again within that second, and a server whose
/// ETag is made of the modification time and the size (nginx's) would then
/// answer 304 for different bytes. So they are kept only when the file had
/// not changed for 2 s; without a Last-Modified (an ETag of the content),
/// always.
bool validators_settled(std::string_view last_modified, std::string_view date);

/// Chooses by scheme: http(s) to HttpFetcher, anything else to FileFetcher.
class UrlFetcher : public Fetcher {
public:
    explicit UrlFetcher(img::HttpOptions opts = {}) : http_(std::move(opts)) {}
    util::Result<std::optional<std::string>> fetch(const std::string &url, size_t max_bytes) override;
    util::Result<Conditional> fetch_if_changed(const std::string &url, size_t max_bytes, const Validators &have) override;

private:
    FileFetcher file_;
    HttpFetcher http_;
};

/// Percent-encodes everything but A-Z a-z 0-9 - _ . ~ (a role name in a URL
/// or a file name: "a/b" -> "a%2Fb"); with `keep_slash`, '/' stays (a
/// target path in a URL).
std::string percent_encode(std::string_view s, bool keep_slash = false);

}  // namespace ota::tuf
