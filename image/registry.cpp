// OCI distribution endpoints, authentication and retries for img::Registry.
#include "image/registry.hpp"

#include <time.h>

#include <cctype>
#include <random>

#include "util/json.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

bool is_loopback(std::string_view host) {
    auto colon = host.rfind(':');
    if (colon != std::string_view::npos && host.find(']') == std::string_view::npos) host = host.substr(0, colon);
    if (host.starts_with("[::1]")) return true;
    return host == "localhost" || host.starts_with("127.");
}

constexpr const char *kAccept =
    "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

std::string media_type_of(const HttpResponse &r) {
    std::string t = r.header("content-type").value_or("");
    if (auto semi = t.find(';'); semi != std::string::npos) t.resize(semi);
    return std::string(util::trim(t));
}

}  // namespace

bool is_manifest_type(std::string_view t) { return t == kOciManifest || t == kDockerManifest; }
bool is_index_type(std::string_view t) { return t == kOciIndex || t == kDockerList; }

std::string registry_host(const Reference &r) {
    if (r.registry == "docker.io" || r.registry == "index.docker.io") return "registry-1.docker.io";
    return r.registry;
}

std::string manifest_ref(const Reference &r) { return r.digest ? r.digest->str() : r.tag; }

int64_t Backoff::delay_ms(int attempt) const {
    int64_t ceiling = base_ms;
    for (int i = 0; i < attempt && ceiling < cap_ms; i++) ceiling *= 2;
    if (ceiling > cap_ms) ceiling = cap_ms;
    static std::minstd_rand rng(static_cast<unsigned>(::time(nullptr)) ^ static_cast<unsigned>(::getpid()));
    // Half fixed, half jitter: never zero, never a thundering herd.
    return ceiling / 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(ceiling / 2 + 1));
}

int64_t Registry::deadline() const {
    return opts_.http.timeout_s > 0 ? monotonic_ms() + opts_.http.timeout_s * 1000 : 0;
}

util::Status Registry::retry_wait(util::Error err, int attempt, int64_t started_ms, int64_t deadline_ms) const {
    int64_t delay = opts_.backoff.delay_ms(attempt);
    int64_t now = monotonic_ms();
    if (deadline_ms > 0 && now + delay >= deadline_ms) return deadline_error(err, started_ms);
    util::log::debug(err.message(), "; retrying");
    timespec ts{static_cast<time_t>(delay / 1000), static_cast<long>(delay % 1000) * 1000000L};
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return util::ok();
}

util::Error Registry::deadline_error(const util::Error &err, int64_t started_ms) {
    // The context only: the code's strerror ("Timer expired") says less than the stall or drop before it.
    return util::Error::msg(util::cat(err.context, "; deadline reached after ", (monotonic_ms() - started_ms + 500) / 1000, " s"));
}

util::Error status_error(std::string_view what, const HttpResponse &resp) {
    std::string detail;
    auto v = util::json::parse(resp.body, "error body");
    if (v && v->is_object() && v->contains("errors") && (*v)["errors"].is_array() && !(*v)["errors"].empty()) {
        const auto &e = (*v)["errors"][0];
        if (e.is_object()) {
            if (e.contains("code") && e["code"].is_string()) detail += " " + e["code"].get<std::string>();
            if (e.contains("message") && e["message"].is_string()) detail += ": " + e["message"].get<std::string>();
        }
    }
    int code = (resp.status >= 500 || resp.status == 429) ? EAGAIN : (resp.status == 401 || resp.status == 403) ? EACCES : 0;
    auto err = util::Error::with_code(code, util::cat(what, ": registry answered ", resp.status, detail));
    return err;
}

util::Result<Registry> Registry::open(const std::string &host, RegistryOptions opts) {
    auto http = TRY(Http::create(opts.http));
    Registry r(host, std::move(opts), std::move(http));
    TRY_CTX(r.choose_scheme(), util::cat("registry ", util::quote(host)));
    return r;
}

