// Protection of the berth binary against CVE-2019-5736.
//
// A container process must never be able to reopen the host's berth binary
// for writing through /proc/<pid>/exe. Two ways it could reach it:
//  - at the container's final execve, the kernel resolves /proc/self/exe of
//    the execing process (a `#!/proc/self/exe` script, an ELF interpreter
//    pointing there): berth execs every container process through berth-dmz
//    (runtime/dmz/dmz.cpp), a ~1 KiB static program loaded from a sealed
//    memfd, so what the container can reach there is those sealed bytes;
//  - /proc/<pid>/exe of a berth process in the container's pid namespace
//    before it execs (the init, an `exec` child): those are not dumpable,
//    so only a holder of CAP_SYS_PTRACE over the host's user namespace
//    could open it (runc and crun make the same trade).
// Cost: one page of memory charged to the container and one exec of a tiny
// static binary, instead of re-executing berth (a full dynamic load) or
// copying it (megabytes against small memory limits, as runc once did).
#pragma once

#include "util/fd.hpp"
#include "util/result.hpp"

namespace rt::exe_protect {

/// A sealed (write, grow, shrink, seal) memfd holding berth-dmz, O_CLOEXEC.
util::Result<util::UniqueFd> dmz_fd();

/// Execs berth-dmz with {path, argv...} (through /proc/self/fd/N, or
/// execveat where /proc is not mounted); it then execs `path` with `argv`.
/// Returns only on failure, with errno set (ENOSYS/EPERM/EACCES mean the
/// kernel or a seccomp filter refused the trampoline itself).
void exec_through_dmz(int dmz, const char *path, char *const argv[], char *const envp[]);

}  // namespace rt::exe_protect
