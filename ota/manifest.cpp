// The update manifest parser (docs/update-manifest.md) and the board's app
// limits (docs/board.md, "apps").
//
// Strict by construction: each object is read by walking its keys in
// document order and dispatching on the name, so a key nobody asked for is
// an "unknown field" at its path; a key written twice in one object is
// refused too (parsers differ on which copy wins, and a signature covers the
// bytes, not one parser's reading of them). Every error is one line,
// "<path>: <what was expected>", with the path as a JSON path into the
// document ("containers[1].health.port"). Containers come back in a stable
// topological order; a dependency cycle is named in full.
#include "ota/manifest.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <csignal>
#include <initializer_list>
#include <set>

#include "image/config.hpp"
#include "image/digest.hpp"
#include "image/reference.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace ota {
namespace {

using util::cat;
using util::quote;
using util::json::Value;

constexpr size_t kMaxName = 63;  ///< container and volume names: a DNS label, a directory name
constexpr size_t kMaxRevisionName = 128;
constexpr size_t kMaxContainers = 256;  ///< far above any gateway; keeps the ordering's quadratic loops small
constexpr int64_t kMaxDurationMs = 24LL * 3600 * 1000;  ///< one day: any longer is a unit mistake
constexpr int64_t kMinProbeMs = 10;                     ///< health interval and timeout
constexpr uint64_t kMinMemory = 1 << 20;                ///< below 1 MiB no process starts
constexpr int64_t kMaxPids = 4194304;                   ///< the kernel's PID_MAX_LIMIT
constexpr size_t kMaxBoardFile = 1 << 20;

/// The capabilities the kernel defines (linux/capability.h, CAP_CHOWN = 0
/// to CAP_CHECKPOINT_RESTORE = 40). Kept here as names only: ota/ does not
/// link the runtime, and a manifest is checked before any kernel sees it.
constexpr std::string_view kCapabilities[] = {"CAP_CHOWN",
                                              "CAP_DAC_OVERRIDE",
                                              "CAP_DAC_READ_SEARCH",
                                              "CAP_FOWNER",
                                              "CAP_FSETID",
                                              "CAP_KILL",
                                              "CAP_SETGID",
                                              "CAP_SETUID",
                                              "CAP_SETPCAP",
                                              "CAP_LINUX_IMMUTABLE",
                                              "CAP_NET_BIND_SERVICE",
                                              "CAP_NET_BROADCAST",
                                              "CAP_NET_ADMIN",
                                              "CAP_NET_RAW",
                                              "CAP_IPC_LOCK",
                                              "CAP_IPC_OWNER",
                                              "CAP_SYS_MODULE",
                                              "CAP_SYS_RAWIO",
                                              "CAP_SYS_CHROOT",
                                              "CAP_SYS_PTRACE",
                                              "CAP_SYS_PACCT",
                                              "CAP_SYS_ADMIN",
                                              "CAP_SYS_BOOT",
                                              "CAP_SYS_NICE",
                                              "CAP_SYS_RESOURCE",
                                              "CAP_SYS_TIME",
                                              "CAP_SYS_TTY_CONFIG",
                                              "CAP_MKNOD",
                                              "CAP_LEASE",
                                              "CAP_AUDIT_WRITE",
                                              "CAP_AUDIT_CONTROL",
                                              "CAP_SETFCAP",
                                              "CAP_MAC_OVERRIDE",
                                              "CAP_MAC_ADMIN",
                                              "CAP_SYSLOG",
                                              "CAP_WAKE_ALARM",
                                              "CAP_BLOCK_SUSPEND",
                                              "CAP_AUDIT_READ",
                                              "CAP_PERFMON",
                                              "CAP_BPF",
                                              "CAP_CHECKPOINT_RESTORE"};

/// A JSON string naming a value of an enumeration.
template <typename T>
struct Named {
    std::string_view name;
    T value;
};

constexpr Named<HealthKind> kHealthKinds[] = {
    {"exec", HealthKind::Exec}, {"http", HealthKind::Http}, {"tcp", HealthKind::Tcp}, {"ready", HealthKind::Ready}};
constexpr Named<NetworkMode> kNetworks[] = {
    {"private", NetworkMode::Private}, {"host", NetworkMode::Host}, {"none", NetworkMode::None}};
constexpr Named<RestartPolicy::Kind> kRestartKinds[] = {{"no", RestartPolicy::No},
                                                        {"on-failure", RestartPolicy::OnFailure},
                                                        {"always", RestartPolicy::Always},
                                                        {"unless-stopped", RestartPolicy::UnlessStopped}};
/// The signals a container may be asked to stop with, by name.
constexpr Named<int> kStopSignals[] = {{"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"ABRT", SIGABRT},
                                       {"KILL", SIGKILL}, {"USR1", SIGUSR1},   {"USR2", SIGUSR2}, {"ALRM", SIGALRM},
                                       {"TERM", SIGTERM}, {"WINCH", SIGWINCH}, {"PWR", SIGPWR}};

// ---- paths and messages ----------------------------------------------------

/// "path: why". No errno: the message is the whole story.
util::Error bad(std::string_view path, std::string_view why) { return util::Error::msg(cat(path, ": ", why)); }

/// The document parsed as JSON, its syntax error (with line and column) as a plain message.
util::Result<Value> parse_json(std::string_view text, std::string_view what) {
    auto v = util::json::parse(text, what);
    if (!v) return util::Error::msg(v.error().context);
    return std::move(v).value();
}

bool plain_word(std::string_view s) {
    if (s.empty()) return false;
    for (char ch : s)
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-')) return false;
    return true;
}

/// A string from the document as a message shows it: in backticks, or JSON
/// escaped when it holds anything that could break the one-line message;
/// cut to 64 bytes.
std::string shown(std::string_view s) {
    bool printable =
        std::all_of(s.begin(), s.end(), [](char ch) { return static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f; });
    std::string cut(s.substr(0, 64));
    if (s.size() > 64) cut += "...";
    return printable ? quote(cut) : util::json::dump(Value(cut));
}

/// `parent.key` (a key that is not a plain word is shown JSON-quoted).
std::string key_path(std::string_view parent, std::string_view key) {
    return util::json::field_path(parent,
                                  plain_word(key) ? std::string(key) : util::json::dump(Value(std::string(key))));
}
std::string item_path(std::string_view parent, size_t i) { return cat(parent, '[', i, ']'); }

util::Error wrong_type(std::string_view path, std::string_view expected, const Value &got) {
    return bad(path, cat("expected ", expected, ", got ", util::json::type_name(got)));
}
util::Error unknown_field(std::string_view parent, std::string_view key) {
    return bad(key_path(parent, key), "unknown field");
}

/// Checks that `v` is an object holding every key of `required`.
util::Status object_with(const Value &v, std::string_view path, std::initializer_list<std::string_view> required) {
    if (!v.is_object()) return wrong_type(path.empty() ? "document" : path, "an object", v);
    for (std::string_view k : required)
        if (!v.contains(std::string(k))) return bad(key_path(path, k), "missing (a required field)");
    return util::ok();
}

// ---- scalar readers ---------------------------------------------------------

util::Result<std::string> text(const Value &v, std::string_view path) {
    if (!v.is_string()) return wrong_type(path, "a string", v);
    const auto &s = v.get_ref<const std::string &>();
    if (s.find('\0') != std::string::npos) return bad(path, "contains a NUL character");
    return s;
}

util::Result<std::vector<std::string>> texts(const Value &v, std::string_view path) {
    if (!v.is_array()) return wrong_type(path, "an array of strings", v);
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); i++) out.push_back(TRY(text(v[i], item_path(path, i))));
    return out;
}