util::Status Registry::choose_scheme() {
    if (opts_.insecure_http) {
        scheme_ = "http";
        return util::ok();
    }
    scheme_ = "https";
    if (!is_loopback(host_) || !opts_.http.ca_file.empty() || !opts_.http.pinned_key.empty()) return util::ok();
    // Docker's rule: a loopback registry may speak plain HTTP. Try TLS
    // first: cheaply (no libssl) for a server that answers it in HTTP, then
    // with a real handshake.
    if (http_.answers_in_plain_http(base_url() + "/v2/")) {
        util::log::debug("registry ", host_, ": answers TLS in plain http, using plain http");
        scheme_ = "http";
        return util::ok();
    }
    HttpRequest ping;
    ping.url = base_url() + "/v2/";
    auto r = http_.perform(ping);
    if (!r && r.error().code == EPROTO) {  // not a certificate problem: the server does not speak TLS
        util::log::debug("registry ", host_, ": no TLS (", r.error().message(), "), using plain http");
        scheme_ = "http";
    }
    return util::ok();
}

util::Status Registry::authenticate(const HttpResponse &resp, const std::string &scope_key, const std::string &scopes) {
    auto h = resp.header("www-authenticate");
    auto creds = opts_.creds ? opts_.creds->find(host_) : std::nullopt;
    if (!h) return util::Error::with_code(EACCES, "registry answered 401 without a challenge");
    auto c = TRY(parse_challenge(*h));
    if (c.scheme == "basic") {
        if (!creds) return util::Error::with_code(EACCES, util::cat("authentication required and no credentials for ", util::quote(host_)));
        auth_[scope_key] = "Authorization: Basic " + base64_encode(creds->user + ":" + creds->password);
        return util::ok();
    }
    if (c.scheme != "bearer") return util::Error::msg(util::cat("unsupported auth scheme ", util::quote(c.scheme)));
    std::string all = scopes;
    if (auto s = c.params.find("scope"); s != c.params.end() && all.find(s->second) == std::string::npos)
        all = s->second + " " + all;
    auto token = TRY(fetch_token(http_, c, all, creds));
    auth_[scope_key] = "Authorization: Bearer " + token;
    return util::ok();
}

util::Result<HttpResponse> Registry::request(const std::string &repo, HttpRequest req, std::string_view actions,
                                             const std::string &extra_scope, bool retry) {
    std::string scopes = util::cat("repository:", repo, ":", actions);
    if (!extra_scope.empty()) scopes += " " + extra_scope;
    const std::string &key = scopes;
    std::string what = util::cat(req.method, " ", req.url.substr(base_url().size()));
    bool authed = false;
    int attempt = 0;
    int64_t started = monotonic_ms();
    const bool own_deadline = req.deadline_ms == 0;  // else the caller's operation has it, and words its end
    if (own_deadline) req.deadline_ms = deadline();
    for (;;) {
        if (auto a = auth_.find(key); a != auth_.end()) req.auth_header = a->second;
        auto r = http_.perform(req);
        if (r && r->status == 401 && !authed) {
            TRY_CTX(authenticate(*r, key, scopes), what);
            authed = true;
            continue;
        }
        util::Error err;
        if (!r) {
            err = std::move(r).error().wrap(what);
        } else if (r->status >= 500 || r->status == 429) {
            err = status_error(what, *r);
        } else {
            return r;
        }
        if (err.code == ETIME && own_deadline) return deadline_error(err, started);
        if (!retry || !http_retryable(err) || attempt + 1 >= opts_.retries || req.sink) return err;
        TRY(retry_wait(std::move(err), attempt++, started, req.deadline_ms));
    }
}

util::Result<std::optional<ManifestHead>> Registry::head_manifest(const std::string &repo, const std::string &ref) {
    HttpRequest req;
    req.method = "HEAD";
    req.url = util::cat(base_url(), "/v2/", repo, "/manifests/", ref);
    req.headers.push_back(kAccept);
    auto r = TRY(request(repo, std::move(req)));
    if (r.status == 404) return std::optional<ManifestHead>();
    if (r.status != 200) return status_error(util::cat("HEAD manifest ", util::quote(repo + ":" + ref)), r);
    ManifestHead h;
    h.media_type = media_type_of(r);
    if (auto d = r.header("docker-content-digest")) {
        auto pd = Digest::parse(*d);
        if (pd) h.digest = *pd;
    }
    if (auto l = r.header("content-length")) h.size = util::parse_int<uint64_t>(*l).value_or(0);
    return std::optional<ManifestHead>(std::move(h));
}

