// Parsing of image references (see reference.hpp), without <regex>: each
// part is checked by a small hand-written scanner that follows
// docker/distribution's reference grammar.
#include "image/reference.hpp"

#include <cctype>

#include "util/strings.hpp"

namespace img {
namespace {

using util::cat;
using util::quote;

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]*
bool valid_component(std::string_view c) {
    if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
    size_t i = 0;
    while (i < c.size()) {
        if (lower_alnum(c[i])) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < c.size() && !lower_alnum(c[j])) ++j;
        std::string_view sep = c.substr(i, j - i);
        bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
        if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
        i = j;
    }
    return true;
}

}  // namespace

/// domain := host[:port], host components [a-zA-Z0-9-] separated by dots, or an [IPv6].
bool valid_registry(std::string_view r) {
    if (r.empty()) return false;
    std::string_view host = r;
    if (r.front() == '[') {
        size_t close = r.find(']');
        if (close == std::string_view::npos) return false;
        for (char c : r.substr(1, close - 1))
            if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':')) return false;
        host = {};
        r = r.substr(close + 1);
        if (!r.empty() && r.front() != ':') return false;
    } else if (size_t colon = r.find(':'); colon != std::string_view::npos) {
        host = r.substr(0, colon);
        r = r.substr(colon);
    } else {
        r = {};
    }
    if (!r.empty()) {  // ":port"
        auto port = util::parse_int<unsigned>(r.substr(1));
        if (!port || *port == 0 || *port > 65535) return false;
    }
    if (!host.empty() || r.empty()) {
        if (host.empty()) return false;
        for (const auto &part : util::split(host, '.')) {
            if (part.empty() || part.front() == '-' || part.back() == '-') return false;
            for (char c : part)
                if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) return false;
        }
    }
    return true;
}

namespace {

bool valid_tag(std::string_view t) {
    if (t.empty() || t.size() > 128) return false;
    auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    if (!word(t.front())) return false;
    for (char c : t)
        if (!(word(c) || c == '.' || c == '-')) return false;
    return true;
}

}  // namespace

util::Result<Reference> Reference::parse(std::string_view s, std::string_view default_registry) {
    auto bad = [&](std::string_view why) {
        return util::Error::msg(cat("image reference ", quote(s.substr(0, 300)), ": ", why));
    };
    if (s.empty()) return bad("empty");
    Reference ref;
    std::string_view rest = s;
    if (size_t at = rest.find('@'); at != std::string_view::npos) {
        auto d = Digest::parse(rest.substr(at + 1));
        if (!d) return bad(d.error().context);
        ref.digest = *d;
        rest = rest.substr(0, at);
    }
    // A tag is after the last ':' that follows the last '/'.
    size_t slash = rest.rfind('/');
    size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
        ref.tag = std::string(rest.substr(colon + 1));
        if (!valid_tag(ref.tag)) return bad(cat("invalid tag ", quote(ref.tag)));
        rest = rest.substr(0, colon);
    }
    std::string_view first = rest.substr(0, rest.find('/'));
    bool has_registry = rest.find('/') != std::string_view::npos &&
                        (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
                         first == "localhost" || first.front() == '[');
    std::string_view path = rest;
    if (has_registry) {
        if (!valid_registry(first)) return bad(cat("invalid registry ", quote(first)));
        ref.registry = std::string(first);
        path = rest.substr(first.size() + 1);
    } else {
        if (default_registry.empty())
            return bad("no registry given (write it out, like localhost:5000/name, or configure a default registry)");
        if (!valid_registry(default_registry)) return bad(cat("invalid default registry ", quote(default_registry)));
        ref.registry = std::string(default_registry);
    }
    if (ref.registry == "index.docker.io" || ref.registry == "registry-1.docker.io") ref.registry = "docker.io";
    if (path.empty()) return bad("empty repository name");
    for (const auto &c : util::split(path, '/'))
        if (!valid_component(c))
            return bad(cat("invalid repository component ", quote(c), " (lowercase letters, digits and . _ -)"));
    ref.repository = std::string(path);
    if (ref.registry == "docker.io" && ref.repository.find('/') == std::string::npos)
        ref.repository = "library/" + ref.repository;
    if (ref.name().size() > 255) return bad("name longer than 255 characters");
    if (ref.tag.empty() && !ref.digest) ref.tag = "latest";
    return ref;
}

std::string Reference::str() const {
    std::string out = name();
    if (!tag.empty()) out += cat(':', tag);
    if (digest) out += cat('@', digest->str());
    return out;
}

}  // namespace img
