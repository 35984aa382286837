// Parsing of TUF metadata into the structs of metadata.hpp, and the
// signature threshold check.
#include "ota/tuf/metadata.hpp"

#include <cstdio>

#include <fnmatch.h>

#include <set>

#include "ota/tuf/canonical.hpp"
#include "util/strings.hpp"

namespace ota::tuf {
namespace {

namespace json = util::json;

util::Result<uint64_t> req_uint(const json::Value &obj, std::string_view key, std::string_view where) {
    auto v = TRY(json::opt_uint(obj, key, where));
    if (!v) return util::Error::msg(util::cat(util::quote(json::field_path(where, key)), ": missing"));
    return *v;
}

util::Result<const json::Value *> req_object(const json::Value &obj, std::string_view key, std::string_view where) {
    auto v = TRY(json::opt_object(obj, key, where));
    if (!v) return util::Error::msg(util::cat(util::quote(json::field_path(where, key)), ": missing"));
    return v;
}

util::Result<Hashes> parse_hashes(const json::Value &obj, std::string_view where) {
    Hashes out;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        if (!it.value().is_string())
            return util::Error::msg(util::cat(util::quote(json::field_path(where, it.key())), ": expected a string"));
        out.emplace_back(it.key(), it.value().get<std::string>());
    }
    return out;
}

/// The fields every role has; `_type` must be `type`.
util::Result<Common> parse_common(const json::Value &s, std::string_view type, std::string_view what) {
    Common c;
    c.type = TRY(json::req_string(s, "_type", what));
    if (c.type != type) return util::Error::msg(util::cat(what, ": _type is ", util::quote(c.type), ", not ", type));
    auto spec = TRY(json::req_string(s, "spec_version", what));
    auto parts = util::split(spec, '.');
    if (parts.size() < 2 || parts[0] != "1")
        return util::Error::msg(util::cat(what, ": unsupported spec_version ", util::quote(spec)));
    c.version = TRY(req_uint(s, "version", what));
    if (c.version < 1) return util::Error::msg(util::cat(what, ": version must be at least 1"));
    c.expires = TRY_CTX(parse_expiry(TRY(json::req_string(s, "expires", what))), util::cat(what, ": expires"));
    return c;
}

util::Result<MetaFile> parse_metafile(const json::Value &v, std::string_view where) {
    if (!v.is_object()) return util::Error::msg(util::cat(util::quote(where), ": expected an object"));
    MetaFile m;
    m.version = TRY(req_uint(v, "version", where));
    if (m.version < 1) return util::Error::msg(util::cat(util::quote(where), ": version must be at least 1"));
    m.length = TRY(json::opt_uint(v, "length", where));
    if (auto h = TRY(json::opt_object(v, "hashes", where))) {
        m.hashes = TRY(parse_hashes(*h, json::field_path(where, "hashes")));
        if (m.hashes.empty()) return util::Error::msg(util::cat(util::quote(where), ": empty hashes"));
    }
    return m;
}

util::Result<Role> parse_role(const json::Value &v, std::string_view where) {
    if (!v.is_object()) return util::Error::msg(util::cat(util::quote(where), ": expected an object"));
    Role r;
    r.keyids = TRY(json::opt_string_array(v, "keyids", where));
    r.threshold = TRY(req_uint(v, "threshold", where));
    if (r.threshold < 1) return util::Error::msg(util::cat(util::quote(where), ": threshold must be at least 1"));
    std::set<std::string> seen;
    for (const auto &k : r.keyids)
        if (!seen.insert(k).second) return util::Error::msg(util::cat(util::quote(where), ": duplicate key id ", k));
    return r;
}

util::Result<std::map<std::string, Key>> parse_keys(const json::Value &v, std::string_view where) {
    std::map<std::string, Key> out;
    for (auto it = v.begin(); it != v.end(); ++it) {
        std::string at = json::field_path(where, it.key());
        TRY(json::expect_object(it.value(), at));
        Key k;
        k.keytype = TRY(json::req_string(it.value(), "keytype", at));
        k.scheme = TRY(json::req_string(it.value(), "scheme", at));
        auto keyval = TRY(req_object(it.value(), "keyval", at));
        k.public_value = TRY(json::req_string(*keyval, "public", json::field_path(at, "keyval")));
        out.emplace(it.key(), std::move(k));
    }
    return out;
}

util::Result<Delegations> parse_delegations(const json::Value &v, std::string_view where) {
    Delegations d;
    d.keys = TRY(parse_keys(*TRY(req_object(v, "keys", where)), json::field_path(where, "keys")));
    auto roles = TRY(json::opt_array(v, "roles", where));
    if (auto s = TRY(json::opt_object(v, "succinct_roles", where))) {
        std::string at = json::field_path(where, "succinct_roles");
        if (roles) return util::Error::msg(util::cat(where, ": has both roles and succinct_roles"));
        SuccinctRoles sr;
        sr.role = TRY(parse_role(*s, at));
        auto bits = TRY(json::opt_uint(*s, "bit_length", at));
        if (!bits || *bits < 1 || *bits > 32)
            return util::Error::msg(util::cat(util::quote(json::field_path(at, "bit_length")), ": not an integer 1-32"));
        sr.bit_length = unsigned(*bits);
        sr.name_prefix = TRY(json::req_string(*s, "name_prefix", at));
        d.succinct = std::move(sr);
        return d;
    }
    if (!roles) return util::Error::msg(util::cat(util::quote(json::field_path(where, "roles")), ": missing"));
    std::set<std::string> names;
    for (size_t i = 0; i < roles->size(); i++) {
        const json::Value &r = (*roles)[i];
        std::string at = util::cat(where, ".roles[", i, "]");
        DelegatedRole dr;
        dr.name = TRY(json::req_string(r, "name", at));
        if (dr.name == "root" || dr.name == "timestamp" || dr.name == "snapshot" || dr.name == "targets")
            return util::Error::msg(util::cat(at, ": a delegated role may not be named ", util::quote(dr.name)));
        if (!names.insert(dr.name).second) return util::Error::msg(util::cat(at, ": duplicate role ", util::quote(dr.name)));
        dr.role = TRY(parse_role(r, at));
        dr.terminating = TRY(json::opt_bool(r, "terminating", at)).value_or(false);
        if (r.contains("paths")) dr.paths = TRY(json::opt_string_array(r, "paths", at));
        if (r.contains("path_hash_prefixes")) dr.path_hash_prefixes = TRY(json::opt_string_array(r, "path_hash_prefixes", at));
        if (dr.paths && dr.path_hash_prefixes)
            return util::Error::msg(util::cat(at, ": has both paths and path_hash_prefixes"));
        d.roles.push_back(std::move(dr));
    }
    return d;
}

}  // namespace

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date, and back: in int64,
// since a 32-bit time_t (armhf with glibc < 2.39's default) ends in 2038
// and TUF metadata routinely expires later.
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void civil_from_days(int64_t z, int64_t &y, int64_t &m, int64_t &d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = yoe + era * 400 + (m <= 2);
}

}  // namespace

