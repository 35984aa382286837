// Verified procfs handles; see procfs.hpp.
#include "runtime/procfs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/syscalls.hpp"

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

namespace rt::procfs {
namespace {

using util::Error;

constexpr unsigned kFsconfigCmdCreate = 6;
constexpr unsigned kFsopenCloexec = 1;
constexpr unsigned kFsmountCloexec = 1;
constexpr unsigned kOpenTreeClone = 1;
constexpr unsigned kOpenTreeCloexec = O_CLOEXEC;
constexpr ino_t kProcRootIno = 1;
constexpr unsigned kMountAttrNosuid = 0x2, kMountAttrNodev = 0x4, kMountAttrNoexec = 0x8;

util::UniqueFd g_root;

bool is_procfs(int fd) {
    struct statfs sf;
    return ::fstatfs(fd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
}

/// A private procfs instance: fsopen + fsmount (Linux 5.2).
int open_private() {
#ifdef SYS_fsopen
    if (util::sys::disabled("fsopen")) return -1;
    int fs = static_cast<int>(::syscall(SYS_fsopen, "proc", kFsopenCloexec));
    if (fs < 0) return -1;
    util::UniqueFd fsfd(fs);
    if (::syscall(SYS_fsconfig, fs, kFsconfigCmdCreate, nullptr, nullptr, 0) < 0) return -1;
    return static_cast<int>(::syscall(SYS_fsmount, fs, kFsmountCloexec, kMountAttrNosuid | kMountAttrNodev | kMountAttrNoexec));
#else
    return -1;
#endif
}

/// The /proc mount alone, without what is mounted below it (Linux 5.2).
int open_clone() { return util::sys::open_tree(AT_FDCWD, "/proc", kOpenTreeClone | kOpenTreeCloexec); }

util::Result<util::UniqueFd> open_root() {
    for (auto opener : {open_private, open_clone}) {
        util::UniqueFd f(opener());
        if (f.valid() && is_procfs(f.get())) return f;
    }
    int fd = ::open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Error::from_errno("open procfs `/proc`");
    util::UniqueFd f(fd);
    struct stat sb;
    if (!is_procfs(fd) || ::fstat(fd, &sb) < 0 || sb.st_ino != kProcRootIno)
        return Error::msg("`/proc` is not the root of a procfs");
    return f;
}

}  // namespace

util::Result<int> root() {
    if (!g_root.valid()) g_root = TRY(open_root());
    return g_root.get();
}

int cached_fd() { return g_root.valid() ? g_root.get() : -1; }

util::Result<util::UniqueFd> open_self(std::string_view rel, int flags) {
    int r = TRY(root());
    std::string path = util::cat("self/", rel);
    int fd = ::openat(r, path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Error::from_errno(util::cat("open procfs ", util::quote(path)));
    util::UniqueFd f(fd);
    struct stat rs, fs;
    if (!is_procfs(fd) || ::fstat(r, &rs) < 0 || ::fstat(fd, &fs) < 0 || rs.st_dev != fs.st_dev)
        return Error::with_code(EXDEV, util::cat("procfs ", util::quote(path), " is not on procfs (something is mounted over it)"));
    return f;
}

util::Result<util::UniqueFd> reopen_fd(int fd, int flags) {
    int r = TRY(root());
    std::string path = util::cat("self/fd/", fd);
    int nfd;
    do nfd = ::openat(r, path.c_str(), flags | O_CLOEXEC);
    while (nfd < 0 && errno == EINTR);
    if (nfd < 0) return Error::from_errno(util::cat("reopen fd ", fd));
    return util::UniqueFd(nfd);
}

bool self_exists(std::string_view rel) {
    auto r = root();
    return r && ::faccessat(*r, util::cat("self/", rel).c_str(), F_OK, 0) == 0;
}

util::Status write_self(std::string_view rel, std::string_view value) {
    auto fd = TRY(open_self(rel, O_WRONLY));
    return util::write_all(fd.get(), value).context(util::cat("write ", util::quote(value), " to procfs ", util::quote(util::cat("self/", rel))));
}

}  // namespace rt::procfs
