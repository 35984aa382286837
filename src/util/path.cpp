// Path resolution inside a root; see path.hpp.
//
// The fallback walk keeps a stack of O_PATH fds from the root to the current
// directory: `..` pops the stack instead of opening "..", so a directory moved
// away mid-walk cannot lead outside. Every component is opened with
// O_NOFOLLOW; a symlink is read with readlinkat() and its target is spliced
// into the remaining components.
#include "util/path.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <string>
#include <vector>

#include "util/strings.hpp"
#include "util/syscalls.hpp"

namespace util {
namespace {

constexpr int kMaxSymlinks = 40;

void push_components(std::deque<std::string> &out, std::string_view path, bool front) {
    std::vector<std::string> parts;
    for (auto &p : split(path, '/'))
        if (!p.empty() && p != ".") parts.push_back(std::move(p));
    if (front)
        out.insert(out.begin(), parts.begin(), parts.end());
    else
        out.insert(out.end(), parts.begin(), parts.end());
}

Result<std::string> read_link(int dirfd, const std::string &name) {
    std::string buf(256, '\0');
    while (true) {
        ssize_t n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
        if (n < 0) return Error::from_errno(cat("readlink ", quote(name)));
        if (static_cast<size_t>(n) < buf.size()) {
            buf.resize(static_cast<size_t>(n));
            return buf;
        }
        buf.resize(buf.size() * 2);
    }
}

Result<UniqueFd> dup_path(int fd) {
    int d = ::openat(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) return Error::from_errno("open root");
    return UniqueFd(d);
}

/// The component-by-component walk. `mkdirs` creates missing directories and
/// resolves the whole path as directories.
Result<UniqueFd> walk(int rootfd, std::string_view path, int flags, mode_t mode, Scope scope, bool mkdirs) {
    std::vector<UniqueFd> stack;
    stack.push_back(TRY(dup_path(rootfd)));
    std::deque<std::string> comps;
    push_components(comps, path, false);
    int links = 0;

    while (!comps.empty()) {
        std::string c = std::move(comps.front());
        comps.pop_front();
        if (c == "..") {
            if (stack.size() > 1)
                stack.pop_back();
            else if (scope == Scope::Beneath)
                return Error::with_code(EXDEV, "`..` leads out of the root");
            continue;
        }
        const bool last = comps.empty();
        int cur = stack.back().get();
        struct stat st;
        if (::fstatat(cur, c.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT) return Error::from_errno(cat("stat ", quote(c)));
            if (mkdirs) {
                if (::mkdirat(cur, c.c_str(), mode) < 0 && errno != EEXIST)
                    return Error::from_errno(cat("mkdir ", quote(c)));
                comps.push_front(c);  // look again: whatever is there now is checked like the rest
                continue;
            }
            if (last && (flags & O_CREAT)) {
                int fd = ::openat(cur, c.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
                if (fd < 0) return Error::from_errno(cat("create ", quote(c)));
                return UniqueFd(fd);
            }
            return Error::with_code(ENOENT, cat("open ", quote(c)));
        }
        if (S_ISLNK(st.st_mode)) {
            if (last && !mkdirs && (flags & O_NOFOLLOW)) {
                int fd = ::openat(cur, c.c_str(), flags | O_CLOEXEC, mode);
                if (fd < 0) return Error::from_errno(cat("open ", quote(c)));
                return UniqueFd(fd);
            }
            if (++links > kMaxSymlinks) return Error::with_code(ELOOP, "too many levels of symbolic links");
            std::string target = TRY(read_link(cur, c));
            if (!target.empty() && target[0] == '/') {
                if (scope == Scope::Beneath)
                    return Error::with_code(EXDEV, cat("symlink ", quote(c), " points out of the root"));
                stack.resize(1);
            }
            push_components(comps, target, true);
            continue;
        }
        if (last && !mkdirs) {
            if ((flags & O_CREAT) && (flags & O_EXCL)) return Error::with_code(EEXIST, cat("create ", quote(c)));
            int fd = ::openat(cur, c.c_str(), (flags & ~O_CREAT) | O_NOFOLLOW | O_CLOEXEC, mode);
            if (fd < 0) return Error::from_errno(cat("open ", quote(c)));
            return UniqueFd(fd);
        }
        if (!S_ISDIR(st.st_mode)) return Error::with_code(ENOTDIR, cat("open ", quote(c)));
        int fd = ::openat(cur, c.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return Error::from_errno(cat("open ", quote(c)));
        stack.emplace_back(fd);
    }
    // The path named a directory (or the root itself).
    if (mkdirs) return std::move(stack.back());
    int fd = ::openat(stack.back().get(), ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC, mode);
    if (fd < 0) return Error::from_errno("open directory");
    return UniqueFd(fd);
}

bool g_openat2_missing = false;  ///< set once the kernel answered ENOSYS

}  // namespace

bool openat2_usable() { return !g_openat2_missing && !sys::disabled("openat2"); }

Result<UniqueFd> open_in_root(int rootfd, std::string_view path, int flags, mode_t mode, Scope scope) {
    std::string where = cat("resolve ", quote(path));
    if (openat2_usable()) {
        std::string rel(path);
        while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
        if (rel.empty()) rel = ".";
        sys::OpenHow how{};
        how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
        how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
        how.resolve = sys::kResolveNoMagiclinks | (scope == Scope::InRoot ? sys::kResolveInRoot : sys::kResolveBeneath);
        for (int attempt = 0; attempt < 16; attempt++) {
            int fd = sys::openat2(rootfd, rel.c_str(), how);
            if (fd >= 0) return UniqueFd(fd);
            if (errno == EAGAIN) continue;  // a concurrent rename; the kernel asks us to retry
            if (errno == ENOSYS || errno == E2BIG) {
                g_openat2_missing = errno == ENOSYS;
                break;
            }
            return Error::from_errno(where);
        }
    }
    return walk(rootfd, path, flags, mode, scope, false).context(where);
}

Result<UniqueFd> mkdir_all_in_root(int rootfd, std::string_view path, mode_t mode, Scope scope) {
    return walk(rootfd, path, 0, mode, scope, true).context(cat("mkdir ", quote(path)));
}

}  // namespace util