util::Result<std::optional<FetchedManifest>> Registry::get_manifest(const std::string &repo, const std::string &ref) {
    std::string what = util::cat("manifest ", util::quote(util::cat(host_, "/", repo, ref.starts_with("sha256:") ? "@" : ":", ref)));
    HttpRequest req;
    req.url = util::cat(base_url(), "/v2/", repo, "/manifests/", ref);
    req.headers.push_back(kAccept);
    req.body_limit = 4 << 20;
    auto r = TRY_CTX(request(repo, std::move(req)), what);
    if (r.status == 404) return std::optional<FetchedManifest>();
    if (r.status != 200) return status_error(what, r);
    Digest got = Digest::of(r.body);
    if (ref.starts_with("sha256:")) {
        if (got.str() != ref) return util::Error::msg(util::cat(what, ": content has digest ", got.str()));
    } else if (auto d = r.header("docker-content-digest"); d && *d != got.str()) {
        return util::Error::msg(util::cat(what, ": registry said digest ", *d, " but the content has ", got.str()));
    }
    std::string mt = media_type_of(r);
    auto v = TRY_CTX(util::json::parse(r.body, "manifest"), what);
    if (!v.is_object()) return util::Error::msg(util::cat(what, ": not a JSON object"));
    auto body_mt = TRY_CTX(util::json::opt_string(v, "mediaType", ""), what);
    if (body_mt && !body_mt->empty()) {
        if (!mt.empty() && mt != *body_mt && mt != "application/json")
            return util::Error::msg(util::cat(what, ": served as ", util::quote(mt), " but declares ", util::quote(*body_mt)));
        mt = *body_mt;
    } else if (mt.empty() || mt == "application/json") {
        mt = v.contains("manifests") ? std::string(kOciIndex) : std::string(kOciManifest);  // OCI allows omitting it
    }
    if (!is_manifest_type(mt) && !is_index_type(mt))
        return util::Error::msg(util::cat(what, ": unsupported media type ", util::quote(mt)));
    return std::optional<FetchedManifest>(FetchedManifest{got, mt, std::move(r.body)});
}

util::Status Registry::put_manifest(const std::string &repo, const std::string &ref, std::string_view media_type,
                                    std::string_view body) {
    HttpRequest req;
    req.method = "PUT";
    req.url = util::cat(base_url(), "/v2/", repo, "/manifests/", ref);
    req.headers.push_back(util::cat("Content-Type: ", media_type));
    req.body = std::string(body);
    auto r = TRY(request(repo, std::move(req), "pull,push"));
    if (r.status != 201 && r.status != 200 && r.status != 202)
        return status_error(util::cat("PUT manifest ", util::quote(repo + ":" + ref)), r);
    return util::ok();
}

util::Result<HttpResponse> Registry::get_blob(const std::string &repo, const Digest &d, uint64_t offset, HttpSink sink,
                                              std::function<util::Status(const HttpResponse &)> check,
                                              int64_t deadline_ms) {
    HttpRequest req;
    req.deadline_ms = deadline_ms;
    req.url = util::cat(base_url(), "/v2/", repo, "/blobs/", d.str());
    if (offset > 0) req.headers.push_back(util::cat("Range: bytes=", offset, "-"));
    req.sink = std::move(sink);
    req.check = std::move(check);
    req.body_limit = 64 << 10;
    // What the kernel buffers was sent but is not yet ours: a kill loses it,
    // and a resume fetches it again (a slot install's goal is at most
    // 64 KiB a kill). The kernel doubles the value for its own bookkeeping.
    req.recv_buffer = 64 << 10;
    return request(repo, std::move(req));
}

