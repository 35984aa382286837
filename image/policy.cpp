// Parsing containers-policy.json-style files, scope lookup, identity rules.
#include "image/policy.hpp"

#include <algorithm>

#include "image/auth.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

util::Result<std::string> read_key(const std::string &path, const std::string &base_dir) {
    std::string p = path.starts_with("/") || base_dir.empty() ? path : util::path_join(base_dir, path);
    return TRY_CTX(util::read_file(p, 64 << 10), util::cat("read key ", util::quote(p)));
}

util::Result<Requirement> parse_requirement(const util::json::Value &v, const std::string &where, const std::string &base_dir) {
    TRY(util::json::expect_object(v, where));
    auto type = TRY(util::json::req_string(v, "type", where));
    Requirement r;
    if (type == "insecureAcceptAnything") {
        r.type = Requirement::Type::AcceptAnything;
        return r;
    }
    if (type == "reject") {
        r.type = Requirement::Type::Reject;
        return r;
    }
    if (type != "sigstoreSigned")
        return util::Error::msg(util::cat(util::quote(where + ".type"), ": unsupported requirement ", util::quote(type),
                                          " (expected insecureAcceptAnything, reject or sigstoreSigned)"));
    r.type = Requirement::Type::SigstoreSigned;
    if (auto p = TRY(util::json::opt_string(v, "keyPath", where))) r.keys_pem.push_back(TRY(read_key(*p, base_dir)));
    for (const auto &p : TRY(util::json::opt_string_array(v, "keyPaths", where))) r.keys_pem.push_back(TRY(read_key(p, base_dir)));
    if (auto d = TRY(util::json::opt_string(v, "keyData", where)))
        r.keys_pem.push_back(TRY_CTX(base64_decode(*d), util::quote(where + ".keyData")));
    for (const auto &d : TRY(util::json::opt_string_array(v, "keyDatas", where)))
        r.keys_pem.push_back(TRY_CTX(base64_decode(d), util::quote(where + ".keyDatas")));
    if (r.keys_pem.empty())
        return util::Error::msg(util::cat(util::quote(where), ": sigstoreSigned needs keyPath, keyPaths, keyData or keyDatas"));
    if (v.contains("fulcio") || v.contains("pki"))
        return util::Error::msg(util::cat(util::quote(where), ": only key-based sigstoreSigned is supported (no fulcio/pki)"));
    if (auto si = TRY(util::json::opt_object(v, "signedIdentity", where))) {
        std::string sw = where + ".signedIdentity";
        auto st = TRY(util::json::req_string(*si, "type", sw));
        if (st == "matchRepoDigestOrExact") {
            r.identity = IdentityMatch::RepoDigestOrExact;
        } else if (st == "matchRepository") {
            r.identity = IdentityMatch::Repository;
        } else if (st == "exactReference") {
            r.identity = IdentityMatch::ExactReference;
            r.identity_value = TRY(util::json::req_string(*si, "dockerReference", sw));
        } else if (st == "exactRepository") {
            r.identity = IdentityMatch::ExactRepository;
            r.identity_value = TRY(util::json::req_string(*si, "dockerRepository", sw));
        } else {
            return util::Error::msg(util::cat(util::quote(sw + ".type"), ": unsupported ", util::quote(st)));
        }
    }
    return r;
}

util::Result<std::vector<Requirement>> parse_list(const util::json::Value &v, const std::string &where,
                                                  const std::string &base_dir) {
    if (!v.is_array() || v.empty())
        return util::Error::msg(util::cat(util::quote(where), ": expected a non-empty array of requirements"));
    std::vector<Requirement> out;
    for (size_t i = 0; i < v.size(); i++) out.push_back(TRY(parse_requirement(v[i], util::cat(where, "[", i, "]"), base_dir)));
    return out;
}

/// "host/repo:tag" -> "host/repo" (a tag after the last slash, or a digest).
std::string strip_tag(std::string_view ref) {
    if (auto at = ref.find('@'); at != std::string_view::npos) ref = ref.substr(0, at);
    auto colon = ref.rfind(':');
    if (colon != std::string_view::npos && ref.find('/', colon) == std::string_view::npos) ref = ref.substr(0, colon);
    return std::string(ref);
}

}  // namespace

util::Result<Policy> Policy::load(const std::string &path) {
    auto text = TRY_CTX(util::read_file(path, 1 << 20), util::cat("read policy ", util::quote(path)));
    return parse(text, path, util::dirname(path));
}

