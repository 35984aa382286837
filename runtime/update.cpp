// `update` (see update.hpp): runc's flags as a resources patch, the merge,
// and the update of a container's cgroup and saved resources.
#include "runtime/update.hpp"

#include <limits>

#include "runtime/cgroup.hpp"
#include "runtime/spec.hpp"
#include "runtime/state.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace rt {
namespace {

using util::json::Value;

struct FlagTarget {
    const char *flag;
    const char *section;  ///< "memory", "cpu", "pids", "blockIO"
    const char *key;
    enum Kind { Bytes, BytesOrUnlimited, Int, Uint, String, Weight } kind;
};

constexpr FlagTarget kFlags[] = {
    {"memory", "memory", "limit", FlagTarget::BytesOrUnlimited},
    {"memory-reservation", "memory", "reservation", FlagTarget::BytesOrUnlimited},
    {"memory-swap", "memory", "swap", FlagTarget::BytesOrUnlimited},
    {"kernel-memory", "memory", "kernel", FlagTarget::BytesOrUnlimited},
    {"kernel-memory-tcp", "memory", "kernelTCP", FlagTarget::BytesOrUnlimited},
    {"cpu-shares", "cpu", "shares", FlagTarget::Uint},
    {"cpu-quota", "cpu", "quota", FlagTarget::Int},
    {"cpu-period", "cpu", "period", FlagTarget::Uint},
    {"cpu-rt-period", "cpu", "realtimePeriod", FlagTarget::Uint},
    {"cpu-rt-runtime", "cpu", "realtimeRuntime", FlagTarget::Int},
    {"cpuset-cpus", "cpu", "cpus", FlagTarget::String},
    {"cpuset-mems", "cpu", "mems", FlagTarget::String},
    {"pids-limit", "pids", "limit", FlagTarget::Int},
    {"blkio-weight", "blockIO", "weight", FlagTarget::Weight},
};

}  // namespace

util::Result<int64_t> parse_bytes(std::string_view s, bool allow_unlimited) {
    std::string_view t = util::trim(s);
    if (t == "-1") {
        if (allow_unlimited) return int64_t{-1};
        return util::Error::msg(util::cat(util::quote(s), ": unlimited (-1) is not allowed here"));
    }
    size_t i = 0;
    while (i < t.size() && ((t[i] >= '0' && t[i] <= '9') || t[i] == '.')) ++i;
    std::string_view num = t.substr(0, i), unit = util::trim(t.substr(i));
    if (num.empty() || num.front() == '.' || num.back() == '.')
        return util::Error::msg(util::cat(util::quote(s), ": not a size"));
    int64_t mult = 1;
    if (!unit.empty()) {
        char u = static_cast<char>(unit[0] | 0x20);
        std::string_view rest = unit.substr(1);
        switch (u) {
            case 'b': break;
            case 'k': mult = int64_t{1} << 10; break;
            case 'm': mult = int64_t{1} << 20; break;
            case 'g': mult = int64_t{1} << 30; break;
            case 't': mult = int64_t{1} << 40; break;
            case 'p': mult = int64_t{1} << 50; break;
            default: return util::Error::msg(util::cat(util::quote(s), ": unknown size unit"));
        }
        if (u == 'b') {
            if (!rest.empty()) return util::Error::msg(util::cat(util::quote(s), ": unknown size unit"));
        } else if (!(rest.empty() || rest == "b" || rest == "B" || rest == "ib" || rest == "iB" || rest == "Ib" ||
                     rest == "IB" || rest == "i" || rest == "I")) {
            return util::Error::msg(util::cat(util::quote(s), ": unknown size unit"));
        }
    }
    if (num.find('.') == std::string_view::npos) {
        auto n = util::parse_int<int64_t>(num);
        if (!n || *n > std::numeric_limits<int64_t>::max() / mult)
            return util::Error::msg(util::cat(util::quote(s), ": size out of range"));
        return *n * mult;
    }
    // A fraction ("1.5m"): whole and fractional digits, rounded down to bytes.
    auto dot = num.find('.');
    auto whole = util::parse_int<int64_t>(num.substr(0, dot));
    std::string_view frac = num.substr(dot + 1);
    if (!whole || frac.find('.') != std::string_view::npos || frac.size() > 9)
        return util::Error::msg(util::cat(util::quote(s), ": not a size"));
    auto f = util::parse_int<int64_t>(frac);
    if (!f) return util::Error::msg(util::cat(util::quote(s), ": not a size"));
    int64_t scale = 1;
    for (size_t k = 0; k < frac.size(); ++k) scale *= 10;
    if (*whole > std::numeric_limits<int64_t>::max() / mult - 1)
        return util::Error::msg(util::cat(util::quote(s), ": size out of range"));
    // f < scale <= 1e9 and mult <= 2^50: (mult / scale) * f + the remainder part stays in range.
    return *whole * mult + (mult / scale) * *f + (mult % scale) * *f / scale;
}

