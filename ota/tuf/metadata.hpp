// TUF 1.0 metadata: the signed envelope and the four top-level roles plus
// delegated targets roles, parsed from the exact bytes received into plain
// structs, and the threshold check of a role's signatures.
//
// Parsing is strict where the spec is (types, required fields, spec_version
// 1.x, integer versions >= 1, "YYYY-MM-DDTHH:MM:SSZ" expiry, no duplicate key
// ids in a role, paths or path_hash_prefixes but not both) and lenient where
// it asks to be (unknown fields are kept in the signed bytes and ignored).
// Errors are one line naming the role and the field.
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ota/tuf/crypto.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace ota::tuf {

/// (algorithm, hex digest) in file order: the first is the one a consistent
/// snapshot names target files with.
using Hashes = std::vector<std::pair<std::string, std::string>>;

struct Role {
    std::vector<std::string> keyids;
    uint64_t threshold = 1;
};

/// A METAFILES entry of timestamp or snapshot.
struct MetaFile {
    uint64_t version = 0;
    std::optional<uint64_t> length;
    Hashes hashes;
};

struct TargetFile {
    std::string path;
    uint64_t length = 0;
    Hashes hashes;
    util::json::Value custom;  ///< the target's "custom" object as signed; null when absent
};

struct DelegatedRole {
    std::string name;
    Role role;
    bool terminating = false;
    std::optional<std::vector<std::string>> paths;
    std::optional<std::vector<std::string>> path_hash_prefixes;

    /// Whether this role is trusted for `target_path` (spec §5.6.7.x: paths
    /// compared segment by segment with shell globs, or the SHA-256 of the
    /// path against the prefixes).
    util::Result<bool> covers(std::string_view target_path) const;
};

/// TAP 15 hash bins: 2^bit_length roles "<name_prefix>-<bin>", all with
/// the same keys and threshold; a target belongs to the bin numbered by the
/// first bit_length bits of the SHA-256 of its path, in zero-padded lower
/// hex as wide as the last bin's number. Bins are terminating.
struct SuccinctRoles {
    Role role;
    unsigned bit_length = 1;  ///< 1..32
    std::string name_prefix;

    util::Result<std::string> bin_for(std::string_view target_path) const;
    std::string bin_name(uint32_t bin) const;
    uint32_t bins() const { return bit_length >= 32 ? 0xffffffffu : (1u << bit_length) - 1; }  ///< the last bin's number
};

/// A role that `roles_for` found trusted for a path.
struct RoleFor {
    std::string name;
    const Role *role = nullptr;
    bool terminating = false;
};

struct Delegations {
    std::map<std::string, Key> keys;
    std::vector<DelegatedRole> roles;  ///< in priority order (empty with succinct)
    std::optional<SuccinctRoles> succinct;

    /// The roles trusted for `target_path`, in the order a client searches
    /// them, up to and including the first terminating one.
    util::Result<std::vector<RoleFor>> roles_for(std::string_view target_path) const;
    /// The delegation of role `name` (a listed role or a bin), if any.
    std::optional<RoleFor> find(std::string_view name) const;
};

struct Common {
    std::string type;
    uint64_t version = 0;
    int64_t expires = 0;  ///< unix seconds (int64: past 2038 on 32-bit time_t)
};

struct Root : Common {
    bool consistent_snapshot = false;
    std::map<std::string, Key> keys;
    std::map<std::string, Role> roles;  ///< root, timestamp, snapshot, targets
};

struct Timestamp : Common {
    MetaFile snapshot_meta;
};

struct Snapshot : Common {
    std::map<std::string, MetaFile> meta;  ///< "targets.json", "<role>.json"
};

struct Targets : Common {
    std::map<std::string, TargetFile> targets;
    std::optional<Delegations> delegations;
};

/// The envelope: the canonical bytes of `signed` (what signatures cover),
/// the signatures as listed, and the `signed` value itself.
struct Envelope {
    util::json::Value signed_value;
    std::string canonical_signed;
    std::vector<std::pair<std::string, std::string>> signatures;  ///< (keyid, hex sig)
};

/// Parses `bytes` as metadata of `type` ("root", "timestamp", ...); `what`
/// names it in errors ("timestamp", "delegated role `a`"). Two signatures
/// with one key id are refused.
util::Result<Envelope> parse_envelope(std::string_view bytes, std::string_view type, std::string_view what);
util::Result<Root> parse_root(const Envelope &e);
util::Result<Timestamp> parse_timestamp(const Envelope &e);
util::Result<Snapshot> parse_snapshot(const Envelope &e);
util::Result<Targets> parse_targets(const Envelope &e, std::string_view what);

/// Checks that `e` carries valid signatures of at least `role.threshold`
/// distinct keys of `role` (a key listed under two ids, or signing twice,
/// counts once). The error names `what` and how many verified.
util::Status verify_threshold(const Envelope &e, const std::map<std::string, Key> &keys, const Role &role,
                              std::string_view what);

/// "2030-01-01T00:00:00Z" -> seconds since the epoch.
util::Result<int64_t> parse_expiry(std::string_view s);
/// The same form back, for messages.
std::string format_expiry(int64_t t);

/// Checks a body against a METAFILES/TARGETS entry: exact `length` when
/// given and every hash (an unknown algorithm is a mismatch).
util::Status check_length_and_hashes(std::string_view body, std::optional<uint64_t> length, const Hashes &hashes,
                                     std::string_view what);

}  // namespace ota::tuf
