// Image config parsing and the image -> runtime config conversion (see config.hpp).
#include "image/config.hpp"

#include <fcntl.h>
#include <sys/resource.h>

#include "util/file.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using util::cat;
using util::Error;
using util::quote;
namespace json = util::json;

/// Lines of an /etc file inside the rootfs, split on ':'; none when absent.
util::Result<std::vector<std::vector<std::string>>> read_db(int rootfs_fd, const char *path) {
    std::vector<std::vector<std::string>> out;
    auto fd = util::open_in_root(rootfs_fd, path, O_RDONLY, 0, util::Scope::InRoot);
    if (!fd) {
        if (fd.error().code == ENOENT) return out;
        return std::move(fd).error();
    }
    auto text = TRY_CTX(util::read_all(fd->get(), 4 << 20), cat("read ", quote(path)));
    for (const auto &line : util::split(text, '\n')) {
        if (line.empty() || line[0] == '#') continue;
        out.push_back(util::split(line, ':'));
    }
    return out;
}

/// podman's RLIMIT_NOFILE, 1048576, when this process may set it (it
/// needs CAP_SYS_RESOURCE to go above its own hard limit); else its own hard
/// limit, which the container's init can always keep.
uint64_t default_nofile() {
    constexpr rlim_t kWant = 1048576;
    rlimit cur{};
    if (::getrlimit(RLIMIT_NOFILE, &cur) < 0) return kWant;
    if (cur.rlim_max == RLIM_INFINITY || cur.rlim_max >= kWant) return kWant;
    rlimit raised{cur.rlim_cur, kWant};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
        (void)::setrlimit(RLIMIT_NOFILE, &cur);  // only a probe: lowering back is always allowed
        return kWant;
    }
    return cur.rlim_max;
}

json::Value mount(const char *dest, const char *type, const char *source, std::vector<std::string> options) {
    json::Value m = json::Value::object();
    m["destination"] = dest;
    m["type"] = type;
    m["source"] = source;
    m["options"] = options;
    return m;
}

}  // namespace

util::Result<ImageConfig> parse_image_config(std::string_view text) {
    auto v = TRY(json::parse(text, "image config"));
    TRY(json::expect_object(v, "image config"));
    ImageConfig c;
    c.platform.os = TRY(json::opt_string(v, "os", "")).value_or("linux");
    c.platform.architecture = TRY(json::opt_string(v, "architecture", "")).value_or("");
    c.platform.variant = TRY(json::opt_string(v, "variant", "")).value_or("");
    const json::Value *rootfs = TRY(json::opt_object(v, "rootfs", ""));
    if (!rootfs) return Error::msg("image config: `rootfs` is missing");
    for (const auto &s : TRY(json::opt_string_array(*rootfs, "diff_ids", "rootfs")))
        c.diff_ids.push_back(TRY_CTX(Digest::parse(s), "image config: `rootfs.diff_ids`"));
    const json::Value *cfg = TRY(json::opt_object(v, "config", ""));
    if (cfg) {
        c.user = TRY(json::opt_string(*cfg, "User", "config")).value_or("");
        c.env = TRY(json::opt_string_array(*cfg, "Env", "config"));
        c.entrypoint = TRY(json::opt_string_array(*cfg, "Entrypoint", "config"));
        c.cmd = TRY(json::opt_string_array(*cfg, "Cmd", "config"));
        c.working_dir = TRY(json::opt_string(*cfg, "WorkingDir", "config")).value_or("");
        c.stop_signal = TRY(json::opt_string(*cfg, "StopSignal", "config")).value_or("");
        if (const json::Value *vols = TRY(json::opt_object(*cfg, "Volumes", "config")))
            for (auto it = vols->begin(); it != vols->end(); ++it) c.volumes.push_back(it.key());
        if (const json::Value *labels = TRY(json::opt_object(*cfg, "Labels", "config")))
            for (auto it = labels->begin(); it != labels->end(); ++it)
                if (it.value().is_string()) c.labels[it.key()] = it.value().get<std::string>();
    }
    return c;
}

