// The default seccomp profile of image-mode containers (see config.hpp).
//
// An allowlist, as podman's and Docker's defaults are: a syscall not named
// here fails with ENOSYS, so a new or unknown syscall makes libc fall back
// to an older one instead of reaching kernel code no container needs
// (io_uring, for one). What a container is refused on purpose fails with
// EPERM, the errno a program expects for "not allowed":
//
//   - namespaces: unshare, setns, and clone with any CLONE_NEW* flag (one
//     rule per flag, matched by argument mask). An unprivileged user
//     namespace hands the process every capability over new network and
//     mount namespaces, which reach nf_tables and other kernel code the
//     container's own capabilities keep it from. clone3 passes its flags in
//     memory a filter cannot read, so it fails with ENOSYS and libc falls
//     back to clone;
//   - mounts, kernel modules, kexec, reboot, swap, keyrings, bpf, perf,
//     ptrace and the process_vm calls, clock and hostname changes, quotas,
//     accounting: what the default capability set (podman's, without
//     CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_TIME, CAP_SYS_MODULE ...)
//     would refuse anyway, refused before the kernel parses arguments;
//   - personality() is limited to the Linux personalities (and the query),
//     and an audit netlink socket fails with EINVAL as without
//     CAP_AUDIT_WRITE.
//
// Only the architectures this binary runs processes of are in the filter
// (the native one and its 32-bit compat ABIs); a foreign-architecture
// image runs under qemu-user, whose syscalls are native.
#include <sched.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "image/config.hpp"