util::Result<bool> boolean(const Value &v, std::string_view path) {
    if (!v.is_boolean()) return wrong_type(path, "a boolean", v);
    return v.get<bool>();
}

/// The value `choices` names by the string at `path`.
template <typename T, size_t N>
util::Result<T> choice(const Value &v, std::string_view path, const Named<T> (&choices)[N]) {
    std::string expected;
    for (size_t i = 0; i < N; i++) expected += cat(i == 0 ? "" : i + 1 < N ? ", " : " or ", quote(choices[i].name));
    if (!v.is_string()) return wrong_type(path, expected, v);
    const auto &s = v.get_ref<const std::string &>();
    for (const auto &c : choices)
        if (c.name == s) return c.value;
    return bad(path, cat("expected ", expected, ", got ", shown(s)));
}

/// An integer in [lo, hi].
util::Result<int64_t> integer(const Value &v, std::string_view path, int64_t lo, int64_t hi) {
    std::string expected = cat("an integer ", lo, "-", hi);
    if (!v.is_number_integer()) return wrong_type(path, expected, v);
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
        return bad(path, cat("expected ", expected, ", got ", v.get<uint64_t>()));
    int64_t n = v.get<int64_t>();
    if (n < lo || n > hi) return bad(path, cat("expected ", expected, ", got ", n));
    return n;
}