util::Result<Policy> Policy::parse(std::string_view json, std::string_view what, const std::string &base_dir) {
    auto v = TRY(util::json::parse(json, what));
    TRY(util::json::expect_object(v, what));
    Policy p;
    auto run = [&]() -> util::Status {
        if (!v.contains("default")) return util::Error::msg("`default` is required");
        p.default_ = TRY(parse_list(v["default"], "default", base_dir));
        auto transports = TRY(util::json::opt_object(v, "transports", ""));
        if (!transports) return util::ok();
        for (const auto &[name, scopes] : transports->items()) {
            std::string tw = "transports." + name;
            TRY(util::json::expect_object(scopes, tw));
            if (name != "docker") continue;  // other transports do not exist on a device
            for (const auto &[scope, list] : scopes.items()) {
                auto reqs = TRY(parse_list(list, util::cat(tw, ".", scope), base_dir));
                if (scope.empty()) {
                    p.has_transport_default_ = true;
                    p.transport_default_ = std::move(reqs);
                } else {
                    p.scopes_.emplace_back(scope, std::move(reqs));
                }
            }
        }
        return util::ok();
    };
    TRY_CTX(run(), util::cat("policy ", util::quote(what)));
    return p;
}

util::Result<Policy> Policy::device_default(const std::string &trust_dir) {
    Policy p;
    Requirement r;
    // A missing trust directory pins no key: everything is rejected.
    for (const auto &n : util::list_dir(trust_dir).value_or(std::vector<std::string>{}))
        if (n.size() > 4 && n.ends_with(".pub")) r.keys_pem.push_back(TRY(read_key(util::path_join(trust_dir, n), "")));
    r.type = r.keys_pem.empty() ? Requirement::Type::Reject : Requirement::Type::SigstoreSigned;
    p.default_.push_back(std::move(r));
    return p;
}

PolicyDecision Policy::lookup(const Reference &ref) const {
    std::string full = ref.name();
    // Exact repository, then each parent namespace, then the registry itself.
    for (std::string s = full;;) {
        for (const auto &[scope, reqs] : scopes_)
            if (scope == s) return {scope, reqs};
        auto slash = s.rfind('/');
        if (slash == std::string::npos) break;
        s.resize(slash);
    }
    // "*.example.com" matches hosts under example.com, the longest first.
    const std::pair<std::string, std::vector<Requirement>> *best = nullptr;
    std::string host = ref.registry.substr(0, ref.registry.find(':'));
    for (const auto &sc : scopes_) {
        if (!sc.first.starts_with("*.")) continue;
        std::string_view suffix = std::string_view(sc.first).substr(1);
        if (host.size() > suffix.size() && host.ends_with(suffix) && (!best || sc.first.size() > best->first.size())) best = &sc;
    }
    if (best) return {best->first, best->second};
    if (has_transport_default_) return {"transports.docker.\"\"", transport_default_};
    return {"default", default_};
}

util::Status match_identity(const Requirement &req, const Reference &pulled, std::string_view signed_ref) {
    std::string repo = pulled.name();
    std::string signed_repo = strip_tag(signed_ref);
    switch (req.identity) {
        case IdentityMatch::RepoDigestOrExact:
            if (!pulled.tag.empty() && !pulled.digest) {
                std::string want = repo + ":" + pulled.tag;
                if (signed_ref != want)
                    return util::Error::msg(util::cat("signature is for ", util::quote(signed_ref), ", not ", util::quote(want)));
                return util::ok();
            }
            [[fallthrough]];
        case IdentityMatch::Repository:
            if (signed_repo != repo)
                return util::Error::msg(util::cat("signature is for repository ", util::quote(signed_repo), ", not ", util::quote(repo)));
            return util::ok();
        case IdentityMatch::ExactReference:
            if (signed_ref != req.identity_value)
                return util::Error::msg(util::cat("signature is for ", util::quote(signed_ref), ", policy wants ", util::quote(req.identity_value)));
            return util::ok();
        case IdentityMatch::ExactRepository:
            if (signed_repo != req.identity_value)
                return util::Error::msg(util::cat("signature is for repository ", util::quote(signed_repo), ", policy wants ",
                                                  util::quote(req.identity_value)));
            return util::ok();
    }
    return util::Error::msg("unknown identity rule");
}

}  // namespace img
