// The board profile parser (board.hpp, docs/board.md) and where berth finds
// the profile. Every object is read key by key (ota/strict.hpp), so a field
// this berth does not know is an error at its path rather than a setting
// silently ignored on a device.
#include "ota/board.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "ota/strict.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace ota {

using namespace strict;
using util::cat;
using util::quote;

namespace {

constexpr size_t kMaxBoardFile = 1 << 20;
constexpr size_t kMaxSlots = 8;

constexpr Named<Location::Kind> kLocationKeys[] = {
    {"device", Location::Device}, {"label", Location::Label}, {"partlabel", Location::PartLabel},
    {"uuid", Location::Uuid},     {"partuuid", Location::PartUuid}, {"file", Location::File}};
constexpr Named<BootloaderKind> kBootloaders[] = {
    {"uboot", BootloaderKind::UBoot}, {"grub", BootloaderKind::Grub}, {"file", BootloaderKind::File}};

/// `p` made absolute against `base` (clean_absolute is checked by the caller).
std::string resolve(const std::string &p, std::string_view base) {
    if (p.starts_with("/")) return p;
    return util::path_join(std::string(base), p);
}

/// A relative path: no empty, `.` or `..` component.
bool clean_relative(std::string_view p) {
    if (p.empty() || p.starts_with("/")) return false;
    for (const auto &part : util::split(p, '/'))
        if (part.empty() || part == "." || part == "..") return false;
    return true;
}

/// A path to a file, absolute or relative to the profile's directory.
util::Result<std::string> file_path(const Value &v, std::string_view path, std::string_view base) {
    std::string s = TRY(text(v, path));
    if (!clean_absolute(s) && !clean_relative(s))
        return bad(path, cat("expected a clean path (no `.`, `..`, `//` or trailing `/`), got ", shown(s)));
    return resolve(s, base);
}

/// One location key of an object (`device`, `label`, ...): true when `key`
/// is one; a second one in the same object is an error.
util::Result<bool> location_key(const std::string &key, const Value &val, std::string_view parent, std::string_view base,
                                std::optional<Location> &out) {
    const Named<Location::Kind> *k = nullptr;
    for (const auto &n : kLocationKeys)
        if (n.name == key) k = &n;
    if (!k) return false;
    std::string p = key_path(parent, key);
    if (out) return bad(p, "a slot or partition is named one way only (device, label, partlabel, uuid, partuuid or file)");
    Location loc{k->value, {}};
    if (k->value == Location::File) {
        loc.value = TRY(file_path(val, p, base));
    } else if (k->value == Location::Device) {
        loc.value = TRY(absolute_path(val, p));
        if (!loc.value.starts_with("/dev/")) return bad(p, cat("expected a path under /dev/, got ", shown(loc.value)));
    } else {
        loc.value = TRY(text(val, p));
        bool good = !loc.value.empty() && loc.value.size() <= 128 &&
                    std::all_of(loc.value.begin(), loc.value.end(), [](char ch) {
                        return ch > 0x20 && ch < 0x7f && ch != '/' && ch != '\\';
                    });
        if (!good) return bad(p, cat("expected 1-128 printable characters without `/` or spaces, got ", shown(loc.value)));
    }
    out = std::move(loc);
    return true;
}

util::Status require_location(const std::optional<Location> &loc, std::string_view path) {
    if (!loc) return bad(path, "missing its location: one of device, label, partlabel, uuid, partuuid or file");
    return util::ok();
}

util::Result<SlotSpec> slot(const Value &v, const std::string &path, std::string_view base) {
    TRY(object_with(v, path, {"name"}));
    SlotSpec s;
    std::optional<Location> loc;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (TRY(location_key(key, val, path, base, loc))) continue;
        if (key == "name") {
            s.name = TRY(text(val, p));
            bool good = !s.name.empty() && s.name.size() <= 16 && std::all_of(s.name.begin(), s.name.end(), [](char ch) {
                return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
            });
            if (!good) return bad(p, cat("expected a slot name of 1-16 letters, digits or `_` (\"A\"), got ", shown(s.name)));
        } else if (key == "size") {
            s.size = static_cast<uint64_t>(TRY(integer(val, p, 1, INT64_MAX)));
        } else {
            return unknown_field(path, key);
        }
    }
    TRY(require_location(loc, path));
    s.where = std::move(*loc);
    return s;
}

