// The fleet controller's TUF repository writer (`berth fleet init|release|
// refresh|rotate|delegate`, docs/fleet.md): plain files that any static web
// server serves, which berth's client (client.hpp) and other TUF clients
// (python-tuf, tuf-js) accept.
//
// Layout (consistent snapshots):
//   DIR/metadata/root.json, N.root.json   every root version, and the newest
//   DIR/metadata/timestamp.json           the only unversioned role
//   DIR/metadata/N.snapshot.json, N.targets.json, N.<delegated role>.json
//   DIR/targets/channels/<name>/<sha256>.manifest.json
//   DIR/fleet.json                        expiry periods (not served)
// Private keys are kept out of DIR, one PKCS#8 PEM file per key named by
// its key id: KEYS/{targets,snapshot,timestamp}/<keyid>.pem (online: release
// and refresh need them) and ROOT_KEYS/<keyid>.pem (offline: only init and
// rotate need them). KEYS defaults to DIR.keys, ROOT_KEYS to KEYS/root.
//
// Keys held elsewhere (rotate --pubkey) are recorded as <keyid>.external
// beside the key files; a change that they must sign is staged in
// DIR/staged (not served) until sign_staged gathers their thresholds.
//
// Every command loads the repository under a lock (DIR/.lock), makes its
// whole change in memory, checks it (signatures against the root it will
// publish, versions, the manifest), and only then writes: target files,
// delegated roles, targets, root, snapshot, and timestamp.json last, each
// through util::atomic_write_file. A refused command changes nothing; a
// crash leaves the old timestamp pointing at complete old metadata (new
// versioned files nobody references yet are harmless and overwritten by the
// next command), except that a new N.root.json may already be trusted by
// devices: open() goes on from the newest N.root.json, and refresh()
// re-signs what it no longer accepts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ota/tuf/metadata.hpp"
#include "ota/tuf/signer.hpp"
#include "util/fd.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace ota::tuf {

/// Where a repository and its keys are.
struct RepoPaths {
    std::string dir;
    std::string key_dir;       ///< empty: dir + ".keys"
    std::string root_key_dir;  ///< empty: key_dir + "/root"
};

/// The top-level roles, in the order they are signed.
inline constexpr const char *kTopRoles[] = {"root", "targets", "snapshot", "timestamp"};

/// Seconds each role's metadata stays valid after it is signed.
struct ExpiryPeriods {
    int64_t root = 365 * 86400;
    int64_t targets = 90 * 86400;  ///< also delegated roles
    int64_t snapshot = 7 * 86400;
    int64_t timestamp = 86400;

    int64_t of(std::string_view role) const;
    util::Status set(std::string_view role, int64_t seconds);
};

/// How many keys a role gets and how many must sign.
struct RoleKeys {
    unsigned keys = 1;
    unsigned threshold = 1;
};

struct InitOptions {
    KeyType key_type = KeyType::Ecdsa;
    std::map<std::string, RoleKeys> roles;  ///< top-level role -> keys; absent: one key, threshold 1
    ExpiryPeriods expiry;
};

struct RotateOptions {
    std::string role;  ///< a top-level role
    std::optional<KeyType> key_type;   ///< default: the type of the role's current first key
    std::optional<unsigned> keys;       ///< default: as many as now, at least the threshold
    std::optional<unsigned> threshold;  ///< default: as now
    /// Keys made elsewhere (an HSM-backed signer) instead of new ones: the
    /// new root lists them, and what they must sign waits for `sign`.
    std::vector<Key> public_keys{};
};

struct DelegateOptions {
    std::string role;  ///< [A-Za-z0-9._-], not a top-level role's name; with `succinct`, the bins' name prefix
    std::vector<std::string> paths;  ///< target path globs ("channels/team-a-*/*"); none with `succinct`
    std::vector<Key> keys;           ///< the team's public keys
    unsigned threshold = 1;
    bool terminating = false;
    /// The delegating role: "targets" (signed with the online targets keys)
    /// or a delegated role, signed with `from_keys` (a threshold of its
    /// keys), whose paths must contain `paths`.
    std::string from = "targets";
    std::vector<PrivateKey> from_keys{};
    /// TAP 15 hash bins: 2^succinct roles "<role>-<hex>" sharing `keys`,
    /// replacing every other delegation of `from`.
    std::optional<unsigned> succinct{};
    /// A threshold of the new role's (or bins') private keys: the role is
    /// signed now, empty, so that a client asked for a path it covers finds
    /// "not released" rather than a role missing from snapshot. Required
    /// with `succinct` (every path is some bin's).
    std::vector<PrivateKey> role_keys{};
};