util::Result<int64_t> parse_expiry(std::string_view s) {
    // YYYY-MM-DDTHH:MM:SSZ, exactly.
    if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
        return util::Error::msg(util::cat(util::quote(s), " is not YYYY-MM-DDTHH:MM:SSZ"));
    auto num = [&](size_t at, size_t n) { return util::parse_int<int>(s.substr(at, n)); };
    auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), se = num(17, 2);
    if (!y || !mo || !d || !h || !mi || !se || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 || *mi > 59 || *se > 60)
        return util::Error::msg(util::cat(util::quote(s), " is not a valid date"));
    return days_from_civil(*y, *mo, *d) * 86400 + int64_t(*h) * 3600 + int64_t(*mi) * 60 + *se;
}

std::string format_expiry(int64_t t) {
    int64_t days = (t >= 0 ? t : t - 86399) / 86400, secs = t - days * 86400, y, m, d;
    civil_from_days(days, y, m, d);
    char buf[128];
    snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", (long long)y, (long long)m, (long long)d,
             (long long)(secs / 3600), (long long)(secs / 60 % 60), (long long)(secs % 60));
    return buf;
}

std::string SuccinctRoles::bin_name(uint32_t bin) const {
    char last[16], suffix[16];
    int width = snprintf(last, sizeof last, "%x", bins());
    snprintf(suffix, sizeof suffix, "%0*x", width, bin);
    return util::cat(name_prefix, "-", suffix);
}