util::Result<BootloaderSpec> bootloader(const Value &v, const std::string &path, std::string_view base) {
    TRY(object_with(v, path, {"kind", "env"}));
    BootloaderSpec b;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (key == "kind")
            b.kind = TRY(choice(val, p, kBootloaders));
        else if (key == "env")
            b.env = TRY(file_path(val, p, base));
        else if (key == "attempts")
            b.attempts = static_cast<int>(TRY(integer(val, p, 1, 9)));
        else
            return unknown_field(path, key);
    }
    return b;
}

util::Result<DataSpec> data(const Value &v, const std::string &path, std::string_view base) {
    TRY(object_with(v, path, {}));
    DataSpec d;
    std::optional<Location> loc;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (TRY(location_key(key, val, path, base, loc))) continue;
        if (key == "fstype") {
            d.fstype = TRY(text(val, p));
            if (d.fstype.empty() || d.fstype.size() > 32) return bad(p, "expected a filesystem type such as \"ext4\"");
        } else if (key == "mount") {
            d.mount = TRY(absolute_path(val, p));
        } else {
            return unknown_field(path, key);
        }
    }
    TRY(require_location(loc, path));
    d.where = std::move(*loc);
    return d;
}

util::Result<WatchdogSpec> watchdog(const Value &v, const std::string &path) {
    TRY(object_with(v, path, {}));
    WatchdogSpec w;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (key == "device") {
            w.device = TRY(absolute_path(val, p));
            if (!w.device.starts_with("/dev/")) return bad(p, cat("expected a path under /dev/, got ", shown(w.device)));
        } else if (key == "timeout") {
            w.timeout_ms = TRY(duration(val, p, 1000));
        } else {
            return unknown_field(path, key);
        }
    }
    return w;
}

util::Result<ConsoleSpec> console(const Value &v, const std::string &path) {
    TRY(object_with(v, path, {"device"}));
    ConsoleSpec c;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (key == "device") {
            c.device = TRY(text(val, p));
            if (c.device.empty() || c.device.find('/') != std::string::npos)
                return bad(p, cat("expected a device name under /dev without the prefix (\"ttyAMA0\"), got ",
                                  shown(c.device)));
        } else if (key == "baud") {
            c.baud = static_cast<uint32_t>(TRY(integer(val, p, 50, 4000000)));
        } else {
            return unknown_field(path, key);
        }
    }
    return c;
}

constexpr Named<std::string_view> kCgroupModes[] = {{"v1", "v1"}, {"v2", "v2"}, {"hybrid", "hybrid"}};

util::Result<KernelFacts> kernel(const Value &v, const std::string &path) {
    TRY(object_with(v, path, {}));
    KernelFacts k;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (key == "version") {
            k.version = TRY(text(val, p));
            auto parts = util::split(k.version, '.');
            bool good = parts.size() >= 2 && parts.size() <= 3 &&
                        std::all_of(parts.begin(), parts.end(), [](const std::string &n) {
                            return !n.empty() && n.size() <= 4 && util::parse_int<unsigned>(n).has_value();
                        });
            if (!good) return bad(p, cat("expected a kernel version such as \"5.10\", got ", shown(k.version)));
        } else if (key == "cgroup") {
            k.cgroup = std::string(TRY(choice(val, p, kCgroupModes)));
        } else if (key == "overlayfs") {
            k.overlayfs = TRY(boolean(val, p));
        } else {
            return unknown_field(path, key);
        }
    }
    return k;
}

util::Result<AppLimits> apps(const Value &v, const std::string &path) {
    TRY(object_with(v, path, {}));
    AppLimits limits;
    for (const auto &[key, val] : v.items()) {
        std::string p = key_path(path, key);
        if (key == "devices") {
            limits.devices = TRY(texts(val, p));
            for (size_t i = 0; i < limits.devices.size(); i++)
                if (!limits.devices[i].starts_with("/dev/"))
                    return bad(item_path(p, i), cat("expected a pattern under /dev/, got ", shown(limits.devices[i])));
        } else if (key == "capabilities") {
            limits.capabilities = TRY(capabilities(val, p));
        } else {
            return unknown_field(path, key);
        }
    }
    return limits;
}

