// `berth fleet init|release|refresh|rotate|delegate|keygen`: the fleet
// controller's TUF repository (ota/tuf/repository.hpp, docs/fleet.md). Each
// command turns its options into one Repository call; a refused command
// changes nothing in the repository.
//
//   berth fleet init DIR [--key-type T] [--keys ROLE=N] [--threshold ROLE=N] [--expires ROLE=DURATION]
//   berth fleet release DIR --channel NAME [--key TEAM_KEY ...] MANIFEST
//   berth fleet refresh DIR [--within DURATION] [--key TEAM_KEY ...]
//   berth fleet rotate DIR --role ROLE [--key-type T] [--keys N] [--threshold N] [--pubkey FILE ...]
//   berth fleet sign DIR [--key FILE ...] [--signature ROLE=FILE ...] | --payload ROLE | --discard
//   berth fleet delegate DIR --role NAME --paths GLOB [...] --key PUBKEY [...] [--threshold N] [--terminating]
//                        [--role-key FILE ...] [--from ROLE --from-key FILE ...]
//   berth fleet delegate DIR --role PREFIX --succinct BITS --key PUBKEY [...] --role-key FILE [...] [--from ...]
//   berth fleet keygen [--key-type T] FILE        (FILE and FILE.pub, for a team's delegated role)
// Every repository command takes --key-dir (default DIR.keys) and
// --root-key-dir (default KEY_DIR/root).
#include <ctime>

#include "commands.hpp"
#include "ota/tuf/repository.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

using ota::tuf::Repository;

int64_t now() { return int64_t(time(nullptr)); }

ota::tuf::RepoPaths repo_paths(const util::ParsedArgs &a) {
    ota::tuf::RepoPaths p;
    p.dir = a.positional[0];
    while (p.dir.size() > 1 && p.dir.ends_with('/')) p.dir.pop_back();
    p.key_dir = a.get("key-dir").value_or("");
    p.root_key_dir = a.get("root-key-dir").value_or("");
    return p;
}

util::Result<unsigned> count_arg(std::string_view s, std::string_view what) {
    auto n = util::parse_int<unsigned>(s);
    if (!n || *n < 1 || *n > 16) return util::Error::msg(util::cat(what, " ", util::quote(s), " is not a number 1-16"));
    return *n;
}

/// ROLE=VALUE.
util::Result<std::pair<std::string, std::string>> role_value(const std::string &s, std::string_view option) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0)
        return util::Error::msg(util::cat("--", option, " ", util::quote(s), " is not ROLE=VALUE"));
    return std::pair{s.substr(0, eq), s.substr(eq + 1)};
}

/// The private keys named by every --OPTION.
util::Result<std::vector<ota::tuf::PrivateKey>> private_keys(const util::ParsedArgs &a, const char *option = "key") {
    std::vector<ota::tuf::PrivateKey> keys;
    for (const auto &f : a.get_all(option))
        keys.push_back(TRY_CTX(ota::tuf::PrivateKey::from_pem(TRY_CTX(util::read_file(f, 1 << 20), util::cat("--", option))),
                               util::cat("key ", util::quote(f))));
    return keys;
}

/// "; staged: ROLE (KEYIDS of N needed), ...": what a change waits for.
std::string staged_note(const Repository &repo) {
    if (repo.pending().empty()) return "";
    return util::cat("; staged, waiting for signatures: ", util::join(repo.pending(), "; "), " (berth fleet sign)");
}

util::Result<int> run_init(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    ota::tuf::InitOptions o;
    if (auto t = a.get("key-type")) o.key_type = TRY(ota::tuf::parse_key_type(*t));
    for (const auto &s : a.get_all("keys")) {
        auto [role, v] = TRY(role_value(s, "keys"));
        o.roles[role].keys = TRY(count_arg(v, "--keys"));
    }
    for (const auto &s : a.get_all("threshold")) {
        auto [role, v] = TRY(role_value(s, "threshold"));
        o.roles[role].threshold = TRY(count_arg(v, "--threshold"));
        // More signers than keys is an error, unless --keys said how many keys.
        bool counted = false;
        for (const auto &k : a.get_all("keys")) counted = counted || k.starts_with(role + "=");
        if (!counted) o.roles[role].keys = o.roles[role].threshold;
    }
    for (const auto &s : a.get_all("expires")) {
        auto [role, v] = TRY(role_value(s, "expires"));
        TRY(o.expiry.set(role, TRY(ota::tuf::parse_duration(v))));
    }
    auto paths = repo_paths(a);
    TRY(Repository::init(paths, o, now()));
    auto repo = TRY(Repository::open(paths));
    TRY(util::write_all(1, util::cat("repository ", paths.dir, ": root version 1 (", key_type_name(o.key_type),
                                     "); online keys in ", repo.key_dir(), ", root keys in ", repo.root_key_dir(),
                                     " (keep them offline)\n")));
    return 0;
}