util::Result<std::string> SuccinctRoles::bin_for(std::string_view target_path) const {
    auto h = TRY(hash_hex("sha256", target_path));
    auto first = util::parse_int<uint32_t>(std::string_view(h).substr(0, 8), 16);
    if (!first) return util::Error::msg("sha256 is not hex");
    return bin_name(bit_length >= 32 ? *first : *first >> (32 - bit_length));
}

util::Result<std::vector<RoleFor>> Delegations::roles_for(std::string_view target_path) const {
    std::vector<RoleFor> out;
    if (succinct) {
        out.push_back({TRY(succinct->bin_for(target_path)), &succinct->role, true});
        return out;
    }
    for (const auto &d : roles) {
        if (!TRY(d.covers(target_path))) continue;
        out.push_back({d.name, &d.role, d.terminating});
        if (d.terminating) break;
    }
    return out;
}

std::optional<RoleFor> Delegations::find(std::string_view name) const {
    if (succinct) {
        std::string_view prefix = succinct->name_prefix;
        if (!name.starts_with(prefix) || name.size() < prefix.size() + 2 || name[prefix.size()] != '-') return {};
        auto suffix = name.substr(prefix.size() + 1);
        auto bin = util::parse_int<uint32_t>(suffix, 16);
        if (!bin || succinct->bin_name(*bin) != name) return {};
        return RoleFor{std::string(name), &succinct->role, true};
    }
    for (const auto &d : roles)
        if (d.name == name) return RoleFor{d.name, &d.role, d.terminating};
    return {};
}

util::Result<bool> DelegatedRole::covers(std::string_view target) const {
    if (path_hash_prefixes) {
        auto h = TRY(hash_hex("sha256", target));
        for (const auto &p : *path_hash_prefixes)
            if (h.starts_with(p)) return true;
        return false;
    }
    if (!paths) return false;
    auto target_parts = util::split(target, '/');
    for (const auto &pattern : *paths) {
        auto parts = util::split(pattern, '/');
        if (parts.size() != target_parts.size()) continue;
        bool all = true;
        for (size_t i = 0; i < parts.size() && all; i++)
            all = fnmatch(parts[i].c_str(), target_parts[i].c_str(), FNM_NOESCAPE) == 0;
        if (all) return true;
    }
    return false;
}

util::Result<Envelope> parse_envelope(std::string_view bytes, std::string_view type, std::string_view what) {
    auto v = TRY(json::parse(bytes, what));
    TRY(json::expect_object(v, what));
    Envelope e;
    auto s = TRY(req_object(v, "signed", what));
    e.signed_value = *s;
    auto sigs = TRY(json::opt_array(v, "signatures", what));
    if (!sigs) return util::Error::msg(util::cat(what, ": `signatures` missing"));
    std::set<std::string> keyids;
    for (const auto &sig : *sigs) {
        TRY(json::expect_object(sig, util::cat(what, " signature")));
        auto keyid = TRY(json::req_string(sig, "keyid", "signature"));
        // The spec: a key id is unique in the list (python-tuf and tuf-js refuse it too).
        if (!keyids.insert(keyid).second) return util::Error::msg(util::cat(what, ": two signatures by key id ", keyid));
        e.signatures.emplace_back(std::move(keyid), TRY(json::req_string(sig, "sig", "signature")));
    }
    auto t = TRY(json::req_string(*s, "_type", util::cat(what, ".signed")));
    if (t != type) return util::Error::msg(util::cat(what, ": _type is ", util::quote(t), ", expected ", type));
    e.canonical_signed = TRY_CTX(canonical_json(*s), what);
    return e;
}

util::Result<Root> parse_root(const Envelope &e) {
    const auto &s = e.signed_value;
    Root r;
    static_cast<Common &>(r) = TRY(parse_common(s, "root", "root"));
    r.consistent_snapshot = TRY(json::opt_bool(s, "consistent_snapshot", "root")).value_or(false);
    r.keys = TRY(parse_keys(*TRY(req_object(s, "keys", "root")), "root.keys"));
    auto roles = TRY(req_object(s, "roles", "root"));
    for (const char *name : {"root", "timestamp", "snapshot", "targets"}) {
        auto role = TRY(req_object(*roles, name, "root.roles"));
        r.roles[name] = TRY(parse_role(*role, util::cat("root.roles.", name)));
    }
    return r;
}

