// build::Runner over runtime/: see build_run.hpp. One RUN step:
//   1. a foreign platform is checked first (binfmt F, cross/build/binfmt.hpp);
//   2. the overlay (lower_dirs, upper_dir, work_dir) is mounted nodev on the
//      bundle's rootfs with redirect_dir, metacopy and index off, so every
//      change lands in upper_dir as plain files, whiteouts and opaque
//      directories (upper.hpp converts exactly those);
//   3. config.json is image/'s runtime config (the default confinement,
//      podman's capabilities, the user resolved in the rootfs' /etc/passwd,
//      /proc /dev /sys mounted), with the host's network by default and
//      then copies of the host's resolv.conf and hosts bound in, the
//      hostname `localhost` (no build host's name reaches a layer) and a
//      cgroup under /berth-build;
//   4. the container runs with stdin /dev/null and stdout and stderr on
//      stdout_fd; SIGINT, SIGTERM, SIGHUP and SIGQUIT kill it (an init
//      ignores what it has no handler for) and fail the step;
//   5. container, mount and bundle are removed on every path; the mount
//      points the runtime had to create (a /proc the image lacks, say, or
//      the target of a RUN --mount) are taken out of upper_dir again; then
//      upper_dir becomes a layer tree.
// No tmpfs covers /tmp: as with podman build, what a step leaves in /tmp
// is part of its layer.
#include "build_run.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "cross/build/binfmt.hpp"
#include "cross/build/upper.hpp"
#include "image/config.hpp"
#include "run_bundle.hpp"
#include "runtime/container.hpp"
#include "runtime/init_handle.hpp"
#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

using util::cat;
using util::Error;
using util::quote;

/// What the runtime may have to create in the rootfs to mount on, parents
/// before children. Mounts inside /dev, /proc and /sys land on the
/// runtime's own filesystems, not in the layer.
constexpr const char *kMountPoints[] = {"/proc", "/dev", "/sys", "/etc", "/etc/resolv.conf", "/etc/hosts"};

/// Overlay features that would keep a change out of the upper directory
/// (a renamed directory as a redirect, a chmod as a metadata-only copy).
/// Kernels before 4.19 know not all of these names, and have them off.
constexpr const char *kOverlayFeaturesOff = ",redirect_dir=off,metacopy=off,index=off";

/// "b<pid>-<start time>-" for this process: the prefix of its containers' ids.
std::string id_prefix_of(pid_t pid, uint64_t start) { return cat("b", pid, "-", start, "-"); }

/// Is the process that made container `id` gone (so the container is stale)?
bool owner_gone(const std::string &id) {
    auto parts = util::split(id, '-');
    if (parts.size() != 3 || parts[0].size() < 2 || parts[0][0] != 'b') return false;  // not ours: leave it
    auto pid = util::parse_int<pid_t>(std::string_view(parts[0]).substr(1));
    auto start = util::parse_int<uint64_t>(parts[1]);
    if (!pid || !start) return false;
    auto now = rt::process_start_time(*pid);
    return !now || *now != *start;
}

/// Copies the host's `path` into `dir` for a bind mount; nullopt when the
/// host has none.
std::optional<std::string> host_copy(const std::string &path, const std::string &dir) {
    auto data = util::read_file(path, 1 << 20);
    if (!data) return std::nullopt;
    std::string copy = util::path_join(dir, util::basename(path));
    // A step's bundle lives only as long as the step: nothing in it needs to survive a power cut.
    if (!util::atomic_write_file(copy, *data, 0644, util::Durability::ProcessCrash)) return std::nullopt;
    return copy;
}

/// The entry at `path` in the rootfs, not followed: ENOENT when absent.
util::Result<util::UniqueFd> entry_in(int rootfd, const std::string &path) {
    return util::open_in_root(rootfd, path, O_PATH | O_NOFOLLOW);
}