/// A duration in milliseconds: an integer (milliseconds) or a string of
/// digits with a unit, "500ms", "10s", "2m", "1h"; at least `min_ms`, at
/// most a day.
util::Result<int64_t> duration(const Value &v, std::string_view path, int64_t min_ms) {
    std::string expected =
        cat("a duration (\"500ms\", \"10s\", \"2m\", \"1h\" or integer milliseconds) from ", min_ms, "ms to 24h");
    int64_t ms = 0;
    if (v.is_number_integer()) {
        if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(kMaxDurationMs))
            return bad(path, cat("expected ", expected, ", got ", v.get<uint64_t>()));
        ms = v.get<int64_t>();
    } else if (v.is_string()) {
        std::string_view s = v.get_ref<const std::string &>();
        size_t digits = 0;
        while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') digits++;
        std::string_view unit = s.substr(digits);
        int64_t scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : unit == "h" ? 3600000 : 0;
        auto n = digits > 0 && digits <= 12 ? util::parse_int<int64_t>(s.substr(0, digits)) : std::nullopt;
        if (!n || scale == 0) return bad(path, cat("expected ", expected, ", got ", shown(s)));
        ms = *n * scale;  // at most 12 digits times an hour: no overflow
    } else {
        return wrong_type(path, expected, v);
    }
    if (ms < min_ms || ms > kMaxDurationMs) return bad(path, cat("expected ", expected, ", got ", ms, "ms"));
    return ms;
}

/// [a-z0-9][a-z0-9_.-]*, at most 63 bytes: a container or volume name.
util::Result<std::string> short_name(const Value &v, std::string_view path) {
    std::string s = TRY(text(v, path));
    auto ok_char = [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
    };
    bool good = !s.empty() && s.size() <= kMaxName && std::all_of(s.begin(), s.end(), ok_char) && s[0] != '_' &&
                s[0] != '.' && s[0] != '-';
    if (!good) return bad(path, cat("expected a name of 1-63 characters [a-z0-9][a-z0-9_.-]*, got ", shown(s)));
    return s;
}

/// A clean absolute path: starts with `/`, no empty, `.` or `..` component,
/// no trailing `/` (except `/` itself).
bool clean_absolute(std::string_view p) {
    if (p.empty() || p[0] != '/') return false;
    if (p == "/") return true;
    for (const auto &part : util::split(p.substr(1), '/'))
        if (part.empty() || part == "." || part == "..") return false;
    return true;
}

util::Result<std::string> absolute_path(const Value &v, std::string_view path) {
    std::string s = TRY(text(v, path));
    if (!clean_absolute(s))
        return bad(path, cat("expected a clean absolute path (no `.`, `..`, `//` or trailing `/`), got ", shown(s)));
    return s;
}

bool under(std::string_view p, std::string_view dir) {
    return p == dir || (p.starts_with(dir) && p.size() > dir.size() && p[dir.size()] == '/');
}

/// A capability name as the kernel spells it; a name without the CAP_
/// prefix or in lowercase gets told the right spelling.
util::Result<std::string> capability(const Value &v, std::string_view path) {
    std::string s = TRY(text(v, path));
    auto known = [](std::string_view n) {
        return std::find(std::begin(kCapabilities), std::end(kCapabilities), n) != std::end(kCapabilities);
    };
    if (known(s)) return s;
    std::string upper;
    for (char ch : s) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (!upper.starts_with("CAP_")) upper = "CAP_" + upper;
    if (known(upper)) return bad(path, cat(shown(s), " is not a capability name: write ", quote(upper)));
    return bad(path, cat("expected a capability name such as `CAP_NET_ADMIN`, got ", shown(s)));
}