util::Result<UserIds> resolve_user(int rootfs_fd, std::string_view spec) {
    UserIds ids;
    ids.home = "/";
    if (spec.empty()) spec = "0";
    std::string user(spec.substr(0, spec.find(':')));
    std::optional<std::string> group;
    if (spec.find(':') != std::string_view::npos) group = std::string(spec.substr(spec.find(':') + 1));
    auto passwd = TRY_CTX(read_db(rootfs_fd, "/etc/passwd"), cat("user ", quote(spec)));
    auto groups = TRY_CTX(read_db(rootfs_fd, "/etc/group"), cat("user ", quote(spec)));
    auto uid_num = util::parse_int<uint32_t>(user);
    std::string user_name;
    bool found = false;
    for (const auto &f : passwd) {
        if (f.size() < 6) continue;
        auto fu = util::parse_int<uint32_t>(f[2]);
        auto fg = util::parse_int<uint32_t>(f[3]);
        if (!fu || !fg) continue;
        if (f[0] == user || (uid_num && *fu == *uid_num)) {
            ids.uid = *fu;
            ids.gid = *fg;
            ids.home = f[5].empty() ? "/" : f[5];
            user_name = f[0];
            found = true;
            break;
        }
    }
    if (!found) {
        if (!uid_num) return Error::msg(cat("user ", quote(user), " not found in the image's /etc/passwd"));
        ids.uid = *uid_num;
    }
    if (group) {
        auto gid_num = util::parse_int<uint32_t>(*group);
        bool gfound = false;
        for (const auto &f : groups) {
            if (f.size() < 3) continue;
            auto fg = util::parse_int<uint32_t>(f[2]);
            if (fg && (f[0] == *group || (gid_num && *fg == *gid_num))) {
                ids.gid = *fg;
                gfound = true;
                break;
            }
        }
        if (!gfound) {
            if (!gid_num) return Error::msg(cat("group ", quote(*group), " not found in the image's /etc/group"));
            ids.gid = *gid_num;
        }
    } else if (!user_name.empty()) {
        // Supplementary groups: those listing the user as a member.
        for (const auto &f : groups) {
            if (f.size() < 4) continue;
            auto fg = util::parse_int<uint32_t>(f[2]);
            if (!fg || *fg == ids.gid) continue;
            for (const auto &m : util::split(f[3], ','))
                if (m == user_name) ids.additional_gids.push_back(*fg);
        }
    }
    return ids;
}

std::vector<std::string> default_capabilities() {
    return {"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",       "CAP_NET_BIND_SERVICE",
            "CAP_SETFCAP", "CAP_SETGID",       "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"};
}

json::Value default_seccomp() {
    // Allow by default and refuse (EPERM) what podman's allowlist leaves out
    // and a gateway container never needs: kernel modules, kexec, keyrings,
    // bpf, perf, ptrace of other processes, namespace and mount games, clock
    // changes, swap, accounting, reboot.
    static const char *const kDenied[] = {
        "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
        "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "get_mempolicy",
        "init_module", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie",
        "mbind", "mount", "mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl",
        "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root", "process_vm_readv",
        "process_vm_writev", "ptrace", "query_module", "quotactl", "reboot", "request_key", "set_mempolicy",
        "setns", "settimeofday", "stime", "swapoff", "swapon", "syslog", "umount", "umount2", "unshare",
        "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
    };
    json::Value s = json::Value::object();
    s["defaultAction"] = "SCMP_ACT_ALLOW";
    s["architectures"] = std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                                                  "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"};
    json::Value rule = json::Value::object();
    rule["names"] = std::vector<std::string>(std::begin(kDenied), std::end(kDenied));
    rule["action"] = "SCMP_ACT_ERRNO";
    rule["errnoRet"] = 1;  // EPERM
    s["syscalls"] = json::Value::array({rule});
    return s;
}

