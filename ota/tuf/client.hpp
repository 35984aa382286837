// The TUF 1.0.x client workflow (specification §5, "Detailed client
// workflow") over a metadata directory and a Fetcher.
//
// The metadata directory holds the trusted metadata as the exact bytes
// received, unversioned: root.json (pinned on the device, installed with the
// board image), timestamp.json, snapshot.json, targets.json and one
// <percent-encoded role>.json per delegated role. refresh() walks the root
// chain (N+1.root.json until not found, each new root signed by a threshold
// of the old root's keys and of its own), checks the final root's expiry,
// drops timestamp and snapshot when their keys rotated (fast-forward
// recovery), then updates timestamp -> snapshot -> targets, each checked for
// signatures, version (no rollback, snapshot meta versions never go back),
// length and hashes from the referencing metadata, and expiry against the
// clock at the start of the update. Delegated roles are loaded on demand by
// find_target's depth-first preorder walk. Every download is capped.
//
// Each public operation holds an exclusive flock(2) on the metadata
// directory, so two processes on one directory (the daemon's agent and an
// operator's `berth tuf`) take turns instead of mixing their updates.
#pragma once

#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "ota/tuf/fetcher.hpp"
#include "ota/tuf/metadata.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace ota::tuf {

struct ClientConfig {
    size_t root_max_bytes = 512 << 10;
    size_t timestamp_max_bytes = 16 << 10;
    size_t snapshot_max_bytes = 2 << 20;    ///< when timestamp gives no length
    size_t targets_max_bytes = 5 << 20;     ///< when snapshot gives no length
    size_t target_max_bytes = 64 << 20;     ///< a target file's length is also checked against its metadata
    unsigned max_root_rotations = 256;
    unsigned max_delegations = 32;          ///< roles visited by one find_target
    /// Fetch timestamp.json conditionally: its HTTP validators (ETag,
    /// Last-Modified) are kept beside it in `timestamp.validators`, and a
    /// 304 answer reuses the stored bytes, still checked for expiry. A poll
    /// that finds nothing new then costs one small exchange: the timestamp
    /// is asked for first, and the `N+1.root.json` probe is made only when
    /// it changed (docs/tuf.md: a root rotation reaches such a client with
    /// the next timestamp, which `berth fleet rotate` always re-signs).
    bool conditional_timestamp = false;
    /// The clock expiry is checked against: glibc's time() by default (so
    /// faketime works), a fixed instant in tests.
    std::function<int64_t()> clock = [] { return int64_t(time(nullptr)); };
};

/// Writes `root_bytes` as the trusted root.json of `metadata_dir` (created
/// when missing) after checking it is root metadata signed by a threshold of
/// its own root keys. Expiry is not checked: an old pinned root still starts
/// the rotation chain.
util::Status init_trusted_root(const std::string &metadata_dir, std::string_view root_bytes);

/// The target a device following `channel` reads its update manifest from:
/// "channels/<channel>/manifest.json" (DESIGN.md, "Formats"). A channel name
/// is one path segment of [A-Za-z0-9._-], not "." or "..".
util::Result<std::string> channel_target(std::string_view channel);

class Client {
public:
    /// Loads the trusted root of `metadata_dir`. `metadata_url` is the
    /// repository's metadata base (no trailing slash needed).
    static util::Result<Client> open(const std::string &metadata_dir, std::string metadata_url, Fetcher &fetcher,
                                     ClientConfig config = {});

    /// The whole top-level update: root, timestamp, snapshot, targets.
    util::Status refresh();
    /// The target's metadata from the highest-priority role trusted for it
    /// (refreshing first if refresh() has not run); nullopt when no role
    /// lists it.
    util::Result<std::optional<TargetFile>> find_target(std::string_view path);
    /// The file name a target is stored under in a target directory.
    static std::string target_file_name(const TargetFile &t) { return percent_encode(t.path); }
    /// Whether `target_dir` already holds the target with its length and hashes.
    util::Result<bool> is_cached(const TargetFile &t, const std::string &target_dir);
    /// Downloads the target from `target_base_url` (hash-prefixed when the
    /// root says consistent_snapshot), checks length and every hash, and
    /// writes it to `target_dir` atomically.
    util::Status download_target(const TargetFile &t, const std::string &target_base_url, const std::string &target_dir);

