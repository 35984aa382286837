// Protection of the berth binary (CVE-2019-5736) and the berth-dmz
// trampoline; see exe_protect.hpp.
#include "runtime/exe_protect.hpp"

#include <fcntl.h>
#include <linux/memfd.h>
#include <linux/mount.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "runtime/dmz_blob.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"
#include "util/syscalls.hpp"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

extern char **environ;

namespace rt::exe_protect {
namespace {

using util::Error;

constexpr const char kSelfExe[] = "/proc/self/exe";
/// Set across the re-exec to our process name: a berth that still finds
/// itself unprotected then fails instead of re-executing forever.
constexpr const char kReexecEnv[] = "_BERTH_EXE_PROTECT";
constexpr int kSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

/// A memfd that may be executed: MFD_EXEC where the kernel knows it (6.3+,
/// where vm.memfd_noexec may make it the exception), else the old default.
util::Result<util::UniqueFd> exec_memfd(const char *name) {
    int fd = static_cast<int>(::syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC));
    if (fd < 0 && errno == EINVAL) fd = static_cast<int>(::syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (fd < 0) return Error::from_errno("memfd_create");
    return util::UniqueFd(fd);
}

util::Status copy_all(int from, int to) {
    struct stat st;
    if (::fstat(from, &st) < 0) return Error::from_errno("stat the berth binary");
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = ::sendfile(to, from, &off, static_cast<size_t>(st.st_size - off));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::from_errno("copy the berth binary");
        if (n == 0) return Error::msg("copy the berth binary: it shrank while being copied");
    }
    return util::ok();
}

/// 1. A detached, read-only bind mount of the binary: no copy.
util::Result<util::UniqueFd> readonly_view() {
    int fd = util::sys::open_tree(AT_FDCWD, kSelfExe, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0) return Error::from_errno("open_tree");
    util::UniqueFd view(fd);
    util::sys::MountAttr attr{MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0};
    if (util::sys::mount_setattr(view.get(), "", AT_EMPTY_PATH, attr) < 0) return Error::from_errno("mount_setattr");
    return view;
}

/// Makes a filled memfd read-only and executable for good.
util::Status seal_executable(int mem, const char *what) {
    if (::fchmod(mem, 0555) < 0) return Error::from_errno(util::cat("chmod ", what));
    if (::fcntl(mem, F_ADD_SEALS, kSeals) < 0) return Error::from_errno(util::cat("seal ", what));
    return util::ok();
}

/// 2. A sealed memfd copy.
util::Result<util::UniqueFd> sealed_copy(int self) {
    auto mem = TRY(exec_memfd("berth"));
    TRY(copy_all(self, mem.get()));
    TRY(seal_executable(mem.get(), "the copy"));
    return mem;
}

/// 3. An unlinked copy in `dir`, reopened read-only (an fd open for
/// writing would make the exec fail with ETXTBSY).
util::Result<util::UniqueFd> tmpfile_copy(int self, const std::string &dir) {
    TRY(util::mkdir_p(dir, 0700));
    auto w = TRY(util::open_file(dir, O_TMPFILE | O_RDWR, 0500));
    TRY(copy_all(self, w.get()));
    return util::open_file(util::cat("/proc/self/fd/", w.get()), O_RDONLY);
}

std::vector<std::string> own_argv() {
    auto cmdline = util::read_file("/proc/self/cmdline", 1 << 20);
    std::vector<std::string> args;
    if (!cmdline) return args;
    size_t start = 0;
    for (size_t i = 0; i < cmdline->size(); i++)
        if ((*cmdline)[i] == '\0') {
            args.emplace_back(cmdline->substr(start, i - start));
            start = i + 1;
        }
    return args;
}

}  // namespace

bool self_protected() {
    // A read-only mount or view, an immutable file, one we may not write.
    if (::faccessat(AT_FDCWD, kSelfExe, W_OK, AT_EACCESS) < 0 && (errno == EROFS || errno == EACCES || errno == EPERM))
        return true;
    int fd = ::open(kSelfExe, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    util::UniqueFd self(fd);
    // Our own sealed copy, or an unlinked copy only this process reaches.
    int seals = ::fcntl(self.get(), F_GET_SEALS);
    if (seals >= 0 && (seals & F_SEAL_WRITE)) return true;
    struct stat st;
    return ::fstat(self.get(), &st) == 0 && st.st_nlink == 0;
}

util::Status protect_self(const std::string &state_root) {
    const char *reexeced = ::getenv(kReexecEnv);
    if (self_protected()) {
        if (reexeced) {
            // An exec through /proc/self/fd/N named us "N": take our name back.
            ::prctl(PR_SET_NAME, reexeced, 0, 0, 0);
            ::unsetenv(kReexecEnv);
        }
        return util::ok();
    }
    if (reexeced) return Error::msg("the berth binary is still writable after re-executing from a protected view");
    auto self = TRY_CTX(util::open_file(kSelfExe, O_RDONLY), "protect the berth binary");
    std::vector<std::string> args = own_argv();
    if (args.empty()) return Error::msg("protect the berth binary: cannot read /proc/self/cmdline");
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    char comm[17] = {};
    ::prctl(PR_GET_NAME, comm, 0, 0, 0);
    if (::setenv(kReexecEnv, comm[0] ? comm : "berth", 1) < 0) return Error::from_errno("protect the berth binary: setenv");

    std::string why;
    auto attempt = [&](util::Result<util::UniqueFd> view, const char *what) {
        if (view) {
            exec_fd(view->get(), argv.data(), environ);
            view = Error::from_errno("exec");
        }
        why += util::cat(why.empty() ? "" : "; ", what, ": ", view.error().message());
    };
    attempt(readonly_view(), "read-only view");
    attempt(sealed_copy(self.get()), "sealed copy");
    attempt(tmpfile_copy(self.get(), state_root), util::cat("copy in ", state_root).c_str());
    ::unsetenv(kReexecEnv);
    return Error::msg(util::cat("cannot protect the berth binary from being overwritten by a container (CVE-2019-5736): ", why,
                                "; install berth on a read-only mount to need none of these"));
}

util::Result<util::UniqueFd> dmz_fd() {
    auto m = TRY(exec_memfd("berth-dmz"));
    TRY(util::write_all(m.get(), std::string_view(reinterpret_cast<const char *>(kDmzBinary), kDmzBinary_size)));
    TRY(seal_executable(m.get(), "berth-dmz"));
    return m;
}

void exec_fd(int fd, char *const argv[], char *const envp[]) {
    // execve of the fd's /proc path first: seccomp profiles list execve far
    // more often than execveat (a default action of KILL would end us).
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ::execve(path, argv, envp);
    if (errno != ENOENT) return;
    ::syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
}

void exec_through_dmz(int dmz, const char *path, char *const argv[], char *const envp[]) {
    std::vector<char *> args;
    args.push_back(const_cast<char *>(path));
    for (char *const *a = argv; *a; a++) args.push_back(*a);
    args.push_back(nullptr);
    exec_fd(dmz, args.data(), envp);
}

}  // namespace rt::exe_protect