struct RefreshResult {
    std::vector<std::string> resigned;  ///< "team-a 2", "snapshot 3", "timestamp 7", in signing order
    /// Roles that expire within the margin but cannot be re-signed here:
    /// root (only `rotate` with the offline root keys signs a new one) and
    /// delegated roles whose team keys were not given.
    std::vector<std::string> warnings;
};

/// "30d", "12h", "15m", "45s" -> seconds.
util::Result<int64_t> parse_duration(std::string_view s);

class Repository {
public:
    /// Creates a repository: DIR (which must not hold one), the keys of
    /// every top-level role, root version 1 and empty targets, snapshot and
    /// timestamp, all valid from `now`.
    static util::Status init(const RepoPaths &paths, const InitOptions &opts, int64_t now);
    /// Loads the repository of `paths.dir` (taking its lock until destroyed).
    static util::Result<Repository> open(const RepoPaths &paths);

    /// Publishes `manifest` (an update manifest, docs/update-manifest.md,
    /// whose version must be above the channel's current one) as target
    /// channels/<channel>/manifest.json. Into a delegated role's paths, it
    /// is signed with `role_keys` (a threshold of that role's keys); else by
    /// the targets keys. `into` names the delegated role instead of the
    /// keys choosing it: given without `role_keys`, the release is staged
    /// (pending()) until the role's keys, held by its team, sign it with
    /// sign_staged or add_staged_signature. `custom`, when an object, is the
    /// target's signed "custom" field: what the device's agent reads besides
    /// the manifest (docs/fleet-agent.md: "boards", "poll_interval_s").
    /// Returns the target path.
    util::Result<std::string> release(std::string_view channel, std::string_view manifest,
                                      const std::vector<PrivateKey> &role_keys, int64_t now,
                                      const util::json::Value &custom = {}, std::string_view into = {});
    /// Re-signs each of timestamp, snapshot and targets that expires within
    /// `within` of `now` (default: half its period), or whose signatures no
    /// longer meet the root's threshold (a rotation cut short), and each
    /// delegated role that expires within `within` (default: half the
    /// targets period) for which `team_keys` hold a threshold of its keys;
    /// a re-signed role re-signs those that name it.
    util::Result<RefreshResult> refresh(std::optional<int64_t> within, int64_t now,
                                        const std::vector<PrivateKey> &team_keys = {});
    /// New keys for a top-level role and a new root version listing them,
    /// signed by a threshold of the old root's keys and of the new one's;
    /// the roles the new keys sign are re-signed. Returns the new key ids.
    util::Result<std::vector<std::string>> rotate(const RotateOptions &opts, int64_t now);
    /// Adds signatures to the change that waits for them (pending()):
    /// each of `keys` signs the staged roles that list it. When every role
    /// then meets its thresholds, the change is published (snapshot and
    /// timestamp signed with the online keys as usual); else it stays
    /// staged with the signatures so far.
    util::Status sign_staged(const std::vector<PrivateKey> &keys, int64_t now);
    /// Drops the change that waits for signatures.
    util::Status discard_staged();
    /// The canonical bytes of staged role `role`'s `signed`: what an
    /// outside signer signs.
    util::Result<std::string> staged_payload(std::string_view role) const;
    /// Adds an outside signature (hex, as TUF lists it) to staged role
    /// `role`: kept under the id of the role's key it verifies with.
    util::Status add_staged_signature(std::string_view role, std::string_view sig_hex, int64_t now);
    /// Roles of the staged change still short of their threshold, as
    /// "ROLE (needs N more of KEYID, ...)"; empty when nothing is staged.
    const std::vector<std::string> &pending() const { return pending_; }
    /// Whether a change waits for signatures (DIR/staged).
    bool staged() const { return staged_; }

    /// Adds (or replaces) a delegation of top-level targets or of a
    /// delegated role (nested), or hash bins.
    util::Status delegate(const DelegateOptions &opts, int64_t now);

