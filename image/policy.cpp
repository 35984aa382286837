// Parsing containers-policy.json(5) files strictly, the docker transport's
// scope lookup, and the signedIdentity rules.
#include "image/policy.hpp"

#include <algorithm>
#include <initializer_list>
#include <set>

#include "image/auth.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using util::cat;
using util::quote;
using util::json::Value;

/// Upstream's transports. Only `docker` is looked up; the others are
/// checked for syntax so that a file berth accepts is valid upstream too.
constexpr std::string_view kTransports[] = {"atomic", "containers-storage", "dir", "docker", "docker-archive",
                                            "docker-daemon", "oci", "oci-archive", "sif", "tarball"};

/// Requirement keys berth knows but does not implement: refusing them keeps
/// a policy from being silently weaker than its author meant.
constexpr std::string_view kUnsupported[] = {"fulcio",          "pki",                 "rekorPublicKeyPath",
                                             "rekorPublicKeyPaths", "rekorPublicKeyData", "rekorPublicKeyDatas"};

/// How a parse treats key material: the docker transport's keys are read,
/// other transports' are only checked for syntax (they never apply).
struct ParseCtx {
    std::string base_dir;
    bool read_keys = true;
};

/// "`where`: why"; `where` empty: the top level.
util::Error invalid(std::string_view where, std::string_view why) {
    return util::Error::msg(where.empty() ? std::string(why) : cat(quote(where), ": ", why));
}

util::Status only_keys(const Value &obj, std::string_view where, std::initializer_list<std::string_view> known) {
    for (const auto &[k, unused] : obj.items())
        if (std::find(known.begin(), known.end(), k) == known.end()) return invalid(where, cat("unknown key ", quote(k)));
    return util::ok();
}

/// Nothing else may be in `obj` besides `type`.
util::Status type_only(const Value &obj, std::string_view where) { return only_keys(obj, where, {"type"}); }

/// A docker reference as containers/image compares them: the fully
/// expanded name (docker.io/library/ for short names), with the tag and the
/// digest only when written.
struct Named {
    std::string name, tag, digest;
    std::string str() const { return name + (tag.empty() ? "" : ":" + tag) + (digest.empty() ? "" : "@" + digest); }
};

util::Result<Named> parse_named(std::string_view s) {
    auto r = TRY(Reference::parse(s, "docker.io"));
    Named n{r.name(), "", r.digest ? r.digest->str() : ""};
    std::string_view no_digest = s.substr(0, s.find('@'));
    size_t slash = no_digest.rfind('/'), colon = no_digest.rfind(':');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) n.tag = r.tag;
    return n;
}

/// A repository, namespace or host[:port] in the fully expanded form, without tag or digest.
util::Result<std::string> parse_prefix(const Value &obj, std::string_view key, std::string_view where) {
    auto p = TRY(util::json::req_string(obj, key, where));
    std::string w = util::json::field_path(where, key);
    if (p.find('/') == std::string::npos) {
        if (!valid_registry(p)) return invalid(w, cat(quote(p), " is not a host[:port], namespace or repository"));
        return p;
    }
    auto n = parse_named(p);
    if (!n) return invalid(w, n.error().message());
    if (!n->tag.empty() || !n->digest.empty()) return invalid(w, cat(quote(p), " must not name a tag or digest"));
    if (n->name != p) return invalid(w, cat(quote(p), " is not in the fully expanded form ", quote(n->name)));
    return p;
}

