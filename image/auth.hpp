// Registry authentication: anonymous, HTTP basic from a docker config.json
// credentials file, and Bearer tokens obtained from the realm named in a
// `WWW-Authenticate: Bearer realm="...",service="...",scope="..."` challenge
// (docker's token protocol, which every public registry speaks).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "image/http.hpp"
#include "util/result.hpp"

namespace img {

struct BasicCreds {
    std::string user;
    std::string password;
};

/// Credentials by registry host ("host:port"), from docker's config.json:
/// {"auths":{"host:port":{"auth":"base64(user:pass)"}}} (also accepts
/// "username"/"password" fields and "https://host" keys).
class Credentials {
public:
    static util::Result<Credentials> load(const std::string &path);
    static util::Result<Credentials> parse(std::string_view json, std::string_view what);
    std::optional<BasicCreds> find(std::string_view host) const;

private:
    std::map<std::string, BasicCreds, std::less<>> by_host_;
};

/// A parsed WWW-Authenticate challenge.
struct Challenge {
    std::string scheme;  ///< lowercased: "bearer", "basic"
    std::map<std::string, std::string> params;  ///< keys lowercased
};
util::Result<Challenge> parse_challenge(std::string_view header);

/// Asks the token realm for a token valid for `scopes` (space-separated
/// docker scopes), sending basic credentials when there are any.
util::Result<std::string> fetch_token(Http &http, const Challenge &c, const std::string &scopes,
                                      const std::optional<BasicCreds> &creds);

std::string base64_encode(std::string_view data);
util::Result<std::string> base64_decode(std::string_view b64);

}  // namespace img