util::Result<bool> Registry::blob_exists(const std::string &repo, const Digest &d) {
    HttpRequest req;
    req.method = "HEAD";
    req.url = util::cat(base_url(), "/v2/", repo, "/blobs/", d.str());
    auto r = TRY(request(repo, std::move(req), "pull,push"));
    if (r.status == 200) return true;
    if (r.status == 404) return false;
    return status_error(util::cat("HEAD blob ", d.str()), r);
}

util::Result<bool> Registry::mount_blob(const std::string &repo, const Digest &d, const std::string &from_repo) {
    HttpRequest req;
    req.method = "POST";
    req.url = util::cat(base_url(), "/v2/", repo, "/blobs/uploads/?mount=", url_escape(d.str()), "&from=", url_escape(from_repo));
    auto r = TRY(request(repo, std::move(req), "pull,push", util::cat("repository:", from_repo, ":pull")));
    if (r.status == 201) return true;
    if (r.status == 202) {
        // The registry opened an upload session instead; cancel it, the caller uploads.
        if (auto loc = r.header("location")) {
            HttpRequest del;
            del.method = "DELETE";
            del.url = resolve_url(base_url() + "/v2/", *loc);
            (void)request(repo, std::move(del), "pull,push");
        }
        return false;
    }
    if (r.status == 401 || r.status == 403 || r.status == 404) return false;
    return status_error(util::cat("mount blob ", d.str()), r);
}

util::Result<std::string> Registry::start_upload(const std::string &repo, const std::string &what) {
    HttpRequest start;
    start.method = "POST";
    start.url = util::cat(base_url(), "/v2/", repo, "/blobs/uploads/");
    auto r = TRY_CTX(request(repo, std::move(start), "pull,push"), what);
    if (r.status != 202) return status_error(what, r);
    auto loc = r.header("location");
    if (!loc) return util::Error::msg(util::cat(what, ": no upload location"));
    return resolve_url(r.url, *loc);
}

util::Status Registry::upload_bytes(const std::string &repo, const Digest &d, std::string_view data) {
    std::string what = util::cat("upload blob ", d.str());
    std::string url = TRY(start_upload(repo, what));
    HttpRequest put;
    put.method = "PUT";
    put.url = util::cat(url, url.find('?') == std::string::npos ? "?" : "&", "digest=", url_escape(d.str()));
    put.headers.push_back("Content-Type: application/octet-stream");
    put.body = std::string(data);
    auto pr = TRY_CTX(request(repo, std::move(put), "pull,push", "", false), what);
    if (pr.status != 201) return status_error(what, pr);
    return util::ok();
}

util::Status Registry::upload_blob(const std::string &repo, const Digest &d, int fd, uint64_t size, uint64_t chunk) {
    std::string what = util::cat("upload blob ", d.str());
    std::string url = TRY(start_upload(repo, what));
    if (::lseek(fd, 0, SEEK_SET) < 0) return util::Error::from_errno(what);
    uint64_t sent = 0;
    if (chunk > 0) {
        while (sent < size) {
            uint64_t n = std::min(chunk, size - sent);
            HttpRequest patch;
            patch.method = "PATCH";
            patch.url = url;
            patch.headers.push_back("Content-Type: application/octet-stream");
            patch.headers.push_back(util::cat("Content-Range: ", sent, "-", sent + n - 1));
            patch.body_fd = fd;
            patch.body_len = n;
            auto pr = TRY_CTX(request(repo, std::move(patch), "pull,push", "", false), what);
            if (pr.status != 202) return status_error(what, pr);
            if (auto l = pr.header("location")) url = resolve_url(pr.url, *l);
            sent += n;
        }
    }
    HttpRequest put;
    put.method = "PUT";
    put.url = util::cat(url, url.find('?') == std::string::npos ? "?" : "&", "digest=", url_escape(d.str()));
    put.headers.push_back("Content-Type: application/octet-stream");
    if (sent < size) {
        put.body_fd = fd;
        put.body_len = size - sent;
    }
    auto pr = TRY_CTX(request(repo, std::move(put), "pull,push", "", false), what);
    if (pr.status != 201) return status_error(what, pr);
    return util::ok();
}

}  // namespace img
