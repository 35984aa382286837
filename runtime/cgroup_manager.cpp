// The one Manager behind every host layout. It holds the container's cgroup
// directory in each v1 hierarchy and/or in the cgroup2 tree and routes each
// resource to a controller function of cgroup_v1.cpp or cgroup_v2.cpp:
//
//   V1      every controller in its v1 hierarchy;
//   V2      everything in the unified tree (devices as a BPF program);
//   Hybrid  v1 for every controller mounted as v1, and the cgroup is ALSO
//           created in the unified tree with the processes in it (as runc
//           does for systemd's hybrid layout): the unified tree gives
//           cgroup.kill and process tracking, and the controllers that exist
//           only there (hugetlb on many gateways) are set there.
//
// crun refuses hybrid hosts; berth treats them as a v1 host plus a v2 tree.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "runtime/cgroup_backend.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rt::cgroup {

using util::cat;
using util::Error;
using util::quote;
using namespace std::chrono_literals;

namespace {

/// The v1 controllers berth creates cgroups in, where mounted.
constexpr const char *kV1Controllers[] = {"cpuset", "cpu",     "cpuacct", "memory",     "devices", "freezer", "blkio",
                                          "pids",   "hugetlb", "net_cls", "net_prio", "perf_event", "rdma",  "misc"};

struct Hierarchy {
    std::string name;   ///< mount directory name below root ("memory", "cpu,cpuacct"); "" for cgroup2
    std::string mount;  ///< absolute mount directory
    std::vector<std::string> controllers;
};

bool is_dir(const std::string &p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// The v1 hierarchies under `root`, one entry per mount even when several
/// names (cpu, cpuacct -> cpu,cpuacct) lead to it.
std::vector<Hierarchy> find_v1(const std::string &root) {
    std::vector<Hierarchy> out;
    // A controller is a mount directory or a symlink to the co-mounted one
    // (cpu -> cpu,cpuacct): resolve `root` once and only the links, rather
    // than a realpath of every controller (five syscalls each, every run).
    char real_root[PATH_MAX];
    std::string base = ::realpath(root.c_str(), real_root) ? std::string(real_root) : root;
    for (const char *ctrl : kV1Controllers) {
        std::string p = util::path_join(base, ctrl);
        struct stat st {};
        if (::lstat(p.c_str(), &st) < 0) continue;
        std::string mount = p;
        if (S_ISLNK(st.st_mode)) {
            if (!is_dir(p)) continue;
            char real[PATH_MAX];
            mount = ::realpath(p.c_str(), real) ? std::string(real) : p;
        } else if (!S_ISDIR(st.st_mode)) {
            continue;
        }
        auto it = std::find_if(out.begin(), out.end(), [&](const Hierarchy &h) { return h.mount == mount; });
        if (it != out.end()) {
            it->controllers.push_back(ctrl);
        } else {
            out.push_back(Hierarchy{util::basename(mount), mount, {ctrl}});
        }
    }
    return out;
}

bool needs_memory(const Resources &r) {
    return r.memory_limit || r.memory_reservation || r.memory_swap || r.memory_kernel || r.memory_kernel_tcp ||
           r.memory_swappiness || r.memory_disable_oom_killer.value_or(false) || r.memory_use_hierarchy;
}
bool needs_cpu(const Resources &r) {
    return (r.cpu_shares && *r.cpu_shares) || (r.cpu_quota && *r.cpu_quota) || (r.cpu_period && *r.cpu_period) ||
           r.cpu_burst || (r.cpu_realtime_runtime && *r.cpu_realtime_runtime) ||
           (r.cpu_realtime_period && *r.cpu_realtime_period) || r.cpu_idle;
}
bool needs_blkio(const Resources &r) {
    return (r.blkio_weight && *r.blkio_weight) || (r.blkio_leaf_weight && *r.blkio_leaf_weight) ||
           !r.blkio_weight_device.empty() || !r.blkio_throttle_read_bps.empty() || !r.blkio_throttle_write_bps.empty() ||
           !r.blkio_throttle_read_iops.empty() || !r.blkio_throttle_write_iops.empty();
}

class HierManager final : public Manager {
public:
    HierManager(Mode mode, std::string root, std::string path, std::vector<Hierarchy> v1, std::string unified)
        : mode_(mode), root_(std::move(root)), path_(std::move(path)), v1_(std::move(v1)),
          unified_mount_(std::move(unified)) {}

    Mode mode() const override { return mode_; }
    const std::string &path() const override { return path_; }

    std::vector<std::pair<std::string, std::string>> dirs() const override {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto &h : v1_) out.emplace_back(h.name, h.mount + path_);
        if (!unified_mount_.empty()) out.emplace_back("", unified_dir());
        return out;
    }

    util::Status create() override {
        auto undo = util::ScopeGuard([&] { (void)remove_all(); });
        for (const auto &h : v1_) TRY(make_dir(h.mount + path_));
        if (mode_ == Mode::V2) {
            TRY(make_dir_v2());
        } else if (!unified_mount_.empty()) {
            TRY(make_dir(unified_dir()));
        }
        // An empty cpuset takes no tasks: fill it from the parent now.
        if (const Hierarchy *cs = v1_dir_of("cpuset")) TRY(set_cpuset_v1(cs->mount, cs->mount + path_, Resources{}));
        undo.dismiss();
        return util::ok();
    }

    util::Status set(const Resources &r) override {
        return set_all(r).context(cat("apply resources to cgroup ", quote(path_)));
    }

    util::Status add_process(pid_t pid, const std::vector<std::pair<std::string, std::string>> &sub) override {
        // The sub-cgroup for a hierarchy: the first entry naming one of its
        // controllers, else the "" entry, else none.
        auto sub_of = [&](const std::vector<std::string> &controllers) -> std::string {
            const std::string *any = nullptr;
            for (const auto &[c, p] : sub) {
                if (c.empty() && !any) any = &p;
                if (std::find(controllers.begin(), controllers.end(), c) != controllers.end()) return p;
            }
            return any ? *any : std::string();
        };
        auto join = [&](const std::string &dir, const std::string &below) -> util::Status {
            std::string target = below.empty() ? dir : util::path_join(dir, below);
            if (!below.empty() && !is_dir(target))
                return Error::with_code(ENOENT, cat("sub-cgroup ", quote(target), " does not exist"));
            return write_value(target, "cgroup.procs", cat(pid)).context(cat("move pid ", pid, " into cgroup"));
        };
        for (const auto &h : v1_) TRY(join(h.mount + path_, sub_of(h.controllers)));
        if (unified_mount_.empty()) return util::ok();
        if (mode_ != Mode::V2) return join(unified_dir(), sub_of({""}));
        // One hierarchy: every entry, whatever controller it names, must
        // name the same sub-cgroup.
        for (const auto &[c, p] : sub)
            if (p != sub.front().second)
                return Error::with_code(EINVAL, cat("cgroup v2 has one hierarchy: --cgroup gives ", quote(sub.front().second),
                                                    " and ", quote(p)));
        return join(unified_dir(), sub.empty() ? std::string() : sub.front().second);
    }

    util::Result<SelfJoin> open_self_join() const override {
        SelfJoin j;
        for (const auto &h : v1_) {
            std::string dir = h.mount + path_;
            auto fd = TRY_CTX(util::open_file(util::path_join(dir, "tasks"), O_WRONLY), "cgroup");
            j.v1_tasks.emplace_back(std::move(dir), std::move(fd));
        }
        if (!unified_mount_.empty()) {
            j.v2_path = unified_dir();
            j.v2_dir = TRY_CTX(util::open_file(j.v2_path, O_PATH | O_DIRECTORY), "cgroup");
        }
        return j;
    }

    util::Status freeze() override { return set_frozen(true).context(cat("freeze cgroup ", quote(path_))); }
    util::Status thaw() override { return set_frozen(false).context(cat("thaw cgroup ", quote(path_))); }

    util::Result<bool> frozen() override {
        if (const Hierarchy *f = v1_dir_of("freezer")) {
            std::string state = TRY(read_value(f->mount + path_, "freezer.state"));
            return state == "FROZEN";
        }
        if (unified_mount_.empty()) return Error::with_code(ENOTSUP, "no freezer: neither a v1 freezer nor cgroup2");
        auto f = TRY(read_keyed(unified_dir(), "cgroup.events", "frozen"));
        return f.value_or(0) == 1;
    }

    util::Result<std::vector<pid_t>> pids() override {
        if (!unified_mount_.empty()) return read_pids_recursive(unified_dir());
        for (const char *c : {"pids", "freezer", "memory", "cpu", "devices"}) {
            if (const Hierarchy *h = v1_dir_of(c)) return read_pids_recursive(h->mount + path_);
        }
        if (!v1_.empty()) return read_pids_recursive(v1_.front().mount + path_);
        return std::vector<pid_t>{};
    }

    util::Result<Stats> stats() override {
        Stats s;
        if (const Hierarchy *m = v1_dir_of("memory")) {
            std::string d = m->mount + path_;
            s.memory_usage = TRY(read_uint(d, "memory.usage_in_bytes"));
            s.memory_limit = TRY(read_uint(d, "memory.limit_in_bytes"));
            s.oom_kills = TRY(read_keyed(d, "memory.oom_control", "oom_kill")).value_or(0);
        } else if (mode_ == Mode::V2) {
            std::string d = unified_dir();
            s.memory_usage = TRY(read_uint(d, "memory.current"));
            s.memory_limit = TRY(read_uint(d, "memory.max"));
            s.oom_kills = TRY(read_keyed(d, "memory.events", "oom_kill")).value_or(0);
        }
        if (const Hierarchy *p = v1_dir_of("pids")) {
            s.pids_current = TRY(read_uint(p->mount + path_, "pids.current"));
        } else if (mode_ == Mode::V2) {
            s.pids_current = TRY(read_uint(unified_dir(), "pids.current"));
        }
        if (const Hierarchy *c = v1_dir_of("cpuacct")) {
            s.cpu_usage_ns = TRY(read_uint(c->mount + path_, "cpuacct.usage"));
        } else if (!unified_mount_.empty() && has_file(unified_dir(), "cpu.stat")) {
            s.cpu_usage_ns = TRY(read_keyed(unified_dir(), "cpu.stat", "usage_usec")).value_or(0) * 1000;
        }
        return s;
    }

    util::Status destroy() override { return destroy_all().context(cat("destroy cgroup ", quote(path_))); }

private:
    std::string unified_dir() const { return unified_mount_ + path_; }

    const Hierarchy *v1_dir_of(std::string_view ctrl) const {
        for (const auto &h : v1_) {
            if (std::find(h.controllers.begin(), h.controllers.end(), ctrl) != h.controllers.end()) return &h;
        }
        return nullptr;
    }

    static util::Status make_dir(const std::string &dir) {
        // The leaf is new and its parent usually exists: one mkdir, no lookups.
        if (::mkdir(dir.c_str(), 0755) == 0) return util::ok();
        // mkdir_p races with a concurrent destroy removing an empty parent: retry.
        for (int i = 0;; ++i) {
            auto st = util::mkdir_p(dir, 0755);
            if (st || st.error().code != ENOENT || i == 3) return std::move(st).context("create cgroup");
        }
    }

    /// The cgroup2 directory with its controllers: the parents first, since a
    /// cgroup gets only what its parent's subtree_control hands down and a
    /// parent that does not exist yet ("/berth" before the first container)
    /// hands nothing. A concurrent delete may remove an empty "/berth"
    /// between the steps: the leaf's mkdir then fails with ENOENT and all is
    /// redone.
    util::Status make_dir_v2() const {
        std::string dir = unified_dir();
        for (int i = 0;; ++i) {
            TRY(make_dir(util::dirname(dir)));
            TRY(enable_controllers_v2(unified_mount_, dir));
            if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return util::ok();
            if (errno != ENOENT || i == 3) return Error::from_errno(cat("create cgroup: mkdir ", quote(dir)));
        }
    }

    /// The v1 directory for `ctrl`, or an error naming the missing controller.
    util::Result<std::string> need_v1(std::string_view ctrl) const {
        if (const Hierarchy *h = v1_dir_of(ctrl)) return h->mount + path_;
        return Error::with_code(ENOTSUP, cat("the ", quote(ctrl), " cgroup controller is not mounted under ", quote(root_)));
    }

    /// The unified directory, checking that `ctrl` is enabled in it.
    util::Result<std::string> need_v2(std::string_view ctrl) const {
        std::string d = unified_dir();
        std::string have = read_value(d, "cgroup.controllers").value_or("");
        auto list = util::split(have, ' ');
        if (std::find(list.begin(), list.end(), ctrl) == list.end())
            return Error::with_code(ENOTSUP, cat("the ", quote(ctrl), " controller is not available in ", quote(d)));
        return d;
    }

    bool unified_has(std::string_view ctrl) const {
        if (unified_mount_.empty()) return false;
        std::string have = read_value(unified_mount_, "cgroup.controllers").value_or("");
        auto list = util::split(have, ' ');
        return std::find(list.begin(), list.end(), ctrl) != list.end();
    }

    util::Status set_all(const Resources &r) {
        if (mode_ == Mode::V2) return set_v2(r);
        if (needs_memory(r)) TRY(set_memory_v1(TRY(need_v1("memory")), r));
        if (needs_cpu(r)) TRY(set_cpu_v1(TRY(need_v1("cpu")), r));
        if (!r.cpu_cpus.empty() || !r.cpu_mems.empty()) {
            const Hierarchy *cs = v1_dir_of("cpuset");
            if (!cs) return std::move(need_v1("cpuset")).error();
            TRY(set_cpuset_v1(cs->mount, cs->mount + path_, r));
        }
        if (r.pids_limit) TRY(set_pids_v1(TRY(need_v1("pids")), r));
        if (needs_blkio(r)) TRY(set_blkio_v1(TRY(need_v1("blkio")), r));
        if (!r.hugepage_limits.empty()) {
            if (v1_dir_of("hugetlb") || !unified_has("hugetlb")) {
                TRY(set_hugetlb_v1(TRY(need_v1("hugetlb")), r));
            } else {
                // Hybrid with hugetlb only in the unified tree (this is common).
                TRY(enable_controllers_v2(unified_mount_, unified_dir()));
                TRY(set_hugetlb_v2(TRY(need_v2("hugetlb")), r));
            }
        }
        if (!r.devices.empty()) {
            if (v1_dir_of("devices") || unified_mount_.empty()) {
                TRY(set_devices_v1(TRY(need_v1("devices")), r));
            } else {
                TRY(apply_device_program(unified_dir(), r.devices));
            }
        }
        if (r.network_class_id) TRY(set_net_cls_v1(TRY(need_v1("net_cls")), r));
        if (!r.network_priorities.empty()) TRY(set_net_prio_v1(TRY(need_v1("net_prio")), r));
        if (!r.unified.empty()) {
            if (unified_mount_.empty())
                return Error::with_code(ENOTSUP, "linux.resources.unified: this host has no cgroup2 hierarchy");
            TRY(enable_controllers_v2(unified_mount_, unified_dir()));
            TRY(set_unified_v2(unified_dir(), r));
        }
        return util::ok();
    }

    util::Status set_v2(const Resources &r) {
        if (needs_memory(r)) TRY(set_memory_v2(TRY(need_v2("memory")), r));
        if (needs_cpu(r)) TRY(set_cpu_v2(TRY(need_v2("cpu")), r));
        if (!r.cpu_cpus.empty() || !r.cpu_mems.empty()) TRY(set_cpuset_v2(TRY(need_v2("cpuset")), r));
        if (r.pids_limit) TRY(set_pids_v2(TRY(need_v2("pids")), r));
        if (needs_blkio(r)) TRY(set_io_v2(TRY(need_v2("io")), r));
        if (!r.hugepage_limits.empty()) TRY(set_hugetlb_v2(TRY(need_v2("hugetlb")), r));
        if (!r.devices.empty()) TRY(apply_device_program(unified_dir(), r.devices));
        if (r.network_class_id || !r.network_priorities.empty())
            util::log::debug("cgroup v2 has no net_cls/net_prio: linux.resources.network ignored");
        if (!r.unified.empty()) TRY(set_unified_v2(unified_dir(), r));
        return util::ok();
    }

    util::Status set_frozen(bool freeze) {
        if (const Hierarchy *f = v1_dir_of("freezer")) return freeze_v1(f->mount + path_, freeze);
        if (!unified_mount_.empty()) return freeze_v2(unified_dir(), freeze);
        return Error::with_code(ENOTSUP, "no freezer: neither a v1 freezer nor cgroup2");
    }

    bool exists_anywhere() const {
        for (const auto &[name, dir] : dirs()) {
            if (is_dir(dir)) return true;
        }
        return false;
    }

    util::Status kill_all() {
        const Hierarchy *f = v1_dir_of("freezer");
        // The unified tree: cgroup.kill where the kernel has it (5.14+). Without
        // it, a v1 freezer (hybrid) is the one that freezes, below: tasks it
        // holds (a paused container) never reach cgroup2's frozen state, so a
        // cgroup2 freeze would wait out its whole timeout (5 s on 5.10).
        if (!unified_mount_.empty() && is_dir(unified_dir()) && (!f || has_file(unified_dir(), "cgroup.kill")))
            TRY(kill_all_v2(unified_dir()));
        // v1 (and processes that were only put in v1): freeze so nothing forks
        // away, SIGKILL, thaw so frozen tasks can die.
        bool frozen = f && is_dir(f->mount + path_) && freeze_v1(f->mount + path_, true, 2000ms).ok();
        util::Status st;
        for (const auto &h : v1_) {
            if (!is_dir(h.mount + path_)) continue;
            auto s = signal_all(h.mount + path_, SIGKILL);
            if (!s && st) st = std::move(s);
        }
        if (f && is_dir(f->mount + path_)) {
            auto s = freeze_v1(f->mount + path_, false);
            if (frozen && !s && st) st = std::move(s);
        }
        return st;
    }

    /// rmdir of each directory; false at the first that is busy.
    bool remove_if_empty() {
        for (const auto &[name, dir] : dirs())
            if (::rmdir(dir.c_str()) < 0 && errno != ENOENT) return false;
        return true;
    }

    util::Status remove_all() {
        util::Status st;
        for (const auto &[name, dir] : dirs()) {
            auto s = remove_cgroup_dir(dir);
            if (!s && st) st = std::move(s);
        }
        return st;
    }

    util::Status destroy_all() {
        if (!exists_anywhere()) return util::ok();
        // Usually the container has exited and left its cgroups empty: then
        // removing them is all there is to do, without freezing or reading
        // any of them. A cgroup still busy (EBUSY: tasks or children) takes
        // the long way below, which finds whatever is left.
        if (remove_if_empty()) return util::ok();
        TRY(kill_all());
        for (const auto &[name, dir] : dirs()) {
            auto st = wait_empty(dir, 5000ms);
            if (!st) {
                // A straggler forked between listing and killing: one more round.
                (void)kill_all();
                TRY(wait_empty(dir, 5000ms));
            }
        }
        return remove_all();
    }

    Mode mode_;
    std::string root_;
    std::string path_;              ///< "/berth/web", below every hierarchy root
    std::vector<Hierarchy> v1_;     ///< empty on V2
    std::string unified_mount_;     ///< cgroup2 mount ("" on V1)
};

}  // namespace

util::Result<std::unique_ptr<Manager>> open_manager(const std::string &cgroups_path, const std::string &container_id,
                                                    const ManagerOptions &opts) {
    Mode mode = opts.mode ? *opts.mode : TRY(detect_mode(opts.root));
    std::string path = TRY(resolve_path(cgroups_path, container_id, opts.systemd));
    std::vector<Hierarchy> v1;
    std::string unified;
    if (mode == Mode::V2) {
        unified = opts.root;
    } else {
        v1 = find_v1(opts.root);
        if (v1.empty()) return Error::with_code(ENOENT, cat("no cgroup v1 controller is mounted under ", quote(opts.root)));
        if (mode == Mode::Hybrid) unified = util::path_join(opts.root, "unified");
    }
    // berth's default parent ("/berth") is created with the first container
    // and stays, like a systemd slice: creating and removing it in every
    // hierarchy on each start and delete cost about 0.3-0.5 ms a start on a
    // v1 host, and a delete removing it raced with a create below it.
    return std::unique_ptr<Manager>(new HierManager(mode, opts.root, std::move(path), std::move(v1), std::move(unified)));
}

}  // namespace rt::cgroup