util::Status parse_identity(const Value &si, const std::string &where, Requirement &r) {
    TRY(util::json::expect_object(si, where));
    auto st = TRY(util::json::req_string(si, "type", where));
    if (st == "matchExact" || st == "matchRepoDigestOrExact" || st == "matchRepository") {
        TRY(type_only(si, where));
        r.identity = st == "matchExact"               ? IdentityMatch::Exact
                     : st == "matchRepoDigestOrExact" ? IdentityMatch::RepoDigestOrExact
                                                      : IdentityMatch::Repository;
    } else if (st == "exactReference") {
        TRY(only_keys(si, where, {"type", "dockerReference"}));
        auto v = TRY(util::json::req_string(si, "dockerReference", where));
        auto n = parse_named(v);
        if (!n) return invalid(where + ".dockerReference", n.error().message());
        if (n->tag.empty() && n->digest.empty()) return invalid(where + ".dockerReference", cat(quote(v), " names no tag or digest"));
        r.identity = IdentityMatch::ExactReference;
        r.identity_value = n->str();
    } else if (st == "exactRepository") {
        TRY(only_keys(si, where, {"type", "dockerRepository"}));
        auto v = TRY(util::json::req_string(si, "dockerRepository", where));
        auto n = parse_named(v);
        if (!n) return invalid(where + ".dockerRepository", n.error().message());
        if (!n->tag.empty() || !n->digest.empty())
            return invalid(where + ".dockerRepository", cat(quote(v), " is not a repository (it names a tag or digest)"));
        r.identity = IdentityMatch::ExactRepository;
        r.identity_value = n->name;
    } else if (st == "remapIdentity") {
        TRY(only_keys(si, where, {"type", "prefix", "signedPrefix"}));
        r.identity = IdentityMatch::RemapIdentity;
        r.prefix = TRY(parse_prefix(si, "prefix", where));
        r.signed_prefix = TRY(parse_prefix(si, "signedPrefix", where));
    } else {
        return invalid(where + ".type", cat("unknown identity rule ", quote(st)));
    }
    return util::ok();
}

util::Result<std::string> read_key(const std::string &path, const std::string &base_dir) {
    std::string p = path.starts_with("/") || base_dir.empty() ? path : util::path_join(base_dir, path);
    return TRY_CTX(util::read_file(p, 64 << 10), cat("read key ", quote(p)));
}

util::Status parse_sigstore(const Value &v, const std::string &where, const ParseCtx &ctx, Requirement &r) {
    TRY(only_keys(v, where,
                  {"type", "keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki", "rekorPublicKeyPath",
                   "rekorPublicKeyPaths", "rekorPublicKeyData", "rekorPublicKeyDatas", "signedIdentity"}));
    std::vector<std::string> sources;
    for (const char *k : {"keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki"})
        if (v.contains(k)) sources.push_back(k);
    if (sources.size() != 1)
        return invalid(where, cat("exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki is required",
                                  sources.empty() ? std::string() : cat(" (got ", util::join(sources, " and "), ")")));
    for (std::string_view k : kUnsupported)
        if (v.contains(std::string(k)))
            return invalid(where, cat(quote(k), " is not supported (berth verifies signatures by public keys only)"));
    r.type = Requirement::Type::SigstoreSigned;
    const std::string &src = sources[0];
    std::vector<std::string> values;
    if (src == "keyPath" || src == "keyData") {
        values.push_back(TRY(util::json::req_string(v, src, where)));
    } else {
        values = TRY(util::json::opt_string_array(v, src, where));
        if (values.empty()) return invalid(where + "." + src, "expected a non-empty array of strings");
    }
    for (size_t i = 0; i < values.size(); i++) {
        if (src.starts_with("keyData")) {
            auto pem = base64_decode(values[i]);
            if (!pem) return invalid(cat(where, ".", src), pem.error().message());
            r.keys_pem.push_back(std::move(*pem));
        } else if (ctx.read_keys) {
            r.keys_pem.push_back(TRY_CTX(read_key(values[i], ctx.base_dir), cat(quote(where + "." + src))));
        }
    }
    if (v.contains("signedIdentity")) TRY(parse_identity(v["signedIdentity"], where + ".signedIdentity", r));
    return util::ok();
}