    const Root &root() const { return root_; }
    uint64_t version_of(std::string_view role) const;
    const std::string &key_dir() const { return key_dir_; }
    const std::string &root_key_dir() const { return root_key_dir_; }

private:
    struct Meta {
        util::json::Value signed_value;  ///< the `signed` object
        uint64_t version = 0;
        bool dirty = false;
        bool presigned = false;  ///< staged: version and expiry set, signatures gathering
        std::string bytes;  ///< the envelope as written (after commit: the new one)
    };

    explicit Repository(const RepoPaths &paths);
    util::Status load();
    /// sign_changes, then write_changes.
    util::Status commit(int64_t now);
    /// Bumps, signs and checks every changed role in memory.
    util::Status sign_changes(int64_t now);
    /// Writes what sign_changes made, timestamp.json last.
    util::Status write_changes();
    /// Refuses a command while a change waits for signatures (but sign_staged's).
    util::Status not_staged() const;
    /// The ids of keys held elsewhere for the keys in `dir` (on disk and new).
    util::Result<std::set<std::string>> external_for(const std::string &dir) const;
    /// Writes the new key files (private keys, `.external` markers).
    util::Status write_keys();
    /// Writes what sign_changes signed so far under DIR/staged (pending_ set).
    util::Status write_staged();
    /// Loads DIR/staged over the published metadata, if there is one.
    util::Status load_staged();
    /// Signs `m` as `role` with `keys` (presigned: adds to its signatures)
    /// and checks its threshold against `keys_of`/`role_of`. Returns whether
    /// it is met; short only for want of `external` keys (then noted in
    /// pending_), else an error.
    util::Result<bool> sign_role(Meta &m, std::string_view role, std::string_view what, const std::vector<PrivateKey> &keys,
                                 const std::map<std::string, Key> &keys_of, const Role &role_of,
                                 const std::set<std::string> &external, int64_t now);
    Meta *staged_meta(std::string_view role);
    util::Result<std::vector<PrivateKey>> keys_for(std::string_view role) const;
    util::Result<std::string> sign(const util::json::Value &signed_value, const std::vector<PrivateKey> &keys) const;
    util::Result<Targets> parsed_targets(const Meta &m, std::string_view what) const;
    /// A role trusted for a path, as a client's search reaches it.
    struct Reached {
        std::string name;
        Role role;  ///< as its delegator lists it (for "targets": the root's)
    };
    /// The roles a client searches for `path`, in its order (pre-order
    /// depth first from targets, stopping at a terminating delegation).
    util::Result<std::vector<Reached>> search(std::string_view path) const;
    /// The role that delegates `name`, its delegations, and the role as listed there.
    struct Delegator {
        std::string name;
        Delegations delegations;
        Role role;                           ///< the delegated role as listed there
        std::optional<DelegatedRole> listed;  ///< its entry (none for a hash bin)
    };
    util::Result<std::optional<Delegator>> delegator_of(std::string_view name) const;
    /// The metadata of role `name` ("targets" or delegated), if it has any.
    const Meta *meta_of(std::string_view name) const;
    util::Result<std::optional<uint64_t>> current_manifest_version(std::string_view path) const;

    std::string dir_, key_dir_, root_key_dir_;
    util::UniqueFd lock_;
    ExpiryPeriods expiry_;
    Root root_;  ///< parsed root_meta_ (the one being published)
    Root old_root_;  ///< the root before this command: signs a new root version
    bool root_json_stale_ = false;  ///< a newer N.root.json than root.json was found: write root.json
    Meta root_meta_, targets_, snapshot_, timestamp_;
    std::map<std::string, Meta> delegated_;
    std::map<std::string, std::vector<PrivateKey>> delegated_signers_;  ///< keys given for dirty delegated roles
    std::vector<std::pair<std::string, std::string>> new_target_files_;  ///< (path under DIR/targets, bytes)
    std::vector<std::pair<std::string, PrivateKey>> new_keys_;  ///< (directory, key) to write before the metadata
    std::vector<std::string> retired_keys_;  ///< key files to rename *.retired after the commit
    std::vector<std::pair<std::string, std::string>> new_external_;  ///< (path, key) markers of keys held elsewhere
    std::vector<PrivateKey> extra_signers_;  ///< sign_staged's keys
    std::vector<std::string> pending_;       ///< see pending()
    bool staged_ = false;                    ///< DIR/staged was loaded
    bool signing_ = false;                   ///< commit() completes the staged change
};

}  // namespace ota::tuf
