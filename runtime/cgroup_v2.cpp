// cgroup v2 controllers: `linux.resources` written into a unified-hierarchy
// directory (memory.max/low/swap.max, cpu.weight/max/max.burst/idle, cpuset,
// pids.max, io.weight/io.max, hugetlb.<size>.max, `unified` keys), the value
// conversions from the spec's v1-shaped numbers (runc's and crun's formulas,
// so a container gets the same limits under any of the three runtimes),
// enabling controllers down the tree, and cgroup.kill with its fallback.
// Devices are a BPF program (cgroup_bpf.cpp), not files.
#include <signal.h>

#include <algorithm>
#include <cerrno>

#include "runtime/cgroup_backend.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rt::cgroup {

using util::cat;
using util::Error;
using util::quote;

uint64_t shares_to_weight(uint64_t shares) {
    if (shares == 0) return 0;
    if (shares < 2) shares = 2;
    if (shares > 262144) shares = 262144;
    return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t blkio_weight_to_io_weight(uint64_t weight) {
    if (weight == 0) return 0;
    if (weight < 10) weight = 10;
    if (weight > 1000) weight = 1000;
    return 1 + (weight - 10) * 9999 / 990;
}

util::Result<int64_t> swap_to_v2(int64_t swap, std::optional<int64_t> limit) {
    int64_t mem = limit.value_or(0);
    if (swap == -1) return int64_t{-1};
    if (swap == 0) return mem == -1 ? int64_t{-1} : int64_t{0};
    if (mem == 0 || mem == -1)
        return Error::with_code(EINVAL, "memory.swap: a swap limit needs a memory limit (it counts memory plus swap)");
    if (swap < mem)
        return Error::with_code(EINVAL, cat("memory.swap (", swap, ") must not be below memory.limit (", mem,
                                            "): it counts memory plus swap"));
    return swap - mem;
}

namespace {

std::string max_or(int64_t v) { return v < 0 ? std::string("max") : cat(v); }

}  // namespace

util::Status set_memory_v2(const std::string &dir, const Resources &r) {
    if (r.memory_limit && r.memory_check_before_update.value_or(false) && *r.memory_limit > 0) {
        auto cur = read_uint(dir, "memory.current");
        if (cur.ok() && *cur > static_cast<uint64_t>(*r.memory_limit))
            return Error::with_code(EBUSY, cat("memory.limit ", *r.memory_limit, " is below the current usage ", *cur));
    }
    if (r.memory_swap) {
        int64_t swap = TRY(swap_to_v2(*r.memory_swap, r.memory_limit));
        if (swap != 0 || *r.memory_swap != 0) {
            if (has_file(dir, "memory.swap.max")) {
                TRY(write_value(dir, "memory.swap.max", max_or(swap)));
            } else if (swap > 0) {
                return Error::with_code(ENOTSUP, "memory.swap: a swap limit was asked for but memory.swap.max is "
                                                 "missing (no swap accounting)");
            }
        }
    }
    if (r.memory_limit) TRY(write_value(dir, "memory.max", max_or(*r.memory_limit)));
    if (r.memory_reservation) TRY(write_value(dir, "memory.low", max_or(*r.memory_reservation)));
    if (r.memory_kernel || r.memory_kernel_tcp) util::log::debug("cgroup v2 has no kernel memory limits: ignored");
    if (r.memory_swappiness) util::log::debug("cgroup v2 has no per-cgroup swappiness: ignored");
    if (r.memory_disable_oom_killer.value_or(false)) util::log::debug("cgroup v2 cannot disable the OOM killer: ignored");
    return util::ok();
}

util::Status set_cpu_v2(const std::string &dir, const Resources &r) {
    if ((r.cpu_realtime_runtime && *r.cpu_realtime_runtime != 0) ||
        (r.cpu_realtime_period && *r.cpu_realtime_period != 0))
        return Error::with_code(ENOTSUP, "cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime cpu limits");
    if (r.cpu_shares && *r.cpu_shares != 0) TRY(write_value(dir, "cpu.weight", cat(shares_to_weight(*r.cpu_shares))));
    bool quota = r.cpu_quota && *r.cpu_quota != 0;
    bool period = r.cpu_period && *r.cpu_period != 0;
    if (quota || period) {
        std::string v = quota && *r.cpu_quota > 0 ? cat(*r.cpu_quota) : std::string("max");
        if (period) v += cat(' ', *r.cpu_period);  // without a period the kernel keeps the current one
        TRY(write_value(dir, "cpu.max", v));
    }
    if (r.cpu_burst) TRY(write_value(dir, "cpu.max.burst", cat(*r.cpu_burst)));
    if (r.cpu_idle) TRY(write_value(dir, "cpu.idle", cat(*r.cpu_idle)));
    return util::ok();
}

util::Status set_cpuset_v2(const std::string &dir, const Resources &r) {
    if (!r.cpu_cpus.empty()) TRY(write_value(dir, "cpuset.cpus", r.cpu_cpus));
    if (!r.cpu_mems.empty()) TRY(write_value(dir, "cpuset.mems", r.cpu_mems));
    return util::ok();
}

util::Status set_pids_v2(const std::string &dir, const Resources &r) {
    if (!r.pids_limit) return util::ok();
    return write_value(dir, "pids.max", *r.pids_limit > 0 ? cat(*r.pids_limit) : std::string("max"));
}

util::Status set_io_v2(const std::string &dir, const Resources &r) {
    // With BFQ, io.bfq.weight takes the v1 range (1..1000) as is; else io.weight, converted.
    bool bfq = has_file(dir, "io.bfq.weight");
    if (r.blkio_weight && *r.blkio_weight != 0) {
        if (bfq) {
            TRY(write_value(dir, "io.bfq.weight", cat(*r.blkio_weight)));
        } else {
            TRY(write_value(dir, "io.weight", cat(blkio_weight_to_io_weight(*r.blkio_weight))));
        }
    }
    if (r.blkio_leaf_weight && *r.blkio_leaf_weight != 0) util::log::debug("cgroup v2 has no leaf weight: ignored");
    for (const auto &wd : r.blkio_weight_device) {
        if (!wd.weight) continue;
        if (bfq) {
            TRY(write_value(dir, "io.bfq.weight", cat(wd.major, ':', wd.minor, ' ', *wd.weight)));
        } else {
            TRY(write_value(dir, "io.weight", cat(wd.major, ':', wd.minor, ' ', blkio_weight_to_io_weight(*wd.weight))));
        }
    }
    auto throttle = [&](const char *key, const std::vector<ThrottleDevice> &list) -> util::Status {
        for (const auto &t : list) {
            std::string rate = t.rate == 0 ? std::string("max") : cat(t.rate);
            TRY(write_value(dir, "io.max", cat(t.major, ':', t.minor, ' ', key, '=', rate)));
        }
        return util::ok();
    };
    TRY(throttle("rbps", r.blkio_throttle_read_bps));
    TRY(throttle("wbps", r.blkio_throttle_write_bps));
    TRY(throttle("riops", r.blkio_throttle_read_iops));
    TRY(throttle("wiops", r.blkio_throttle_write_iops));
    return util::ok();
}

util::Status set_hugetlb_v2(const std::string &dir, const Resources &r) {
    for (const auto &h : r.hugepage_limits) TRY(write_value(dir, cat("hugetlb.", h.page_size, ".max"), cat(h.limit)));
    return util::ok();
}

util::Status check_unified_key(std::string_view key) {
    if (key.empty() || key == "." || key == ".." || key.find('/') != std::string_view::npos ||
        key.find("..") != std::string_view::npos || key.find('\0') != std::string_view::npos)
        return Error::with_code(EINVAL, cat("linux.resources.unified: ", quote(key), " is not a cgroup file name"));
    if (key.starts_with("cgroup.") && key != "cgroup.freeze" && key != "cgroup.max.depth" &&
        key != "cgroup.max.descendants" && key != "cgroup.type")
        return Error::with_code(EPERM, cat("linux.resources.unified: ", quote(key), " is managed by the runtime"));
    return util::ok();
}

util::Status set_unified_v2(const std::string &dir, const Resources &r) {
    for (const auto &[key, value] : r.unified) TRY(check_unified_key(key));
    for (const auto &[key, value] : r.unified) {
        if (!has_file(dir, key)) {
            std::string ctrl = key.substr(0, key.find('.'));
            return Error::with_code(ENOENT, cat("linux.resources.unified: ", quote(key), " does not exist (is the ",
                                                quote(ctrl), " controller enabled?)"));
        }
        TRY(write_value(dir, key, value));
    }
    return util::ok();
}

util::Status enable_controllers_v2(const std::string &root, const std::string &dir) {
    std::string avail = TRY(read_value(root, "cgroup.controllers"));
    auto ctrls = util::split(avail, ' ');
    // From the root down to dir's parent: each level lets its children use the controllers.
    std::vector<std::string> chain;
    for (std::string d = util::dirname(dir); d.size() >= root.size() && d.compare(0, root.size(), root) == 0;
         d = util::dirname(d)) {
        chain.push_back(d);
        if (d.size() == root.size()) break;
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        std::string have = read_value(*it, "cgroup.subtree_control").value_or("");
        auto enabled = util::split(have, ' ');
        for (const auto &c : ctrls) {
            if (c.empty() || std::find(enabled.begin(), enabled.end(), c) != enabled.end()) continue;
            // One controller per write: one the kernel refuses (threaded
            // subtree, v1-bound on hybrid) must not block the others.
            auto st = write_value(*it, "cgroup.subtree_control", cat('+', c));
            if (!st) util::log::debug("cgroup: cannot enable ", c, " in ", *it, ": ", st.error().message());
        }
    }
    return util::ok();
}

util::Status kill_all_v2(const std::string &dir) {
    if (has_file(dir, "cgroup.kill")) {
        auto st = write_value(dir, "cgroup.kill", "1");
        if (st || st.error().code == ENOENT || st.error().code == ENODEV) return util::ok();
        return st;
    }
    // Older kernels: freeze so nothing forks behind our back, kill, thaw so the signals land.
    bool can_freeze = has_file(dir, "cgroup.freeze");
    if (can_freeze) (void)freeze_v2(dir, true);
    auto st = signal_all(dir, SIGKILL);
    if (can_freeze) (void)freeze_v2(dir, false);
    return st;
}

}  // namespace rt::cgroup