/// A capability list without repeats.
util::Result<std::vector<std::string>> capabilities(const Value &v, std::string_view path) {
    if (!v.is_array()) return wrong_type(path, "an array of capability names", v);
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); i++) {
        std::string c = TRY(capability(v[i], item_path(path, i)));
        if (std::find(out.begin(), out.end(), c) != out.end())
            return bad(item_path(path, i), cat(quote(c), " is listed twice"));
        out.push_back(std::move(c));
    }
    return out;
}

// ---- container fields -------------------------------------------------------

util::Result<std::string> pinned_image(const Value &v, std::string_view path) {
    std::string s = TRY(text(v, path));
    auto ref = img::Reference::parse(s);
    if (!ref) return bad(path, ref.error().message());
    if (!ref->digest)
        return bad(path, cat(shown(s),
                             " is not pinned by digest: name the image as <registry>/<repository>@sha256:<64 hex> "
                             "(a tag alone can change under the device)"));
    return s;
}

util::Result<std::vector<std::string>> environment(const Value &v, std::string_view path) {
    std::vector<std::string> env = TRY(texts(v, path));
    std::set<std::string> keys;
    for (size_t i = 0; i < env.size(); i++) {
        size_t eq = env[i].find('=');
        if (eq == std::string::npos || eq == 0)
            return bad(item_path(path, i), cat("expected KEY=VALUE, got ", shown(env[i])));
        if (!keys.insert(env[i].substr(0, eq)).second)
            return bad(item_path(path, i), cat(shown(env[i].substr(0, eq)), " is set twice"));
    }
    return env;
}

/// "name", "uid", "name:group" or "uid:gid".
util::Result<std::string> user(const Value &v, std::string_view path) {
    std::string s = TRY(text(v, path));
    auto parts = util::split(s, ':');
    bool good = !s.empty() && parts.size() <= 2 && std::all_of(parts.begin(), parts.end(), [](const std::string &p) {
        return !p.empty() && std::all_of(p.begin(), p.end(), [](char ch) {
            return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
        });
    });
    if (!good) return bad(path, cat("expected user[:group] (names or numeric ids), got ", shown(s)));
    return s;
}

/// `no`, `on-failure`, `always`, `unless-stopped`, or `on-failure:N`.
util::Result<RestartPolicy> restart_policy(const Value &v, std::string_view path) {
    RestartPolicy r;
    if (v.is_string() && v.get_ref<const std::string &>().starts_with("on-failure:")) {
        std::string_view s = v.get_ref<const std::string &>();
        auto n = util::parse_int<int>(s.substr(11));
        if (!n || *n < 1) return bad(path, cat("expected `on-failure:N` with N >= 1, got ", shown(s)));
        r.kind = RestartPolicy::OnFailure;
        r.max_retries = *n;
        return r;
    }
    r.kind = TRY(choice(v, path, kRestartKinds));
    return r;
}

util::Result<int> stop_signal(const Value &v, std::string_view path) {
    constexpr std::string_view expected = "a signal name (\"SIGTERM\" or \"TERM\") or number 1-64";
    if (v.is_number_integer()) return static_cast<int>(TRY(integer(v, path, 1, 64)));
    if (!v.is_string()) return wrong_type(path, expected, v);
    std::string_view s = v.get_ref<const std::string &>();
    std::string_view name = s.starts_with("SIG") ? s.substr(3) : s;
    for (const auto &sig : kStopSignals)
        if (sig.name == name) return sig.value;
    return bad(path, cat("expected ", expected, ", got ", shown(s)));
}

