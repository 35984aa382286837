// The boot-counting semantics over any BootEnv (bootloader.hpp): status,
// mark_try/good/bad, recovery when every slot is bad, and finding the slot
// this boot came from.
#include "ota/bootloader.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>

#include "util/file.hpp"
#include "util/strings.hpp"

namespace ota {

using util::cat;
using util::Error;
using util::quote;
using util::Result;
using util::Status;

namespace {

constexpr std::string_view kOrder = "BOOT_ORDER";
constexpr std::string_view kTrying = "BERTH_TRYING";

std::string left_var(std::string_view slot) { return cat("BOOT_", slot, "_LEFT"); }

std::vector<std::string> words(std::string_view s) {
    std::vector<std::string> out;
    for (auto &w : util::split(util::trim(s), ' '))
        if (!util::trim(w).empty()) out.emplace_back(util::trim(w));
    return out;
}

}  // namespace

std::string_view health_name(SlotHealth h) {
    switch (h) {
    case SlotHealth::Good: return "good";
    case SlotHealth::Trying: return "trying";
    case SlotHealth::Bad: return "bad";
    }
    return "bad";
}

const SlotBoot *BootStatus::slot(std::string_view name) const {
    for (const auto &s : slots)
        if (s.name == name) return &s;
    return nullptr;
}

std::unique_ptr<BootEnv> open_boot_env(const BootloaderSpec &spec) {
    switch (spec.kind) {
    case BootloaderKind::UBoot: return uboot_boot_env(spec.env);
    case BootloaderKind::Grub: return grub_boot_env(spec.env);
    case BootloaderKind::File: break;
    }
    return file_boot_env(spec.env);
}

Bootloader::Bootloader(const Board &board, std::unique_ptr<BootEnv> env)
    : board_(&board), env_(std::move(env)), attempts_(board.bootloader ? board.bootloader->attempts : 3) {}

Result<Bootloader> Bootloader::open(const Board &board) {
    if (board.slots.empty() || !board.bootloader)
        return Error::msg(cat("board ", quote(board.name), " has no slots (no system updates)"));
    return Bootloader(board, open_boot_env(*board.bootloader));
}

std::vector<std::string> Bootloader::names() const {
    std::vector<std::string> n{std::string(kOrder), std::string(kTrying)};
    for (const auto &s : board_->slots) n.push_back(left_var(s.name));
    return n;
}

Status Bootloader::check_slot(std::string_view slot) const {
    if (!board_->slot(slot)) {
        std::vector<std::string> known;
        for (const auto &s : board_->slots) known.push_back(s.name);
        return Error::msg(cat("no slot ", quote(slot), " on board ", quote(board_->name), " (slots: ",
                              util::join(known, ", "), ")"));
    }
    return util::ok();
}

// Strict: the state as the bootloader will read it, every inconsistency an
// error. Lenient (for the marks, which rewrite what they touch): a missing
// or odd BOOT_ORDER word or counter reads as "not bootable".
Result<BootStatus> Bootloader::read_status(bool strict) {
    const std::string where = env_->describe();
    auto vars = TRY_CTX(env_->read(names()), cat("read the bootloader state (", where, ")"));
    auto inconsistent = [&](std::string why) {
        return Error::msg(cat("bootloader state (", where, ") is inconsistent: ", why));
    };
    BootStatus st;
    auto order = vars.find(std::string(kOrder));
    if (order == vars.end() && strict)
        return Error::msg(cat("bootloader state (", where, ") is missing: BOOT_ORDER is not set (run `berth slot "
                              "mark-good` on the booted slot to initialize it)"));
    if (order != vars.end()) {
        for (auto &w : words(order->second)) {
            if (!board_->slot(w)) {
                if (strict) return inconsistent(cat("BOOT_ORDER names ", quote(w), ", which is no slot of the board"));
                continue;
            }
            if (std::find(st.order.begin(), st.order.end(), w) != st.order.end()) {
                if (strict) return inconsistent(cat("BOOT_ORDER names ", quote(w), " twice"));
                continue;
            }
            st.order.push_back(w);
        }
    }
    if (auto t = vars.find(std::string(kTrying)); t != vars.end()) {
        st.trying = std::string(util::trim(t->second));
        if (!st.trying.empty() && !board_->slot(st.trying)) {
            if (strict) return inconsistent(cat("BERTH_TRYING names ", quote(st.trying), ", which is no slot of the board"));
            st.trying.clear();
        }
    }
    for (const auto &spec : board_->slots) {
        SlotBoot s;
        s.name = spec.name;
        auto pos = std::find(st.order.begin(), st.order.end(), spec.name);
        s.position = pos == st.order.end() ? -1 : static_cast<int>(pos - st.order.begin());
        auto v = vars.find(left_var(spec.name));
        if (v != vars.end()) {
            auto n = util::parse_int<int>(util::trim(v->second));
            if (!n || *n < 0 || *n > 9) {
                if (strict) return inconsistent(cat(left_var(spec.name), "=", quote(v->second), " is not a counter 0-9"));
                n = 0;
            }
            s.left = *n;
        } else if (s.position >= 0 && strict) {
            return inconsistent(cat("slot ", spec.name, " is in BOOT_ORDER but ", left_var(spec.name), " is not set"));
        }
        s.health = s.left == 0 || s.position < 0 ? SlotHealth::Bad
                   : st.trying == spec.name      ? SlotHealth::Trying
                                                 : SlotHealth::Good;
        st.slots.push_back(std::move(s));
    }
    for (const auto &name : st.order)
        if (st.slot(name)->left > 0) {
            st.next = name;
            break;
        }
    return st;
}

Result<BootStatus> Bootloader::status() { return read_status(true); }

Status Bootloader::mark_try(std::string_view slot) {
    TRY(check_slot(slot));
    auto st = TRY(read_status(false));
    std::vector<std::string> order{std::string(slot)};
    for (const auto &w : st.order)
        if (w != slot) order.push_back(w);
    return env_->write({{std::string(kOrder), util::join(order, " ")},
                        {left_var(slot), std::to_string(attempts_)},
                        {std::string(kTrying), std::string(slot)}})
        .context(cat("mark slot ", slot, " to be tried (", env_->describe(), ")"));
}

Status Bootloader::mark_good(std::string_view slot) {
    TRY(check_slot(slot));
    auto st = TRY(read_status(false));
    std::vector<std::string> order{std::string(slot)};
    for (const auto &w : st.order)
        if (w != slot) order.push_back(w);
    BootVars vars{{std::string(kOrder), util::join(order, " ")}, {left_var(slot), std::to_string(attempts_)}};
    if (st.trying == slot) vars[std::string(kTrying)] = "";
    return env_->write(vars).context(cat("mark slot ", slot, " good (", env_->describe(), ")"));
}

Status Bootloader::mark_bad(std::string_view slot) {
    TRY(check_slot(slot));
    auto st = TRY(read_status(false));
    std::vector<std::string> order;
    for (const auto &w : st.order)
        if (w != slot) order.push_back(w);
    BootVars vars{{std::string(kOrder), util::join(order, " ")}, {left_var(slot), "0"}};
    if (st.trying == slot) vars[std::string(kTrying)] = "";
    return env_->write(vars).context(cat("mark slot ", slot, " bad (", env_->describe(), ")"));
}

Result<std::string> Bootloader::recover(std::string_view booted) {
    TRY(check_slot(booted));
    auto st = TRY(read_status(false));
    if (!st.next.empty()) return std::string();
    TRY(mark_good(booted));
    return cat("every slot was bad (BOOT_ORDER=", quote(util::join(st.order, " ")),
               "): marked the booted slot ", booted, " good again");
}

namespace envtext {

Result<Entries> parse(std::string_view text) {
    Entries out;
    size_t i = 0;
    while (i < text.size()) {
        if (text[i] == '#') {  // a comment line (GRUB's block may hold some)
            size_t nl = text.find('\n', i);
            i = nl == std::string_view::npos ? text.size() : nl + 1;
            continue;
        }
        size_t eq = text.find('=', i), nl = text.find('\n', i);
        if (eq == std::string_view::npos || (nl != std::string_view::npos && nl < eq)) {
            std::string_view line = text.substr(i, nl == std::string_view::npos ? text.npos : nl - i);
            if (util::trim(line).empty()) {
                i = nl == std::string_view::npos ? text.size() : nl + 1;
                continue;
            }
            return Error::msg(cat("line ", quote(line.substr(0, 64)), " is not NAME=VALUE"));
        }
        std::string name(text.substr(i, eq - i)), value;
        i = eq + 1;
        while (i < text.size() && text[i] != '\n') {
            if (text[i] == '\\' && i + 1 < text.size()) i++;
            value.push_back(text[i++]);
        }
        i++;  // the newline
        out.emplace_back(std::move(name), std::move(value));
    }
    return out;
}

std::string format(const Entries &entries) {
    std::string out;
    for (const auto &[name, value] : entries) {
        out += name;
        out += '=';
        for (char ch : value) {
            if (ch == '\\' || ch == '\n') out += '\\';
            out += ch;
        }
        out += '\n';
    }
    return out;
}

Entries apply(Entries entries, const BootVars &vars) {
    for (const auto &[name, value] : vars) {
        auto it = std::find_if(entries.begin(), entries.end(), [&](const auto &e) { return e.first == name; });
        if (value.empty()) {
            if (it != entries.end()) entries.erase(it);
        } else if (it != entries.end()) {
            it->second = value;
        } else {
            entries.emplace_back(name, value);
        }
    }
    return entries;
}

BootVars pick(const Entries &entries, const std::vector<std::string> &names) {
    BootVars out;
    for (const auto &[name, value] : entries)
        if (std::find(names.begin(), names.end(), name) != names.end()) out[name] = value;
    return out;
}

}  // namespace envtext

Result<std::string> booted_slot(const Board &board, std::string_view cmdline, std::string_view mountinfo) {
    for (std::string_view key : {"rauc.slot", "berth.slot"}) {
        if (auto v = cmdline_value(cmdline, key)) {
            if (!board.slot(*v))
                return Error::msg(cat("the kernel command line says ", key, "=", *v, ", which is no slot of board ",
                                      quote(board.name)));
            return *v;
        }
    }
    // mountinfo: "36 35 98:0 / / rw ... - ext4 /dev/root rw"; the last mount at / is the root.
    std::string root_dev;
    for (const auto &line : util::split(mountinfo, '\n')) {
        auto f = util::split(line, ' ');
        if (f.size() > 4 && f[4] == "/") root_dev = f[2];
    }
    if (!root_dev.empty()) {
        for (const auto &s : board.slots) {
            struct stat sb{};
            if (::stat(s.where.path().c_str(), &sb) != 0 || !S_ISBLK(sb.st_mode)) continue;
            if (cat(major(sb.st_rdev), ":", minor(sb.st_rdev)) == root_dev) return s.name;
        }
    }
    return Error::msg(cat("cannot tell the booted slot: no rauc.slot= or berth.slot= on the kernel command line, and "
                          "the root filesystem (device ", root_dev.empty() ? "unknown" : root_dev,
                          ") is none of the board's slots"));
}

Result<std::string> booted_slot(const Board &board) {
    auto cmdline = kernel_cmdline();
    auto mountinfo = util::read_file("/proc/self/mountinfo", 4 << 20).value_or("");
    return booted_slot(board, cmdline, mountinfo);
}

util::json::Value boot_status_json(const Board &board, const BootStatus &st, std::string_view booted) {
    using util::json::Value;
    Value doc = Value::object();
    doc["booted"] = booted.empty() ? Value() : Value(std::string(booted));
    doc["next"] = st.next.empty() ? Value() : Value(st.next);
    doc["trying"] = st.trying.empty() ? Value() : Value(st.trying);
    Value order = Value::array();
    for (const auto &w : st.order) order.push_back(w);
    doc["order"] = std::move(order);
    Value slots = Value::array();
    for (const auto &s : st.slots) {
        Value j = Value::object();
        j["name"] = s.name;
        j["state"] = std::string(health_name(s.health));
        j["left"] = s.left;
        j["device"] = board.slot(s.name)->where.path();
        slots.push_back(std::move(j));
    }
    doc["slots"] = std::move(slots);
    return doc;
}

}  // namespace ota
