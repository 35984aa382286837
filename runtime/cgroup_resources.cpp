// Parsing of the runtime spec's `linux.resources` (spec 1.2) into Resources,
// and the merge `berth update` does. Every field goes through util::json's
// typed accessors, so a wrong type or range names the field
// ("`linux.resources.memory.swappiness`: must be between 0 and 100").
// Which hierarchy a value lands in is decided later by the backends.
#include <cerrno>

#include "runtime/cgroup.hpp"
#include "util/strings.hpp"

namespace rt::cgroup {

using util::cat;
using util::Error;
using util::quote;
namespace json = util::json;

namespace {

constexpr std::string_view kWhere = "linux.resources";

Error range_error(std::string_view where, std::string_view key, std::string_view what) {
    return Error::with_code(EINVAL, cat(quote(json::field_path(where, key)), ": ", what));
}

util::Result<std::optional<uint16_t>> opt_u16(const json::Value &obj, std::string_view key, std::string_view where) {
    auto v = TRY(json::opt_uint(obj, key, where));
    if (!v) return std::optional<uint16_t>();
    if (*v > UINT16_MAX) return range_error(where, key, "must fit 16 bits");
    return std::optional<uint16_t>(static_cast<uint16_t>(*v));
}

util::Result<std::optional<uint32_t>> opt_u32(const json::Value &obj, std::string_view key, std::string_view where) {
    auto v = TRY(json::opt_uint(obj, key, where));
    if (!v) return std::optional<uint32_t>();
    if (*v > UINT32_MAX) return range_error(where, key, "must fit 32 bits");
    return std::optional<uint32_t>(static_cast<uint32_t>(*v));
}

/// Each element of the array `key` as an object, with its path ("...[2]").
template <typename F>
util::Status each_object(const json::Value &obj, std::string_view key, std::string_view where, F fn) {
    const json::Value *arr = TRY(json::opt_array(obj, key, where));
    if (!arr) return util::ok();
    std::string base = json::field_path(where, key);
    for (size_t i = 0; i < arr->size(); ++i) {
        std::string path = cat(base, '[', i, ']');
        TRY(json::expect_object((*arr)[i], path));
        TRY(fn((*arr)[i], path));
    }
    return util::ok();
}

util::Status parse_memory(const json::Value &m, std::string_view w, Resources &r) {
    r.memory_limit = TRY(json::opt_int(m, "limit", w));
    r.memory_reservation = TRY(json::opt_int(m, "reservation", w));
    r.memory_swap = TRY(json::opt_int(m, "swap", w));
    r.memory_kernel = TRY(json::opt_int(m, "kernel", w));
    r.memory_kernel_tcp = TRY(json::opt_int(m, "kernelTCP", w));
    r.memory_swappiness = TRY(json::opt_uint(m, "swappiness", w));
    if (r.memory_swappiness && *r.memory_swappiness > 100) return range_error(w, "swappiness", "must be between 0 and 100");
    r.memory_disable_oom_killer = TRY(json::opt_bool(m, "disableOOMKiller", w));
    r.memory_use_hierarchy = TRY(json::opt_bool(m, "useHierarchy", w));
    r.memory_check_before_update = TRY(json::opt_bool(m, "checkBeforeUpdate", w));
    for (auto [key, v] : {std::pair{"limit", r.memory_limit}, std::pair{"reservation", r.memory_reservation},
                          std::pair{"swap", r.memory_swap}}) {
        if (v && *v < -1) return range_error(w, key, "must be -1 (unlimited) or a byte count");
    }
    return util::ok();
}

util::Status parse_cpu(const json::Value &c, std::string_view w, Resources &r) {
    r.cpu_shares = TRY(json::opt_uint(c, "shares", w));
    r.cpu_quota = TRY(json::opt_int(c, "quota", w));
    r.cpu_burst = TRY(json::opt_uint(c, "burst", w));
    r.cpu_period = TRY(json::opt_uint(c, "period", w));
    r.cpu_realtime_runtime = TRY(json::opt_int(c, "realtimeRuntime", w));
    r.cpu_realtime_period = TRY(json::opt_uint(c, "realtimePeriod", w));
    r.cpu_cpus = TRY(json::opt_string(c, "cpus", w)).value_or("");
    r.cpu_mems = TRY(json::opt_string(c, "mems", w)).value_or("");
    r.cpu_idle = TRY(json::opt_int(c, "idle", w));
    if (r.cpu_idle && *r.cpu_idle != 0 && *r.cpu_idle != 1) return range_error(w, "idle", "must be 0 or 1");
    if (r.cpu_period && *r.cpu_period != 0 && (*r.cpu_period < 1000 || *r.cpu_period > 1000000))
        return range_error(w, "period", "must be between 1000 and 1000000 microseconds");
    return util::ok();
}

util::Status parse_throttle(const json::Value &b, std::string_view w, std::string_view key,
                            std::vector<ThrottleDevice> &out) {
    return each_object(b, key, w, [&](const json::Value &d, const std::string &p) -> util::Status {
        ThrottleDevice t;
        auto major = TRY(json::opt_int(d, "major", p));
        auto minor = TRY(json::opt_int(d, "minor", p));
        auto rate = TRY(json::opt_uint(d, "rate", p));
        if (!major || !minor) return Error::with_code(EINVAL, cat(quote(p), ": major and minor are required"));
        t.major = *major;
        t.minor = *minor;
        t.rate = rate.value_or(0);
        out.push_back(t);
        return util::ok();
    });
}

util::Status parse_block_io(const json::Value &b, std::string_view w, Resources &r) {
    r.blkio_weight = TRY(opt_u16(b, "weight", w));
    r.blkio_leaf_weight = TRY(opt_u16(b, "leafWeight", w));
    for (auto [key, v] : {std::pair{"weight", r.blkio_weight}, std::pair{"leafWeight", r.blkio_leaf_weight}}) {
        if (v && *v != 0 && (*v < 10 || *v > 1000)) return range_error(w, key, "must be between 10 and 1000");
    }
    TRY(each_object(b, "weightDevice", w, [&](const json::Value &d, const std::string &p) -> util::Status {
        WeightDevice wd;
        auto major = TRY(json::opt_int(d, "major", p));
        auto minor = TRY(json::opt_int(d, "minor", p));
        if (!major || !minor) return Error::with_code(EINVAL, cat(quote(p), ": major and minor are required"));
        wd.major = *major;
        wd.minor = *minor;
        wd.weight = TRY(opt_u16(d, "weight", p));
        wd.leaf_weight = TRY(opt_u16(d, "leafWeight", p));
        r.blkio_weight_device.push_back(wd);
        return util::ok();
    }));
    TRY(parse_throttle(b, w, "throttleReadBpsDevice", r.blkio_throttle_read_bps));
    TRY(parse_throttle(b, w, "throttleWriteBpsDevice", r.blkio_throttle_write_bps));
    TRY(parse_throttle(b, w, "throttleReadIOPSDevice", r.blkio_throttle_read_iops));
    TRY(parse_throttle(b, w, "throttleWriteIOPSDevice", r.blkio_throttle_write_iops));
    return util::ok();
}

/// "2MB", "1GB", "64KB": a number and a unit, as the hugetlb files are named.
bool valid_page_size(std::string_view s) {
    size_t digits = 0;
    while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
    if (digits == 0) return false;
    std::string_view unit = s.substr(digits);
    return unit == "KB" || unit == "MB" || unit == "GB" || unit == "TB";
}

util::Status parse_device(const json::Value &d, const std::string &p, Resources &r) {
    DeviceRule rule;
    auto allow = TRY(json::opt_bool(d, "allow", p));
    if (!allow) return Error::with_code(EINVAL, cat(quote(json::field_path(p, "allow")), ": missing"));
    rule.allow = *allow;
    std::string type = TRY(json::opt_string(d, "type", p)).value_or("a");
    if (type != "a" && type != "b" && type != "c")
        return range_error(p, "type", cat("must be `a`, `b` or `c`, not ", quote(type)));
    rule.type = type[0];
    rule.major = TRY(json::opt_int(d, "major", p)).value_or(-1);
    rule.minor = TRY(json::opt_int(d, "minor", p)).value_or(-1);
    if (rule.major < -1 || rule.minor < -1) return range_error(p, "major", "device numbers must be -1 (any) or positive");
    rule.access = TRY(json::opt_string(d, "access", p)).value_or("rwm");
    if (rule.access.empty()) rule.access = "rwm";
    for (char c : rule.access) {
        if (c != 'r' && c != 'w' && c != 'm')
            return range_error(p, "access", cat("must be letters of `rwm`, not ", quote(rule.access)));
    }
    r.devices.push_back(rule);
    return util::ok();
}

}  // namespace

util::Result<Resources> parse_resources(const json::Value *resources) {
    Resources r;
    if (!resources || resources->is_null()) return r;
    TRY(json::expect_object(*resources, kWhere));
    const json::Value &res = *resources;

    if (const json::Value *m = TRY(json::opt_object(res, "memory", kWhere)))
        TRY(parse_memory(*m, json::field_path(kWhere, "memory"), r));
    if (const json::Value *c = TRY(json::opt_object(res, "cpu", kWhere)))
        TRY(parse_cpu(*c, json::field_path(kWhere, "cpu"), r));
    if (const json::Value *p = TRY(json::opt_object(res, "pids", kWhere))) {
        std::string w = json::field_path(kWhere, "pids");
        r.pids_limit = TRY(json::opt_int(*p, "limit", w));
    }
    if (const json::Value *b = TRY(json::opt_object(res, "blockIO", kWhere)))
        TRY(parse_block_io(*b, json::field_path(kWhere, "blockIO"), r));
    TRY(each_object(res, "hugepageLimits", kWhere, [&](const json::Value &h, const std::string &p) -> util::Status {
        HugepageLimit hl;
        hl.page_size = TRY(json::req_string(h, "pageSize", p));
        if (!valid_page_size(hl.page_size))
            return range_error(p, "pageSize", cat("must look like `2MB` or `1GB`, not ", quote(hl.page_size)));
        auto limit = TRY(json::opt_uint(h, "limit", p));
        if (!limit) return Error::with_code(EINVAL, cat(quote(json::field_path(p, "limit")), ": missing"));
        hl.limit = *limit;
        r.hugepage_limits.push_back(hl);
        return util::ok();
    }));
    TRY(each_object(res, "devices", kWhere,
                    [&](const json::Value &d, const std::string &p) { return parse_device(d, p, r); }));
    if (const json::Value *n = TRY(json::opt_object(res, "network", kWhere))) {
        std::string w = json::field_path(kWhere, "network");
        r.network_class_id = TRY(opt_u32(*n, "classID", w));
        TRY(each_object(*n, "priorities", w, [&](const json::Value &p, const std::string &pw) -> util::Status {
            std::string name = TRY(json::req_string(p, "name", pw));
            auto prio = TRY(opt_u32(p, "priority", pw));
            if (!prio) return Error::with_code(EINVAL, cat(quote(json::field_path(pw, "priority")), ": missing"));
            if (name.empty() || name.find_first_of(" \n/") != std::string::npos)
                return range_error(pw, "name", cat("not an interface name: ", quote(name)));
            r.network_priorities.emplace_back(std::move(name), *prio);
            return util::ok();
        }));
    }
    if (const json::Value *u = TRY(json::opt_object(res, "unified", kWhere))) {
        std::string w = json::field_path(kWhere, "unified");
        for (auto it = u->begin(); it != u->end(); ++it) {
            if (!it.value().is_string())
                return Error::with_code(EINVAL, cat(quote(json::field_path(w, it.key())), ": expected a string, got ",
                                                    json::type_name(it.value())));
            r.unified.emplace_back(it.key(), it.value().get<std::string>());
        }
    }
    // rdma is accepted and ignored: no gateway kernel berth targets has the controller.
    return r;
}

void merge_resources(Resources &base, const Resources &u) {
    auto take = [](auto &dst, const auto &src) {
        if (src) dst = src;
    };
    auto take_list = [](auto &dst, const auto &src) {
        if (!src.empty()) dst = src;
    };
    take(base.memory_limit, u.memory_limit);
    take(base.memory_reservation, u.memory_reservation);
    take(base.memory_swap, u.memory_swap);
    take(base.memory_kernel, u.memory_kernel);
    take(base.memory_kernel_tcp, u.memory_kernel_tcp);
    take(base.memory_swappiness, u.memory_swappiness);
    take(base.memory_disable_oom_killer, u.memory_disable_oom_killer);
    take(base.memory_use_hierarchy, u.memory_use_hierarchy);
    take(base.memory_check_before_update, u.memory_check_before_update);
    take(base.cpu_shares, u.cpu_shares);
    take(base.cpu_period, u.cpu_period);
    take(base.cpu_realtime_period, u.cpu_realtime_period);
    take(base.cpu_burst, u.cpu_burst);
    take(base.cpu_quota, u.cpu_quota);
    take(base.cpu_realtime_runtime, u.cpu_realtime_runtime);
    take(base.cpu_idle, u.cpu_idle);
    take_list(base.cpu_cpus, u.cpu_cpus);
    take_list(base.cpu_mems, u.cpu_mems);
    take(base.pids_limit, u.pids_limit);
    take(base.blkio_weight, u.blkio_weight);
    take(base.blkio_leaf_weight, u.blkio_leaf_weight);
    take_list(base.blkio_weight_device, u.blkio_weight_device);
    take_list(base.blkio_throttle_read_bps, u.blkio_throttle_read_bps);
    take_list(base.blkio_throttle_write_bps, u.blkio_throttle_write_bps);
    take_list(base.blkio_throttle_read_iops, u.blkio_throttle_read_iops);
    take_list(base.blkio_throttle_write_iops, u.blkio_throttle_write_iops);
    take_list(base.hugepage_limits, u.hugepage_limits);
    take_list(base.devices, u.devices);
    take(base.network_class_id, u.network_class_id);
    take_list(base.network_priorities, u.network_priorities);
    take_list(base.unified, u.unified);
}

util::Result<std::vector<std::pair<std::string, std::string>>> parse_sub_cgroups(const std::vector<std::string> &args) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto &arg : args) {
        std::string controllers, path = arg;
        if (auto colon = arg.find(':'); colon != std::string::npos) {
            controllers = arg.substr(0, colon);
            path = arg.substr(colon + 1);
        }
        std::string_view p = path;
        while (p.starts_with('/')) p.remove_prefix(1);
        bool escapes = p.empty();
        for (const auto &part : util::split(p, '/'))
            if (part == ".." || part == ".") escapes = true;
        if (escapes) return Error::msg(cat("--cgroup ", quote(arg), ": not a path below the container's cgroup"));
        for (const auto &c : controllers.empty() ? std::vector<std::string>{""} : util::split(controllers, ',')) {
            for (const auto &[have, _] : out)
                if (have == c) return Error::msg(cat("--cgroup ", quote(arg), ": controller ", quote(c.empty() ? "(all)" : c), " given twice"));
            out.emplace_back(c, std::string(p));
        }
    }
    return out;
}

}  // namespace rt::cgroup