util::Result<json::Value> runtime_config(const ImageConfig &image, int rootfs_fd, const RuntimeConfigOptions &opts) {
    json::Value c = json::Value::object();
    c["ociVersion"] = "1.0.2";
    json::Value proc = json::Value::object();
    proc["terminal"] = opts.terminal;
    auto ids = TRY_CTX(resolve_user(rootfs_fd, image.user), "image config");
    json::Value user = json::Value::object();
    user["uid"] = ids.uid;
    user["gid"] = ids.gid;
    if (!ids.additional_gids.empty()) user["additionalGids"] = ids.additional_gids;
    proc["user"] = user;
    std::vector<std::string> args = image.entrypoint;
    const auto &cmd = opts.args.empty() ? image.cmd : opts.args;
    args.insert(args.end(), cmd.begin(), cmd.end());
    if (args.empty()) return Error::msg("image config: no Entrypoint or Cmd, and no command given");
    proc["args"] = args;
    // Env: the image's, then the caller's; later keys replace earlier ones.
    std::vector<std::string> env;
    auto set_env = [&](const std::string &kv) {
        std::string key = kv.substr(0, kv.find('='));
        for (auto &e : env)
            if (e.substr(0, e.find('=')) == key) {
                e = kv;
                return;
            }
        env.push_back(kv);
    };
    set_env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    if (opts.terminal) set_env("TERM=xterm");
    set_env("HOME=" + ids.home);
    for (const auto &e : image.env) set_env(e);
    for (const auto &e : opts.extra_env) set_env(e);
    proc["env"] = env;
    proc["cwd"] = image.working_dir.empty() ? "/" : image.working_dir;
    json::Value caps = json::Value::object();
    for (const char *set : {"bounding", "effective", "permitted"}) caps[set] = default_capabilities();
    proc["capabilities"] = caps;
    json::Value rlimit = json::Value::object();
    rlimit["type"] = "RLIMIT_NOFILE";
    uint64_t nofile = opts.nofile ? opts.nofile : default_nofile();
    rlimit["hard"] = nofile;
    rlimit["soft"] = nofile;
    proc["rlimits"] = json::Value::array({rlimit});
    proc["noNewPrivileges"] = true;
    c["process"] = proc;
    json::Value root = json::Value::object();
    root["path"] = opts.rootfs;
    root["readonly"] = opts.readonly_rootfs;
    c["root"] = root;
    if (!opts.hostname.empty()) c["hostname"] = opts.hostname;

    json::Value mounts = json::Value::array();
    mounts.push_back(mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
    mounts.push_back(mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
    mounts.push_back(mount("/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
    mounts.push_back(mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
    mounts.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
    mounts.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
    mounts.push_back(mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}));
    if (!opts.volumes_dir.empty()) {
        for (const auto &dest : image.volumes) {
            // Volume name: the container path with '/' turned into '_'.
            std::string name = opts.volume_prefix;
            for (char ch : dest) name += ch == '/' ? '_' : ch;
            std::string src = util::path_join(opts.volumes_dir, name);
            TRY_CTX(util::mkdir_p(src, 0755), cat("volume ", quote(dest)));
            mounts.push_back(mount(dest.c_str(), "bind", src.c_str(), {"rbind", "rw"}));
        }
    }
    c["mounts"] = mounts;

    json::Value ann = json::Value::object();
    for (const auto &[k, v] : image.labels) ann[k] = v;
    if (!image.stop_signal.empty()) ann["org.opencontainers.image.stopSignal"] = image.stop_signal;
    for (const auto &[k, v] : opts.annotations) ann[k] = v;
    if (!ann.empty()) c["annotations"] = ann;

    json::Value linux_ = json::Value::object();
    json::Value ns = json::Value::array();
    for (const char *t : {"pid", "ipc", "uts", "mount", "network"}) {
        json::Value n = json::Value::object();
        n["type"] = t;
        ns.push_back(n);
    }
    linux_["namespaces"] = ns;
    linux_["maskedPaths"] = std::vector<std::string>{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                                     "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                                     "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
                                                     "/sys/devices/virtual/powercap"};
    linux_["readonlyPaths"] = std::vector<std::string>{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
    linux_["seccomp"] = default_seccomp();
    c["linux"] = linux_;
    return c;
}

}  // namespace img