/// lowerdir=...,upperdir=...,workdir=...; over a page (overlay's limit for
/// the options of mount(2)) with many layers, the lower directories are
/// reached through short symlinks in `bundle`/l, which overlay follows.
util::Result<std::string> overlay_options(const build::RunRequest &req, const std::string &bundle) {
    std::vector<std::string> lowers = req.lower_dirs;
    if (lowers.empty()) {  // FROM scratch: overlay needs one lower layer
        std::string empty = bundle + "/empty";
        TRY(util::mkdir_p(empty, 0755));
        lowers.push_back(empty);
    }
    auto plain = [](const std::string &p) { return p.find_first_of(",:\\") == std::string::npos; };
    for (const auto *p : {&req.upper_dir, &req.work_dir})
        if (!plain(*p)) return Error::msg(cat("overlay directory ", quote(*p), ": `,`, `:` and `\\` cannot be passed to overlay"));
    auto options = [&](const std::vector<std::string> &l) {
        return cat("lowerdir=", util::join(l, ":"), ",upperdir=", req.upper_dir, ",workdir=", req.work_dir,
                   kOverlayFeaturesOff);
    };
    std::string o = options(lowers);
    bool all_plain = true;
    for (const auto &l : lowers) all_plain = all_plain && plain(l);
    if (all_plain && o.size() < 4000) return o;
    std::string links = bundle + "/l";
    TRY(util::mkdir_p(links, 0700));
    std::vector<std::string> short_names;
    for (size_t i = 0; i < lowers.size(); i++) {
        std::string link = cat(links, "/", i);
        if (::symlink(lowers[i].c_str(), link.c_str()) < 0) return Error::from_errno(cat("symlink ", quote(link)));
        short_names.push_back(link);
    }
    o = options(short_names);
    if (o.size() >= 4000) return Error::msg(cat(lowers.size(), " layers are more than overlay's mount options can name"));
    return o;
}

/// The mount points of kMountPoints as the rootfs had them before the
/// step: absent (nullopt), or their type, mode and owner.
using MountPointsBefore = std::vector<std::pair<std::string, std::optional<struct stat>>>;

MountPointsBefore mount_points_before(int rootfd, const std::vector<build::RunRequest::Mount> &mounts) {
    MountPointsBefore out;
    std::vector<std::string> points(std::begin(kMountPoints), std::end(kMountPoints));
    for (const auto &m : mounts) {  // the target and its parents, parents first
        std::string prefix;
        for (const auto &c : util::split(m.target, '/')) {
            if (c.empty() || c == "." || c == "..") continue;
            prefix += "/" + c;
            if (std::find(points.begin(), points.end(), prefix) == points.end()) points.push_back(prefix);
        }
    }
    for (const auto &p : points) {
        auto e = entry_in(rootfd, p);
        struct stat st;
        if (e && ::fstat(e->get(), &st) == 0) out.emplace_back(p, st);
        else if (!e && e.error().code == ENOENT) out.emplace_back(p, std::nullopt);
    }
    return out;
}

