// berth-check: what a process inside a container sees of the setup the
// runtime made, printed as "key value" lines for the integration tests
// (runtime/tests/integration/). It asks the kernel directly (capget, prctl,
// getrlimit, statvfs...) instead of grepping /proc with busybox, so the same
// checks hold under qemu-user and on an ARM kernel in qemu-system. Built
// static, so it runs in a bare busybox rootfs of any architecture.
//
//   berth-check CHECK...      each CHECK prints one or more lines:
//     caps              effective|permitted|inheritable|bounding|ambient NAME,NAME (or -)
//     nnp               no_new_privs 0|1
//     seccomp           seccomp 0|1|2 (disabled, strict, filter)
//     ids               uid R E S / gid R E S / groups G,G (or -)
//     umask             umask 0022
//     oom               oom_score_adj N
//     fds               fds 0 1 2 (the open fds, without the checker's own)
//     cgroup            the lines of /proc/self/cgroup
//     rlimit NAME       NAME SOFT HARD (nofile, nproc, core...; unlimited as "unlimited")
//     mount PATH        mount PATH FSTYPE FLAGS (FSTYPE "-" when PATH is no mount point;
//                       FLAGS: rw|ro then nosuid, nodev, noexec as set)
// Exits 0, or 2 on an unknown check (with a line on stderr).
#include <dirent.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

const char *const kCapNames[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};
constexpr int kCaps = sizeof kCapNames / sizeof kCapNames[0];

std::string cap_name(int c) { return c < kCaps ? kCapNames[c] : "cap_" + std::to_string(c); }

void print_set(const char *what, const std::vector<int> &caps) {
    std::string s;
    for (int c : caps) s += (s.empty() ? "" : ",") + cap_name(c);
    printf("%s %s\n", what, s.empty() ? "-" : s.c_str());
}

void caps() {
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct d[2]{};
    if (syscall(SYS_capget, &h, d) != 0) {
        perror("berth-check: capget");
        return;
    }
    std::vector<int> eff, prm, inh, bnd, amb;
    for (int c = 0; c < 64; c++) {
        unsigned bit = 1u << (c % 32);
        if (d[c / 32].effective & bit) eff.push_back(c);
        if (d[c / 32].permitted & bit) prm.push_back(c);
        if (d[c / 32].inheritable & bit) inh.push_back(c);
        if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) bnd.push_back(c);
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1) amb.push_back(c);
    }
    print_set("effective", eff);
    print_set("permitted", prm);
    print_set("inheritable", inh);
    print_set("bounding", bnd);
    print_set("ambient", amb);
}

void ids() {
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("uid %u %u %u\ngid %u %u %u\n", r, e, s, gr, ge, gs);
    gid_t groups[256];
    int n = getgroups(256, groups);
    std::string g;
    for (int i = 0; i < n; i++) g += (g.empty() ? "" : ",") + std::to_string(groups[i]);
    printf("groups %s\n", g.empty() ? "-" : g.c_str());
}

void print_file(const char *path) {
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "berth-check: %s: %s\n", path, strerror(errno));
        return;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) fputs(line, stdout);
    fclose(f);
}

void fds() {
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        perror("berth-check: /proc/self/fd");
        return;
    }
    std::vector<int> list;
    while (dirent *e = readdir(d))
        if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d)) list.push_back(atoi(e->d_name));
    closedir(d);
    std::string s;
    for (size_t i = 0; i < list.size(); i++)
        for (size_t j = i + 1; j < list.size(); j++)
            if (list[j] < list[i]) std::swap(list[i], list[j]);
    for (int fd : list) s += " " + std::to_string(fd);
    printf("fds%s\n", s.c_str());
}

struct Limit {
    const char *name;
    int resource;
};
const Limit kLimits[] = {
    {"as", RLIMIT_AS},         {"core", RLIMIT_CORE},     {"cpu", RLIMIT_CPU},         {"data", RLIMIT_DATA},
    {"fsize", RLIMIT_FSIZE},   {"locks", RLIMIT_LOCKS},   {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE},
    {"nice", RLIMIT_NICE},     {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},     {"rss", RLIMIT_RSS},
    {"rtprio", RLIMIT_RTPRIO}, {"rttime", RLIMIT_RTTIME}, {"sigpending", RLIMIT_SIGPENDING}, {"stack", RLIMIT_STACK},
};

std::string limit_text(rlim_t v) { return v == RLIM_INFINITY ? "unlimited" : std::to_string(v); }

bool print_rlimit(const char *name) {
    for (const auto &l : kLimits) {
        if (strcmp(l.name, name) != 0) continue;
        struct rlimit r{};
        getrlimit(l.resource, &r);
        printf("%s %s %s\n", name, limit_text(r.rlim_cur).c_str(), limit_text(r.rlim_max).c_str());
        return true;
    }
    fprintf(stderr, "berth-check: unknown rlimit %s\n", name);
    return false;
}

/// The file system type of the mount at exactly `path` (the last one stacked there), or "-".
std::string mount_type(const char *path) {
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) return "-";
    std::string type = "-";
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        // id parent major:minor root mountpoint options [optional...] - type source superoptions
        char mnt[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || strcmp(mnt, path) != 0) continue;
        const char *sep = strstr(line, " - ");
        char t[256];
        if (sep && sscanf(sep + 3, "%255s", t) == 1) type = t;
    }
    fclose(f);
    return type;
}

void print_mount(const char *path) {
    struct statvfs v{};
    if (statvfs(path, &v) != 0) {
        printf("mount %s - missing\n", path);
        return;
    }
    std::string flags = (v.f_flag & ST_RDONLY) ? "ro" : "rw";
    if (v.f_flag & ST_NOSUID) flags += ",nosuid";
    if (v.f_flag & ST_NODEV) flags += ",nodev";
    if (v.f_flag & ST_NOEXEC) flags += ",noexec";
    printf("mount %s %s %s\n", path, mount_type(path).c_str(), flags.c_str());
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs("usage: berth-check caps|nnp|seccomp|ids|umask|oom|fds|cgroup|rlimit NAME|mount PATH...\n", stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        std::string c = argv[i];
        bool has_arg = i + 1 < argc;
        if (c == "caps") {
            caps();
        } else if (c == "nnp") {
            printf("no_new_privs %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
        } else if (c == "seccomp") {
            printf("seccomp %d\n", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
        } else if (c == "ids") {
            ids();
        } else if (c == "umask") {
            mode_t m = umask(0);
            umask(m);
            printf("umask %04o\n", static_cast<unsigned>(m));
        } else if (c == "oom") {
            fputs("oom_score_adj ", stdout);
            print_file("/proc/self/oom_score_adj");
        } else if (c == "fds") {
            fds();
        } else if (c == "cgroup") {
            print_file("/proc/self/cgroup");
        } else if (c == "rlimit" && has_arg) {
            if (!print_rlimit(argv[++i])) return 2;
        } else if (c == "mount" && has_arg) {
            print_mount(argv[++i]);
        } else {
            fprintf(stderr, "berth-check: unknown check %s\n", c.c_str());
            return 2;
        }
    }
    return 0;
}