util::Result<HealthSpec> health(const Value &v, const std::string &path) {
    TRY(object_with(v, path, {"kind"}));
    HealthSpec h;
    bool has_command = false, has_port = false, has_path = false;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (key == "kind") {
            h.kind = TRY(choice(val, p, kHealthKinds));
        } else if (key == "command") {
            h.command = TRY(texts(val, p));
            if (h.command.empty() || h.command[0].empty()) return bad(p, "expected a non-empty command (argv)");
            has_command = true;
        } else if (key == "port") {
            h.port = static_cast<uint16_t>(TRY(integer(val, p, 1, 65535)));
            has_port = true;
        } else if (key == "path") {
            h.path = TRY(text(val, p));
            if (!h.path.starts_with('/') ||
                std::any_of(h.path.begin(), h.path.end(), [](char ch) { return ch <= ' ' || ch == 0x7f; }))
                return bad(p, cat("expected an http path starting with `/` (no spaces), got ", shown(h.path)));
            has_path = true;
        } else if (key == "interval") {
            h.interval_ms = TRY(duration(val, p, kMinProbeMs));
        } else if (key == "timeout") {
            h.timeout_ms = TRY(duration(val, p, kMinProbeMs));
        } else if (key == "start_period") {
            h.start_period_ms = TRY(duration(val, p, 0));
        } else if (key == "retries") {
            h.retries = static_cast<int>(TRY(integer(val, p, 1, 1000)));
        } else {
            return unknown_field(path, key);
        }
    }
    std::string_view kind = v["kind"].get_ref<const std::string &>();
    if ((h.kind == HealthKind::Exec) != has_command)
        return bad(key_path(path, "command"),
                   has_command ? cat("not used by kind ", kind) : std::string("missing (required by kind exec)"));
    bool wants_port = h.kind == HealthKind::Http || h.kind == HealthKind::Tcp;
    if (wants_port != has_port)
        return bad(key_path(path, "port"),
                   has_port ? cat("not used by kind ", kind) : cat("missing (required by kind ", kind, ")"));
    if (has_path && h.kind != HealthKind::Http) return bad(key_path(path, "path"), cat("not used by kind ", kind));
    return h;
}

util::Status resources(const Value &v, const std::string &path, ContainerSpec &c) {
    TRY(object_with(v, path, {}));
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (key == "memory") {
            constexpr std::string_view expected = "a memory size (\"64m\", \"1g\", \"512k\" or bytes) of at least 1m";
            uint64_t bytes = 0;
            if (val.is_number_integer()) {
                if (!val.is_number_unsigned()) return bad(p, cat("expected ", expected, ", got ", val.get<int64_t>()));
                bytes = val.get<uint64_t>();
            } else if (val.is_string()) {
                std::string_view s = val.get_ref<const std::string &>();
                uint64_t scale = 1;
                if (!s.empty()) {
                    char last = static_cast<char>(std::tolower(static_cast<unsigned char>(s.back())));
                    scale = last == 'k' ? 1ULL << 10 : last == 'm' ? 1ULL << 20 : last == 'g' ? 1ULL << 30 : 1;
                    if (scale != 1) s.remove_suffix(1);
                }
                auto n = util::parse_int<uint64_t>(s);
                if (!n || *n > UINT64_MAX / scale)
                    return bad(p, cat("expected ", expected, ", got ", shown(val.get<std::string>())));
                bytes = *n * scale;
            } else {
                return wrong_type(p, expected, val);
            }
            if (bytes < kMinMemory) return bad(p, cat("expected ", expected, ", got ", bytes, " bytes"));
            c.memory_bytes = bytes;
        } else if (key == "cpus") {
            if (!val.is_number()) return wrong_type(p, "a number of CPUs from 0.001 to 1024", val);
            double cpus = val.get<double>();
            if (!(cpus >= 0.001 && cpus <= 1024))
                return bad(p, cat("expected a number of CPUs from 0.001 to 1024, got ", cpus));
            c.cpu_millis = static_cast<uint64_t>(std::llround(cpus * 1000));
        } else if (key == "pids") {
            c.pids = TRY(integer(val, p, 1, kMaxPids));
        } else {
            return unknown_field(path, key);
        }
    }
    return util::ok();
}

util::Result<DeviceRule> device(const Value &v, const std::string &path) {
    TRY(object_with(v, path, {"path"}));
    DeviceRule d;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (key == "path") {
            d.path = TRY(absolute_path(val, p));
            if (!d.path.starts_with("/dev/"))
                return bad(p, cat("expected a device node under /dev/, got ", shown(d.path)));
        } else if (key == "permissions") {
            d.permissions = TRY(text(val, p));
            std::string_view perm = d.permissions;
            bool good = !perm.empty() && std::all_of(perm.begin(), perm.end(), [&](char ch) {
                return std::string_view("rwm").find(ch) != std::string_view::npos &&
                       std::count(perm.begin(), perm.end(), ch) == 1;
            });
            if (!good) return bad(p, cat("expected a non-empty subset of `rwm`, got ", shown(perm)));
        } else {
            return unknown_field(path, key);
        }
    }
    return d;
}