util::Result<Timestamp> parse_timestamp(const Envelope &e) {
    const auto &s = e.signed_value;
    Timestamp t;
    static_cast<Common &>(t) = TRY(parse_common(s, "timestamp", "timestamp"));
    auto meta = TRY(req_object(s, "meta", "timestamp"));
    if (meta->size() != 1 || !meta->contains("snapshot.json"))
        return util::Error::msg("timestamp: meta must list snapshot.json and nothing else");
    t.snapshot_meta = TRY(parse_metafile((*meta)["snapshot.json"], "timestamp.meta.snapshot.json"));
    return t;
}

util::Result<Snapshot> parse_snapshot(const Envelope &e) {
    const auto &s = e.signed_value;
    Snapshot sn;
    static_cast<Common &>(sn) = TRY(parse_common(s, "snapshot", "snapshot"));
    auto meta = TRY(req_object(s, "meta", "snapshot"));
    for (auto it = meta->begin(); it != meta->end(); ++it)
        sn.meta[it.key()] = TRY(parse_metafile(it.value(), util::cat("snapshot.meta.", it.key())));
    if (!sn.meta.contains("targets.json")) return util::Error::msg("snapshot: meta does not list targets.json");
    return sn;
}

util::Result<Targets> parse_targets(const Envelope &e, std::string_view what) {
    const auto &s = e.signed_value;
    Targets t;
    static_cast<Common &>(t) = TRY(parse_common(s, "targets", what));
    auto targets = TRY(req_object(s, "targets", what));
    for (auto it = targets->begin(); it != targets->end(); ++it) {
        std::string at = util::cat(what, ".targets.", it.key());
        TRY(json::expect_object(it.value(), at));
        TargetFile f;
        f.path = it.key();
        f.length = TRY(req_uint(it.value(), "length", at));
        f.hashes = TRY(parse_hashes(*TRY(req_object(it.value(), "hashes", at)), util::cat(at, ".hashes")));
        if (f.hashes.empty()) return util::Error::msg(util::cat(at, ": no hashes"));
        if (auto c = it.value().find("custom"); c != it.value().end() && c->is_object()) f.custom = *c;
        t.targets.emplace(f.path, std::move(f));
    }
    if (auto d = TRY(json::opt_object(s, "delegations", what)))
        t.delegations = TRY(parse_delegations(*d, util::cat(what, ".delegations")));
    return t;
}

util::Status verify_threshold(const Envelope &e, const std::map<std::string, Key> &keys, const Role &role,
                              std::string_view what) {
    // A signature that cannot be checked is not a bad one: without
    // libcrypto the error says so rather than "0 of N verify".
    if (!e.signatures.empty()) TRY_CTX(crypto_ready(), what);
    std::set<std::string> counted;  // key identities, not ids: one key under two ids counts once
    for (const auto &[keyid, sig] : e.signatures) {
        bool listed = false;
        for (const auto &k : role.keyids) listed = listed || k == keyid;
        if (!listed) continue;
        auto key = keys.find(keyid);
        if (key == keys.end() || counted.contains(key->second.identity())) continue;
        if (verify_signature(key->second, e.canonical_signed, sig)) counted.insert(key->second.identity());
    }
    if (counted.size() < role.threshold)
        return util::Error::msg(util::cat(what, ": ", counted.size(), " of ", role.threshold,
                                          " required signatures verify (threshold not met)"));
    return util::ok();
}

util::Status check_length_and_hashes(std::string_view body, std::optional<uint64_t> length, const Hashes &hashes,
                                     std::string_view what) {
    if (length && body.size() != *length)
        return util::Error::msg(util::cat(what, ": length ", body.size(), " does not match the expected ", *length));
    for (const auto &[alg, want] : hashes) {
        auto got = TRY_CTX(hash_hex(alg, body), what);
        if (got != want) return util::Error::msg(util::cat(what, ": ", alg, " hash does not match"));
    }
    return util::ok();
}

}  // namespace ota::tuf
