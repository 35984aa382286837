// cgroup v1 controllers: one function per controller, each writing the
// `linux.resources` values that concern it into the cgroup directory it is
// given (memory, cpu, cpuset, pids, blkio, hugetlb, devices, net_cls,
// net_prio). Values the spec leaves unset are not written, so the kernel's
// (or the parent's) defaults stay. Ordering rules the kernel enforces (memsw
// never below the memory limit, quota against period) are handled here.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/cgroup_backend.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rt::cgroup {

using util::cat;
using util::Error;
using util::quote;

namespace {

std::string limit_str(int64_t v) { return v < 0 ? std::string("-1") : cat(v); }

util::Status write_num(const std::string &dir, std::string_view file, int64_t v) { return write_value(dir, file, cat(v)); }

/// memory.limit_in_bytes and memory.memsw.limit_in_bytes: the kernel refuses
/// memsw < limit at every instant, so raise memsw first when the limit grows.
util::Status set_memory_and_swap(const std::string &dir, const Resources &r) {
    bool want_swap = r.memory_swap.has_value();
    bool have_memsw = has_file(dir, "memory.memsw.limit_in_bytes");
    if (want_swap && !have_memsw) {
        if (*r.memory_swap == -1 || (r.memory_limit && *r.memory_swap == *r.memory_limit)) {
            want_swap = false;  // no swap accounting, and nothing beyond the memory limit asked
        } else {
            return Error::with_code(ENOTSUP,
                                    "memory.swap: a swap limit was asked for but the kernel has no swap accounting "
                                    "(memory.memsw.limit_in_bytes is missing; boot with swapaccount=1)");
        }
    }
    if (!r.memory_limit && !want_swap) return util::ok();
    if (r.memory_limit && !want_swap) return write_value(dir, "memory.limit_in_bytes", limit_str(*r.memory_limit));
    if (!r.memory_limit) return write_value(dir, "memory.memsw.limit_in_bytes", limit_str(*r.memory_swap));

    // Both: if the new limit is above the current memsw (or unlimited), memsw goes first.
    bool swap_first = *r.memory_limit == -1;
    if (!swap_first) {
        auto cur = read_uint(dir, "memory.memsw.limit_in_bytes");
        swap_first = cur.ok() && *cur < static_cast<uint64_t>(*r.memory_limit);
    }
    if (*r.memory_swap != -1 && *r.memory_limit != -1 && *r.memory_swap < *r.memory_limit)
        return Error::with_code(EINVAL, cat("memory.swap (", *r.memory_swap, ") must not be below memory.limit (",
                                            *r.memory_limit, "): it counts memory plus swap"));
    if (swap_first) {
        TRY(write_value(dir, "memory.memsw.limit_in_bytes", limit_str(*r.memory_swap)));
        return write_value(dir, "memory.limit_in_bytes", limit_str(*r.memory_limit));
    }
    TRY(write_value(dir, "memory.limit_in_bytes", limit_str(*r.memory_limit)));
    return write_value(dir, "memory.memsw.limit_in_bytes", limit_str(*r.memory_swap));
}

}  // namespace

util::Status set_memory_v1(const std::string &dir, const Resources &r) {
    TRY(set_memory_and_swap(dir, r));
    if (r.memory_reservation) TRY(write_value(dir, "memory.soft_limit_in_bytes", limit_str(*r.memory_reservation)));
    // Kernel memory limits are gone from kernels >= 5.16 (the file is absent or
    // refuses writes); runc 1.2 ignores them, berth writes them where they still work.
    if (r.memory_kernel && has_file(dir, "memory.kmem.limit_in_bytes")) {
        auto st = write_value(dir, "memory.kmem.limit_in_bytes", limit_str(*r.memory_kernel));
        if (!st) util::log::debug("ignoring memory.kernel: ", st.error().message());
    }
    if (r.memory_kernel_tcp) TRY(write_value(dir, "memory.kmem.tcp.limit_in_bytes", limit_str(*r.memory_kernel_tcp)));
    if (r.memory_swappiness) TRY(write_num(dir, "memory.swappiness", static_cast<int64_t>(*r.memory_swappiness)));
    if (r.memory_disable_oom_killer && *r.memory_disable_oom_killer) TRY(write_value(dir, "memory.oom_control", "1"));
    if (r.memory_use_hierarchy) TRY(write_value(dir, "memory.use_hierarchy", *r.memory_use_hierarchy ? "1" : "0"));
    return util::ok();
}