util::Result<int> run_release(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    auto channel = a.get("channel");
    if (!channel) return util::Error::msg("--channel is required");
    auto manifest = TRY_CTX(util::read_file(a.positional[1], 4 << 20), "manifest");
    auto keys = TRY(private_keys(a));
    util::json::Value custom = util::json::Value::object();
    for (const auto &b : a.get_all("board")) {
        if (b.empty()) return util::Error::msg("--board: empty board name");
        custom["boards"].push_back(b);
    }
    if (auto p = a.get("poll-interval")) {
        int64_t s = TRY_CTX(ota::tuf::parse_duration(*p), "--poll-interval");
        if (s < 10 || s > 86400) return util::Error::msg(util::cat("--poll-interval: ", *p, " is not between 10s and 24h"));
        custom["poll_interval_s"] = s;
    }
    auto repo = TRY(Repository::open(repo_paths(a)));
    auto target = TRY(repo.release(*channel, manifest, keys, now(), custom, a.get("role").value_or("")));
    if (!repo.pending().empty()) {
        TRY(util::write_all(1, util::cat(target, ": not published yet", staged_note(repo), "\n")));
        return 0;
    }
    TRY(util::write_all(1, util::cat(target, ": released (targets ", repo.version_of("targets"), ", snapshot ",
                                     repo.version_of("snapshot"), ", timestamp ", repo.version_of("timestamp"), ")\n")));
    return 0;
}

util::Result<int> run_refresh(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    std::optional<int64_t> within;
    if (auto w = a.get("within")) within = TRY(ota::tuf::parse_duration(*w));
    auto keys = TRY(private_keys(a));
    auto repo = TRY(Repository::open(repo_paths(a)));
    auto done = TRY(repo.refresh(within, now(), keys));
    TRY(util::write_all(1, done.resigned.empty() ? std::string("nothing expires soon\n")
                                                 : util::cat("re-signed ", util::join(done.resigned, ", "), staged_note(repo), "\n")));
    for (const auto &w : done.warnings) TRY(util::write_all(2, util::cat("berth: warning: ", w, "\n")));
    return 0;
}

util::Result<int> run_rotate(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    ota::tuf::RotateOptions o;
    auto role = a.get("role");
    if (!role) return util::Error::msg("--role is required");
    o.role = *role;
    if (auto t = a.get("key-type")) o.key_type = TRY(ota::tuf::parse_key_type(*t));
    if (auto k = a.get("keys")) o.keys = TRY(count_arg(*k, "--keys"));
    if (auto t = a.get("threshold")) o.threshold = TRY(count_arg(*t, "--threshold"));
    for (const auto &f : a.get_all("pubkey"))
        o.public_keys.push_back(TRY_CTX(ota::tuf::public_key_from_pem(TRY_CTX(util::read_file(f, 1 << 20), "--pubkey")),
                                        util::cat("key ", util::quote(f))));
    auto repo = TRY(Repository::open(repo_paths(a)));
    auto ids = TRY(repo.rotate(o, now()));
    for (auto &id : ids) id = id.substr(0, 16);
    TRY(util::write_all(1, util::cat(o.role, ": new keys ", util::join(ids, ", "), "; root version ", repo.version_of("root"),
                                     staged_note(repo), "\n")));
    return 0;
}

/// A raw signature file (as `openssl dgst -sign` writes it) or its hex.
util::Result<std::string> signature_hex(const std::string &file) {
    auto bytes = TRY_CTX(util::read_file(file, 1 << 16), "--signature");
    while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == '\r' || bytes.back() == ' ')) bytes.pop_back();
    bool hex = !bytes.empty() && bytes.size() % 2 == 0 &&
               bytes.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
    if (hex) {
        for (auto &c : bytes) c = char(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
        return bytes;
    }
    auto raw = TRY_CTX(util::read_file(file, 1 << 16), "--signature");
    return util::hex_encode(reinterpret_cast<const unsigned char *>(raw.data()), raw.size());
}

