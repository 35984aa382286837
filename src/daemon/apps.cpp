// svc::SupervisorApps: the updater's ota::Apps on the supervisor; see apps.hpp.
#include "daemon/apps.hpp"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <new>
#include <set>

#include "runtime/container.hpp"
#include "runtime/mounts.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

namespace svc {

namespace {

constexpr int64_t kPollMs = 200;  ///< status is re-read at least this often while waiting

std::string seconds(int64_t ms) { return util::cat(ms / 1000, ms % 1000 ? util::cat('.', ms % 1000 / 100) : "", " s"); }

util::Error shutting_down() { return util::Error::msg("the daemon is shutting down"); }

/// Deletes container `id` from the runtime when it is still there (a stray,
/// or one the supervisor did not know).
util::Status delete_if_present(const std::string &root, const std::string &id) {
    if (!util::path_exists(util::path_join(root, id))) return {};
    auto r = rt::delete_container(root, id, true);
    if (!r) return std::move(r).error().wrap(util::cat("delete container ", util::quote(id)));
    return {};
}

}  // namespace

util::Status SupervisorApps::stage(const ota::Revision &rev) {
    if (!on_staging_bytes) return in_child("staging", [&] { return ota::stage_revision(rev, stage_); });
    // The child counts into a page shared with it; the loop reads the count.
    void *page = ::mmap(nullptr, sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return in_child("staging", [&] { return ota::stage_revision(rev, stage_); });
    auto *bytes = new (page) std::atomic<uint64_t>(0);
    util::ScopeGuard unmap([&] { ::munmap(page, sizeof(std::atomic<uint64_t>)); });
    uint64_t seen = 0;
    auto pass_on = [&] {
        uint64_t b = bytes->load(std::memory_order_relaxed);
        if (b == seen) return;
        seen = b;
        on_staging_bytes(b);
    };
    util::EventLoop::TimerId timer = 0;
    std::function<void()> tick = [&] {
        pass_on();
        timer = loop_.after(500, tick);
    };
    timer = loop_.after(500, tick);
    util::ScopeGuard stop_timer([&] { loop_.cancel(timer); });
    auto st = in_child("staging", [&] {
        ota::StageContext ctx = stage_;
        ctx.on_bytes = [bytes](uint64_t b) { bytes->store(b, std::memory_order_relaxed); };
        return ota::stage_revision(rev, ctx);
    });
    pass_on();
    return st;
}

util::Status SupervisorApps::in_child(const char *what, const std::function<util::Status()> &fn) {
    if (cancelled_) return shutting_down();
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return util::Error::from_errno(util::cat("pipe for the ", what, " child"));
    util::UniqueFd rd(p[0]), wr(p[1]);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return util::Error::from_errno(util::cat("fork the ", what, " child"));
    if (pid == 0) {
        // The child: no loop, no destructors of the daemon's objects (_exit).
        util::become_worker_of(parent);
        rd.release();
        errno = 0;
        int prio = ::getpriority(PRIO_PROCESS, 0);
        if (errno == 0) (void)::setpriority(PRIO_PROCESS, 0, std::min(prio + kWorkerNice, 19));
        auto st = fn();
        if (!st) (void)util::write_all(wr.get(), st.error().message());
        ::_exit(st ? 0 : 1);
    }
    wr.reset();
    stage_pid_ = pid;
    bool done = false;
    int code = 0;
    reaper_.expect(pid, [&](int c) {
        done = true;
        code = c;
    });
    std::string msg;
    (void)::fcntl(rd.get(), F_SETFL, O_NONBLOCK);
    auto drain = [&] {
        char buf[4096];
        ssize_t n;
        while ((n = ::read(rd.get(), buf, sizeof buf)) > 0)
            if (msg.size() < 4096) msg.append(buf, size_t(n));
        return n == 0;  // EOF
    };
    TRY(loop_.watch(rd.get(), EPOLLIN, [&](uint32_t) {
        if (drain()) loop_.unwatch(rd.get());
    }));
    util::ScopeGuard unwatch([&] { loop_.unwatch(rd.get()); });
    while (!done) TRY(loop_.run_once());
    drain();
    stage_pid_ = 0;
    if (code == 0) return {};
    if (!msg.empty()) return util::Error::msg(msg);
    return util::Error::msg(code > 128 ? util::cat("the ", what, " child was killed by signal ", code - 128)
                                       : util::cat("the ", what, " child exited ", code));
}

void SupervisorApps::cancel() {
    cancelled_ = true;
    if (stage_pid_ > 0) ::kill(stage_pid_, SIGKILL);
}

util::Status SupervisorApps::wait_ready(const ota::Revision &rev, const ota::ContainerSpec &dep, int64_t deadline_ms) {
    std::string id = ota::container_id(rev, dep);
    bool needs_health = dep.health.kind != ota::HealthKind::None;
    for (;;) {
        if (cancelled_) return shutting_down();
        for (const auto &s : sup_.status()) {
            if (s.id != id) continue;
            if (s.crash_looping) return util::Error::msg(util::cat(util::quote(dep.name), " is crash-looping: ", s.why));
            if (s.pid > 0 && (!needs_health || s.health == Health::Healthy)) return {};
        }
        int64_t left = deadline_ms - util::monotonic_ms();
        if (left <= 0)
            return util::Error::msg(util::cat(util::quote(dep.name), " did not become ", needs_health ? "healthy" : "running",
                                              " within the health window (", seconds(rev.health_window_ms), ")"));
        TRY(loop_.run_once(int(std::min(left, kPollMs))));
    }
}

bool SupervisorApps::bundles_ready(const ota::Revision &rev) const {
    auto mounts = rt::mounts::read_mountinfo();
    if (!mounts) return false;
    for (const auto &c : rev.containers) {
        std::string id = ota::container_id(rev, c);
        char real[PATH_MAX];
        std::string rootfs = util::path_join(stage_.root.container(id), "rootfs");
        if (!::realpath(rootfs.c_str(), real)) return false;
        if (std::none_of(mounts->begin(), mounts->end(), [&](const auto &m) { return m.mount_point == real; })) return false;
        if (c.health.kind == ota::HealthKind::Ready && !util::path_exists(ota::notify_dir(stage_.run_dir, id))) return false;
    }
    return true;
}

util::Status SupervisorApps::start(const ota::Revision &rev) {
    int64_t deadline = util::monotonic_ms() + rev.health_window_ms;
    // After a reboot a committed revision's bundles lack their rootfs mount
    // and notify directory (ota/stage.hpp): staging (in its child, so the
    // store's libraries never load in the daemon) makes them again.
    if (!bundles_ready(rev)) TRY_CTX(stage(rev), util::cat("ready the bundles of revision ", rev.version));
    for (const auto &c : rev.containers) {
        for (const auto &dep_name : c.depends_on) {
            auto dep = std::find_if(rev.containers.begin(), rev.containers.end(), [&](const auto &d) { return d.name == dep_name; });
            if (dep == rev.containers.end()) continue;  // the manifest parser refuses this
            TRY_CTX(wait_ready(rev, *dep, deadline), util::cat("start ", util::quote(c.name)));
        }
        if (cancelled_) return shutting_down();
        std::string id = ota::container_id(rev, c);
        TRY_CTX(sup_.start(rev.version, c, id, stage_.root.container(id)), util::cat("start ", util::quote(c.name)));
    }
    return {};
}

util::Status SupervisorApps::stop(const ota::Revision &rev) {
    std::vector<std::string> ids;
    for (auto c = rev.containers.rbegin(); c != rev.containers.rend(); ++c) ids.push_back(ota::container_id(rev, *c));
    TRY(sup_.stop_and_wait(ids));
    for (const auto &id : ids) TRY(delete_if_present(state_root_, id));
    return {};
}

util::Status SupervisorApps::remove(const ota::Revision &rev) {
    return in_child("bundle removal", [&] { return ota::remove_revision_bundles(rev, stage_.root); });
}

util::Status SupervisorApps::stop_others(const std::vector<const ota::Revision *> &keep) {
    std::set<std::string> kept;
    for (const auto *r : keep)
        for (const auto &c : r->containers) kept.insert(ota::container_id(*r, c));
    std::vector<std::string> supervised;
    for (const auto &s : sup_.status())
        if (!kept.count(s.id) && std::find(supervised.begin(), supervised.end(), s.id) == supervised.end())
            supervised.push_back(s.id);
    if (!supervised.empty()) {
        util::log::info("stopping containers of no kept revision: ", util::join(supervised, ", "));
        TRY(sup_.stop_and_wait(supervised));
    }
    // What the runtime still has: strays of a crashed daemon, a create cut
    // short (a state directory without state.json).
    auto names = util::list_dir(state_root_);
    if (!names) return names.error().code == ENOENT ? util::Status() : std::move(names).error().wrap("list the runtime's containers");
    for (const auto &id : *names) {
        if (id.starts_with(".") || kept.count(id) || !rt::validate_id(id)) continue;
        util::log::info("deleting stray container ", util::quote(id));
        TRY(delete_if_present(state_root_, id));
    }
    return {};
}

}  // namespace svc
