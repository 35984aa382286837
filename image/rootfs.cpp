// Rootfs assembly (see rootfs.hpp).
#include "image/rootfs.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using util::cat;
using util::Error;
using util::quote;

bool is_whiteout(const struct stat &st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

bool is_opaque(int fd) {
    char v[2] = {};
    return ::fgetxattr(fd, "trusted.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y';
}

util::Status copy_xattrs(int src, int dst, const std::string &what) {
    char names[8192];
    ssize_t n = ::flistxattr(src, names, sizeof names);
    if (n <= 0) return util::ok();
    for (const char *p = names; p < names + n; p += std::strlen(p) + 1) {
        if (std::string_view(p).starts_with("trusted.overlay.")) continue;
        char val[65536];
        ssize_t vn = ::fgetxattr(src, p, val, sizeof val);
        if (vn < 0) continue;
        if (::fsetxattr(dst, p, val, static_cast<size_t>(vn), 0) < 0 && errno != ENOTSUP)
            return Error::from_errno(cat(what, ": set xattr ", quote(p)));
    }
    return util::ok();
}

util::Status set_meta_at(int dir, const char *name, const struct stat &st, bool link, const std::string &what) {
    if (::fchownat(dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM)
        return Error::from_errno(cat(what, ": chown"));
    if (!link && ::fchmodat(dir, name, st.st_mode & 07777, 0) < 0) return Error::from_errno(cat(what, ": chmod"));
    timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(dir, name, ts, AT_SYMLINK_NOFOLLOW) < 0) return Error::from_errno(cat(what, ": set times"));
    return util::ok();
}

util::Status copy_file(int sdir, int ddir, const char *name, const struct stat &st, const std::string &what) {
    auto in = TRY_CTX(util::open_at(sdir, name, O_RDONLY | O_NOFOLLOW), what);
    auto out = TRY_CTX(util::open_at(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600), what);
    off_t left = st.st_size;
    while (left > 0) {
        ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, static_cast<size_t>(left), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {  // fall back to read/write
            auto rest = TRY_CTX(util::read_all(in.get()), what);
            TRY_CTX(util::write_all(out.get(), rest), what);
            break;
        }
        left -= n;
    }
    TRY(copy_xattrs(in.get(), out.get(), what));
    return util::ok();
}

util::Status copy_dir(int sdir, int ddir, const std::string &rel) {
    auto names = TRY_CTX(util::list_dir_fd(sdir), cat("read ", quote(rel)));
    for (const auto &n : names) {
        std::string what = quote(rel.empty() ? n : rel + "/" + n);
        struct stat st;
        if (::fstatat(sdir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return Error::from_errno(cat("stat ", what));
        struct stat dst;
        bool exists = ::fstatat(ddir, n.c_str(), &dst, AT_SYMLINK_NOFOLLOW) == 0;
        if (is_whiteout(st)) {
            TRY(util::remove_tree_at(ddir, n));
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            auto s = TRY_CTX(util::open_at(sdir, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW), what);
            bool opaque = is_opaque(s.get());
            if (exists && (!S_ISDIR(dst.st_mode) || opaque)) {
                TRY(util::remove_tree_at(ddir, n));
                exists = false;
            }
            if (!exists && ::mkdirat(ddir, n.c_str(), 0700) < 0) return Error::from_errno(cat("mkdir ", what));
            auto d = TRY_CTX(util::open_at(ddir, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW), what);
            TRY(copy_dir(s.get(), d.get(), rel.empty() ? n : rel + "/" + n));
            TRY(copy_xattrs(s.get(), d.get(), what));
            TRY(set_meta_at(ddir, n.c_str(), st, false, what));
            continue;
        }
        if (exists) TRY(util::remove_tree_at(ddir, n));
        if (S_ISREG(st.st_mode)) {
            TRY(copy_file(sdir, ddir, n.c_str(), st, what));
        } else if (S_ISLNK(st.st_mode)) {
            std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
            ssize_t len = ::readlinkat(sdir, n.c_str(), target.data(), target.size());
            if (len < 0) return Error::from_errno(cat("readlink ", what));
            target.resize(static_cast<size_t>(len));
            if (::symlinkat(target.c_str(), ddir, n.c_str()) < 0) return Error::from_errno(cat("symlink ", what));
        } else if (S_ISFIFO(st.st_mode)) {
            if (::mknodat(ddir, n.c_str(), S_IFIFO | 0600, 0) < 0) return Error::from_errno(cat("mkfifo ", what));
        } else {
            continue;  // a device (of a layer unpacked before they were dropped) or a socket: never copied
        }
        TRY(set_meta_at(ddir, n.c_str(), st, S_ISLNK(st.st_mode), what));
    }
    return util::ok();
}

/// The overlay of `diff_ids` (lowest first) with the bundle's upper and work
/// directories, mounted nodev on `rootfs`.
util::Status mount_overlay(const Store &store, const std::string &dir, const std::string &rootfs,
                           const std::vector<Digest> &diff_ids) {
    std::string lower;
    for (auto it = diff_ids.rbegin(); it != diff_ids.rend(); ++it)
        lower += cat(lower.empty() ? "" : ":", store.layer_path(*it), "/rootfs");
    std::string o = cat("lowerdir=", lower, ",upperdir=", dir, "/upper,workdir=", dir, "/work");
    if (::mount("overlay", rootfs.c_str(), "overlay", MS_NODEV, o.c_str()) < 0) return Error::from_errno("mount overlay");
    return util::ok();
}

/// The flattened copy at `rootfs` bind-mounted on itself, so that it is nodev like the overlay.
util::Status bind_nodev(const std::string &rootfs) {
    if (::mount(rootfs.c_str(), rootfs.c_str(), nullptr, MS_BIND, nullptr) < 0 ||
        ::mount(nullptr, rootfs.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_NODEV, nullptr) < 0)
        return Error::from_errno("mount the rootfs nodev");
    return util::ok();
}

/// Is `dir` a mount point of this mount namespace? /proc/self/mountinfo
/// names mount points by their resolved path (a device root reached
/// through a symlink is not under its own name there), escaping space,
/// tab, newline and backslash in octal.
util::Result<bool> is_mount_point(const std::string &dir) {
    char resolved[PATH_MAX];
    if (!::realpath(dir.c_str(), resolved)) return Error::from_errno(cat("resolve ", quote(dir)));
    std::string path = resolved;
    auto info = TRY(util::read_file("/proc/self/mountinfo", 64 << 20));
    for (const auto &line : util::split(info, '\n')) {
        auto f = util::split(line, ' ');
        if (f.size() < 5) continue;
        std::string point;
        for (size_t i = 0; i < f[4].size(); i++) {
            if (f[4][i] == '\\' && i + 3 < f[4].size()) {
                point += static_cast<char>((f[4][i + 1] - '0') * 64 + (f[4][i + 2] - '0') * 8 + (f[4][i + 3] - '0'));
                i += 3;
            } else {
                point += f[4][i];
            }
        }
        if (point == path) return true;
    }
    return false;
}

}  // namespace

util::Status apply_layer_copy(int src_dir, int dst_dir) { return copy_dir(src_dir, dst_dir, ""); }

bool overlay_available(const std::string &scratch) {
    static std::optional<bool> cached;
    if (cached) return *cached;
    auto fs = util::read_file("/proc/filesystems", 1 << 16);
    if (!fs || fs->find("\toverlay\n") == std::string::npos) {
        // The module may load on first mount; try anyway below.
    }
    std::string t = cat(scratch, "/.overlay-test.", ::getpid());
    bool ok = util::mkdir_p(t + "/l") && util::mkdir_p(t + "/u") && util::mkdir_p(t + "/w") && util::mkdir_p(t + "/m");
    if (ok) {
        std::string opts = cat("lowerdir=", t, "/l,upperdir=", t, "/u,workdir=", t, "/w");
        ok = ::mount("overlay", (t + "/m").c_str(), "overlay", 0, opts.c_str()) == 0;
        if (ok) ::umount2((t + "/m").c_str(), MNT_DETACH);
    }
    (void)util::remove_tree(t);
    cached = ok;
    return ok;
}

util::Result<Bundle> create_bundle(Store &store, const std::string &id, const StoredImage &image, RootfsMode mode,
                                   RuntimeConfigOptions opts) {
    std::string what = cat("create bundle ", quote(id));
    if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..")
        return Error::msg(cat(what, ": invalid container id"));
    auto shared = TRY_CTX(store.lock_shared(), what);
    Bundle b;
    b.dir = store.device().container(id);
    b.rootfs = b.dir + "/rootfs";
    if (util::path_exists(b.dir)) return Error::with_code(EEXIST, cat(what, ": already exists"));
    for (const auto &d : image.config.diff_ids)
        if (!store.has_layer(d)) return Error::msg(cat(what, ": layer ", d.str(), " is not unpacked"));
    TRY_CTX(util::mkdir_p(b.rootfs, 0755), what);
    util::ScopeGuard undo([&] { (void)remove_bundle(store, id); });
    // Record the layers first: from here on gc keeps them.
    util::json::Value rec = util::json::Value::object();
    rec["manifest"] = image.manifest_digest.str();
    std::vector<std::string> ids;
    for (const auto &d : image.config.diff_ids) ids.push_back(d.str());
    rec["layers"] = ids;
    TRY_CTX(util::atomic_write_file(b.dir + "/image.json", util::json::dump(rec) + "\n"), what);

    bool overlay = mode == RootfsMode::Overlay ||
                   (mode == RootfsMode::Auto && overlay_available(store.device().containers()));
    if (overlay && !image.config.diff_ids.empty()) {
        TRY_CTX(util::mkdir_p(b.dir + "/upper", 0755), what);
        TRY_CTX(util::mkdir_p(b.dir + "/work", 0700), what);
        TRY_CTX(mount_overlay(store, b.dir, b.rootfs, image.config.diff_ids), what);
        b.overlay = true;
    } else {
        auto dst = TRY_CTX(util::open_file(b.rootfs, O_RDONLY | O_DIRECTORY), what);
        for (const auto &d : image.config.diff_ids) {
            auto src = TRY_CTX(util::open_file(store.layer_path(d) + "/rootfs", O_RDONLY | O_DIRECTORY), what);
            TRY_CTX(apply_layer_copy(src.get(), dst.get()), cat(what, ": layer ", d.str()));
        }
        TRY_CTX(bind_nodev(b.rootfs), what);
    }
    auto rootfd = TRY_CTX(util::open_file(b.rootfs, O_RDONLY | O_DIRECTORY), what);
    if (opts.volumes_dir.empty()) opts.volumes_dir = store.device().volumes();
    auto cfg = TRY_CTX(runtime_config(image.config, rootfd.get(), opts), what);
    TRY_CTX(util::atomic_write_file(b.dir + "/config.json", util::json::dump(cfg, 2) + "\n"), what);
    undo.dismiss();
    return b;
}

util::Status mount_bundle(Store &store, const std::string &id) {
    std::string what = cat("mount the rootfs of bundle ", quote(id));
    std::string dir = store.device().container(id);
    std::string rootfs = dir + "/rootfs";
    auto shared = TRY_CTX(store.lock_shared(), what);  // gc keeps the layers meanwhile
    if (TRY_CTX(is_mount_point(rootfs), what)) return util::ok();
    if (!util::path_exists(dir + "/upper")) return bind_nodev(rootfs).context(what);
    auto text = TRY_CTX(util::read_file(dir + "/image.json", 1 << 20), what);
    auto rec = TRY_CTX(util::json::parse(text, "image.json"), what);
    TRY_CTX(util::json::expect_object(rec, "image.json"), what);
    std::vector<Digest> layers;
    for (const auto &s : TRY_CTX(util::json::opt_string_array(rec, "layers", ""), what)) {
        auto d = TRY_CTX(Digest::parse(s), cat(what, ": image.json"));
        if (!store.has_layer(d)) return Error::msg(cat(what, ": layer ", d.str(), " is not unpacked"));
        layers.push_back(std::move(d));
    }
    if (layers.empty()) return Error::msg(cat(what, ": image.json names no layer"));
    return mount_overlay(store, dir, rootfs, layers).context(what);
}

util::Status remove_bundle(Store &store, const std::string &id) {
    std::string dir = store.device().container(id);
    std::string rootfs = dir + "/rootfs";
    if (::umount2(rootfs.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return Error::from_errno(cat("unmount ", quote(rootfs)));
    return util::remove_tree(dir).context(cat("remove bundle ", quote(id)));
}

}  // namespace img