util::Result<int> run_sign(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    auto repo = TRY(Repository::open(repo_paths(a)));
    if (a.has("discard")) {
        TRY(repo.discard_staged());
        TRY(util::write_all(1, "staged change dropped\n"));
        return 0;
    }
    if (auto role = a.get("payload")) {
        TRY(util::write_all(1, TRY(repo.staged_payload(*role))));
        return 0;
    }
    auto keys = TRY(private_keys(a));
    auto sigs = a.get_all("signature");
    if (keys.empty() && sigs.empty()) return util::Error::msg("give --key, --signature, --payload or --discard");
    for (const auto &s : sigs) {
        auto [role, file] = TRY(role_value(s, "signature"));
        TRY(repo.add_staged_signature(role, TRY(signature_hex(file)), now()));
    }
    // Signatures that complete the change have published it already.
    if (!keys.empty() && repo.staged()) TRY(repo.sign_staged(keys, now()));
    TRY(util::write_all(1, repo.pending().empty()
                               ? util::cat("published: root ", repo.version_of("root"), ", targets ", repo.version_of("targets"),
                                           ", snapshot ", repo.version_of("snapshot"), ", timestamp ",
                                           repo.version_of("timestamp"), "\n")
                               : util::cat(staged_note(repo).substr(2), "\n")));
    return 0;
}

util::Result<int> run_delegate(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    ota::tuf::DelegateOptions o;
    auto role = a.get("role");
    if (!role) return util::Error::msg("--role is required");
    o.role = *role;
    o.paths = a.get_all("paths");
    for (const auto &f : a.get_all("key"))
        o.keys.push_back(TRY_CTX(ota::tuf::public_key_from_pem(TRY_CTX(util::read_file(f, 1 << 20), "--key")),
                                 util::cat("key ", util::quote(f))));
    if (auto t = a.get("threshold")) o.threshold = TRY(count_arg(*t, "--threshold"));
    o.terminating = a.has("terminating");
    if (auto f = a.get("from")) o.from = *f;
    o.from_keys = TRY(private_keys(a, "from-key"));
    if (auto b = a.get("succinct")) {
        auto bits = util::parse_int<unsigned>(*b);
        if (!bits) return util::Error::msg(util::cat("--succinct ", util::quote(*b), " is not a bit length"));
        o.succinct = *bits;
    }
    o.role_keys = TRY(private_keys(a, "role-key"));
    auto repo = TRY(Repository::open(repo_paths(a)));
    TRY(repo.delegate(o, now()));
    auto what = o.succinct ? util::cat("hash bins ", o.role, "-* (", 1u << *o.succinct, ") sign every path of ", o.from)
                           : util::cat("role ", o.role, " signs ", util::join(o.paths, ", "));
    TRY(util::write_all(1, util::cat(what, " (", o.from, " ", repo.version_of(o.from), ")\n")));
    return 0;
}

util::Result<int> run_keygen(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    auto type = ota::tuf::KeyType::Ecdsa;
    if (auto t = a.get("key-type")) type = TRY(ota::tuf::parse_key_type(*t));
    const auto &file = a.positional[0];
    if (util::path_exists(file)) return util::Error::msg(util::cat(util::quote(file), " exists"));
    auto key = TRY(ota::tuf::PrivateKey::generate(type));
    TRY(util::atomic_write_file(file, key.pem(), 0600));
    TRY(util::atomic_write_file(file + ".pub", key.public_pem()));
    TRY(util::write_all(1, util::cat(file, ": key ", key.keyid().substr(0, 16), " (", key_type_name(type), "), public key in ",
                                     file, ".pub\n")));
    return 0;
}

#define KEY_DIRS                                                                                          \
    {"key-dir", 0, true, "DIR", "the online keys (targets, snapshot, timestamp); default: the repository's path + .keys"}, \
        {"root-key-dir", 0, true, "DIR", "the offline root keys; default: KEY_DIR/root"}

