// Credentials files, WWW-Authenticate parsing and the token request.
#include "image/auth.hpp"

#include <openssl/evp.h>

#include <cctype>

#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

std::string strip_scheme(std::string_view host) {
    if (auto p = host.find("://"); p != std::string_view::npos) host = host.substr(p + 3);
    if (auto s = host.find('/'); s != std::string_view::npos) host = host.substr(0, s);
    return std::string(host);
}

}  // namespace

std::string base64_encode(std::string_view data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                            reinterpret_cast<const unsigned char *>(data.data()), static_cast<int>(data.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

util::Result<std::string> base64_decode(std::string_view in) {
    std::string b64;
    for (char c : in)
        if (!std::isspace(static_cast<unsigned char>(c))) b64.push_back(c);
    if (b64.size() % 4 != 0) return util::Error::msg("invalid base64: length is not a multiple of 4");
    std::string out(b64.size() / 4 * 3 + 1, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                            reinterpret_cast<const unsigned char *>(b64.data()), static_cast<int>(b64.size()));
    if (n < 0) return util::Error::msg("invalid base64");
    size_t len = static_cast<size_t>(n);
    if (!b64.empty() && b64.back() == '=') len--;
    if (b64.size() >= 2 && b64[b64.size() - 2] == '=') len--;
    out.resize(len);
    return out;
}

util::Result<Credentials> Credentials::load(const std::string &path) {
    auto text = TRY_CTX(util::read_file(path, 1 << 20), util::cat("read credentials ", util::quote(path)));
    return parse(text, path);
}

util::Result<Credentials> Credentials::parse(std::string_view json, std::string_view what) {
    auto v = TRY(util::json::parse(json, what));
    TRY(util::json::expect_object(v, what));
    Credentials c;
    auto auths = TRY(util::json::opt_object(v, "auths", ""));
    if (!auths) return c;
    for (const auto &[host, entry] : auths->items()) {
        std::string where = util::cat("auths.", host);
        TRY(util::json::expect_object(entry, where));
        BasicCreds bc;
        if (auto a = TRY(util::json::opt_string(entry, "auth", where)); a && !a->empty()) {
            auto raw = TRY_CTX(base64_decode(*a), util::quote(where + ".auth"));
            auto colon = raw.find(':');
            if (colon == std::string::npos) return util::Error::msg(util::cat(util::quote(where + ".auth"), ": expected base64 of user:password"));
            bc.user = raw.substr(0, colon);
            bc.password = raw.substr(colon + 1);
        } else {
            bc.user = TRY(util::json::opt_string(entry, "username", where)).value_or("");
            bc.password = TRY(util::json::opt_string(entry, "password", where)).value_or("");
            if (bc.user.empty()) continue;
        }
        c.by_host_[strip_scheme(host)] = std::move(bc);
    }
    return c;
}

std::optional<BasicCreds> Credentials::find(std::string_view host) const {
    if (auto it = by_host_.find(host); it != by_host_.end()) return it->second;
    if (host == "registry-1.docker.io")
        if (auto it = by_host_.find("index.docker.io"); it != by_host_.end()) return it->second;
    return std::nullopt;
}

util::Result<Challenge> parse_challenge(std::string_view h) {
    Challenge c;
    h = util::trim(h);
    auto sp = h.find(' ');
    std::string_view scheme = h.substr(0, sp);
    for (char ch : scheme) c.scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    if (c.scheme.empty()) return util::Error::msg("empty WWW-Authenticate challenge");
    if (sp == std::string_view::npos) return c;
    std::string_view rest = h.substr(sp + 1);
    size_t i = 0;
    while (i < rest.size()) {
        while (i < rest.size() && (rest[i] == ' ' || rest[i] == ',')) i++;
        size_t eq = rest.find('=', i);
        if (eq == std::string_view::npos) break;
        std::string key;
        for (char ch : util::trim(rest.substr(i, eq - i)))
            key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
        i = eq + 1;
        std::string value;
        if (i < rest.size() && rest[i] == '"') {
            i++;
            while (i < rest.size() && rest[i] != '"') {
                if (rest[i] == '\\' && i + 1 < rest.size()) i++;
                value.push_back(rest[i++]);
            }
            if (i >= rest.size()) return util::Error::msg(util::cat("unterminated quote in WWW-Authenticate ", util::quote(h)));
            i++;
        } else {
            size_t end = rest.find(',', i);
            value = std::string(util::trim(rest.substr(i, end == std::string_view::npos ? end : end - i)));
            i = end == std::string_view::npos ? rest.size() : end;
        }
        c.params[key] = value;
    }
    return c;
}

util::Result<std::string> fetch_token(Http &http, const Challenge &c, const std::string &scopes,
                                      const std::optional<BasicCreds> &creds) {
    auto realm = c.params.find("realm");
    if (realm == c.params.end() || realm->second.empty()) return util::Error::msg("Bearer challenge without a realm");
    std::string url = realm->second;
    char sep = url.find('?') == std::string::npos ? '?' : '&';
    if (auto s = c.params.find("service"); s != c.params.end()) {
        url += util::cat(sep, "service=", url_escape(s->second));
        sep = '&';
    }
    for (const auto &scope : util::split(scopes, ' ')) {
        if (scope.empty()) continue;
        url += util::cat(sep, "scope=", url_escape(scope));
        sep = '&';
    }
    HttpRequest req;
    req.url = url;
    req.body_limit = 1 << 20;
    if (creds) req.auth_header = "Authorization: Basic " + base64_encode(creds->user + ":" + creds->password);
    auto resp = TRY_CTX(http.perform(req), util::cat("token request to ", util::quote(realm->second)));
    if (resp.status == 401 || resp.status == 403)
        return util::Error::with_code(EACCES, util::cat("token request to ", util::quote(realm->second), ": denied (",
                                                        resp.status, ")"));
    if (resp.status != 200)
        return util::Error::msg(util::cat("token request to ", util::quote(realm->second), ": status ", resp.status));
    auto v = TRY_CTX(util::json::parse(resp.body, "token response"), "token request");
    TRY(util::json::expect_object(v, "token response"));
    auto tok = TRY(util::json::opt_string(v, "token", ""));
    if (!tok || tok->empty()) tok = TRY(util::json::opt_string(v, "access_token", ""));
    if (!tok || tok->empty()) return util::Error::msg("token response has no `token`");
    return *tok;
}

}  // namespace img
