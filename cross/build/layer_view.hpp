// Paths looked up in a stage's stacked layers (the store's extracted
// layers, as overlayfs would stack them) without assembling a rootfs: where
// COPY's destination really is. A base whose /bin is a symlink to usr/bin
// (Debian's merged /usr) must get `COPY tool /bin/tool` in usr/bin, not a
// new /bin directory hiding the symlink; `COPY tool /usr/bin` into an
// existing directory puts the file in it, as Docker and podman do.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace build {

struct ResolvedDest {
    std::string path;    ///< absolute, with every symlinked directory on the way replaced by its target
    bool is_dir = false; ///< the path is an existing directory in the stack
};

/// Resolves `abs_path` in the layers rooted at `roots` (topmost first):
/// each component is looked up from the top layer down (a whiteout hides
/// what is below; a component that is a symlink is replaced by its target,
/// absolute ones from the stack's root, never outside it). The last
/// component is followed only when it leads to a directory. More than 40
/// symlinks is ELOOP.
util::Result<ResolvedDest> resolve_in_layers(const std::vector<std::string> &roots, std::string_view abs_path);

/// The content of the regular file at `abs_path` in the stack (symlinked
/// directories on the way followed), at most `limit` bytes; nullopt when
/// there is none. For /etc/passwd and /etc/group without a rootfs.
util::Result<std::optional<std::string>> read_in_layers(const std::vector<std::string> &roots, std::string_view abs_path,
                                                        size_t limit);

}  // namespace build