/// Takes out of the upper directory, deepest first, what only the
/// runtime's mount points put there: a mount point it created (still
/// empty: the step put nothing there), and a directory copied up only to
/// hold one (empty, not opaque, its mode and owner as before).
void remove_mount_stubs(const std::string &upper_dir, const MountPointsBefore &before) {
    auto upper = util::open_file(upper_dir, O_RDONLY | O_DIRECTORY);
    if (!upper) return;
    for (auto it = before.rbegin(); it != before.rend(); ++it) {
        const auto &[path, was] = *it;
        std::string rel = path.substr(1);
        struct stat st;
        if (::fstatat(upper->get(), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (!was) {
            if (S_ISDIR(st.st_mode)) (void)::unlinkat(upper->get(), rel.c_str(), AT_REMOVEDIR);  // fails when not empty
            else if (S_ISREG(st.st_mode) && st.st_size == 0) (void)::unlinkat(upper->get(), rel.c_str(), 0);
            continue;
        }
        if (!S_ISDIR(st.st_mode) || !S_ISDIR(was->st_mode) || st.st_mode != was->st_mode || st.st_uid != was->st_uid ||
            st.st_gid != was->st_gid)
            continue;
        char v[4];
        std::string p = cat("/proc/self/fd/", upper->get(), "/", rel);
        bool opaque = ::lgetxattr(p.c_str(), "trusted.overlay.opaque", v, sizeof v) > 0 ||
                      ::lgetxattr(p.c_str(), "user.overlay.opaque", v, sizeof v) > 0;
        if (!opaque) (void)::unlinkat(upper->get(), rel.c_str(), AT_REMOVEDIR);  // fails when not empty
    }
}

/// Removes a bundle directory, unless its rootfs is still a mount point
/// (rmdir fails with EBUSY): nothing is ever deleted through the overlay.
void remove_bundle_dir(const std::string &bundle) {
    if (::rmdir((bundle + "/rootfs").c_str()) == 0 || errno == ENOENT) (void)util::remove_tree(bundle);
}

class RuntimeRunner final : public build::Runner {
public:
    explicit RuntimeRunner(std::string state_root)
        : run_root_(state_root + "/run"), bundles_(state_root + "/bundles") {
        prefix_ = id_prefix_of(::getpid(), rt::process_start_time(::getpid()).value_or(0));
        sweep();
    }

    util::Status run(const build::RunRequest &req) override {
        if (!req.platform.empty()) TRY(build::check_platform_runnable(req.platform));
        std::string id = cat(prefix_, ++steps_);
        std::string bundle = cat(bundles_, "/", id), rootfs = bundle + "/rootfs";
        TRY(util::mkdir_p(rootfs, 0755));
        util::ScopeGuard remove_bundle{[&] { remove_bundle_dir(bundle); }};

        std::string options = TRY(overlay_options(req, bundle));
        // volatile (Linux 5.10): the upper directory is read once the step
        // ends and then thrown away (the layer made of it is synced on its
        // own), so the overlay never syncs it; without it, the unmount
        // syncs the whole filesystem under the upper directory (the
        // store's, with whatever else is being written there meanwhile).
        if (::mount("overlay", rootfs.c_str(), "overlay", MS_NODEV, cat(options, ",volatile").c_str()) == 0) {
        } else if (::mount("overlay", rootfs.c_str(), "overlay", MS_NODEV, options.c_str()) < 0) {
            if (errno != EINVAL || !options.ends_with(kOverlayFeaturesOff)) return Error::from_errno("mount the overlay");
            options.resize(options.size() - std::string_view(kOverlayFeaturesOff).size());  // an older kernel
            if (::mount("overlay", rootfs.c_str(), "overlay", MS_NODEV, options.c_str()) < 0)
                return Error::from_errno("mount the overlay");
        }
        bool mounted = true;
        util::ScopeGuard unmount{[&] {
            if (mounted) (void)::umount2(rootfs.c_str(), MNT_DETACH);
        }};
        auto rootfd = TRY_CTX(util::open_file(rootfs, O_PATH | O_DIRECTORY), "open the overlay");
        auto before = mount_points_before(rootfd.get(), req.mounts);
        TRY_CTX(write_config(req, id, bundle, rootfd.get()), "the step's runtime config");
        rootfd.reset();

        int code = TRY(run_container(id, bundle, req.stdout_fd));
        mounted = false;
        if (::umount2(rootfs.c_str(), 0) < 0 && ::umount2(rootfs.c_str(), MNT_DETACH) < 0)
            return Error::from_errno("unmount the overlay");
        if (code != 0) return Error::msg(cat("exit status ", code));
        remove_mount_stubs(req.upper_dir, before);
        return build::upper_to_layer_tree(req.upper_dir);
    }

private:
    /// The bundle's config.json for `req` (the rootfs is mounted: `rootfd`).
    util::Status write_config(const build::RunRequest &req, const std::string &id, const std::string &bundle, int rootfd) {
        img::ImageConfig image;
        image.user = req.user;
        image.env = req.env;
        image.working_dir = req.cwd.empty() ? "/" : req.cwd;
        image.cmd = req.argv;
        img::RuntimeConfigOptions opts;
        opts.hostname = "localhost";
        opts.host_network = req.host_network;
        if (req.host_network) {
            // Copies: a step writing /etc/resolv.conf changes neither the host's nor the layer.
            for (const char *f : {"/etc/resolv.conf", "/etc/hosts"}) {
                auto e = entry_in(rootfd, f);
                struct stat st;
                if (e && (::fstat(e->get(), &st) < 0 || !S_ISREG(st.st_mode))) continue;  // a symlink, say: left alone
                if (auto copy = host_copy(f, bundle)) opts.extra_mounts.push_back({*copy, f, false});
            }
        }
        for (const auto &m : req.mounts) opts.extra_mounts.push_back({m.source, m.target, m.readonly});
        auto config = TRY(img::runtime_config(image, rootfd, opts));
        config["linux"]["cgroupsPath"] = cat("/berth-build/", id);
        return util::atomic_write_file(bundle + "/config.json", util::json::dump(config), 0644,
                                       util::Durability::ProcessCrash);  // the bundle lives as long as the step
    }

    /// create, start, wait, delete: the step's exit code (128 + N when
    /// killed by signal N). A SIGINT, SIGTERM, SIGHUP or SIGQUIT meanwhile
    /// kills the container and fails the step.
    util::Result<int> run_container(const std::string &id, const std::string &bundle, int out_fd) {
        auto devnull = TRY(util::open_file("/dev/null", O_RDONLY));
        rt::CreateOptions co;
        co.root = run_root_;
        co.id = id;
        co.bundle = bundle;
        co.stdio[0] = devnull.get();
        co.stdio[1] = co.stdio[2] = out_fd;
        BlockedSignals blocked{SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT};
        util::UniqueFd sigfd(::signalfd(-1, &blocked.set(), SFD_CLOEXEC | SFD_NONBLOCK));
        if (!sigfd) return Error::from_errno("signalfd");

        rt::State st = TRY(rt::create_container(co));
        util::ScopeGuard remove{[&] { (void)rt::delete_container(run_root_, id, true); }};
        auto init = TRY(rt::InitHandle::open(st));
        TRY(rt::start_container(run_root_, id));
        int stopped_by = 0;
        for (;;) {
            auto done = TRY(init.try_wait());
            if (done) {
                if (stopped_by) return Error::msg(cat("stopped by SIG", sigabbrev_np(stopped_by)));
                return *done;
            }
            struct pollfd fds[2] = {{sigfd.get(), POLLIN, 0}, {init.fd(), POLLIN, 0}};
            if (::poll(fds, init.fd() >= 0 ? 2 : 1, -1) < 0 && errno != EINTR) return Error::from_errno("poll");
            signalfd_siginfo si;
            while (::read(sigfd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
                if (si.ssi_signo == SIGCHLD || stopped_by) continue;
                stopped_by = static_cast<int>(si.ssi_signo);
                TRY(rt::kill_container(run_root_, id, SIGKILL, true));
            }
        }
    }

    /// Removes what builds killed with SIGKILL left: their containers
    /// (processes and cgroups), mounts and bundles.
    void sweep() {
        std::vector<std::string> ids;
        for (const auto *dir : {&run_root_, &bundles_})
            if (auto names = util::list_dir(*dir)) ids.insert(ids.end(), names->begin(), names->end());
        for (const auto &id : ids) {
            if (!owner_gone(id)) continue;
            (void)rt::delete_container(run_root_, id, true);
            std::string bundle = cat(bundles_, "/", id);
            (void)::umount2((bundle + "/rootfs").c_str(), MNT_DETACH);
            remove_bundle_dir(bundle);
        }
    }

    std::string run_root_, bundles_, prefix_;
    unsigned steps_ = 0;
};

}  // namespace

std::unique_ptr<build::Runner> make_build_runner(const std::string &state_root, bool *own_mounts) {
    // Our own mount namespace, receiving the host's mounts but sending none.
    bool own = ::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) == 0;
    if (own_mounts) *own_mounts = own;
    return std::make_unique<RuntimeRunner>(state_root);
}

}  // namespace cmd
