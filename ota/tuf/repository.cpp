// The TUF repository writer of repository.hpp: loading the published
// metadata chain (timestamp -> snapshot -> targets -> delegated roles), the
// in-memory changes of each command, and commit(), which bumps, signs,
// checks and then writes the changed roles in the order clients read them
// backwards (timestamp.json last).
#include "ota/tuf/repository.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "ota/manifest.hpp"
#include "ota/tuf/canonical.hpp"
#include "ota/tuf/client.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/flock.hpp"
#include "util/strings.hpp"

namespace ota::tuf {
namespace {

namespace json = util::json;

constexpr const char *kSpecVersion = "1.0.31";
constexpr size_t kMetadataMax = 16 << 20;
constexpr size_t kManifestMax = 4 << 20;
/// 1024 bins at most: snapshot lists each (~150 bytes) and every device downloads it.
constexpr unsigned kMaxBinBits = 10;

bool is_top_role(std::string_view r) {
    return std::find(std::begin(kTopRoles), std::end(kTopRoles), r) != std::end(kTopRoles);
}

/// A delegated role's name: one file-name-safe segment, so its metadata
/// file name needs no percent-encoding.
util::Status check_role_name(std::string_view name) {
    bool ok = !name.empty() && name != "." && name != ".." && !is_top_role(name);
    for (char c : name)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-');
    if (!ok)
        return util::Error::msg(util::cat("role name ", util::quote(name),
                                          " is not one segment of [A-Za-z0-9._-] other than a top-level role"));
    return util::ok();
}

json::Value role_json(const std::vector<std::string> &keyids, unsigned threshold) {
    json::Value r = json::Value::object();
    r["keyids"] = keyids;
    r["threshold"] = threshold;
    return r;
}

json::Value empty_targets() {
    json::Value s = json::Value::object();
    s["_type"] = "targets";
    s["spec_version"] = kSpecVersion;
    s["version"] = 1;  // until commit() sets the version and expiry it is signed with
    s["expires"] = format_expiry(0);
    s["targets"] = json::Value::object();
    return s;
}

util::Result<Envelope> envelope_of(const json::Value &signed_value) {
    Envelope e;
    e.signed_value = signed_value;
    e.canonical_signed = TRY(canonical_json(signed_value));
    return e;
}

/// A METAFILES entry: version, length and sha256 of the bytes.
util::Result<json::Value> meta_entry(uint64_t version, std::string_view bytes) {
    json::Value m = json::Value::object();
    m["version"] = version;
    m["length"] = bytes.size();
    m["hashes"] = json::Value::object();
    m["hashes"]["sha256"] = TRY(hash_hex("sha256", bytes));
    return m;
}

/// The private keys in `dir` (every *.pem; none when the directory is missing).
util::Result<std::vector<PrivateKey>> read_keys(const std::string &dir) {
    std::vector<PrivateKey> out;
    auto names = util::list_dir(dir);
    if (!names.ok()) {
        if (names.error().code == ENOENT) return out;
        return std::move(names).error();
    }
    for (const auto &n : names.value()) {
        if (!n.ends_with(".pem")) continue;
        auto path = util::path_join(dir, n);
        auto pem = TRY(util::read_file(path, 1 << 20));
        out.push_back(TRY_CTX(PrivateKey::from_pem(pem), util::cat("key ", util::quote(path))));
    }
    return out;
}

util::Result<KeyType> type_of_key(const Key &k) {
    if (k.keytype == "ecdsa" || k.keytype == "ecdsa-sha2-nistp256") return KeyType::Ecdsa;
    return parse_key_type(k.keytype);
}

bool has_key(const Role &r, const std::string &keyid) {
    return std::find(r.keyids.begin(), r.keyids.end(), keyid) != r.keyids.end();
}

/// The distinct keys of `given` that are keys of role `r`.
std::vector<PrivateKey> role_signers(const Role &r, const std::vector<PrivateKey> &given) {
    std::set<std::string> ids;
    std::vector<PrivateKey> out;
    for (const auto &k : given)
        if (has_key(r, k.keyid()) && ids.insert(k.keyid()).second) out.push_back(k);
    return out;
}

/// `given` as signers of role `name`: every key one of its keys, and at least its threshold.
util::Result<std::vector<PrivateKey>> signers_of(std::string_view name, const Role &r, const std::vector<PrivateKey> &given) {
    for (const auto &k : given)
        if (!has_key(r, k.keyid()))
            return util::Error::msg(util::cat("key ", k.keyid().substr(0, 16), " is not a key of role ", util::quote(name)));
    auto signers = role_signers(r, given);
    if (signers.size() < r.threshold)
        return util::Error::msg(util::cat("role ", util::quote(name), " needs ", r.threshold, " keys, ", signers.size(), " given"));
    return signers;
}

/// The key ids of keys held elsewhere (an HSM-backed signer): `<keyid>.external`
/// files in `dir`, each holding the public key, written by `rotate --pubkey`.
util::Result<std::set<std::string>> external_keys(const std::string &dir) {
    std::set<std::string> out;
    auto names = util::list_dir(dir);
    if (!names.ok()) {
        if (names.error().code == ENOENT) return out;
        return std::move(names).error();
    }
    for (const auto &n : names.value())
        if (n.ends_with(".external")) out.insert(n.substr(0, n.size() - 9));
    return out;
}

/// The role a metadata file of `name` holds.
std::string_view type_of_role(std::string_view name) {
    return name == "root" || name == "snapshot" || name == "timestamp" ? name : std::string_view("targets");
}

bool has_glob(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

/// Whether every path glob `inner` matches is matched by glob `outer`, as
/// far as can be shown segment by segment: `*`, the same text, a literal
/// that `outer` matches, or a literal prefix before `outer`'s only `*`.
bool glob_within(std::string_view inner, std::string_view outer) {
    auto in = util::split(inner, '/'), out = util::split(outer, '/');
    if (in.size() != out.size()) return false;
    for (size_t i = 0; i < in.size(); i++) {
        const std::string &a = in[i], &b = out[i];
        if (b == "*" || a == b) continue;
        if (!has_glob(a) && fnmatch(b.c_str(), a.c_str(), FNM_NOESCAPE) == 0) continue;
        std::string_view prefix(b);
        prefix.remove_suffix(1);
        if (b.ends_with('*') && !has_glob(prefix) && std::string_view(a).substr(0, a.find_first_of("*?[")).starts_with(prefix))
            continue;
        return false;
    }
    return true;
}

/// The file a target path is stored in under DIR/targets: its sha256 before its base name.
std::string hashed_target_file(std::string_view path, std::string_view sha256) {
    auto slash = path.rfind('/');
    if (slash == std::string_view::npos) return util::cat(sha256, ".", path);
    return util::cat(path.substr(0, slash + 1), sha256, ".", path.substr(slash + 1));
}

}  // namespace

int64_t ExpiryPeriods::of(std::string_view role) const {
    if (role == "root") return root;
    if (role == "snapshot") return snapshot;
    if (role == "timestamp") return timestamp;
    return targets;
}

util::Status ExpiryPeriods::set(std::string_view role, int64_t seconds) {
    if (seconds <= 0) return util::Error::msg(util::cat("expiry of ", role, " must be positive"));
    if (role == "root") root = seconds;
    else if (role == "targets") targets = seconds;
    else if (role == "snapshot") snapshot = seconds;
    else if (role == "timestamp") timestamp = seconds;
    else return util::Error::msg(util::cat("unknown role ", util::quote(role), " (root, targets, snapshot or timestamp)"));
    return util::ok();
}

util::Result<int64_t> parse_duration(std::string_view s) {
    if (s.size() >= 2) {
        int64_t unit = 0;
        switch (s.back()) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        }
        auto n = util::parse_int<int64_t>(s.substr(0, s.size() - 1));
        if (unit && n && *n > 0 && *n <= INT64_C(100000) * 86400 / unit) return *n * unit;
    }
    return util::Error::msg(util::cat("duration ", util::quote(s), " is not a positive number with s, m, h or d"));
}

uint64_t Repository::version_of(std::string_view role) const {
    if (role == "root") return root_meta_.version;
    if (role == "targets") return targets_.version;
    if (role == "snapshot") return snapshot_.version;
    if (role == "timestamp") return timestamp_.version;
    auto it = delegated_.find(std::string(role));
    return it == delegated_.end() ? 0 : it->second.version;
}

Repository::Repository(const RepoPaths &paths)
    : dir_(paths.dir), key_dir_(paths.key_dir.empty() ? paths.dir + ".keys" : paths.key_dir),
      root_key_dir_(paths.root_key_dir.empty() ? util::path_join(key_dir_, "root") : paths.root_key_dir) {}

util::Status Repository::init(const RepoPaths &paths, const InitOptions &opts, int64_t now) {
    Repository r(paths);
    r.expiry_ = opts.expiry;
    if (util::path_exists(util::path_join(paths.dir, "metadata")))
        return util::Error::msg(util::cat(util::quote(paths.dir), " already holds a repository (metadata/)"));
    for (const auto &[role, _] : opts.roles)
        if (!is_top_role(role))
            return util::Error::msg(util::cat("unknown role ", util::quote(role), " (root, targets, snapshot or timestamp)"));

    json::Value root = json::Value::object();
    root["_type"] = "root";
    root["spec_version"] = kSpecVersion;
    root["version"] = 1;
    root["expires"] = format_expiry(0);
    root["consistent_snapshot"] = true;
    root["keys"] = json::Value::object();
    root["roles"] = json::Value::object();
    for (const char *role : kTopRoles) {
        RoleKeys rk;
        if (auto it = opts.roles.find(role); it != opts.roles.end()) rk = it->second;
        if (rk.threshold < 1 || rk.keys < rk.threshold || rk.keys > 16)
            return util::Error::msg(util::cat("role ", role, ": threshold ", rk.threshold, " of ", rk.keys,
                                              " keys (need 1 <= threshold <= keys <= 16)"));
        std::vector<std::string> ids;
        for (unsigned i = 0; i < rk.keys; i++) {
            auto key = TRY(PrivateKey::generate(opts.key_type));
            root["keys"][key.keyid()] = key_json(key.public_key());
            ids.push_back(key.keyid());
            r.new_keys_.emplace_back(std::string(role) == "root" ? r.root_key_dir_ : util::path_join(r.key_dir_, role),
                                     std::move(key));
        }
        root["roles"][role] = role_json(ids, rk.threshold);
    }
    r.root_meta_.signed_value = root;
    r.root_meta_.dirty = true;
    r.root_ = TRY(parse_root(TRY(envelope_of(root))));
    r.targets_.signed_value = empty_targets();
    r.targets_.dirty = true;

    TRY(r.sign_changes(now));
    TRY(util::mkdir_p(util::path_join(paths.dir, "metadata")));
    TRY(util::mkdir_p(util::path_join(paths.dir, "targets")));
    r.lock_ = TRY(util::lock_file(util::path_join(paths.dir, ".lock"), LOCK_EX));
    json::Value config = json::Value::object();
    config["expires"] = json::Value::object();
    for (const char *role : kTopRoles) config["expires"][role] = r.expiry_.of(role);
    TRY(util::atomic_write_file(util::path_join(paths.dir, "fleet.json"), json::dump(config, 2) + "\n"));
    return r.write_changes();
}

util::Result<Repository> Repository::open(const RepoPaths &paths) {
    Repository r(paths);
    if (!util::path_exists(util::path_join(paths.dir, "metadata/root.json")))
        return util::Error::msg(util::cat(util::quote(paths.dir), " is not a fleet repository (no metadata/root.json)"));
    r.lock_ = TRY(util::lock_file(util::path_join(paths.dir, ".lock"), LOCK_EX));
    TRY(r.load());
    TRY(r.load_staged());
    return r;
}

util::Status Repository::load() {
    auto config_path = util::path_join(dir_, "fleet.json");
    if (util::path_exists(config_path)) {
        auto config = TRY(json::parse(TRY(util::read_file(config_path, 1 << 20)), config_path));
        if (auto e = TRY(json::opt_object(config, "expires", "fleet.json")))
            for (const char *role : kTopRoles)
                if (auto s = TRY(json::opt_int(*e, role, "fleet.json expires"))) TRY(expiry_.set(role, *s));
    }
    auto meta_dir = util::path_join(dir_, "metadata");
    auto read = [&](const std::string &name, std::string_view type, Meta &m) -> util::Result<Envelope> {
        m.bytes = TRY(util::read_file(util::path_join(meta_dir, name), kMetadataMax));
        auto e = TRY(parse_envelope(m.bytes, type, name));
        m.signed_value = e.signed_value;
        m.version = TRY(json::opt_uint(e.signed_value, "version", name)).value_or(0);
        return e;
    };
    root_ = TRY(parse_root(TRY(read("root.json", "root", root_meta_))));
    // A command cut short between N.root.json and root.json: devices may
    // already trust version N, so go on from it.
    for (;;) {
        auto next = util::cat(root_meta_.version + 1, ".root.json");
        if (!util::path_exists(util::path_join(meta_dir, next))) break;
        root_ = TRY(parse_root(TRY(read(next, "root", root_meta_))));
        root_json_stale_ = true;
    }
    old_root_ = root_;
    auto ts = TRY(parse_timestamp(TRY(read("timestamp.json", "timestamp", timestamp_))));
    auto snap = TRY(parse_snapshot(TRY(read(util::cat(ts.snapshot_meta.version, ".snapshot.json"), "snapshot", snapshot_))));
    for (const auto &[file, mf] : snap.meta) {
        if (!file.ends_with(".json")) continue;
        auto role = file.substr(0, file.size() - 5);
        if (role != "targets") TRY_CTX(check_role_name(role), "snapshot");
        auto name = util::cat(mf.version, ".", file);
        if (role == "targets") TRY(read(name, "targets", targets_));
        else TRY(read(name, "targets", delegated_[role]));
    }
    if (targets_.version == 0) return util::Error::msg("snapshot does not name targets.json");
    return util::ok();
}

util::Result<std::vector<PrivateKey>> Repository::keys_for(std::string_view role) const {
    std::vector<std::string> keyids;
    if (role == "root") {
        // A new root version is signed by the old root's keys and its own.
        keyids = old_root_.roles.count("root") ? old_root_.roles.at("root").keyids : std::vector<std::string>{};
        for (const auto &id : root_.roles.at("root").keyids) keyids.push_back(id);
    } else {
        keyids = root_.roles.at(std::string(role)).keyids;
    }
    auto dir = role == "root" ? root_key_dir_ : util::path_join(key_dir_, role);
    auto found = TRY(read_keys(dir));
    for (const auto &[d, k] : new_keys_)
        if (d == dir) found.push_back(k);
    std::vector<PrivateKey> out;
    std::set<std::string> seen;
    for (auto &k : found)
        if (std::find(keyids.begin(), keyids.end(), k.keyid()) != keyids.end() && seen.insert(k.keyid()).second)
            out.push_back(std::move(k));
    return out;
}

util::Result<std::string> Repository::sign(const json::Value &signed_value, const std::vector<PrivateKey> &keys) const {
    auto canonical = TRY(canonical_json(signed_value));
    json::Value env = json::Value::object();
    env["signatures"] = json::Value::array();
    for (const auto &k : keys) {
        json::Value s = json::Value::object();
        s["keyid"] = k.keyid();
        s["sig"] = TRY(k.sign(canonical));
        env["signatures"].push_back(std::move(s));
    }
    env["signed"] = signed_value;
    // Plain JSON on disk: canonical JSON leaves the newlines of PEM keys raw,
    // which JSON parsers refuse; signatures cover the canonical form.
    return json::dump(env, 1) + "\n";
}

util::Result<Targets> Repository::parsed_targets(const Meta &m, std::string_view what) const {
    return parse_targets(TRY(envelope_of(m.signed_value)), what);
}

const Repository::Meta *Repository::meta_of(std::string_view name) const {
    if (name == "targets") return &targets_;
    auto it = delegated_.find(std::string(name));
    return it == delegated_.end() || it->second.signed_value.is_null() ? nullptr : &it->second;
}

util::Result<std::vector<Repository::Reached>> Repository::search(std::string_view path) const {
    std::vector<Reached> out, stack{{"targets", root_.roles.at("targets")}};
    std::set<std::string> seen;
    while (!stack.empty()) {
        Reached r = std::move(stack.back());
        stack.pop_back();
        if (!seen.insert(r.name).second) continue;
        const Meta *m = meta_of(r.name);
        out.push_back(std::move(r));
        if (!m) continue;
        auto t = TRY(parsed_targets(*m, out.back().name));
        if (!t.delegations) continue;
        std::vector<Reached> children;
        for (const auto &c : TRY(t.delegations->roles_for(path))) {
            children.push_back({c.name, *c.role});
            if (c.terminating) stack.clear();
        }
        stack.insert(stack.end(), children.rbegin(), children.rend());
    }
    return out;
}

util::Result<std::optional<Repository::Delegator>> Repository::delegator_of(std::string_view name) const {
    auto check = [&](const std::string &parent, const Meta &m) -> util::Result<std::optional<Delegator>> {
        auto t = TRY(parsed_targets(m, parent));
        if (!t.delegations) return std::optional<Delegator>();
        auto r = t.delegations->find(name);
        if (!r) return std::optional<Delegator>();
        Delegator d{parent, {}, *r->role, {}};
        for (const auto &listed : t.delegations->roles)
            if (listed.name == name) d.listed = listed;
        d.delegations = std::move(*t.delegations);
        return std::optional<Delegator>(std::move(d));
    };
    if (auto d = TRY(check("targets", targets_))) return d;
    for (const auto &[parent, m] : delegated_)
        if (!m.signed_value.is_null())
            if (auto d = TRY(check(parent, m))) return d;
    return std::optional<Delegator>();
}

util::Result<std::optional<uint64_t>> Repository::current_manifest_version(std::string_view path) const {
    // As a client finds it: top-level targets and the delegated roles trusted for the path.
    std::optional<uint64_t> best;
    for (const auto &r : TRY(search(path))) {
        const Meta *m = meta_of(r.name);
        if (!m) continue;
        auto targets = m->signed_value.find("targets");
        if (targets == m->signed_value.end() || !targets->contains(std::string(path))) continue;
        auto sha = TRY(json::req_string((*targets)[std::string(path)]["hashes"], "sha256", path));
        auto file = util::path_join(util::path_join(dir_, "targets"), hashed_target_file(path, sha));
        auto bytes = TRY_CTX(util::read_file(file, kManifestMax), util::cat("the channel's current manifest"));
        auto rev = TRY_CTX(parse_revision(bytes), util::cat("the channel's current manifest ", util::quote(file)));
        best = std::max(best.value_or(0), rev.version);
    }
    return best;
}

util::Result<std::string> Repository::release(std::string_view channel, std::string_view manifest,
                                              const std::vector<PrivateKey> &role_keys, int64_t now,
                                              const json::Value &custom, std::string_view into) {
    TRY(not_staged());
    auto path = TRY(channel_target(channel));
    auto rev = TRY(parse_revision(manifest));
    if (auto current = TRY(current_manifest_version(path)); current && rev.version <= *current)
        return util::Error::msg(util::cat("channel ", util::quote(channel), " is at version ", *current, ": manifest version ",
                                          rev.version, " is not above it"));
    auto sha = TRY(hash_hex("sha256", manifest));
    json::Value entry = json::Value::object();
    entry["length"] = manifest.size();
    entry["hashes"] = json::Value::object();
    entry["hashes"]["sha256"] = sha;
    if (custom.is_object() && !custom.empty()) entry["custom"] = custom;

    auto reached = TRY(search(path));
    if (reached.size() > 1) {
        // The roles a client searches for the path (after targets): the
        // release goes into the first one the given keys are a threshold of.
        std::vector<std::string> names;
        for (size_t i = 1; i < reached.size(); i++) names.push_back(util::quote(reached[i].name));
        if (role_keys.empty() && into.empty())
            return util::Error::msg(util::cat("channel ", util::quote(channel), " is delegated to role ", util::join(names, ", "),
                                              ": give that role's key with --key, or --role to stage it for that key"));
        size_t pick = 0;
        for (size_t i = 1; i < reached.size() && !pick; i++)
            if (into.empty() ? std::all_of(role_keys.begin(), role_keys.end(),
                                           [&](const PrivateKey &k) { return has_key(reached[i].role, k.keyid()); })
                             : reached[i].name == into)
                pick = i;
        if (!pick && !into.empty())
            return util::Error::msg(util::cat("role ", util::quote(into), " is not one trusted for channel ", util::quote(channel),
                                              " (", util::join(names, ", "), ")"));
        if (!pick)
            return util::Error::msg(util::cat("key ", role_keys[0].keyid().substr(0, 16),  " is not a key of role ",
                                              util::join(names, ", "), " (the roles trusted for the channel)"));
        const Reached &team = reached[pick];
        // No keys: the role's own, held by its team, sign it later (staged).
        std::vector<PrivateKey> signers;
        if (!role_keys.empty()) signers = TRY(signers_of(team.name, team.role, role_keys));
        // A role searched before it that lists the path hides the release:
        // targets drops it (the online keys re-sign it); a team's must be
        // released with that team's keys.
        for (size_t i = 1; i < pick; i++)
            if (const Meta *m = meta_of(reached[i].name); m && m->signed_value["targets"].contains(path))
                return util::Error::msg(util::cat("role ", util::quote(reached[i].name), " lists ", path, " ahead of role ",
                                                  util::quote(team.name), ": release it with that role's keys"));
        Meta &m = delegated_[team.name];
        if (m.signed_value.is_null()) m.signed_value = empty_targets();
        // What the role lists where no client reaches it (its paths changed,
        // or it was written by hand) the team does not re-sign.
        json::Value &listed = m.signed_value["targets"];
        for (auto it = listed.begin(); it != listed.end();) {
            auto on_path = TRY(search(it.key()));
            if (std::any_of(on_path.begin(), on_path.end(), [&](const Reached &r) { return r.name == team.name; })) ++it;
            else it = listed.erase(it);
        }
        listed[path] = entry;
        m.dirty = true;
        delegated_signers_[team.name] = std::move(signers);
        if (targets_.signed_value["targets"].contains(path)) {
            targets_.signed_value["targets"].erase(path);
            targets_.dirty = true;
        }
    } else {
        if (!role_keys.empty() || !into.empty())
            return util::Error::msg(util::cat("channel ", util::quote(channel), " is not delegated: the targets role signs it, ",
                                              role_keys.empty() ? "--role" : "--key", " is not used"));
        targets_.signed_value["targets"][path] = entry;
        targets_.dirty = true;
    }
    new_target_files_.emplace_back(hashed_target_file(path, sha), std::string(manifest));
    TRY(commit(now));
    return path;
}

util::Result<RefreshResult> Repository::refresh(std::optional<int64_t> within, int64_t now,
                                                const std::vector<PrivateKey> &team_keys) {
    TRY(not_staged());
    RefreshResult out;
    if (root_.expires - now < within.value_or(expiry_.root / 2))
        out.warnings.push_back(util::cat("root version ", root_.version, " expires at ", format_expiry(root_.expires),
                                         ": sign a new one with `berth fleet rotate --role root` and the root keys"));
    std::vector<std::string> teams;
    for (auto &[name, m] : delegated_) {
        if (m.signed_value.is_null()) continue;
        auto up = TRY(delegator_of(name));
        if (!up) continue;  // no longer delegated: no client reads it
        auto expires = TRY(parse_expiry(TRY(json::req_string(m.signed_value, "expires", name))));
        if (expires - now >= within.value_or(expiry_.targets / 2)) continue;
        auto signers = role_signers(up->role, team_keys);
        if (signers.size() < up->role.threshold) {
            out.warnings.push_back(util::cat("role ", util::quote(name), " version ", m.version, " expires at ",
                                             format_expiry(expires), ": re-sign it with `berth fleet refresh --key` and ",
                                             up->role.threshold, " of its keys"));
            continue;
        }
        m.dirty = true;
        delegated_signers_[name] = std::move(signers);
        teams.push_back(name);
    }
    struct Top {
        const char *role;
        Meta *meta;
    };
    for (Top t : {Top{"targets", &targets_}, Top{"snapshot", &snapshot_}, Top{"timestamp", &timestamp_}}) {
        auto expires = TRY(parse_expiry(TRY(json::req_string(t.meta->signed_value, "expires", t.role))));
        if (expires - now < within.value_or(expiry_.of(t.role) / 2)) t.meta->dirty = true;
        auto e = TRY(parse_envelope(t.meta->bytes, t.role, t.role));
        if (!verify_threshold(e, root_.keys, root_.roles.at(t.role), t.role).ok()) t.meta->dirty = true;
    }
    bool targets = targets_.dirty, snapshot = snapshot_.dirty || targets || !teams.empty(),
         timestamp = timestamp_.dirty || snapshot;
    if (!timestamp && !root_json_stale_) return out;
    TRY(commit(now));
    if (!timestamp) return out;
    for (const auto &name : teams) out.resigned.push_back(util::cat(name, " ", delegated_.at(name).version));
    if (targets) out.resigned.push_back(util::cat("targets ", targets_.version));
    if (snapshot) out.resigned.push_back(util::cat("snapshot ", snapshot_.version));
    out.resigned.push_back(util::cat("timestamp ", timestamp_.version));
    return out;
}

util::Result<std::vector<std::string>> Repository::rotate(const RotateOptions &opts, int64_t now) {
    TRY(not_staged());
    if (!is_top_role(opts.role))
        return util::Error::msg(util::cat("unknown role ", util::quote(opts.role), " (root, targets, snapshot or timestamp)"));
    const Role &current = root_.roles.at(opts.role);
    unsigned given = static_cast<unsigned>(opts.public_keys.size());
    if (given && opts.keys && *opts.keys != given)
        return util::Error::msg(util::cat("--keys ", *opts.keys, " but ", given, " public keys given"));
    if (given && opts.key_type) return util::Error::msg("--key-type is for new keys, not for given public keys");
    unsigned threshold = opts.threshold.value_or(static_cast<unsigned>(current.threshold));
    unsigned count = given ? given : opts.keys.value_or(std::max(static_cast<unsigned>(current.keyids.size()), threshold));
    if (threshold < 1 || count < threshold || count > 16)
        return util::Error::msg(util::cat("role ", opts.role, ": threshold ", threshold, " of ", count,
                                          " keys (need 1 <= threshold <= keys <= 16)"));
    KeyType type = KeyType::Ecdsa;
    if (opts.key_type) type = *opts.key_type;
    else if (!current.keyids.empty() && root_.keys.count(current.keyids[0])) type = TRY(type_of_key(root_.keys.at(current.keyids[0])));
    // Every rotation is a new root version, signed by the current root keys
    // (those held elsewhere sign it later, `berth fleet sign`).
    auto have = TRY(keys_for("root")).size();
    for (const auto &id : TRY(external_for(root_key_dir_))) have += has_key(old_root_.roles.at("root"), id);
    if (have < old_root_.roles.at("root").threshold)
        return util::Error::msg(util::cat("rotating needs ", old_root_.roles.at("root").threshold, " of the root keys, ",
                                          have, " found in ", util::quote(root_key_dir_)));

    auto dir = opts.role == "root" ? root_key_dir_ : util::path_join(key_dir_, opts.role);
    json::Value &root = root_meta_.signed_value;
    std::vector<std::string> ids;
    for (const auto &k : opts.public_keys) {
        TRY(check_key(k));
        auto id = TRY(key_id(k));
        if (std::find(ids.begin(), ids.end(), id) != ids.end())
            return util::Error::msg(util::cat("key ", id.substr(0, 16), " is given twice"));
        root["keys"][id] = key_json(k);
        ids.push_back(id);
        new_external_.emplace_back(util::path_join(dir, id + ".external"), TRY(canonical_json(key_json(k))) + "\n");
    }
    for (unsigned i = 0; !given && i < count; i++) {
        auto key = TRY(PrivateKey::generate(type));
        root["keys"][key.keyid()] = key_json(key.public_key());
        ids.push_back(key.keyid());
        new_keys_.emplace_back(dir, std::move(key));
    }
    for (const auto &old : current.keyids) {
        bool used = false;
        for (const auto &[name, r] : root_.roles)
            if (name != opts.role) used = used || std::find(r.keyids.begin(), r.keyids.end(), old) != r.keyids.end();
        if (!used) root["keys"].erase(old);
        if (std::find(ids.begin(), ids.end(), old) != ids.end()) continue;  // kept: given again
        retired_keys_.push_back(util::path_join(dir, old + ".pem"));
        retired_keys_.push_back(util::path_join(dir, old + ".external"));
    }
    root["roles"][opts.role] = role_json(ids, threshold);
    root_meta_.dirty = true;
    root_ = TRY(parse_root(TRY(envelope_of(root))));
    if (opts.role == "targets") targets_.dirty = true;
    if (opts.role == "snapshot") snapshot_.dirty = true;
    // A new timestamp in any case: clients polling conditionally probe for
    // a new root only when the timestamp changed (client.hpp).
    timestamp_.dirty = true;
    TRY(commit(now));
    return ids;
}

util::Status Repository::delegate(const DelegateOptions &opts, int64_t now) {
    TRY(not_staged());
    TRY(check_role_name(opts.role));
    if (opts.succinct) {
        if (!opts.paths.empty())
            return util::Error::msg("hash bins take no --paths: they share every path of the delegating role");
        if (*opts.succinct < 1 || *opts.succinct > kMaxBinBits)
            return util::Error::msg(util::cat("--succinct ", *opts.succinct, ": bit length is not 1-", kMaxBinBits));
    } else {
        if (opts.paths.empty()) return util::Error::msg("a delegation needs at least one --paths glob");
        for (const auto &p : opts.paths)
            if (p.empty() || p.starts_with("/")) return util::Error::msg(util::cat("path glob ", util::quote(p), " is empty or absolute"));
    }
    if (opts.keys.empty()) return util::Error::msg("a delegation needs at least one --key");
    if (opts.threshold < 1 || opts.threshold > opts.keys.size())
        return util::Error::msg(util::cat("threshold ", opts.threshold, " of ", opts.keys.size(), " keys"));

    // The delegating role: targets, or a delegated role whose keys sign.
    Meta *from = &targets_;
    if (opts.from != "targets") {
        auto up = TRY(delegator_of(opts.from));
        if (!up) return util::Error::msg(util::cat("role ", util::quote(opts.from), " is not delegated: delegate it first"));
        if (opts.from_keys.empty())
            return util::Error::msg(util::cat("role ", util::quote(opts.from), " signs this delegation: give its key with --from-key"));
        auto signers = TRY(signers_of(opts.from, up->role, opts.from_keys));
        for (const auto &p : opts.paths) {
            if (!up->listed || !up->listed->paths)
                return util::Error::msg(util::cat("role ", util::quote(opts.from),
                                                  " is trusted by path hash, not by paths: it cannot delegate path globs"));
            if (std::none_of(up->listed->paths->begin(), up->listed->paths->end(), [&](const std::string &q) { return glob_within(p, q); }))
                return util::Error::msg(util::cat("path glob ", util::quote(p), " is not within the paths of role ",
                                                  util::quote(opts.from), " (", util::join(*up->listed->paths, ", "), ")"));
        }
        // No loop: the new role is not the delegating role nor above it.
        for (std::string above = opts.from; above != "targets";) {
            if (above == opts.role)
                return util::Error::msg(util::cat("role ", util::quote(opts.role), " delegates to role ", util::quote(opts.from),
                                                  ": a delegation back to it would be a loop"));
            auto a = TRY(delegator_of(above));
            above = a ? a->name : "targets";
        }
        Meta &m = delegated_[opts.from];
        if (m.signed_value.is_null()) m.signed_value = empty_targets();
        m.dirty = true;
        delegated_signers_[opts.from] = std::move(signers);
        from = &m;
    } else if (!opts.from_keys.empty()) {
        return util::Error::msg("--from-key is for a delegated role: the targets role signs with the online keys");
    }
    if (auto other = TRY(delegator_of(opts.role)); other && other->name != opts.from)
        return util::Error::msg(util::cat("role ", util::quote(opts.role), " is already delegated by role ", util::quote(other->name)));

    json::Value &t = from->signed_value;
    if (!t.contains("delegations")) {
        t["delegations"] = json::Value::object();
        t["delegations"]["keys"] = json::Value::object();
    }
    json::Value &d = t["delegations"];
    std::vector<std::string> ids;
    for (const auto &k : opts.keys) {
        TRY(check_key(k));
        auto id = TRY(key_id(k));
        if (std::find(ids.begin(), ids.end(), id) != ids.end())
            return util::Error::msg(util::cat("key ", id.substr(0, 16), " is given twice"));
        ids.push_back(id);
        d["keys"][id] = key_json(k);
    }
    json::Value role = role_json(ids, opts.threshold);
    if (opts.succinct) {
        if (d.contains("roles") && !d["roles"].empty())
            return util::Error::msg(util::cat("role ", util::quote(opts.from),
                                              " already delegates by paths: hash bins replace every delegation of a role, "
                                              "delegate them from a role of their own (--from)"));
        d.erase("roles");
        role["bit_length"] = *opts.succinct;
        role["name_prefix"] = opts.role;
        d["succinct_roles"] = role;
    } else {
        if (d.contains("succinct_roles"))
            return util::Error::msg(util::cat("role ", util::quote(opts.from), " delegates to hash bins, which take every path"));
        if (!d.contains("roles")) d["roles"] = json::Value::array();
        role["name"] = opts.role;
        role["paths"] = opts.paths;
        role["terminating"] = opts.terminating;
        bool replaced = false;
        for (auto &r : d["roles"])
            if (r.value("name", "") == opts.role) {
                r = role;
                replaced = true;
            }
        if (!replaced) d["roles"].push_back(role);
    }
    // Keys no role lists any more go.
    std::set<std::string> used;
    if (d.contains("roles"))
        for (const auto &r : d["roles"])
            for (const auto &id : r["keyids"]) used.insert(id.get<std::string>());
    if (d.contains("succinct_roles"))
        for (const auto &id : d["succinct_roles"]["keyids"]) used.insert(id.get<std::string>());
    for (auto it = d["keys"].begin(); it != d["keys"].end();) {
        if (used.count(it.key())) ++it;
        else it = d["keys"].erase(it);
    }
    auto parsed = TRY(parsed_targets(*from, opts.from));
    from->dirty = true;
    // The new roles signed now, empty, where their keys are given: a client
    // asked for a path they cover finds nothing released instead of a role
    // missing from snapshot (an error). Bins need it: every path is some bin's.
    std::vector<std::string> signed_now;
    if (opts.succinct) {
        const SuccinctRoles &bins = *parsed.delegations->succinct;
        for (uint64_t i = 0; i <= bins.bins(); i++) signed_now.push_back(bins.bin_name(uint32_t(i)));
    } else if (!opts.role_keys.empty()) {
        signed_now.push_back(opts.role);
    }
    if (!signed_now.empty()) {
        auto listed = parsed.delegations->find(signed_now[0]);
        auto signers = TRY(signers_of(opts.role, *listed->role, opts.role_keys));
        for (const auto &name : signed_now) {
            Meta &m = delegated_[name];
            if (m.signed_value.is_null()) m.signed_value = empty_targets();
            m.dirty = true;
            delegated_signers_[name] = signers;
        }
    }
    return commit(now);
}

util::Result<std::set<std::string>> Repository::external_for(const std::string &dir) const {
    auto ids = TRY(external_keys(dir));
    for (const auto &[path, _] : new_external_)
        if (util::dirname(path) == dir) ids.insert(util::basename(path).substr(0, util::basename(path).size() - 9));
    return ids;
}

util::Status Repository::not_staged() const {
    if (staged_ && !signing_)
        return util::Error::msg(util::cat("a change waits for signatures (", util::join(pending_, "; "),
                                          "): `berth fleet sign` it or drop it with `berth fleet sign --discard` first"));
    return util::ok();
}

util::Status Repository::commit(int64_t now) {
    TRY(not_staged());
    TRY(sign_changes(now));
    if (!pending_.empty()) return write_staged();
    TRY(write_changes());
    if (staged_) TRY(util::remove_tree(util::path_join(dir_, "staged")));
    staged_ = false;
    return util::ok();
}

util::Result<bool> Repository::sign_role(Meta &m, std::string_view role, std::string_view what,
                                         const std::vector<PrivateKey> &keys, const std::map<std::string, Key> &keys_of,
                                         const Role &role_of, const std::set<std::string> &external, int64_t now) {
    auto type = type_of_role(role);
    if (!m.presigned) {
        m.version++;
        m.signed_value["version"] = m.version;
        m.signed_value["expires"] = format_expiry(now + expiry_.of(role));
        m.bytes = TRY(sign(m.signed_value, keys));
        m.presigned = true;
    }
    auto e = TRY(parse_envelope(m.bytes, type, what));
    if (verify_threshold(e, keys_of, role_of, what).ok()) return true;  // complete: its bytes stay as they are
    // Signatures of the keys at hand that it lacks (sign_staged's among them).
    bool added = false;
    json::Value env = TRY(json::parse(m.bytes, what));
    std::vector<PrivateKey> at_hand = keys;
    at_hand.insert(at_hand.end(), extra_signers_.begin(), extra_signers_.end());
    for (const auto &k : at_hand) {
        bool there = false;
        for (const auto &[id, _] : e.signatures) there = there || id == k.keyid();
        if (there || !has_key(role_of, k.keyid())) continue;
        std::string sig_hex = TRY(k.sign(e.canonical_signed));
        json::Value sig = json::Value::object();
        sig["keyid"] = k.keyid();
        sig["sig"] = sig_hex;
        env["signatures"].push_back(std::move(sig));
        e.signatures.emplace_back(k.keyid(), sig_hex);
        added = true;
    }
    if (added) m.bytes = json::dump(env, 1) + "\n";
    auto met = verify_threshold(TRY(parse_envelope(m.bytes, type, what)), keys_of, role_of, what);
    if (met.ok()) return true;
    // Short for want of keys held elsewhere: the change waits for them.
    std::vector<std::string> elsewhere;
    for (const auto &id : role_of.keyids) {
        bool there = false;
        for (const auto &[sid, _] : e.signatures) there = there || sid == id;
        if (!there && external.count(id)) elsewhere.push_back(id.substr(0, 16));
    }
    if (elsewhere.empty()) return std::move(met).error();
    pending_.push_back(util::cat(what, " (", util::join(elsewhere, ", "), " of ", role_of.threshold, " needed)"));
    return false;
}

util::Status Repository::sign_changes(int64_t now) {
    pending_.clear();
    // Sign everything in memory first, checking each signature set as a
    // client will; nothing is written before all of it holds. A role short
    // of signatures only for keys held elsewhere waits (pending_), and so do
    // the roles that hash it (snapshot, timestamp).
    auto top = [&](Meta &m, const char *role) -> util::Result<bool> {
        auto dir = std::string_view(role) == "root" ? root_key_dir_ : util::path_join(key_dir_, role);
        return TRY_CTX(sign_role(m, role, role, TRY(keys_for(role)), root_.keys, root_.roles.at(role), TRY(external_for(dir)), now),
                       util::cat("signing ", role, " with the keys in ", util::quote(dir)));
    };
    bool blocked = false;  // a role snapshot lists waits for signatures
    if (root_meta_.dirty) {
        TRY(top(root_meta_, "root"));
        if (old_root_.version > 0)
            TRY_CTX(sign_role(root_meta_, "root", "root", TRY(keys_for("root")), old_root_.keys, old_root_.roles.at("root"),
                              TRY(external_for(root_key_dir_)), now),
                    util::cat("signing root version ", root_meta_.version, " with the keys of version ", old_root_.version,
                              " in ", util::quote(root_key_dir_)));
    }
    for (auto &[name, m] : delegated_) {
        if (!m.dirty) continue;
        auto up = TRY(delegator_of(name));
        if (!up) return util::Error::msg(util::cat("role ", util::quote(name), " is not delegated"));
        // A delegated role's keys are its team's, never kept here: what they
        // have not signed yet waits for them.
        std::set<std::string> team(up->role.keyids.begin(), up->role.keyids.end());
        if (!TRY(sign_role(m, name, util::cat("role ", util::quote(name)), delegated_signers_[name], up->delegations.keys,
                           up->role, team, now)))
            blocked = true;
        snapshot_.dirty = true;
    }
    if (targets_.dirty) {
        if (!TRY(top(targets_, "targets"))) blocked = true;
        snapshot_.dirty = true;
    }
    if (snapshot_.dirty && !blocked) {
        if (!snapshot_.presigned) {
            json::Value meta = json::Value::object();
            meta["targets.json"] = TRY(meta_entry(targets_.version, targets_.bytes));
            for (const auto &[name, m] : delegated_) meta[name + ".json"] = TRY(meta_entry(m.version, m.bytes));
            if (snapshot_.signed_value.is_null()) {
                snapshot_.signed_value = json::Value::object();
                snapshot_.signed_value["_type"] = "snapshot";
                snapshot_.signed_value["spec_version"] = kSpecVersion;
            }
            snapshot_.signed_value["meta"] = meta;
        }
        blocked = !TRY(top(snapshot_, "snapshot"));
        timestamp_.dirty = true;
    }
    if (timestamp_.dirty && !blocked) {
        if (!timestamp_.presigned) {
            if (timestamp_.signed_value.is_null()) {
                timestamp_.signed_value = json::Value::object();
                timestamp_.signed_value["_type"] = "timestamp";
                timestamp_.signed_value["spec_version"] = kSpecVersion;
            }
            timestamp_.signed_value["meta"] = json::Value::object();
            timestamp_.signed_value["meta"]["snapshot.json"] = TRY(meta_entry(snapshot_.version, snapshot_.bytes));
        }
        TRY(top(timestamp_, "timestamp"));
    }
    return util::ok();
}

Repository::Meta *Repository::staged_meta(std::string_view role) {
    if (role == "root") return &root_meta_;
    if (role == "targets") return &targets_;
    if (role == "snapshot") return &snapshot_;
    if (role == "timestamp") return &timestamp_;
    return &delegated_[std::string(role)];
}

util::Status Repository::write_staged() {
    auto staged = util::path_join(dir_, "staged");
    TRY(util::remove_tree(staged));
    TRY(util::mkdir_p(util::path_join(staged, "targets")));
    TRY(write_keys());
    json::Value state = json::Value::object();
    state["roles"] = json::Value::array();
    auto put = [&](const std::string &name, const Meta &m) -> util::Status {
        if (!m.dirty || !m.presigned) return util::ok();
        state["roles"].push_back(name);
        return util::atomic_write_file(util::path_join(staged, name + ".json"), m.bytes);
    };
    for (const auto &[name, m] : delegated_) TRY(put(name, m));
    for (const char *role : kTopRoles) TRY(put(role, *staged_meta(role)));
    state["targets"] = json::Value::array();
    for (const auto &[file, bytes] : new_target_files_) {
        auto path = util::path_join(util::path_join(staged, "targets"), file);
        TRY(util::mkdir_p(util::dirname(path)));
        TRY(util::atomic_write_file(path, bytes));
        state["targets"].push_back(file);
    }
    state["retired_keys"] = retired_keys_;
    state["pending"] = pending_;
    // Last: the staged change exists once this does.
    return util::atomic_write_file(util::path_join(staged, "state.json"), json::dump(state, 1) + "\n");
}

util::Status Repository::load_staged() {
    auto staged = util::path_join(dir_, "staged");
    auto state_path = util::path_join(staged, "state.json");
    if (!util::path_exists(state_path)) return util::ok();
    auto state = TRY(json::parse(TRY(util::read_file(state_path, kMetadataMax)), "staged/state.json"));
    for (const auto &name : state.value("roles", json::Value::array())) {
        auto role = name.get<std::string>();
        if (!is_top_role(role)) TRY_CTX(check_role_name(role), "staged/state.json");
        Meta *m = staged_meta(role);
        m->bytes = TRY(util::read_file(util::path_join(staged, role + ".json"), kMetadataMax));
        auto e = TRY(parse_envelope(m->bytes, type_of_role(role), util::cat("staged ", role)));
        m->signed_value = e.signed_value;
        m->version = TRY(json::opt_uint(e.signed_value, "version", role)).value_or(0);
        m->dirty = m->presigned = true;
        if (role == "root") root_ = TRY(parse_root(e));
    }
    for (const auto &file : state.value("targets", json::Value::array())) {
        auto f = file.get<std::string>();
        if (f.starts_with("/") || f.find("..") != std::string::npos) return util::Error::msg("staged/state.json: bad target file");
        new_target_files_.emplace_back(f, TRY(util::read_file(util::path_join(util::path_join(staged, "targets"), f), kManifestMax)));
    }
    for (const auto &k : state.value("retired_keys", json::Value::array())) retired_keys_.push_back(k.get<std::string>());
    for (const auto &p : state.value("pending", json::Value::array())) pending_.push_back(p.get<std::string>());
    staged_ = true;
    return util::ok();
}

util::Status Repository::sign_staged(const std::vector<PrivateKey> &keys, int64_t now) {
    if (!staged_) return util::Error::msg("no change waits for signatures");
    extra_signers_ = keys;
    signing_ = true;
    return commit(now);
}

util::Status Repository::discard_staged() {
    if (!staged_) return util::Error::msg("no change waits for signatures");
    // Keys made for the change stay (unlisted, harmless); the metadata is untouched.
    TRY(util::remove_tree(util::path_join(dir_, "staged")));
    staged_ = false;
    return util::ok();
}

util::Result<std::string> Repository::staged_payload(std::string_view role) const {
    if (!staged_) return util::Error::msg("no change waits for signatures");
    const Meta *m = role == "root" ? &root_meta_ : role == "targets" ? &targets_ : role == "snapshot" ? &snapshot_
                  : role == "timestamp" ? &timestamp_ : meta_of(role);
    if (!m || !m->presigned) return util::Error::msg(util::cat("role ", util::quote(role), " is not part of the staged change"));
    return canonical_json(m->signed_value);
}

util::Status Repository::add_staged_signature(std::string_view role, std::string_view sig_hex, int64_t now) {
    auto payload = TRY(staged_payload(role));
    Meta *m = staged_meta(role);
    // The key it is from: a key the role lists (root: of the new or the old root) that it verifies with.
    std::vector<std::pair<std::string, Key>> candidates;
    auto add = [&](const std::map<std::string, Key> &keys, const Role &r) {
        for (const auto &id : r.keyids)
            if (auto k = keys.find(id); k != keys.end()) candidates.emplace_back(id, k->second);
    };
    if (is_top_role(role)) add(root_.keys, root_.roles.at(std::string(role)));
    else if (auto up = TRY(delegator_of(role))) add(up->delegations.keys, up->role);
    if (role == "root" && old_root_.version > 0) add(old_root_.keys, old_root_.roles.at("root"));
    std::optional<std::string> keyid;
    for (const auto &[id, k] : candidates)
        if (verify_signature(k, payload, sig_hex).ok()) keyid = id;
    if (!keyid) return util::Error::msg(util::cat("the signature does not verify with any key of role ", util::quote(role)));
    json::Value env = TRY(json::parse(m->bytes, role));
    for (const auto &s : env["signatures"])
        if (s.value("keyid", "") == *keyid) return util::Error::msg(util::cat("role ", util::quote(role), " already has a signature of key ", keyid->substr(0, 16)));
    json::Value sig = json::Value::object();
    sig["keyid"] = *keyid;
    sig["sig"] = std::string(sig_hex);
    env["signatures"].push_back(std::move(sig));
    m->bytes = json::dump(env, 1) + "\n";
    signing_ = true;
    return commit(now);
}

util::Status Repository::write_keys() {
    for (const auto &[dir, key] : new_keys_) {
        TRY(util::mkdir_p(dir, 0700));
        TRY(util::atomic_write_file(util::path_join(dir, key.keyid() + ".pem"), key.pem(), 0600));
    }
    for (const auto &[path, key] : new_external_) {
        TRY(util::mkdir_p(util::dirname(path), 0700));
        TRY(util::atomic_write_file(path, key, 0644));
    }
    new_keys_.clear();
    new_external_.clear();
    return util::ok();
}

util::Status Repository::write_changes() {
    // Keys, targets files, roles from the leaves up, timestamp last.
    TRY(write_keys());
    auto targets_dir = util::path_join(dir_, "targets");
    for (const auto &[file, bytes] : new_target_files_) {
        auto path = util::path_join(targets_dir, file);
        TRY(util::mkdir_p(util::dirname(path)));
        TRY(util::atomic_write_file(path, bytes));
    }
    auto meta_dir = util::path_join(dir_, "metadata");
    auto write = [&](const std::string &name, const Meta &m) {
        return util::atomic_write_file(util::path_join(meta_dir, name), m.bytes);
    };
    for (const auto &[name, m] : delegated_)
        if (m.dirty) TRY(write(util::cat(m.version, ".", name, ".json"), m));
    if (targets_.dirty) TRY(write(util::cat(targets_.version, ".targets.json"), targets_));
    if (root_meta_.dirty) TRY(write(util::cat(root_meta_.version, ".root.json"), root_meta_));
    if (root_meta_.dirty || root_json_stale_) TRY(write("root.json", root_meta_));
    if (snapshot_.dirty) TRY(write(util::cat(snapshot_.version, ".snapshot.json"), snapshot_));
    if (timestamp_.dirty) TRY(write("timestamp.json", timestamp_));
    for (const auto &path : retired_keys_)
        if (util::path_exists(path)) (void)util::move_durably(path, path + ".retired");

    root_json_stale_ = false;
    for (Meta *m : {&root_meta_, &targets_, &snapshot_, &timestamp_}) m->dirty = m->presigned = false;
    for (auto &[_, m] : delegated_) m.dirty = m.presigned = false;
    new_keys_.clear();
    new_target_files_.clear();
    retired_keys_.clear();
    delegated_signers_.clear();
    old_root_ = root_;
    return util::ok();
}

}  // namespace ota::tuf