util::Status set_cpu_v1(const std::string &dir, const Resources &r) {
    if (r.cpu_shares && *r.cpu_shares != 0) TRY(write_num(dir, "cpu.shares", static_cast<int64_t>(*r.cpu_shares)));
    bool period = r.cpu_period && *r.cpu_period != 0;
    bool quota = r.cpu_quota && *r.cpu_quota != 0;
    if (period && quota) {
        // A new period may clash with the old quota (and the reverse): try the
        // other order when the kernel refuses the first.
        auto st = write_num(dir, "cpu.cfs_period_us", static_cast<int64_t>(*r.cpu_period));
        TRY(write_num(dir, "cpu.cfs_quota_us", *r.cpu_quota < 0 ? -1 : *r.cpu_quota));
        if (!st) TRY(write_num(dir, "cpu.cfs_period_us", static_cast<int64_t>(*r.cpu_period)));
    } else if (period) {
        TRY(write_num(dir, "cpu.cfs_period_us", static_cast<int64_t>(*r.cpu_period)));
    } else if (quota) {
        TRY(write_num(dir, "cpu.cfs_quota_us", *r.cpu_quota < 0 ? -1 : *r.cpu_quota));
    }
    if (r.cpu_burst) TRY(write_num(dir, "cpu.cfs_burst_us", static_cast<int64_t>(*r.cpu_burst)));
    if (r.cpu_realtime_period && *r.cpu_realtime_period != 0)
        TRY(write_num(dir, "cpu.rt_period_us", static_cast<int64_t>(*r.cpu_realtime_period)));
    if (r.cpu_realtime_runtime && *r.cpu_realtime_runtime != 0)
        TRY(write_num(dir, "cpu.rt_runtime_us", *r.cpu_realtime_runtime));
    if (r.cpu_idle) TRY(write_num(dir, "cpu.idle", *r.cpu_idle));
    return util::ok();
}

util::Status set_cpuset_v1(const std::string &root, const std::string &dir, const Resources &r) {
    // Fill empty cpus/mems from the top down, as runc does: a child of an
    // empty cpuset cannot be filled, and an empty cpuset refuses tasks.
    std::vector<std::string> chain;
    for (std::string d = dir; d.size() > root.size() && d.compare(0, root.size(), root) == 0; d = util::dirname(d))
        chain.push_back(d);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        std::string parent = util::dirname(*it);
        for (const char *file : {"cpuset.cpus", "cpuset.mems"}) {
            std::string cur = TRY(read_value(*it, file));
            if (!cur.empty()) continue;
            std::string from = TRY(read_value(parent, file));
            TRY(write_value(*it, file, from));
        }
    }
    if (!r.cpu_cpus.empty()) TRY(write_value(dir, "cpuset.cpus", r.cpu_cpus));
    if (!r.cpu_mems.empty()) TRY(write_value(dir, "cpuset.mems", r.cpu_mems));
    return util::ok();
}

util::Status set_pids_v1(const std::string &dir, const Resources &r) {
    if (!r.pids_limit) return util::ok();
    return write_value(dir, "pids.max", *r.pids_limit > 0 ? cat(*r.pids_limit) : std::string("max"));
}