util::Result<VolumeMount> volume(const Value &v, const std::string &path) {
    TRY(object_with(v, path, {"name", "path"}));
    VolumeMount m;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (key == "name") {
            m.name = TRY(short_name(val, p));
        } else if (key == "path") {
            m.path = TRY(absolute_path(val, p));
            for (std::string_view sys : {"/proc", "/sys", "/dev"})
                if (under(m.path, sys)) return bad(p, cat("a volume cannot be mounted on or under ", sys));
            if (m.path == "/") return bad(p, "a volume cannot be mounted on `/`");
        } else if (key == "readonly") {
            m.readonly = TRY(boolean(val, p));
        } else {
            return unknown_field(path, key);
        }
    }
    return m;
}

/// Each item of the array at `path` read by `one`; two items with the same
/// `.path` are refused ("<path> is <twice>").
template <typename T, typename F>
util::Result<std::vector<T>> each_path_once(const Value &v, const std::string &path, std::string_view what, F one,
                                            std::string_view twice) {
    if (!v.is_array()) return wrong_type(path, cat("an array of ", what), v);
    std::vector<T> out;
    for (size_t i = 0; i < v.size(); i++) {
        T item = TRY(one(v[i], item_path(path, i)));
        for (const T &before : out)
            if (before.path == item.path)
                return bad(key_path(item_path(path, i), "path"), cat(item.path, " is ", twice));
        out.push_back(std::move(item));
    }
    return out;
}

util::Result<ContainerSpec> container(const Value &v, const std::string &path, size_t index) {
    TRY(object_with(v, path, {"name", "image"}));
    ContainerSpec c;
    c.index = index;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (key == "name") {
            c.name = TRY(short_name(val, p));
        } else if (key == "image") {
            c.image = TRY(pinned_image(val, p));
        } else if (key == "args") {
            c.args = TRY(texts(val, p));
        } else if (key == "env") {
            c.env = TRY(environment(val, p));
        } else if (key == "workdir") {
            c.workdir = TRY(absolute_path(val, p));
        } else if (key == "user") {
            c.user = TRY(user(val, p));
        } else if (key == "depends_on") {
            c.depends_on = TRY(texts(val, p));  // names checked once every container is known
        } else if (key == "restart") {
            c.restart = TRY(restart_policy(val, p));
        } else if (key == "health") {
            c.health = TRY(health(val, p));
        } else if (key == "resources") {
            TRY(resources(val, p, c));
        } else if (key == "devices") {
            c.devices = TRY(each_path_once<DeviceRule>(val, p, "devices", device, "listed twice"));
        } else if (key == "capabilities") {
            c.capabilities = TRY(capabilities(val, p));
        } else if (key == "network") {
            c.network = TRY(choice(val, p, kNetworks));
        } else if (key == "volumes") {
            c.volumes = TRY(each_path_once<VolumeMount>(val, p, "volumes", volume, "mounted twice"));
        } else if (key == "stop_signal") {
            c.stop_signal = TRY(stop_signal(val, p));
        } else if (key == "stop_grace") {
            c.stop_grace_ms = TRY(duration(val, p, 0));
        } else {
            return unknown_field(path, key);
        }
    }
    return c;
}

// ---- the revision as a whole ------------------------------------------------