namespace img {
namespace {

namespace json = util::json;

// Allowed without conditions, grouped by what they are for.
const char *const kAllowed[] = {
    // files and directories
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range", "creat", "dup", "dup2",
    "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir", "fchmod", "fchmodat",
    "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "flock", "fstat", "fstat64",
    "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futimesat", "getcwd", "getdents",
    "getdents64", "lchown", "lchown32", "link", "linkat", "lseek", "_llseek", "lstat", "lstat64", "mkdir", "mkdirat",
    "mknod", "mknodat", "newfstatat", "open", "openat", "openat2", "pread64", "preadv", "preadv2", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "rename", "renameat", "renameat2",
    "rmdir", "sendfile", "sendfile64", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink",
    "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "write", "writev", "chroot",
    // extended attributes
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr", "listxattr", "llistxattr",
    "lremovexattr", "lsetxattr", "removexattr", "setxattr",
    // waiting for events
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "poll", "ppoll", "ppoll_time64",
    "pselect6", "pselect6_time64", "select", "_newselect", "signalfd", "signalfd4", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "io_setup", "io_destroy",
    "io_submit", "io_cancel", "io_getevents",
    // memory
    "brk", "madvise", "memfd_create", "mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mremap",
    "msync", "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages",
    // processes and threads (clone: see kNamespaceFlags)
    "execve", "execveat", "exit", "exit_group", "fork", "vfork", "getpgid", "getpgrp", "getpid", "getppid", "getsid",
    "gettid", "kill", "tgkill", "tkill", "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "prctl", "prlimit64",
    "getrlimit", "ugetrlimit", "setrlimit", "getrusage", "setpgid", "setsid", "wait4", "waitid", "waitpid",
    "getpriority", "setpriority", "ioprio_get", "ioprio_set", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
    "sched_yield", "getcpu", "capget", "capset", "seccomp", "set_tid_address", "set_robust_list", "get_robust_list",
    "rseq", "restart_syscall", "times", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    // credentials
    "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32", "getresuid",
    "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32", "setuid", "setuid32", "setgid", "setgid32",
    "setreuid", "setreuid32", "setregid", "setregid32", "setresuid", "setresuid32", "setresgid", "setresgid32",
    "setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "setgroups", "setgroups32",
    // signals
    "alarm", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaltstack", "sigreturn",
    "sigaction", "signal", "sigpending", "sigprocmask", "sigsuspend",
    // time (reading it; setting it is refused below)
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "gettimeofday", "nanosleep", "time", "getitimer", "setitimer", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "adjtimex",
    // futexes
    "futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
    // sockets (socket: see below)
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv", "recvfrom",
    "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown",
    "socketpair", "socketcall",
    // pipes and System V / POSIX IPC
    "pipe", "pipe2", "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget",
    "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
    // the system
    "uname", "sysinfo", "getrandom", "ioctl",
    // architecture-specific (skipped where the architecture lacks them)
    "arch_prctl", "set_thread_area", "get_thread_area", "modify_ldt", "arm_fadvise64_64", "arm_sync_file_range",
    "sync_file_range2", "breakpoint", "cacheflush", "set_tls",
};

// Refused with EPERM (see the file comment).
const char *const kRefused[] = {
    // namespaces and mounts
    "unshare", "setns", "mount", "mount_setattr", "umount", "umount2", "pivot_root", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick",
    // the kernel itself
    "create_module", "init_module", "finit_module", "delete_module", "query_module", "get_kernel_syms", "kexec_load",
    "kexec_file_load", "reboot", "swapon", "swapoff", "syslog", "acct", "bpf", "perf_event_open", "lookup_dcookie",
    "fanotify_init", "quotactl", "quotactl_fd", "nfsservctl", "uselib", "ustat", "sysfs", "bdflush",
    "pciconfig_iobase", "pciconfig_read", "pciconfig_write", "vm86", "vm86old", "ioperm", "iopl", "vhangup",
    "userfaultfd",
    // keyrings
    "add_key", "request_key", "keyctl",
    // other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp", "name_to_handle_at",
    "open_by_handle_at",
    // NUMA placement
    "get_mempolicy", "set_mempolicy", "mbind", "migrate_pages", "move_pages",
    // clocks and names of the host
    "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday", "stime", "sethostname",
    "setdomainname",
};

/// Every CLONE_NEW* flag: clone with any of them is refused.
constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

/// personality(2) values a container may set: PER_LINUX, PER_LINUX32,
/// UNAME26 with each, and 0xffffffff (the query).
constexpr uint64_t kPersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

constexpr uint64_t kAfNetlink = 16, kNetlinkAudit = 9;

json::Value arg(unsigned index, uint64_t value, uint64_t value_two, const char *op) {
    json::Value a = json::Value::object();
    a["index"] = index;
    a["value"] = value;
    a["valueTwo"] = value_two;
    a["op"] = op;
    return a;
}

json::Value rule(std::vector<std::string> names, const char *action, std::optional<int> errno_ret = std::nullopt,
                 json::Value args = json::Value::array()) {
    json::Value r = json::Value::object();
    r["names"] = std::move(names);
    r["action"] = action;
    if (errno_ret) r["errnoRet"] = *errno_ret;
    if (!args.empty()) r["args"] = std::move(args);
    return r;
}

std::vector<std::string> architectures() {
#if defined(__x86_64__)
    return {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__i386__)
    return {"SCMP_ARCH_X86"};
#elif defined(__aarch64__)
    return {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#elif defined(__arm__)
    return {"SCMP_ARCH_ARM"};
#else
    return {};  // the native architecture only
#endif
}

}  // namespace

json::Value default_seccomp() {
    json::Value s = json::Value::object();
    s["defaultAction"] = "SCMP_ACT_ERRNO";
    s["defaultErrnoRet"] = ENOSYS;
    s["architectures"] = architectures();
    json::Value rules = json::Value::array();
    rules.push_back(rule(std::vector<std::string>(std::begin(kAllowed), std::end(kAllowed)), "SCMP_ACT_ALLOW"));
    rules.push_back(rule(std::vector<std::string>(std::begin(kRefused), std::end(kRefused)), "SCMP_ACT_ERRNO", EPERM));

    uint64_t all_namespaces = 0;
    for (uint64_t f : kNamespaceFlags) all_namespaces |= f;
    rules.push_back(rule({"clone"}, "SCMP_ACT_ALLOW", std::nullopt,
                         json::Value::array({arg(0, all_namespaces, 0, "SCMP_CMP_MASKED_EQ")})));
    for (uint64_t f : kNamespaceFlags)
        rules.push_back(rule({"clone"}, "SCMP_ACT_ERRNO", EPERM, json::Value::array({arg(0, f, f, "SCMP_CMP_MASKED_EQ")})));
    rules.push_back(rule({"clone3"}, "SCMP_ACT_ERRNO", ENOSYS));

    for (uint64_t p : kPersonalities)
        rules.push_back(rule({"personality"}, "SCMP_ACT_ALLOW", std::nullopt, json::Value::array({arg(0, p, 0, "SCMP_CMP_EQ")})));

    rules.push_back(rule({"socket"}, "SCMP_ACT_ALLOW", std::nullopt,
                         json::Value::array({arg(0, kAfNetlink, 0, "SCMP_CMP_NE")})));
    rules.push_back(rule({"socket"}, "SCMP_ACT_ALLOW", std::nullopt,
                         json::Value::array({arg(2, kNetlinkAudit, 0, "SCMP_CMP_NE")})));
    rules.push_back(rule({"socket"}, "SCMP_ACT_ERRNO", EINVAL,
                         json::Value::array({arg(0, kAfNetlink, 0, "SCMP_CMP_EQ"), arg(2, kNetlinkAudit, 0, "SCMP_CMP_EQ")})));
    s["syscalls"] = std::move(rules);
    return s;
}

}  // namespace img