const util::OptSpec kInitOptions[] = {
    KEY_DIRS,
    {"key-type", 0, true, "TYPE", "ecdsa-sha2-nistp256 (default), ed25519 or rsassa-pss-sha256"},
    {"keys", 0, true, "ROLE=N", "how many keys the role gets (default: its threshold)"},
    {"threshold", 0, true, "ROLE=N", "how many of the role's keys must sign (default 1)"},
    {"expires", 0, true, "ROLE=DURATION", "how long the role's metadata stays valid: 30d, 12h (root 365d, targets 90d, snapshot 7d, timestamp 1d)"},
};
const util::OptSpec kReleaseOptions[] = {
    KEY_DIRS,
    {"channel", 0, true, "NAME", "the channel: target channels/NAME/manifest.json"},
    {"key", 0, true, "FILE", "a private key of the delegated role the channel belongs to (repeatable)"},
    {"role", 0, true, "NAME", "the delegated role to release into; without --key the release is staged until that role's "
                              "keys sign it (`berth fleet sign`)"},
    {"board", 0, true, "NAME", "only devices of this board apply it (repeatable; default: every board)"},
    {"poll-interval", 0, true, "DURATION", "the poll interval devices on this channel should use (10s..24h)"},
};
const util::OptSpec kRefreshOptions[] = {
    KEY_DIRS,
    {"within", 0, true, "DURATION", "re-sign what expires within this (default: half of each role's period)"},
    {"key", 0, true, "FILE", "a private key of a delegated role to re-sign when it nears its expiry (repeatable)"},
};
const util::OptSpec kRotateOptions[] = {
    KEY_DIRS,
    {"role", 0, true, "ROLE", "root, targets, snapshot or timestamp"},
    {"key-type", 0, true, "TYPE", "the new keys' type (default: the current one)"},
    {"keys", 0, true, "N", "how many new keys (default: as many as now, at least the threshold)"},
    {"threshold", 0, true, "N", "the new threshold (default: as now)"},
    {"pubkey", 0, true, "FILE", "a PEM public key held elsewhere (an HSM-backed signer) instead of new keys (repeatable); "
                                "what it signs waits for `berth fleet sign`"},
};
const util::OptSpec kSignOptions[] = {
    KEY_DIRS,
    {"key", 0, true, "FILE", "a private key that signs the staged roles listing it (repeatable)"},
    {"payload", 0, true, "ROLE", "print the canonical bytes of the staged ROLE: what an outside signer signs"},
    {"signature", 0, true, "ROLE=FILE", "an outside signature of ROLE's payload: raw (openssl dgst -sign) or hex (repeatable)"},
    {"discard", 0, false, nullptr, "drop the staged change"},
};
const util::OptSpec kDelegateOptions[] = {
    KEY_DIRS,
    {"role", 0, true, "NAME", "the delegated role"},
    {"paths", 0, true, "GLOB", "target paths it may sign, e.g. channels/team-a-*/* (repeatable)"},
    {"key", 0, true, "PUBKEY", "a PEM public key of the role (repeatable)"},
    {"threshold", 0, true, "N", "how many of its keys must sign (default 1)"},
    {"terminating", 0, false, nullptr, "no other role is searched for these paths"},
    {"from", 0, true, "ROLE", "the delegating role: targets (default) or a delegated role, within whose paths --paths must be"},
    {"from-key", 0, true, "FILE", "a private key of the --from role, which signs the delegation (repeatable)"},
    {"succinct", 0, true, "BITS", "hash bins instead of --paths: 2^BITS roles NAME-<hex> sharing the --key keys (1-10)"},
    {"role-key", 0, true, "FILE", "a private key of the new role: signs it now, empty, so devices on its channels see nothing "
                                  "released rather than an error until its first release (required with --succinct; repeatable)"},
};
const util::OptSpec kKeygenOptions[] = {
    {"key-type", 0, true, "TYPE", "ecdsa-sha2-nistp256 (default), ed25519 or rsassa-pss-sha256"},
};

const cli::Command kCommands[] = {
    {"init", "DIR [OPTIONS]", "create a TUF repository and its keys", kInitOptions, 1, 1, false, run_init},
    {"release", "DIR --channel NAME [--key FILE | --role NAME] [--board NAME]... MANIFEST", "publish an update manifest on a channel",
     kReleaseOptions, 2, 2, false, run_release},
    {"refresh", "DIR [--within DURATION] [--key TEAM_KEY]", "re-sign timestamp and snapshot before they expire", kRefreshOptions, 1, 1, false, run_refresh},
    {"rotate", "DIR --role ROLE", "new keys for a role (a new root version)", kRotateOptions, 1, 1, false, run_rotate},
    {"sign", "DIR [--key FILE]... [--signature ROLE=FILE]... | --payload ROLE | --discard",
     "sign a change waiting for keys held elsewhere, publishing it once thresholds are met", kSignOptions, 1, 1, false, run_sign},
    {"delegate", "DIR --role NAME --paths GLOB --key PUBKEY", "let a team's key sign some channels", kDelegateOptions, 1, 1,
     false, run_delegate},
    {"keygen", "[--key-type TYPE] FILE", "make a key pair (FILE, FILE.pub) for a delegated role", kKeygenOptions, 1, 1, false,
     run_keygen},
};

}  // namespace

std::span<const cli::Command> fleet_repo_commands() { return kCommands; }

}  // namespace cmd