util::Result<Requirement> parse_requirement(const Value &v, const std::string &where, const ParseCtx &ctx) {
    TRY(util::json::expect_object(v, where));
    auto type = TRY(util::json::req_string(v, "type", where));
    Requirement r;
    if (type == "insecureAcceptAnything" || type == "reject") {
        TRY(type_only(v, where));
        r.type = type == "reject" ? Requirement::Type::Reject : Requirement::Type::AcceptAnything;
    } else if (type == "sigstoreSigned") {
        TRY(parse_sigstore(v, where, ctx, r));
    } else if (type == "signedBy" || type == "signedBaseLayer") {
        return invalid(where + ".type", cat(quote(type), ": GPG signatures are not supported (use sigstoreSigned)"));
    } else {
        return invalid(where + ".type",
                       cat("unknown requirement ", quote(type), " (expected insecureAcceptAnything, reject or sigstoreSigned)"));
    }
    return r;
}

util::Result<std::vector<Requirement>> parse_list(const Value &v, const std::string &where, const ParseCtx &ctx) {
    if (!v.is_array() || v.empty()) return invalid(where, "expected a non-empty array of requirements");
    std::vector<Requirement> out;
    for (size_t i = 0; i < v.size(); i++) out.push_back(TRY(parse_requirement(v[i], cat(where, "[", i, "]"), ctx)));
    return out;
}

/// A docker-transport scope: "", "*.domain", host[:port], or a fully
/// expanded repository, namespace or image (`:tag` or `@digest`).
util::Status check_docker_scope(const std::string &scope, const std::string &where) {
    if (scope.empty()) return util::ok();
    if (scope.starts_with("*.")) {
        std::string_view domain = std::string_view(scope).substr(2);
        if (domain.find(':') != std::string_view::npos || !valid_registry(domain))
            return invalid(where, "a wildcard scope is `*.` and a domain, without port or further `*`");
        return util::ok();
    }
    if (scope.find('/') == std::string::npos) {
        if (!valid_registry(scope)) return invalid(where, "not a host[:port], repository or image reference");
        return util::ok();
    }
    auto n = parse_named(scope);
    if (!n) return invalid(where, n.error().message());
    if (!n->tag.empty() && !n->digest.empty()) return invalid(where, "a scope names a tag or a digest, not both");
    if (n->str() != scope) return invalid(where, cat("not in the fully expanded form ", quote(n->str())));
    return util::ok();
}

/// containers-policy.json(5): "duplicated ... fields cause the entire file
/// ... to be rejected". The DOM keeps the last of a duplicated key silently,
/// so the text is walked once more for them.
class DuplicateKeys : public nlohmann::json_sax<Value> {
public:
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t &) override { return true; }
    bool string(string_t &) override { return true; }
    bool binary(binary_t &) override { return true; }
    bool start_object(std::size_t) override {
        keys_.emplace_back();
        return true;
    }
    bool key(string_t &k) override {
        if (keys_.back().insert(k).second) return true;
        duplicate = k;
        return false;
    }
    bool end_object() override {
        keys_.pop_back();
        return true;
    }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception &) override { return false; }

    std::string duplicate;

private:
    std::vector<std::set<std::string>> keys_;
};

/// "a/b" then "a", up to the registry (which holds no '/').
void push_name_and_parents(std::string name, std::vector<std::string> &out) {
    for (;;) {
        out.push_back(name);
        auto slash = name.rfind('/');
        if (slash == std::string::npos) return;
        name.resize(slash);
    }
}

Named named_of(const Reference &r) { return {r.name(), r.tag, r.digest ? r.digest->str() : ""}; }

}  // namespace

util::Result<Policy> Policy::load(const std::string &path) {
    auto text = TRY_CTX(util::read_file(path, 1 << 20), cat("read policy ", quote(path)));
    return parse(text, path, util::dirname(path));
}

