// Registry and trust flags (see registry_flags.hpp).
#include "registry_flags.hpp"

#include <algorithm>

#include "util/device_root.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

util::Result<int64_t> parse_num(const util::ParsedArgs &a, const char *name, int64_t def) {
    auto v = a.get(name);
    if (!v) return def;
    auto n = util::parse_int<int64_t>(*v);
    if (!n || *n < 0) return util::Error::msg(util::cat("--", name, ": not a non-negative number: ", util::quote(*v)));
    return *n;
}

}  // namespace

util::Result<uint64_t> parse_size(const std::string &s, const char *what) {
    std::string_view v = s;
    uint64_t mult = 1;
    if (!v.empty()) {
        switch (v.back()) {
            case 'k': case 'K': mult = 1024; break;
            case 'm': case 'M': mult = 1024 * 1024; break;
            case 'g': case 'G': mult = 1024 * 1024 * 1024; break;
            default: break;
        }
        if (mult != 1) v.remove_suffix(1);
    }
    auto n = util::parse_int<uint64_t>(v);
    if (!n) return util::Error::msg(util::cat("--", what, ": not a size: ", util::quote(s)));
    return *n * mult;
}

util::Result<img::RegistryOptions> registry_options(const util::ParsedArgs &a) {
    img::RegistryOptions o;
    o.http.ca_file = a.get("ca").value_or("");
    o.http.pinned_key = a.get("pin").value_or("");
    if (auto r = a.get("limit-rate")) o.http.limit_rate = static_cast<int64_t>(TRY(parse_size(*r, "limit-rate")));
    o.http.timeout_s = TRY(parse_num(a, "timeout", kDefaultTimeoutS));
    o.http.speed_limit = static_cast<int64_t>(TRY(parse_size(a.get("speed-limit").value_or(kDefaultSpeedLimit), "speed-limit")));
    o.http.speed_time_s = TRY(parse_num(a, "speed-time", kDefaultSpeedTimeS));
    o.retries = std::max(1, static_cast<int>(TRY(parse_num(a, "retries", 8))));
    o.backoff.base_ms = std::max<int64_t>(1, TRY(parse_num(a, "retry-delay-ms", 500)));
    o.insecure_http = a.has("insecure-http");
    if (auto c = a.get("creds")) o.creds = TRY(img::Credentials::load(*c));
    return o;
}

util::Result<img::ProgressMode> progress_mode(const util::ParsedArgs &a) {
    if (a.has("quiet")) return img::ProgressMode::Quiet;
    std::string m = a.get("progress").value_or("auto");
    if (m == "auto") return img::auto_progress_mode(2);
    if (m == "human") return img::ProgressMode::Human;
    if (m == "json") return img::ProgressMode::Json;
    if (m == "none") return img::ProgressMode::Quiet;
    return util::Error::msg(util::cat("--progress: expected auto, human, json or none, got ", util::quote(m)));
}

util::Result<img::Policy> load_policy(const std::string &store, const util::ParsedArgs &a) {
    if (auto p = a.get("policy")) return img::Policy::load(*p);
    util::DeviceRoot root(store);
    if (util::path_exists(root.policy())) return img::Policy::load(root.policy());
    return img::Policy::device_default(root.trust());
}

}  // namespace cmd
