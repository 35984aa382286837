// Small helpers fsck.cpp and gc.cpp share to scan the store's directories.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "image/digest.hpp"
#include "util/dir.hpp"
#include "util/flock.hpp"
#include "util/strings.hpp"

namespace img::scan {

/// The names in `dir`, sorted; none when it cannot be read (a scan covers what is there).
inline std::vector<std::string> list_dir(const std::string &dir) {
    return util::list_dir(dir).value_or(std::vector<std::string>{});
}

/// True when someone holds the flock at `path` (a writer at work).
using util::lock_busy;

inline std::optional<Digest> hex_digest(std::string_view hex) {
    auto d = Digest::parse(util::cat("sha256:", hex));
    if (!d) return std::nullopt;
    return *d;
}

}  // namespace img::scan
