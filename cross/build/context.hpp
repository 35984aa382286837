// The sources of COPY and ADD: the build context (with its
// .containerignore or .dockerignore) or another stage's or image's root,
// and the staging of what an instruction copies into a layer tree.
//
// The context is untrusted input to the build: nothing outside it is ever
// read. A source path that climbs out (`../x`), a source that is a symlink
// leading out, and a symlink inside a copied directory whose target lies
// outside the context are refused, naming the path; lookups go through
// util::open_in_root(Scope::Beneath), so a symlink swapped in while we look
// cannot lead out either.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace build {

/// Docker's ignore-file rules: patterns with `*`, `?`, `[...]`, `**`, and
/// `!` exceptions, the last matching rule deciding; a pattern matching a
/// directory also covers what is under it.
class IgnoreRules {
public:
    static IgnoreRules parse(std::string_view text);
    bool ignored(std::string_view rel_path) const;
    bool empty() const { return rules_.empty(); }
    /// Whether some `!` rule may bring back what is under an ignored directory.
    bool has_exceptions() const;

private:
    struct Rule {
        std::string pattern;
        bool negate = false;
    };
    std::vector<Rule> rules_;
};

/// Where COPY reads from: a directory, and whether it is the context (ignore
/// rules apply, nothing may point out) or a stage's root (absolute symlinks
/// resolve inside it).
struct SourceRoot {
    util::UniqueFd fd;
    std::string what;     ///< "the build context", "stage builder"
    bool context = false;
    IgnoreRules ignore;
};

/// Opens the context directory and reads .containerignore (else .dockerignore).
util::Result<SourceRoot> open_context(const std::string &dir);
/// A stage's or image's flattened root as a source.
util::Result<SourceRoot> open_root(const std::string &dir, std::string what);

struct CopySpec {
    std::vector<std::string> sources;  ///< expanded; relative to the root
    std::string dest;                  ///< absolute in the image (WORKDIR applied)
    std::optional<uid_t> uid;          ///< --chown; else 0
    std::optional<gid_t> gid;
    std::optional<mode_t> mode;        ///< --chmod
    bool unpack_archives = false;      ///< ADD: local tar archives are unpacked at dest
    int64_t epoch = 0;                 ///< mtimes past it count as it (write_layer clamps them so)
};

/// Copies what `spec` names from `src` into `tree_dir` (the layer's tree,
/// created empty by the caller), with the parent directories of the
/// destination. Returns a digest of what was copied (names, modes, owners,
/// contents) for the cache key.
util::Result<std::string> stage_copy(const SourceRoot &src, const CopySpec &spec, const std::string &tree_dir);

/// ADD's URL source: downloads `url` (http or https) into the tree as the
/// file `dest` (absolute in the image; a trailing '/' takes the URL's last
/// path component as the name), owned as `spec` says, mode 0600 unless
/// --chmod, its time the epoch. With `checksum` ("sha256:<hex>") the
/// download must hash to it, or nothing is staged.
util::Status stage_url(const std::string &url, const std::optional<std::string> &checksum, const CopySpec &spec,
                       const std::string &tree_dir);

/// A digest of a staged tree's names, types, modes, owners, mtimes (clamped
/// to `epoch`) and contents: what its layer holds.
util::Result<std::string> tree_digest(const std::string &tree_dir, int64_t epoch);

/// Unpacks the tar archive (plain, gzip, bzip2, xz, zstd as libarchive reads
/// them) at `archive_fd` into `dest_fd`, through image/'s safe unpacker.
util::Status unpack_archive(int archive_fd, int dest_fd);

/// Whether the file at `fd` starts like a tar archive, compressed or not.
bool looks_like_archive(int fd);

}  // namespace build
