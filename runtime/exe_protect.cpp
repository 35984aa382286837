// The berth-dmz trampoline; see exe_protect.hpp.
#include "runtime/exe_protect.hpp"

#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "runtime/dmz_blob.hpp"
#include "util/file.hpp"

namespace rt::exe_protect {

util::Result<util::UniqueFd> dmz_fd() {
    int fd = static_cast<int>(::syscall(SYS_memfd_create, "berth-dmz", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (fd < 0) return util::Error::from_errno("memfd_create");
    util::UniqueFd m(fd);
    TRY(util::write_all(m.get(), std::string_view(reinterpret_cast<const char *>(kDmzBinary), kDmzBinary_size)));
    if (::fchmod(m.get(), 0555) < 0) return util::Error::from_errno("chmod berth-dmz");
    if (::fcntl(m.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
        return util::Error::from_errno("seal berth-dmz");
    return m;
}

void exec_through_dmz(int dmz, const char *path, char *const argv[], char *const envp[]) {
    std::vector<char *> args;
    args.push_back(const_cast<char *>(path));
    for (char *const *a = argv; *a; a++) args.push_back(*a);
    args.push_back(nullptr);
    // execve of the fd's /proc path first: seccomp profiles list execve far
    // more often than execveat (a default action of KILL would end us).
    char path_buf[32];
    snprintf(path_buf, sizeof path_buf, "/proc/self/fd/%d", dmz);
    ::execve(path_buf, args.data(), envp);
    if (errno != ENOENT) return;
    ::syscall(SYS_execveat, dmz, "", args.data(), envp, AT_EMPTY_PATH);
}

}  // namespace rt::exe_protect