/// Checks names and dependencies, then orders `cs` so that each container
/// comes after those it depends on, otherwise in document order (of the
/// containers ready at each step, the first in the document goes first).
util::Status order_by_dependencies(std::vector<ContainerSpec> &cs) {
    auto find = [&](std::string_view name) -> size_t {
        for (size_t i = 0; i < cs.size(); i++)
            if (cs[i].name == name) return i;
        return cs.size();
    };
    for (size_t i = 0; i < cs.size(); i++) {
        std::string at = item_path("containers", i);
        if (size_t first = find(cs[i].name); first < i)
            return bad(key_path(at, "name"),
                       cat(quote(cs[i].name), " is already the name of ", item_path("containers", first)));
        for (size_t d = 0; d < cs[i].depends_on.size(); d++) {
            const std::string &dep = cs[i].depends_on[d];
            std::string p = item_path(key_path(at, "depends_on"), d);
            if (dep == cs[i].name) return bad(p, cat(quote(dep), " cannot depend on itself"));
            if (find(dep) == cs.size()) return bad(p, cat("no container named ", shown(dep), " in this revision"));
            if (std::find(cs[i].depends_on.begin(), cs[i].depends_on.begin() + d, dep) != cs[i].depends_on.begin() + d)
                return bad(p, cat(quote(dep), " is listed twice"));
        }
    }
    std::vector<bool> placed(cs.size(), false);
    std::vector<size_t> order;
    auto ready = [&](size_t i) {
        return std::all_of(cs[i].depends_on.begin(), cs[i].depends_on.end(),
                           [&](const std::string &d) { return placed[find(d)]; });
    };
    while (order.size() < cs.size()) {
        size_t next = cs.size();
        for (size_t i = 0; i < cs.size() && next == cs.size(); i++)
            if (!placed[i] && ready(i)) next = i;
        if (next == cs.size()) {
            // Every container left waits on another one left: walk the first
            // unmet dependency from the first of them until a name repeats.
            size_t at = 0;
            while (placed[at]) at++;
            std::vector<size_t> walk;
            while (std::find(walk.begin(), walk.end(), at) == walk.end()) {
                walk.push_back(at);
                for (const auto &d : cs[at].depends_on)
                    if (!placed[find(d)]) {
                        at = find(d);
                        break;
                    }
            }
            std::vector<size_t> loop(std::find(walk.begin(), walk.end(), at), walk.end());
            std::rotate(loop.begin(), std::min_element(loop.begin(), loop.end()), loop.end());
            std::string cycle;
            for (size_t i : loop) cycle += cat(cs[i].name, " -> ");
            cycle += cs[loop.front()].name;
            return bad(key_path(item_path("containers", loop.front()), "depends_on"), cat("dependency cycle: ", cycle));
        }
        placed[next] = true;
        order.push_back(next);
    }
    std::vector<ContainerSpec> sorted;
    for (size_t i : order) sorted.push_back(std::move(cs[i]));
    cs = std::move(sorted);
    return util::ok();
}

/// Finds a key written twice in one object. nlohmann keeps the last copy;
/// another parser may keep the first and read another manifest from the
/// same signed bytes.
class DuplicateKeys : public nlohmann::json_sax<Value> {
public:
    bool null() override { return value(); }
    bool boolean(bool) override { return value(); }
    bool number_integer(number_integer_t) override { return value(); }
    bool number_unsigned(number_unsigned_t) override { return value(); }
    bool number_float(number_float_t, const string_t &) override { return value(); }
    bool string(string_t &) override { return value(); }
    bool binary(binary_t &) override { return value(); }
    bool start_object(std::size_t) override { return open(false); }
    bool start_array(std::size_t) override { return open(true); }
    bool end_object() override { return close(); }
    bool end_array() override { return close(); }
    bool key(string_t &k) override {
        frames_.back().key = k;
        if (frames_.back().keys.insert(k).second) return true;
        duplicate = path();
        return false;
    }
    bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception &) override { return false; }

    std::string duplicate;  ///< the path of the second copy, once found

private:
    struct Frame {
        bool array = false;
        size_t items = 0;
        std::string key;
        std::set<std::string> keys;
    };
    bool value() {
        if (!frames_.empty() && frames_.back().array) frames_.back().items++;
        return true;
    }
    bool open(bool array) {
        value();
        frames_.push_back(Frame{array, 0, {}, {}});
        return true;
    }
    bool close() {
        frames_.pop_back();
        return true;
    }
    std::string path() const {
        std::string p;
        for (const auto &f : frames_) p = f.array ? item_path(p, f.items - 1) : key_path(p, f.key);
        return p;
    }
    std::vector<Frame> frames_;
};

util::Status no_duplicate_keys(std::string_view document) {
    DuplicateKeys sax;
    Value::sax_parse(document.begin(), document.end(), &sax, nlohmann::detail::input_format_t::json, true);
    if (!sax.duplicate.empty()) return bad(sax.duplicate, "this key is written twice in its object");
    return util::ok();
}

}  // namespace

