// The update manifest parser (docs/update-manifest.md) and the check of a
// revision against the board's app limits (docs/board.md, "apps").
//
// Strict by construction (ota/strict.hpp): an unknown key, a key written
// twice (a signature covers the bytes, not one parser's reading of them), a
// wrong type or value is a one-line error naming its path. Containers come
// back in a stable topological order; a dependency cycle is named in full.
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
#include "ota/strict.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace ota {

using namespace strict;

namespace {

using util::cat;
using util::quote;
using util::json::Value;

constexpr size_t kMaxName = 63;  ///< container and volume names: a DNS label, a directory name
constexpr size_t kMaxRevisionName = 128;
constexpr size_t kMaxContainers = 256;  ///< far above any gateway; keeps the ordering's quadratic loops small
constexpr int64_t kMinProbeMs = 10;                     ///< health interval and timeout
constexpr uint64_t kMinMemory = 1 << 20;                ///< below 1 MiB no process starts
constexpr int64_t kMaxPids = 4194304;                   ///< the kernel's PID_MAX_LIMIT

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

}  // namespace

/// A capability list without repeats.
util::Result<std::vector<std::string>> strict::capabilities(const Value &v, std::string_view path) {
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

namespace {

constexpr Named<std::string_view> kFsTypes[] = {{"squashfs", "squashfs"}, {"erofs", "erofs"}, {"ext4", "ext4"}};

util::Result<uint64_t> version_number(const Value &v, std::string_view path) {
    return static_cast<uint64_t>(TRY(integer(v, path, 1, INT64_MAX)));
}

util::Result<SystemSpec> system_part(const Value &v, const std::string &path) {
    TRY(object_with(v, path, {"image", "size", "version", "fstype"}));
    SystemSpec s;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (key == "image") {
            s.image = TRY(pinned_image(val, p));
        } else if (key == "size") {
            s.size = static_cast<uint64_t>(TRY(integer(val, p, 1, INT64_MAX)));
        } else if (key == "version") {
            s.version = TRY(version_number(val, p));
        } else if (key == "min_version") {
            s.min_version = TRY(version_number(val, p));
        } else if (key == "max_version") {
            s.max_version = TRY(version_number(val, p));
        } else if (key == "fstype") {
            s.fstype = std::string(TRY(choice(val, p, kFsTypes)));
        } else {
            return unknown_field(path, key);
        }
    }
    if (s.min_version > s.max_version)
        return bad(key_path(path, "max_version"), cat("expected at least min_version (", s.min_version, "), got ",
                                                      s.max_version));
    return s;
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
        } else if (key == "system") {
            rev.system = TRY(system_part(val, key));
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