util::Status set_blkio_v1(const std::string &dir, const Resources &r) {
    // Kernels with BFQ and without CFQ only have the blkio.bfq.* weight files.
    bool bfq = !has_file(dir, "blkio.weight") && has_file(dir, "blkio.bfq.weight");
    std::string weight_file = bfq ? "blkio.bfq.weight" : "blkio.weight";
    std::string weight_dev_file = bfq ? "blkio.bfq.weight_device" : "blkio.weight_device";
    if (r.blkio_weight && *r.blkio_weight != 0) TRY(write_num(dir, weight_file, *r.blkio_weight));
    if (r.blkio_leaf_weight && *r.blkio_leaf_weight != 0) TRY(write_num(dir, "blkio.leaf_weight", *r.blkio_leaf_weight));
    for (const auto &wd : r.blkio_weight_device) {
        if (wd.weight) TRY(write_value(dir, weight_dev_file, cat(wd.major, ':', wd.minor, ' ', *wd.weight)));
        if (wd.leaf_weight)
            TRY(write_value(dir, "blkio.leaf_weight_device", cat(wd.major, ':', wd.minor, ' ', *wd.leaf_weight)));
    }
    auto throttle = [&](const char *file, const std::vector<ThrottleDevice> &list) -> util::Status {
        for (const auto &t : list) TRY(write_value(dir, file, cat(t.major, ':', t.minor, ' ', t.rate)));
        return util::ok();
    };
    TRY(throttle("blkio.throttle.read_bps_device", r.blkio_throttle_read_bps));
    TRY(throttle("blkio.throttle.write_bps_device", r.blkio_throttle_write_bps));
    TRY(throttle("blkio.throttle.read_iops_device", r.blkio_throttle_read_iops));
    TRY(throttle("blkio.throttle.write_iops_device", r.blkio_throttle_write_iops));
    return util::ok();
}

util::Status set_hugetlb_v1(const std::string &dir, const Resources &r) {
    for (const auto &h : r.hugepage_limits)
        TRY(write_value(dir, cat("hugetlb.", h.page_size, ".limit_in_bytes"), cat(h.limit)));
    return util::ok();
}

std::vector<std::pair<std::string, std::string>> device_rules_v1(const std::vector<DeviceRule> &rules) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto &d : rules) {
        auto num = [](int64_t n) { return n < 0 ? std::string("*") : cat(n); };
        const char *file = d.allow ? "devices.allow" : "devices.deny";
        bool whole = d.major == -1 && d.minor == -1 && d.access.size() == 3;
        if (d.type == 'a' && whole) {
            // "a" resets the whole list: deny everything / allow everything.
            out.emplace_back(file, "a");
        } else if (d.type == 'a') {
            // The kernel reads "a" as that reset whatever follows it, so a
            // narrower rule on every type becomes one rule per type.
            for (char t : {'b', 'c'}) out.emplace_back(file, cat(t, ' ', num(d.major), ':', num(d.minor), ' ', d.access));
        } else {
            out.emplace_back(file, cat(d.type, ' ', num(d.major), ':', num(d.minor), ' ', d.access));
        }
    }
    return out;
}

util::Status set_devices_v1(const std::string &dir, const Resources &r) {
    // Every container gets a dozen rules: one open of each file, one
    // write(2) per rule (the kernel takes one rule per write).
    util::UniqueFd allow, deny;
    for (const auto &[file, line] : device_rules_v1(r.devices)) {
        util::UniqueFd &fd = file == "devices.allow" ? allow : deny;
        std::string path = util::path_join(dir, file);
        if (!fd) fd = TRY(util::open_file(path, O_WRONLY | O_TRUNC));
        ssize_t n;
        do n = ::write(fd.get(), line.data(), line.size());
        while (n < 0 && errno == EINTR);
        if (n != static_cast<ssize_t>(line.size())) return Error::from_errno(cat("write ", quote(line), " to ", quote(path)));
    }
    return util::ok();
}

util::Status set_net_cls_v1(const std::string &dir, const Resources &r) {
    if (r.network_class_id) TRY(write_num(dir, "net_cls.classid", *r.network_class_id));
    return util::ok();
}

util::Status set_net_prio_v1(const std::string &dir, const Resources &r) {
    for (const auto &[name, prio] : r.network_priorities) TRY(write_value(dir, "net_prio.ifpriomap", cat(name, ' ', prio)));
    return util::ok();
}

}  // namespace rt::cgroup
