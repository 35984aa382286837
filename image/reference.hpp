// Image references: "registry[:port]/repo/path[:tag][@sha256:<hex>]".
//
// The grammar is docker/distribution's (lowercase path components joined by
// `.`, `_`, `__` or dashes; tags of up to 128 word characters). The first
// component is a registry when it contains a `.` or a `:` or is `localhost`.
// A short name ("busybox") has no registry: it is an error unless a default
// registry is configured, and only for docker.io is "library/" prepended, as
// docker does. A gateway should not silently pull from docker.io.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "image/digest.hpp"
#include "util/result.hpp"

namespace img {

struct Reference {
    std::string registry;    ///< "localhost:5000", "docker.io"
    std::string repository;  ///< "library/busybox"
    std::string tag;         ///< "latest" when neither tag nor digest was given; empty with a digest only
    std::optional<Digest> digest;

    /// Parses `s`. `default_registry` (empty: none) completes short names.
    static util::Result<Reference> parse(std::string_view s, std::string_view default_registry = "");
    /// registry/repository
    std::string name() const { return registry + "/" + repository; }
    /// The canonical form: name, then :tag and/or @digest.
    std::string str() const;
};

/// Is `r` a registry as references name it: host[:port] or [IPv6][:port]?
bool valid_registry(std::string_view r);

}  // namespace img