util::Result<Revision> parse_revision(std::string_view document) {
    Value doc = TRY(parse_json(document, "manifest"));
    TRY(no_duplicate_keys(document));
    TRY(object_with(doc, "", {"version", "name", "containers"}));
    Revision rev;
    for (const auto &[key, val] : doc.items()) {
        if (key == "version") {
            constexpr std::string_view expected = "an integer above 0";
            if (val.is_number_unsigned() && val.get<uint64_t>() > 0)
                rev.version = val.get<uint64_t>();
            else if (val.is_number_integer())
                return bad(key, cat("expected ", expected, ", got ", val.get<int64_t>()));
            else
                return wrong_type(key, expected, val);
        } else if (key == "name") {
            rev.name = TRY(text(val, key));
            if (rev.name.empty() || rev.name.size() > kMaxRevisionName ||
                std::any_of(rev.name.begin(), rev.name.end(),
                            [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; }))
                return bad(key, "expected a name of 1-128 bytes without control characters");
        } else if (key == "health_window") {
            rev.health_window_ms = TRY(duration(val, key, 1));
        } else if (key == "containers") {
            if (!val.is_array()) return wrong_type(key, "a non-empty array of containers", val);
            if (val.empty()) return bad(key, "expected a non-empty array of containers, got an empty one");
            if (val.size() > kMaxContainers)
                return bad(key, cat("expected at most ", kMaxContainers, " containers, got ", val.size()));
            for (size_t i = 0; i < val.size(); i++)
                rev.containers.push_back(TRY(container(val[i], item_path(key, i), i)));
        } else {
            return unknown_field("", key);
        }
    }
    TRY(order_by_dependencies(rev.containers));
    rev.digest = img::Digest::of_small(document).str();  // no libcrypto in the daemon
    return rev;
}

std::string container_id(const Revision &rev, const ContainerSpec &c) { return cat(c.name, ".r", rev.version); }

util::Result<AppLimits> load_app_limits(const std::string &board_json_path) {
    std::string content = TRY(util::read_file(board_json_path, kMaxBoardFile));
    auto parsed = [&]() -> util::Result<AppLimits> {
        Value doc = TRY(parse_json(content, "board profile"));
        TRY(no_duplicate_keys(content));
        TRY(object_with(doc, "", {}));
        AppLimits limits;
        auto apps = doc.find("apps");
        if (apps == doc.end()) return limits;
        TRY(object_with(*apps, "apps", {}));
        for (const auto &[key, val] : apps->items()) {
            std::string p = key_path("apps", key);
            if (key == "devices") {
                limits.devices = TRY(texts(val, p));
                for (size_t i = 0; i < limits.devices.size(); i++)
                    if (!limits.devices[i].starts_with("/dev/"))
                        return bad(item_path(p, i),
                                   cat("expected a pattern under /dev/, got ", shown(limits.devices[i])));
            } else if (key == "capabilities") {
                limits.capabilities = TRY(capabilities(val, p));
            } else {
                return unknown_field("apps", key);
            }
        }
        return limits;
    }();
    return std::move(parsed).context(board_json_path);
}

util::Status check_limits(const Revision &rev, const AppLimits &limits) {
    std::vector<const ContainerSpec *> by_index;
    for (const auto &c : rev.containers) by_index.push_back(&c);
    std::stable_sort(by_index.begin(), by_index.end(), [](auto *a, auto *b) { return a->index < b->index; });
    const std::vector<std::string> defaults = img::default_capabilities();
    auto listed = [](const std::vector<std::string> &list, const std::string &s) {
        return std::find(list.begin(), list.end(), s) != list.end();
    };
    for (const ContainerSpec *c : by_index) {
        std::string at = item_path("containers", c->index);
        for (size_t i = 0; i < c->devices.size(); i++) {
            const std::string &dev = c->devices[i].path;
            bool allowed = std::any_of(limits.devices.begin(), limits.devices.end(), [&](const std::string &pattern) {
                return fnmatch(pattern.c_str(), dev.c_str(), FNM_PATHNAME) == 0;
            });
            if (!allowed)
                return bad(item_path(key_path(at, "devices"), i), cat(dev, " is not allowed by the board profile"));
        }
        for (size_t i = 0; i < c->capabilities.size(); i++) {
            const std::string &cap = c->capabilities[i];
            if (!listed(defaults, cap) && !listed(limits.capabilities, cap))
                return bad(item_path(key_path(at, "capabilities"), i),
                           cat(cap, " is not allowed by the board profile"));
        }
    }
    return util::ok();
}

}  // namespace ota