    /// The verified content of target `path`: find_target, then the copy in
    /// `target_dir` when it still matches, else a download_target. nullopt
    /// when no role lists the path.
    util::Result<std::optional<std::string>> get_target(std::string_view path, const std::string &target_base_url,
                                                        const std::string &target_dir);

    const Root &root() const { return root_; }
    const std::optional<Timestamp> &timestamp() const { return timestamp_; }
    const std::optional<Snapshot> &snapshot() const { return snapshot_; }

private:
    Client(util::UniqueFd dir, std::string url, Fetcher &f, ClientConfig c)
        : dir_(std::move(dir)), url_(std::move(url)), fetcher_(&f), config_(std::move(c)) {}

    util::Status update_root();
    /// Fetches top-level role `type` from `file` (at most `ref`'s length,
    /// else `max`), checks it against `ref` (length, hashes) when given,
    /// parses it and checks the root's threshold for it; `body` gets the bytes.
    template <typename T>
    util::Result<T> fetch_top(const std::string &file, const MetaFile *ref, size_t max, const char *type,
                              util::Result<T> (*parse)(const Envelope &), std::string &body);
    /// fetch_top's checks of `body`, fetched from `url`.
    template <typename T>
    util::Result<T> check_top(const std::string &url, std::optional<std::string> fetched, const MetaFile *ref,
                              const char *type, util::Result<T> (*parse)(const Envelope &), std::string &body);
    /// The validators stored for the trusted timestamp's exact bytes (empty
    /// when none are, or they were stored for other bytes).
    Validators stored_validators();
    util::Status store_validators(const Validators &v, std::string_view bytes);
    void load_local_timestamp();
    util::Status update_timestamp();
    /// The conditional timestamp fetch made before update_root (see
    /// conditional_timestamp); update_timestamp uses it instead of fetching.
    std::optional<Conditional> prefetched_timestamp_;
    Validators prefetched_with_;
    void load_local_snapshot();
    util::Status update_snapshot();
    /// Loads delegated (or top-level) targets role `name`, signed by `keys`/`role`.
    util::Result<const Targets *> load_targets(const std::string &name, const std::map<std::string, Key> &keys,
                                               const Role &role);
    util::Status check_expiry(const Common &c, std::string_view what) const;
    util::Status persist(const std::string &name, std::string_view bytes);
    util::Result<std::optional<std::string>> read_local(const std::string &name, size_t max);
    std::string metadata_url(std::string_view file) const;

    util::UniqueFd dir_;
    std::string url_;
    Fetcher *fetcher_;
    ClientConfig config_;
    int64_t start_ = 0;  ///< the update's start: what expiry is checked against
    bool refreshed_ = false;
    int lock_depth_ = 0;  ///< public operations in progress; the flock is held while > 0

    /// Holds the directory's flock for one public operation; nested ones share it.
    class OpLock {
    public:
        explicit OpLock(Client &c) : c_(c) {}
        util::Status take();
        ~OpLock();
        OpLock(const OpLock &) = delete;
        OpLock &operator=(const OpLock &) = delete;

    private:
        Client &c_;
    };
    Root root_;
    std::optional<Timestamp> timestamp_;
    std::string timestamp_bytes_;  ///< timestamp_'s bytes as stored (when conditional_timestamp)
    std::optional<Snapshot> snapshot_;
    bool snapshot_checked_ = false;  ///< snapshot_ is the one timestamp names, unexpired
    std::map<std::string, Targets> targets_;  ///< roles loaded and verified in this refresh
};

}  // namespace ota::tuf