util::Result<Value> resources_patch(const std::vector<std::pair<std::string, std::string>> &flags) {
    Value patch = Value::object();
    for (const auto &[name, value] : flags) {
        const FlagTarget *t = nullptr;
        for (const auto &f : kFlags)
            if (name == f.flag) t = &f;
        if (!t) return util::Error::msg(util::cat("--", name, ": not a resource flag"));
        std::string what = util::cat("--", name, ' ', util::quote(value));
        Value v;
        switch (t->kind) {
            case FlagTarget::Bytes:
            case FlagTarget::BytesOrUnlimited:
                v = TRY_CTX(parse_bytes(value, t->kind == FlagTarget::BytesOrUnlimited), util::cat("--", name));
                break;
            case FlagTarget::Int: {
                auto n = util::parse_int<int64_t>(util::trim(value));
                if (!n) return util::Error::msg(util::cat(what, ": expected an integer"));
                v = *n;
                break;
            }
            case FlagTarget::Uint: {
                auto n = util::parse_int<uint64_t>(util::trim(value));
                if (!n) return util::Error::msg(util::cat(what, ": expected a non-negative integer"));
                v = *n;
                break;
            }
            case FlagTarget::Weight: {
                auto n = util::parse_int<uint16_t>(util::trim(value));
                if (!n) return util::Error::msg(util::cat(what, ": expected a weight (10..1000)"));
                v = *n;
                break;
            }
            case FlagTarget::String: v = value; break;
        }
        if (!patch.contains(t->section)) patch[t->section] = Value::object();
        patch[t->section][t->key] = std::move(v);
    }
    return patch;
}

void merge_json(Value &base, const Value &patch) {
    if (!patch.is_object() || !base.is_object()) {
        base = patch;
        return;
    }
    for (auto it = patch.begin(); it != patch.end(); ++it) {
        auto found = base.find(it.key());
        if (found != base.end() && found->is_object() && it->is_object())
            merge_json(*found, *it);
        else
            base[it.key()] = *it;
    }
}

bool is_resources_flag(std::string_view name) {
    for (const auto &f : kFlags)
        if (name == f.flag) return true;
    return false;
}

util::Status update_container(const std::string &root, const std::string &id, const Value &patch, bool systemd_cgroup) {
    const std::string where = util::cat("update ", util::quote(id));
    TRY_CTX(validate_id(id), where);
    TRY_CTX(util::json::expect_object(patch, "resources"), where);
    TRY_CTX(cgroup::parse_resources(&patch), where);  // names a bad field of the patch itself
    auto lock = TRY_CTX(lock_container(root, id), where);
    State st = TRY_CTX(load_state(root, id), util::cat("container ", util::quote(id)));
    if (refresh_status(root, st) == Status::Stopped)
        return util::Error::msg(util::cat(where, ": container is stopped"));

    // The saved resources: resources.json, or the spec's at the first update.
    const std::string saved_path = util::path_join(state_dir(root, id), kResourcesFile);
    Value saved = Value::object();
    if (util::path_exists(saved_path)) {
        auto text = TRY_CTX(util::read_file(saved_path, 1 << 20), util::cat(where, ": read the saved resources"));
        saved = TRY_CTX(util::json::parse(text, saved_path), where);
    } else if (auto spec = load_spec(st.bundle)) {
        const auto &raw = spec->raw;
        if (raw.is_object() && raw.contains("linux") && raw["linux"].is_object() && raw["linux"].contains("resources") &&
            raw["linux"]["resources"].is_object())
            saved = raw["linux"]["resources"];
    }
    merge_json(saved, patch);
    auto merged = TRY_CTX(cgroup::parse_resources(&saved), util::cat(where, ": the merged resources"));
    // The whole merged set is applied, as runc does: a value may depend on
    // one the patch leaves alone (v2's memory.swap.max is swap - limit; v1
    // needs memsw >= limit). Except the device rules: rewriting them would
    // deny every device for a moment in a running container, and update
    // does not change them.
    merged.devices.clear();

    cgroup::ManagerOptions mo;
    mo.systemd = systemd_cgroup || st.systemd_cgroup;
    auto mgr = TRY_CTX(cgroup::open_manager(st.cgroup_path, st.id, mo), where);
    TRY_CTX(mgr->set(merged), where);
    TRY_CTX(util::atomic_write_file(saved_path, util::json::dump(saved, 2) + "\n", 0600), util::cat(where, ": save the resources"));
    return util::ok();
}

}  // namespace rt
