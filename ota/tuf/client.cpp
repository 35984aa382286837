// The client workflow of client.hpp, in the specification's order.
#include "ota/tuf/client.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <vector>

#include "ota/tuf/crypto.hpp"
#include "util/file.hpp"
#include "util/flock.hpp"
#include "util/strings.hpp"

namespace ota::tuf {
namespace {

/// Whether the keys trusted for `role` changed between two roots.
bool keys_rotated(const Root &before, const Root &after, const std::string &role) {
    const Role &a = before.roles.at(role), &b = after.roles.at(role);
    if (a.threshold != b.threshold) return true;
    std::set<std::string> ka, kb;
    for (const auto &id : a.keyids)
        if (auto k = before.keys.find(id); k != before.keys.end()) ka.insert(k->second.identity());
    for (const auto &id : b.keyids)
        if (auto k = after.keys.find(id); k != after.keys.end()) kb.insert(k->second.identity());
    return ka != kb;
}

std::string role_what(const std::string &name) {
    return name == "targets" ? std::string("targets") : util::cat("delegated role ", util::quote(name));
}

/// Loads root metadata and checks it is signed by a threshold of its own keys.
util::Result<Root> self_signed_root(std::string_view bytes, std::string_view what) {
    auto env = TRY(parse_envelope(bytes, "root", what));
    auto root = TRY_CTX(parse_root(env), what);
    TRY(verify_threshold(env, root.keys, root.roles.at("root"), what));
    return root;
}

/// Stored metadata of top-level role `type` when it still verifies under
/// `root` (one that does not, after a key rotation, is no longer trusted);
/// expiry is not checked: an expired one still guards against rollback.
template <typename T>
std::optional<T> verified_local(const util::Result<std::optional<std::string>> &bytes, const Root &root, const char *type,
                                util::Result<T> (*parse)(const Envelope &)) {
    if (!bytes || !*bytes) return std::nullopt;
    std::string what = util::cat("trusted ", type);
    auto env = parse_envelope(**bytes, type, what);
    if (!env) return std::nullopt;
    auto m = parse(*env);
    if (!m || !verify_threshold(*env, root.keys, root.roles.at(type), what)) return std::nullopt;
    return std::move(*m);
}

}  // namespace

util::Result<std::string> channel_target(std::string_view channel) {
    bool ok = !channel.empty() && channel != "." && channel != "..";
    for (char c : channel)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-');
    if (!ok) return util::Error::msg(util::cat("channel name ", util::quote(channel), " is not one segment of [A-Za-z0-9._-]"));
    return util::cat("channels/", channel, "/manifest.json");
}

util::Status init_trusted_root(const std::string &metadata_dir, std::string_view root_bytes) {
    TRY(self_signed_root(root_bytes, "trusted root"));
    TRY(util::mkdir_p(metadata_dir));
    return util::atomic_write_file(util::path_join(metadata_dir, "root.json"), root_bytes);
}

util::Result<Client> Client::open(const std::string &metadata_dir, std::string metadata_url, Fetcher &fetcher,
                                  ClientConfig config) {
    auto dir = TRY(util::open_file(metadata_dir, O_RDONLY | O_DIRECTORY));
    Client c(std::move(dir), std::move(metadata_url), fetcher, std::move(config));
    auto bytes = TRY(c.read_local("root.json", c.config_.root_max_bytes));
    if (!bytes) return util::Error::msg(util::cat("no trusted root.json in ", util::quote(metadata_dir)));
    c.root_ = TRY(self_signed_root(*bytes, "trusted root"));
    return c;
}

util::Status Client::OpLock::take() {
    if (c_.lock_depth_++ > 0) return util::ok();
    return util::flock_fd(c_.dir_.get(), LOCK_EX).context("lock the metadata directory");
}

Client::OpLock::~OpLock() {
    if (--c_.lock_depth_ == 0) (void)util::flock_fd(c_.dir_.get(), LOCK_UN);
}

std::string Client::metadata_url(std::string_view file) const {
    return util::cat(url_, url_.ends_with('/') ? "" : "/", file);
}

util::Result<std::optional<std::string>> Client::read_local(const std::string &name, size_t max) {
    auto r = util::read_file_at(dir_.get(), name, max);
    if (!r) {
        if (r.error().code == ENOENT) return std::optional<std::string>();
        return std::move(r).error().wrap(util::cat("read ", util::quote(name)));
    }
    return std::optional<std::string>(std::move(*r));
}

util::Status Client::persist(const std::string &name, std::string_view bytes) {
    return util::atomic_write_file_at(dir_.get(), name, bytes).context(util::cat("store ", util::quote(name)));
}

util::Status Client::check_expiry(const Common &c, std::string_view what) const {
    if (start_ >= c.expires)
        return util::Error::msg(util::cat(what, " version ", c.version, " expired at ", format_expiry(c.expires)));
    return util::ok();
}

util::Status Client::refresh() {
    OpLock lock(*this);
    TRY(lock.take());
    start_ = config_.clock();
    refreshed_ = false;
    timestamp_.reset();
    snapshot_.reset();
    snapshot_checked_ = false;
    targets_.clear();
    prefetched_timestamp_.reset();
    if (config_.conditional_timestamp) {
        // A poll that finds nothing new costs one small exchange: the
        // timestamp first, and when the server says it is the one stored,
        // no root probe (a root rotation comes with a new timestamp).
        load_local_timestamp();
        prefetched_with_ = stored_validators();
        if (!prefetched_with_.empty()) {
            prefetched_timestamp_ = TRY(fetcher_->fetch_if_changed(metadata_url("timestamp.json"), config_.timestamp_max_bytes,
                                                                    prefetched_with_));
            if (prefetched_timestamp_->not_modified) TRY(check_expiry(root_, "root"));
        }
    }
    if (!prefetched_timestamp_ || !prefetched_timestamp_->not_modified) TRY(update_root());
    load_local_timestamp();
    TRY(update_timestamp());
    load_local_snapshot();
    TRY(update_snapshot());
    TRY(load_targets("targets", root_.keys, root_.roles.at("targets")));
    refreshed_ = true;
    return util::ok();
}

util::Status Client::update_root() {
    const Root initial = root_;
    for (unsigned i = 0; i < config_.max_root_rotations; i++) {
        uint64_t next = root_.version + 1;
        auto body = TRY(fetcher_->fetch(metadata_url(util::cat(next, ".root.json")), config_.root_max_bytes));
        if (!body) break;
        std::string what = util::cat("root version ", next);
        auto env = TRY(parse_envelope(*body, "root", what));
        auto fresh = TRY_CTX(parse_root(env), what);
        TRY(verify_threshold(env, root_.keys, root_.roles.at("root"),
                             util::cat(what, " (keys of root version ", root_.version, ")")));
        TRY(verify_threshold(env, fresh.keys, fresh.roles.at("root"), util::cat(what, " (its own keys)")));
        if (fresh.version != next)
            return util::Error::msg(util::cat(what, ": the file holds version ", fresh.version, " (rollback or skip)"));
        root_ = std::move(fresh);
        TRY(persist("root.json", *body));
    }
    // Fast-forward recovery: versions signed by keys no longer trusted must
    // not block the versions the new keys sign.
    if (keys_rotated(initial, root_, "timestamp") || keys_rotated(initial, root_, "snapshot")) {
        for (const char *name : {"timestamp.json", "snapshot.json"})
            if (unlinkat(dir_.get(), name, 0) != 0 && errno != ENOENT)
                return util::Error::from_errno(util::cat("remove ", util::quote(name)));
    }
    return check_expiry(root_, "root");
}

void Client::load_local_timestamp() {
    auto bytes = read_local("timestamp.json", config_.timestamp_max_bytes);
    timestamp_ = verified_local(bytes, root_, "timestamp", parse_timestamp);
    timestamp_bytes_.clear();
    if (timestamp_ && config_.conditional_timestamp) timestamp_bytes_ = std::move(**bytes);
}

// timestamp.validators: three lines, the sha256 of the timestamp.json bytes
// they were received with, the ETag and the Last-Modified (either may be empty).
Validators Client::stored_validators() {
    if (timestamp_bytes_.empty()) return {};
    auto text = read_local("timestamp.validators", 1024);
    if (!text || !*text) return {};
    auto lines = util::split(**text, '\n');
    auto digest = hash_hex("sha256", timestamp_bytes_);
    if (lines.size() < 3 || !digest || lines[0] != *digest) return {};
    return Validators{lines[1], lines[2]};
}

util::Status Client::store_validators(const Validators &v, std::string_view bytes) {
    if (!config_.conditional_timestamp) return util::ok();
    if (v.empty()) {
        if (unlinkat(dir_.get(), "timestamp.validators", 0) != 0 && errno != ENOENT)
            return util::Error::from_errno("remove \"timestamp.validators\"");
        return util::ok();
    }
    auto digest = TRY(hash_hex("sha256", bytes));
    // A cache: a power cut that loses or garbles it costs one full fetch
    // (the digest line no longer matches), so no fsync.
    return util::atomic_write_file_at(dir_.get(), "timestamp.validators",
                                      util::cat(digest, '\n', v.etag, '\n', v.last_modified, '\n'), 0644,
                                      util::Durability::ProcessCrash)
        .context("store \"timestamp.validators\"");
}

template <typename T>
util::Result<T> Client::fetch_top(const std::string &file, const MetaFile *ref, size_t max, const char *type,
                                  util::Result<T> (*parse)(const Envelope &), std::string &body) {
    std::string url = metadata_url(file);
    auto fetched = TRY(fetcher_->fetch(url, ref && ref->length ? *ref->length : max));
    return check_top(url, std::move(fetched), ref, type, parse, body);
}

template <typename T>
util::Result<T> Client::check_top(const std::string &url, std::optional<std::string> fetched, const MetaFile *ref,
                                  const char *type, util::Result<T> (*parse)(const Envelope &), std::string &body) {
    if (!fetched) return util::Error::msg(util::cat(type, ": ", util::quote(url), " not found"));
    body = std::move(*fetched);
    if (ref) TRY(check_length_and_hashes(body, ref->length, ref->hashes, util::cat(type, " (against timestamp)")));
    auto env = TRY(parse_envelope(body, type, type));
    auto fresh = TRY(parse(env));
    TRY(verify_threshold(env, root_.keys, root_.roles.at(type), type));
    return fresh;
}

util::Status Client::update_timestamp() {
    std::string body, url = metadata_url("timestamp.json");
    Validators have = stored_validators();
    Conditional got;
    if (prefetched_timestamp_ && (prefetched_timestamp_->not_modified ? have.etag == prefetched_with_.etag &&
                                                                           have.last_modified == prefetched_with_.last_modified
                                                                     : true)) {
        got = std::move(*prefetched_timestamp_);
        have = prefetched_with_;
    } else {
        got = TRY(fetcher_->fetch_if_changed(url, config_.timestamp_max_bytes, have));
    }
    prefetched_timestamp_.reset();
    if (got.not_modified) return check_expiry(*timestamp_, "timestamp");  // the stored bytes are still current
    auto fresh = TRY(check_top(url, std::move(got.body), nullptr, "timestamp", parse_timestamp, body));
    if (timestamp_) {
        if (fresh.version < timestamp_->version)
            return util::Error::msg(util::cat("timestamp version ", fresh.version, " is older than the trusted version ",
                                              timestamp_->version, " (rollback)"));
        if (fresh.snapshot_meta.version < timestamp_->snapshot_meta.version)
            return util::Error::msg(util::cat("timestamp names snapshot version ", fresh.snapshot_meta.version,
                                              ", older than the trusted ", timestamp_->snapshot_meta.version, " (rollback)"));
        if (fresh.version == timestamp_->version) {  // nothing new
            TRY(check_expiry(*timestamp_, "timestamp"));
            // The next poll asks for a change since these bytes, when they are the stored ones.
            if (body == timestamp_bytes_ && (have.etag != got.validators.etag || have.last_modified != got.validators.last_modified)) TRY(store_validators(got.validators, body));
            return util::ok();
        }
    }
    TRY(check_expiry(fresh, "timestamp"));
    timestamp_ = std::move(fresh);
    TRY(persist("timestamp.json", body));
    timestamp_bytes_ = body;
    return store_validators(got.validators, body);
}

void Client::load_local_snapshot() {
    snapshot_ = verified_local(read_local("snapshot.json", config_.snapshot_max_bytes), root_, "snapshot", parse_snapshot);
    // The stored one is current when the timestamp names its version.
    snapshot_checked_ = snapshot_ && snapshot_->version == timestamp_->snapshot_meta.version && start_ < snapshot_->expires;
}

util::Status Client::update_snapshot() {
    if (snapshot_checked_) return util::ok();
    const MetaFile &m = timestamp_->snapshot_meta;
    std::string file = root_.consistent_snapshot ? util::cat(m.version, ".snapshot.json") : std::string("snapshot.json");
    std::string body;
    auto fresh = TRY(fetch_top(file, &m, config_.snapshot_max_bytes, "snapshot", parse_snapshot, body));
    if (snapshot_) {
        if (fresh.version < snapshot_->version)
            return util::Error::msg(util::cat("snapshot version ", fresh.version, " is older than the trusted version ",
                                              snapshot_->version, " (rollback)"));
        for (const auto &[name, old] : snapshot_->meta) {
            auto it = fresh.meta.find(name);
            if (it == fresh.meta.end())
                return util::Error::msg(util::cat("snapshot no longer lists ", util::quote(name), " (rollback)"));
            if (it->second.version < old.version)
                return util::Error::msg(util::cat("snapshot names ", util::quote(name), " version ", it->second.version,
                                                  ", older than the trusted ", old.version, " (rollback)"));
        }
    }
    if (fresh.version != m.version)
        return util::Error::msg(util::cat("snapshot version ", fresh.version, " is not the version ", m.version,
                                          " that timestamp names"));
    TRY(check_expiry(fresh, "snapshot"));
    snapshot_ = std::move(fresh);
    snapshot_checked_ = true;
    return persist("snapshot.json", body);
}

util::Result<const Targets *> Client::load_targets(const std::string &name, const std::map<std::string, Key> &keys,
                                                   const Role &role) {
    if (auto it = targets_.find(name); it != targets_.end()) return &it->second;
    std::string what = role_what(name);
    auto m_it = snapshot_->meta.find(name + ".json");
    if (m_it == snapshot_->meta.end()) return util::Error::msg(util::cat(what, ": not listed in snapshot"));
    const MetaFile &m = m_it->second;
    std::string file = percent_encode(name) + ".json";

    // The stored copy, when it is the version snapshot names.
    auto verified = [&](std::string_view bytes) -> util::Result<Targets> {
        auto env = TRY(parse_envelope(bytes, "targets", what));
        auto t = TRY(parse_targets(env, what));
        TRY(verify_threshold(env, keys, role, what));
        if (t.version != m.version)
            return util::Error::msg(util::cat(what, " version ", t.version, " is not the version ", m.version,
                                              " that snapshot names"));
        TRY(check_expiry(t, what));
        return t;
    };
    if (auto local = read_local(file, m.length.value_or(config_.targets_max_bytes)); local && *local) {
        if (auto t = verified(**local)) return &targets_.emplace(name, std::move(*t)).first->second;
    }
    std::string remote = root_.consistent_snapshot ? util::cat(m.version, ".", file) : file;
    auto body = TRY(fetcher_->fetch(metadata_url(remote), m.length.value_or(config_.targets_max_bytes)));
    if (!body) return util::Error::msg(util::cat(what, ": ", util::quote(metadata_url(remote)), " not found"));
    TRY(check_length_and_hashes(*body, m.length, m.hashes, util::cat(what, " (against snapshot)")));
    auto t = TRY(verified(*body));
    TRY(persist(file, *body));
    return &targets_.emplace(name, std::move(t)).first->second;
}

util::Result<std::optional<TargetFile>> Client::find_target(std::string_view path) {
    OpLock lock(*this);
    TRY(lock.take());
    if (!refreshed_) TRY(refresh());
    struct Visit {
        std::string name;
        const std::map<std::string, Key> *keys;
        Role role;
    };
    std::vector<Visit> stack{{"targets", &root_.keys, root_.roles.at("targets")}};
    std::set<std::string> visited;
    unsigned budget = config_.max_delegations;
    while (budget > 0 && !stack.empty()) {
        Visit v = std::move(stack.back());
        stack.pop_back();
        if (visited.contains(v.name)) continue;  // a cycle, or a role two parents delegate to
        const Targets *t = TRY(load_targets(v.name, *v.keys, v.role));
        if (auto it = t->targets.find(std::string(path)); it != t->targets.end()) return std::optional<TargetFile>(it->second);
        visited.insert(v.name);
        budget--;
        if (!t->delegations) continue;
        std::vector<Visit> children;
        for (const auto &r : TRY(t->delegations->roles_for(path))) {
            children.push_back({r.name, &t->delegations->keys, *r.role});
            if (r.terminating) stack.clear();  // no other role is trusted for this path
        }
        stack.insert(stack.end(), children.rbegin(), children.rend());
    }
    return std::optional<TargetFile>();
}

util::Result<bool> Client::is_cached(const TargetFile &t, const std::string &target_dir) {
    auto body = util::read_file(util::path_join(target_dir, target_file_name(t)), t.length + 1);
    if (!body) {
        if (body.error().code == ENOENT || body.error().code == EFBIG) return false;
        return std::move(body).error();
    }
    return static_cast<bool>(check_length_and_hashes(*body, t.length, t.hashes, "cached target"));
}

util::Status Client::download_target(const TargetFile &t, const std::string &target_base_url, const std::string &target_dir) {
    OpLock lock(*this);
    TRY(lock.take());
    std::string what = util::cat("target ", util::quote(t.path));
    if (t.length > config_.target_max_bytes)
        return util::Error::msg(util::cat(what, ": length ", t.length, " is over the limit of ", config_.target_max_bytes));
    std::string path = t.path;
    if (root_.consistent_snapshot) {
        size_t slash = path.rfind('/');
        size_t at = slash == std::string::npos ? 0 : slash + 1;
        path.insert(at, t.hashes.front().second + ".");
    }
    std::string url = util::cat(target_base_url, target_base_url.ends_with('/') ? "" : "/", percent_encode(path, true));
    auto body = TRY_CTX(fetcher_->fetch(url, t.length), what);
    if (!body) return util::Error::msg(util::cat(what, ": ", util::quote(url), " not found"));
    TRY(check_length_and_hashes(*body, t.length, t.hashes, what));
    TRY(util::mkdir_p(target_dir));
    // A cache checked against the metadata's hashes at every use
    // (is_cached, get_target): a power cut that garbles it costs a download.
    return util::atomic_write_file(util::path_join(target_dir, target_file_name(t)), *body, 0644,
                                   util::Durability::ProcessCrash);
}


util::Result<std::optional<std::string>> Client::get_target(std::string_view path, const std::string &target_base_url,
                                                            const std::string &target_dir) {
    OpLock lock(*this);
    TRY(lock.take());
    auto t = TRY_CTX(find_target(path), util::cat("target ", util::quote(path)));
    if (!t) return std::optional<std::string>();
    if (!TRY(is_cached(*t, target_dir))) TRY(download_target(*t, target_base_url, target_dir));
    auto body = TRY(util::read_file(util::path_join(target_dir, target_file_name(*t)), t->length + 1));
    // Checked again as read: the directory is the device's, but the bytes handed on are these.
    TRY(check_length_and_hashes(body, t->length, t->hashes, util::cat("target ", util::quote(path))));
    return std::optional<std::string>(std::move(body));
}

}  // namespace ota::tuf