util::Result<Policy> Policy::parse(std::string_view json, std::string_view what, const std::string &base_dir) {
    auto v = TRY(util::json::parse(json, what));
    TRY(util::json::expect_object(v, what));
    Policy p;
    auto run = [&]() -> util::Status {
        DuplicateKeys dup;
        Value::sax_parse(json.begin(), json.end(), &dup, nlohmann::detail::input_format_t::json, true);
        if (!dup.duplicate.empty()) return util::Error::msg(cat("duplicated key ", quote(dup.duplicate)));
        TRY(only_keys(v, "", {"default", "transports"}));
        if (!v.contains("default")) return util::Error::msg("`default` is required");
        ParseCtx docker{base_dir, true}, other{base_dir, false};
        p.default_ = TRY(parse_list(v["default"], "default", docker));
        if (!v.contains("transports")) return util::ok();
        const Value &transports = v["transports"];
        TRY(util::json::expect_object(transports, "transports"));
        for (const auto &[name, scopes] : transports.items()) {
            std::string tw = "transports." + name;
            if (std::find(std::begin(kTransports), std::end(kTransports), name) == std::end(kTransports))
                return invalid("transports", cat("unknown transport ", quote(name)));
            TRY(util::json::expect_object(scopes, tw));
            bool is_docker = name == "docker";
            for (const auto &[scope, list] : scopes.items()) {
                std::string sw = cat(tw, "[\"", scope, "\"]");
                if (is_docker) TRY(check_docker_scope(scope, sw));
                auto reqs = TRY(parse_list(list, sw, is_docker ? docker : other));
                if (is_docker) p.scopes_[scope] = std::move(reqs);
            }
        }
        return util::ok();
    };
    TRY_CTX(run(), cat("policy ", quote(what)));
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

std::vector<std::string> docker_scopes(const Reference &ref) {
    std::vector<std::string> out;
    std::string name = ref.name();
    if (ref.digest) out.push_back(cat(name, "@", ref.digest->str()));
    if (!ref.tag.empty()) out.push_back(cat(name, ":", ref.tag));
    push_name_and_parents(name, out);  // repository, namespaces, host[:port]
    if (!ref.registry.starts_with("[")) {
        std::string host = ref.registry.substr(0, ref.registry.find(':'));
        for (size_t dot = host.find('.'); dot != std::string::npos; dot = host.find('.', dot + 1))
            out.push_back("*." + host.substr(dot + 1));
    }
    out.emplace_back();
    return out;
}

PolicyDecision Policy::lookup(const Reference &ref) const {
    for (const auto &s : docker_scopes(ref))
        if (auto it = scopes_.find(s); it != scopes_.end()) return {s.empty() ? R"(transports.docker."")" : s, it->second};
    return {"default", default_};
}

util::Status match_identity(const Requirement &req, const Reference &pulled, std::string_view signed_ref) {
    auto sr = parse_named(signed_ref);
    if (!sr) return util::Error::msg(cat("signature names an invalid reference ", quote(signed_ref)));
    const Named &s = *sr;
    Named image = named_of(pulled);
    auto exact = [&](const std::string &want) -> util::Status {
        if (s.str() != want) return util::Error::msg(cat("signature is for ", quote(s.str()), ", not ", quote(want)));
        return util::ok();
    };
    auto same_repo = [&](const std::string &want) -> util::Status {
        if (s.name != want)
            return util::Error::msg(cat("signature is for repository ", quote(s.name), ", not ", quote(want)));
        return util::ok();
    };
    switch (req.identity) {
        case IdentityMatch::RemapIdentity:
            if (image.name == req.prefix || image.name.starts_with(req.prefix + "/")) {
                auto remapped = parse_named(req.signed_prefix + image.name.substr(req.prefix.size()));
                if (!remapped) return util::Error::msg(cat("remapped identity of ", quote(image.name), " is invalid"));
                image.name = remapped->name;
            }
            [[fallthrough]];
        case IdentityMatch::RepoDigestOrExact:
            if (!image.tag.empty() && image.digest.empty()) return exact(image.str());
            return same_repo(image.name);
        case IdentityMatch::Exact: {
            // An image named by tag and digest is either.
            Named by_tag{image.name, image.tag, ""}, by_digest{image.name, "", image.digest};
            if (!image.tag.empty() && s.str() == by_tag.str()) return util::ok();
            return exact(image.digest.empty() ? by_tag.str() : by_digest.str());
        }
        case IdentityMatch::Repository:
            return same_repo(image.name);
        case IdentityMatch::ExactReference:
            return exact(req.identity_value);
        case IdentityMatch::ExactRepository:
            return same_repo(req.identity_value);
    }
    return util::Error::msg("unknown identity rule");
}

}  // namespace img
