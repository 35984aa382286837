// upper_to_layer_tree: see upper.hpp. One depth-first pass over the upper
// directory through directory fds, never following a symlink:
//   - a 0/0 character device, or a file marked trusted.overlay.whiteout
//     (overlay's xattr whiteout), is a deletion: it becomes an empty
//     .wh.<name> file (mode 0600, the device's owner);
//   - a directory whose trusted.overlay.opaque (or user.overlay.opaque) is
//     "y" hides every lower entry: it gets a .wh..wh..opq file. ("x" marks
//     a directory that only holds xattr whiteouts; it is not opaque.)
//   - every trusted.overlay.* and user.overlay.* attribute is dropped
//     (origin, impure, nlink, ...); other attributes (security.capability)
//     stay. A metacopy file (its data still in a lower layer) or a
//     redirected directory cannot be expressed in a layer and is an error:
//     the runner mounts with metacopy=off and redirect_dir=off so that
//     neither appears.
// A directory's times are put back after its entries changed, so the
// conversion itself leaves no trace in the layer.
#include "cross/build/upper.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string_view>
#include <vector>

#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace build {
namespace {

using util::cat;
using util::Error;
using util::quote;

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

/// The path through which the l*xattr calls reach `name` in the directory
/// `dirfd` without following it: there is no *at() form of them before
/// Linux 6.13.
std::string fd_path(int dirfd, std::string_view name) { return cat("/proc/self/fd/", dirfd, "/", name); }

bool overlay_attr(std::string_view a) { return a.starts_with("trusted.overlay.") || a.starts_with("user.overlay."); }

/// The names of the entry's extended attributes (empty where it has none or
/// its filesystem keeps none).
util::Result<std::vector<std::string>> attr_names(const std::string &path) {
    ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n < 0 && (errno == ENOTSUP || errno == ENODATA)) return std::vector<std::string>{};
    std::string buf;
    while (n > 0) {
        buf.resize(static_cast<size_t>(n));
        ssize_t got = ::llistxattr(path.c_str(), buf.data(), buf.size());
        if (got >= 0) {
            buf.resize(static_cast<size_t>(got));
            break;
        }
        if (errno != ERANGE) return Error::from_errno("list attributes");
        n = ::llistxattr(path.c_str(), nullptr, 0);  // grew meanwhile
    }
    if (n < 0) return Error::from_errno("list attributes");
    std::vector<std::string> out;
    for (size_t at = 0; at < buf.size();) {
        size_t end = buf.find('\0', at);
        if (end == std::string::npos) end = buf.size();
        if (end > at) out.emplace_back(buf.substr(at, end - at));
        at = end + 1;
    }
    return out;
}

/// The value of attribute `name` ("" when absent), up to 255 bytes.
std::string attr_value(const std::string &path, const char *name) {
    char v[256];
    ssize_t n = ::lgetxattr(path.c_str(), name, v, sizeof v);
    return n > 0 ? std::string(v, static_cast<size_t>(n)) : std::string();
}

/// Removes overlay's attributes from the entry at `path`; fails on those a
/// layer cannot carry.
util::Status drop_overlay_attrs(const std::string &path, const std::vector<std::string> &attrs) {
    for (const auto &a : attrs) {
        if (!overlay_attr(a)) continue;
        if (a.ends_with(".overlay.metacopy"))
            return Error::msg("a metacopy file (its data is in a lower layer): mount the overlay with metacopy=off");
        if (a.ends_with(".overlay.redirect"))
            return Error::msg("a redirected directory (renamed from a lower layer): mount the overlay with redirect_dir=off");
        if (::lremovexattr(path.c_str(), a.c_str()) < 0 && errno != ENODATA)
            return Error::from_errno(cat("remove attribute ", quote(a)));
    }
    return util::ok();
}

/// Creates the empty marker file `name` in `dirfd`, owned by uid:gid.
util::Status make_marker(int dirfd, const std::string &name, uid_t uid, gid_t gid) {
    auto fd = TRY_CTX(util::open_at(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600), cat("create ", quote(name)));
    if (::fchown(fd.get(), uid, gid) < 0) return Error::from_errno(cat("chown ", quote(name)));
    if (::fchmod(fd.get(), 0600) < 0) return Error::from_errno(cat("chmod ", quote(name)));  // whatever the umask
    return util::ok();
}

util::Status convert_dir(int dirfd, const std::string &rel, const struct stat &before, bool opaque);

/// One entry of the directory `dirfd` (at `rel` in the layer).
util::Status convert_entry(int dirfd, const std::string &name, const std::string &rel) {
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return Error::from_errno("stat");
    std::string path = fd_path(dirfd, name);
    auto attrs = TRY(attr_names(path));
    bool xattr_whiteout = false;
    for (const auto &a : attrs)
        if (a == "trusted.overlay.whiteout" || a == "user.overlay.whiteout") xattr_whiteout = S_ISREG(st.st_mode);
    if ((S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) || xattr_whiteout) {
        if (name.starts_with(kWhiteoutPrefix)) return Error::msg("a whiteout of a name that starts with .wh. cannot be written in a layer");
        if (::unlinkat(dirfd, name.c_str(), 0) < 0) return Error::from_errno("remove the whiteout");
        return make_marker(dirfd, cat(kWhiteoutPrefix, name), st.st_uid, st.st_gid);
    }
    if (name.starts_with(kWhiteoutPrefix))
        return Error::msg("a file named .wh.* cannot be written in a layer (it would read as a deletion)");
    if (!S_ISDIR(st.st_mode)) return drop_overlay_attrs(path, attrs);

    bool opaque = false;
    for (const char *a : {"trusted.overlay.opaque", "user.overlay.opaque"})
        if (attr_value(path, a) == "y") opaque = true;
    TRY(drop_overlay_attrs(path, attrs));
    auto sub = TRY_CTX(util::open_at(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW), "open");
    if (opaque) TRY(make_marker(sub.get(), std::string(kOpaqueMarker), st.st_uid, st.st_gid));
    return convert_dir(sub.get(), rel, st, opaque);
}

/// Every entry of `dirfd` (but the marker of an `opaque` one, just made),
/// then the directory's times as they were `before` the conversion.
util::Status convert_dir(int dirfd, const std::string &rel, const struct stat &before, bool opaque) {
    const std::string shown = rel.empty() ? "/" : rel;
    auto names = TRY_CTX(util::list_dir_fd(dirfd), cat("list ", quote(shown)));
    for (const auto &name : names) {
        std::string r = cat(rel, "/", name);
        if (opaque && name == kOpaqueMarker) continue;
        TRY_CTX(convert_entry(dirfd, name, r), quote(r));
    }
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    if (::futimens(dirfd, times) < 0) return Error::from_errno(cat("restore the times of ", quote(shown)));
    return util::ok();
}

}  // namespace

util::Status upper_to_layer_tree(const std::string &upper_dir) {
    std::string what = cat("convert the upper directory ", quote(upper_dir));
    auto fd = TRY_CTX(util::open_file(upper_dir, O_RDONLY | O_DIRECTORY), what);
    auto attrs = TRY_CTX(attr_names(fd_path(fd.get(), ".")), what);
    TRY_CTX(drop_overlay_attrs(fd_path(fd.get(), "."), attrs), what);
    struct stat st;
    if (::fstat(fd.get(), &st) < 0) return Error::from_errno(what);
    return convert_dir(fd.get(), "", st, false).context(what);
}

}  // namespace build