util::Status check_slots(const Board &b) {
    if (b.slots.empty()) return util::ok();
    if (b.slots.size() < 2) return bad("slots", "expected at least two slots (A/B), got one");
    if (b.slots.size() > kMaxSlots) return bad("slots", cat("expected at most ", kMaxSlots, " slots"));
    std::set<std::string> names, places;
    for (size_t i = 0; i < b.slots.size(); i++) {
        if (!names.insert(b.slots[i].name).second)
            return bad(key_path(item_path("slots", i), "name"), cat(quote(b.slots[i].name), " names two slots"));
        if (!places.insert(b.slots[i].where.path()).second)
            return bad(item_path("slots", i), cat(b.slots[i].where.describe(), " is the place of another slot too"));
    }
    if (!b.bootloader) return bad("bootloader", "missing (a board with slots needs a bootloader)");
    return util::ok();
}

}  // namespace

std::string Location::path() const {
    switch (kind) {
    case Device:
    case File: return value;
    case Label: return "/dev/disk/by-label/" + value;
    case PartLabel: return "/dev/disk/by-partlabel/" + value;
    case Uuid: return "/dev/disk/by-uuid/" + value;
    case PartUuid: return "/dev/disk/by-partuuid/" + value;
    }
    return value;
}

std::string Location::describe() const {
    for (const auto &n : kLocationKeys)
        if (n.value == kind) return cat(n.name, ' ', value);
    return value;
}

const SlotSpec *Board::slot(std::string_view name) const {
    for (const auto &s : slots)
        if (s.name == name) return &s;
    return nullptr;
}

util::Result<Board> parse_board(std::string_view document, std::string_view base_dir) {
    Value doc = TRY(parse_json(document, "board profile"));
    TRY(no_duplicate_keys(document));
    TRY(object_with(doc, "", {}));
    Board b;
    for (const auto &[key, val] : doc.items()) {
        if (key == "name") {
            b.name = TRY(text(val, key));
            if (b.name.empty() || b.name.size() > 64) return bad(key, "expected a name of 1-64 bytes");
        } else if (key == "slots") {
            if (!val.is_array()) return wrong_type(key, "an array of slots", val);
            for (size_t i = 0; i < val.size(); i++) b.slots.push_back(TRY(slot(val[i], item_path(key, i), base_dir)));
        } else if (key == "bootloader") {
            b.bootloader = TRY(bootloader(val, key, base_dir));
        } else if (key == "data") {
            b.data = TRY(data(val, key, base_dir));
        } else if (key == "watchdog") {
            b.watchdog = TRY(watchdog(val, key));
        } else if (key == "console") {
            b.console = TRY(console(val, key));
        } else if (key == "kernel") {
            b.kernel = TRY(kernel(val, key));
        } else if (key == "apps") {
            b.apps = TRY(apps(val, key));
        } else {
            return unknown_field("", key);
        }
    }
    TRY(check_slots(b));
    return b;
}

util::Result<Board> load_board(const std::string &path) {
    std::string content = TRY(util::read_file(path, kMaxBoardFile));
    size_t slash = path.rfind('/');
    std::string base = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    return parse_board(content, base).context(path);
}

util::Result<AppLimits> load_app_limits(const std::string &board_json_path) {
    return TRY(load_board(board_json_path)).apps;
}

std::optional<std::string> cmdline_value(std::string_view cmdline, std::string_view key) {
    std::optional<std::string> found;
    for (const auto &word : util::split(util::trim(cmdline), ' ')) {
        std::string_view w = util::trim(word);
        if (w.size() > key.size() && w.starts_with(key) && w[key.size()] == '=')
            found = std::string(w.substr(key.size() + 1));
    }
    return found;
}

util::Result<BoardPath> find_board(const std::string &flag, std::string_view cmdline, std::string_view default_path) {
    if (flag == "none") return util::Error::with_code(ENOENT, "no board profile (--board none)");
    if (!flag.empty()) return BoardPath{flag, "--board"};
    if (auto p = cmdline_value(cmdline, "berth.board"); p && !p->empty())
        return BoardPath{*p, "berth.board= on the kernel command line"};
    struct stat st{};
    std::string def(default_path);
    if (::stat(def.c_str(), &st) == 0) return BoardPath{def, "the default path"};
    return util::Error::with_code(ENOENT, cat("no board profile: give --board, berth.board= on the kernel command "
                                              "line, or install ", def));
}

util::Result<std::string> board_path(const std::string &flag, std::string_view cmdline) {
    return TRY(find_board(flag, cmdline)).path;
}

std::string kernel_cmdline() {
    const char *over = util::test_hook_env("BERTH_CMDLINE");
    return util::read_file(over ? over : "/proc/cmdline", 64 << 10).value_or("");
}

}  // namespace ota
