// The OCI distribution-spec client: one registry host, its scheme, its
// authentication state, and the handful of endpoints berth uses:
//   GET/HEAD /v2/<name>/manifests/<ref>     PUT /v2/<name>/manifests/<ref>
//   GET/HEAD /v2/<name>/blobs/<digest>      POST/PATCH/PUT /v2/<name>/blobs/uploads/
// Every request goes through request(), which answers a 401 challenge
// (Bearer token for the repository's scope, or basic) and retries once, and
// retries transport failures, stalls and 5xx answers with backoff, all
// within one deadline (HttpOptions::timeout_s from the first attempt). Blob
// bodies are streamed to a sink; resuming them is fetch.cpp's job.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "image/auth.hpp"
#include "image/digest.hpp"
#include "image/http.hpp"
#include "image/reference.hpp"
#include "util/result.hpp"

namespace img {

/// The host to talk to for a reference's registry ("docker.io" is served
/// by registry-1.docker.io) and what goes after /manifests/ (digest, else tag).
std::string registry_host(const Reference &r);
std::string manifest_ref(const Reference &r);

/// Manifest media types berth accepts.
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
bool is_manifest_type(std::string_view t);
bool is_index_type(std::string_view t);

/// Exponential backoff with full jitter: attempt 0 -> up to base, then 2x, capped.
struct Backoff {
    int64_t base_ms = 250;
    int64_t cap_ms = 30000;
    int64_t delay_ms(int attempt) const;
};

struct RegistryOptions {
    HttpOptions http;
    std::optional<Credentials> creds;
    bool insecure_http = false;  ///< plain http (also the fallback for loopback hosts)
    int retries = 5;             ///< attempts without progress before giving up
    Backoff backoff;
};

struct FetchedManifest {
    Digest digest;
    std::string media_type;  ///< from Content-Type, checked against the body's own mediaType
    std::string body;
};

struct ManifestHead {
    std::optional<Digest> digest;  ///< Docker-Content-Digest, when sent
    std::string media_type;
    uint64_t size = 0;
};

class Registry {
public:
    static util::Result<Registry> open(const std::string &host, RegistryOptions opts);

    const std::string &host() const { return host_; }
    const RegistryOptions &options() const { return opts_; }
    std::string base_url() const { return scheme_ + "://" + host_; }

    /// nullopt on 404.
    util::Result<std::optional<ManifestHead>> head_manifest(const std::string &repo, const std::string &ref);
    /// GETs a manifest and checks its digest (against `ref` when it is a
    /// digest, else against Docker-Content-Digest when sent) and media type.
    /// nullopt on 404.
    util::Result<std::optional<FetchedManifest>> get_manifest(const std::string &repo, const std::string &ref);
    util::Status put_manifest(const std::string &repo, const std::string &ref, std::string_view media_type,
                              std::string_view body);

    /// One GET of a blob, from `offset` (a Range request when > 0), body to
    /// `sink`. Returns the response (status, headers); interpretation is the caller's.
    util::Result<HttpResponse> get_blob(const std::string &repo, const Digest &d, uint64_t offset, HttpSink sink,
                                        std::function<util::Status(const HttpResponse &)> check = {},
                                        int64_t deadline_ms = 0);
    util::Result<bool> blob_exists(const std::string &repo, const Digest &d);
    /// Tries a cross-repository mount; true when the registry mounted it.
    util::Result<bool> mount_blob(const std::string &repo, const Digest &d, const std::string &from_repo);
    /// Uploads `size` bytes from `fd`: monolithic (POST, PUT ?digest=) when
    /// chunk == 0, else PATCH chunks of `chunk` bytes then PUT.
    util::Status upload_blob(const std::string &repo, const Digest &d, int fd, uint64_t size, uint64_t chunk = 0);
    /// Monolithic upload of a small blob held in memory.
    util::Status upload_bytes(const std::string &repo, const Digest &d, std::string_view data);

    /// The deadline of an operation starting now (HttpRequest::deadline_ms); 0: none.
    int64_t deadline() const;
    /// Between two attempts of an operation that started at `started_ms`:
    /// sleeps the backoff for `attempt` and returns ok, or, when the next
    /// attempt could not start before `deadline_ms`, returns `err` saying so.
    util::Status retry_wait(util::Error err, int attempt, int64_t started_ms, int64_t deadline_ms) const;
    /// `err` (the last attempt's) as the end of an operation that started
    /// at `started_ms` and ran out of time: "<err>; deadline reached after N s".
    static util::Error deadline_error(const util::Error &err, int64_t started_ms);

    /// Any request against this registry, with auth and retries. `actions`
    /// is "pull" or "pull,push"; `extra_scope` adds one (cross-repo mount).
    util::Result<HttpResponse> request(const std::string &repo, HttpRequest req, std::string_view actions = "pull",
                                       const std::string &extra_scope = "", bool retry = true);

private:
    Registry(std::string host, RegistryOptions opts, Http http)
        : host_(std::move(host)), opts_(std::move(opts)), http_(std::move(http)) {}
    util::Status choose_scheme();
    util::Result<std::string> start_upload(const std::string &repo, const std::string &what);
    util::Status authenticate(const HttpResponse &challenge, const std::string &scope_key, const std::string &scopes);

    std::string host_;
    std::string scheme_ = "https";
    RegistryOptions opts_;
    Http http_;
    std::map<std::string, std::string> auth_;  ///< scope -> "Authorization: ..." header
};

/// A registry answer that is not what was asked as a one-line error
/// ("GET /v2/app/manifests/1.0: 404 MANIFEST_UNKNOWN: manifest unknown").
util::Error status_error(std::string_view what, const HttpResponse &resp);

}  // namespace img
