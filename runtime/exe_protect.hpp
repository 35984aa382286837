// Protection of the berth binary against CVE-2019-5736.
//
// A container process must never be able to open the host's berth binary
// for writing through /proc/<pid>/exe, or it could replace the code the
// host runs as root at the next `berth` call. Every berth process a
// container can see runs from a view of the binary that cannot be written:
//  - protect_self(), called by create, run and exec before anything else,
//    leaves berth as it is when the binary already cannot be written
//    (a read-only mount such as the gateway's A/B root, an immutable file,
//    a file the caller may not write) and otherwise makes berth run from
//    the first of these protected views of its binary:
//      1. a detached read-only bind mount of the binary (open_tree +
//         mount_setattr, 5.12+): no copy, the same page cache;
//      2. a sealed memfd copy (old kernels; not under vm.memfd_noexec);
//      3. an unlinked O_TMPFILE copy in the state root (its only link is
//         the fd, and it is busy while berth runs);
//    Without an exec where it can: the binary's read-only mappings are
//    mapped again from the view (the same bytes), its written ones (RELRO,
//    data) moved to anonymous memory, and PR_SET_MM_MAP makes the view
//    the process's executable (/proc/self/exe), which needs CAP_SYS_ADMIN
//    or CAP_CHECKPOINT_RESTORE and no mapping left of the old file. This
//    costs about 0.1 ms where re-executing berth (the dynamic loader and
//    berth's start once more) cost 1-2 ms of every start. Otherwise it
//    re-executes berth, with the same argv and environment, from the view;
//    and refuses to go on when none works. The init and the `exec` child,
//    which run berth inside the container's pid namespace until their final
//    exec (non-dumpable, but reachable with CAP_SYS_PTRACE), inherit that
//    view; so does the kernel's resolution of /proc/self/exe at the final
//    execve (a `#!/proc/self/exe` script, an ELF interpreter pointing there).
//  - the container's process is moreover exec'd through berth-dmz
//    (runtime/dmz/dmz.cpp), a ~1 KiB static program in a sealed memfd, so a
//    `#!/proc/self/exe` program reaches those sealed bytes, not berth. Where
//    no memfd may be executed the final exec is direct, which the view
//    above makes safe; setup_process_and_exec refuses otherwise.
// The container's seccomp filter is installed in the init and the exec
// child, long after protect_self: a profile denying memfd_create or
// open_tree cannot switch the protection off.
#pragma once

#include <string>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace rt::exe_protect {

/// True when /proc/self/exe cannot be written by this process or by the
/// containers it starts (read-only view, sealed copy, unlinked copy, or a
/// file this process may not write).
bool self_protected();

/// Returns when self_protected(); otherwise makes a protected view (as
/// described above, an O_TMPFILE copy in `state_root` last) this process's
/// executable in place, or re-execs berth from it (argv from
/// /proc/self/cmdline, the current environment). Returns an error naming
/// every way that failed when none could be used.
util::Status protect_self(const std::string &state_root);

/// A sealed (write, grow, shrink, seal) memfd holding berth-dmz, O_CLOEXEC.
util::Result<util::UniqueFd> dmz_fd();

/// Execs the file `fd` holds with `argv` (through /proc/self/fd/N, or
/// execveat where /proc is not mounted). Returns only on failure, errno set.
void exec_fd(int fd, char *const argv[], char *const envp[]);

/// Execs berth-dmz with {path, argv...}; it then execs `path` with `argv`.
/// Returns only on failure, with errno set (ENOSYS/EPERM/EACCES mean the
/// kernel or a seccomp filter refused the trampoline itself).
void exec_through_dmz(int dmz, const char *path, char *const argv[], char *const envp[]);

}  // namespace rt::exe_protect
