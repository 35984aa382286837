// Image config parsing and the image -> runtime config conversion (see config.hpp).
#include "image/config.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>

#include "util/file.hpp"
#include "util/path.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

using util::cat;
using util::Error;
using util::quote;
namespace json = util::json;

/// The largest /etc/passwd or /etc/group read (a real one is a few KiB).
constexpr size_t kMaxDbSize = 4 << 20;

/// Lines of an /etc file inside the rootfs, split on ':'; none when absent.
/// The image chose what sits there: a FIFO would block the open or the read
/// forever (while `berth run` holds the store lock with its termination
/// signals blocked), and opening a device runs its driver. So the open never
/// blocks (O_NONBLOCK) nor follows a final symlink, and anything but a
/// regular file of bounded size is refused before a byte is read.
util::Result<std::vector<std::vector<std::string>>> read_db(int rootfs_fd, const char *path) {
    std::vector<std::vector<std::string>> out;
    auto fd = util::open_in_root(rootfs_fd, path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY, 0, util::Scope::InRoot);
    if (!fd) {
        if (fd.error().code == ENOENT) return out;
        return std::move(fd).error().wrap(cat("open the image's ", quote(path)));
    }
    struct stat st;
    if (::fstat(fd->get(), &st) < 0) return Error::from_errno(cat("stat the image's ", quote(path)));
    if (!S_ISREG(st.st_mode)) return Error::msg(cat("the image's ", quote(path), " is not a regular file"));
    if (static_cast<uint64_t>(st.st_size) > kMaxDbSize)
        return Error::msg(cat("the image's ", quote(path), " is larger than ", kMaxDbSize, " bytes"));
    auto text = TRY_CTX(util::read_all(fd->get(), kMaxDbSize), cat("read the image's ", quote(path)));
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

/// linux.resources of every image-mode container, as podman's: the
/// cgroup device controller denies every device, then allows mknod (inert
/// without a granted device) and the devices every container gets (null,
/// zero, full, random, urandom, tty, console, ptmx, the ptys); and a pids limit.
/// Plus, for a container given host devices, memory or CPU: an allow
/// rule per device, the memory limit and the CPU quota.
json::Value default_resources(const RuntimeConfigOptions &opts) {
    auto device = [](bool allow, const char *type, int64_t major, int64_t minor, const char *access) {
        json::Value d = json::Value::object();
        d["allow"] = allow;
        if (type) d["type"] = type;
        if (major >= 0) d["major"] = major;
        if (minor >= 0) d["minor"] = minor;
        d["access"] = access;
        return d;
    };
    json::Value devices = json::Value::array({device(false, nullptr, -1, -1, "rwm")});
    devices.push_back(device(true, "c", -1, -1, "m"));
    devices.push_back(device(true, "b", -1, -1, "m"));
    for (int minor : {3, 5, 7, 8, 9}) devices.push_back(device(true, "c", 1, minor, "rwm"));
    for (int minor : {0, 1, 2}) devices.push_back(device(true, "c", 5, minor, "rwm"));
    devices.push_back(device(true, "c", 136, -1, "rwm"));
    for (const auto &d : opts.devices)
        devices.push_back(device(true, d.type == 'b' ? "b" : "c", d.major, d.minor, d.permissions.c_str()));  // checked in device_nodes
    json::Value r = json::Value::object();
    r["devices"] = std::move(devices);
    json::Value pids = json::Value::object();
    pids["limit"] = opts.pids_limit;
    r["pids"] = std::move(pids);
    if (opts.memory_limit) {
        json::Value mem = json::Value::object();
        mem["limit"] = opts.memory_limit;
        r["memory"] = std::move(mem);
    }
    if (opts.cpu_millis) {
        constexpr uint64_t kPeriodUs = 100000;
        json::Value cpu = json::Value::object();
        cpu["quota"] = opts.cpu_millis * kPeriodUs / 1000;
        cpu["period"] = kPeriodUs;
        r["cpu"] = std::move(cpu);
    }
    return r;
}

/// `path` as an absolute path with `.`, `..` (never above `/`) and repeated
/// slashes resolved, as the runtime resolves a mount destination in the rootfs.
std::string clean_path(std::string_view path) {
    std::vector<std::string_view> parts;
    while (!path.empty()) {
        size_t n = path.find('/');
        std::string_view part = path.substr(0, n);
        path = n == std::string_view::npos ? std::string_view() : path.substr(n + 1);
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            if (!parts.empty()) parts.pop_back();
            continue;
        }
        parts.push_back(part);
    }
    std::string out;
    for (auto p : parts) out += cat('/', p);
    return out.empty() ? "/" : out;
}

/// A volume or bind mount may not cover the rootfs, nor sit on or under the
/// kernel's filesystems the runtime mounts (/proc, /sys, /dev): a host
/// directory there would shadow them, and writes meant for procfs would reach it.
util::Status check_volume(const std::string &dest) {
    std::string p = clean_path(dest);
    if (p == "/") return Error::msg(cat("volume ", quote(dest), ": covers the root filesystem"));
    for (std::string_view top : {"/proc", "/sys", "/dev"})
        if (p == top || (p.size() > top.size() && p.compare(0, top.size(), top) == 0 && p[top.size()] == '/'))
            return Error::msg(cat("volume ", quote(dest), ": inside ", top, ", which the runtime mounts"));
    return util::ok();
}

json::Value mount(const char *dest, const char *type, const char *source, std::vector<std::string> options) {
    json::Value m = json::Value::object();
    m["destination"] = dest;
    m["type"] = type;
    m["source"] = source;
    m["options"] = options;
    return m;
}

/// The bind mounts of named volumes and extra mounts, after their checks.
util::Result<std::vector<json::Value>> caller_mounts(const RuntimeConfigOptions &opts) {
    std::vector<json::Value> out;
    auto bind = [&](const std::string &dest, const std::string &src, bool ro, const std::string &what) -> util::Status {
        if (dest.empty() || dest[0] != '/') return Error::msg(cat(what, ": destination ", quote(dest), " is not an absolute path"));
        TRY_CTX(check_volume(dest), what);
        if (src.empty() || src[0] != '/') return Error::msg(cat(what, ": source ", quote(src), " is not an absolute path"));
        out.push_back(mount(dest.c_str(), "bind", src.c_str(), {"rbind", ro ? "ro" : "rw", "nosuid", "nodev"}));
        return util::ok();
    };
    for (const auto &v : opts.named_volumes) {
        std::string what = cat("named volume ", quote(v.name));
        if (!valid_volume_name(v.name)) return Error::msg(cat(what, ": not a valid volume name"));
        if (opts.volumes_dir.empty()) return Error::msg(cat(what, ": no volumes directory"));
        TRY(bind(v.destination, util::path_join(opts.volumes_dir, v.name), v.readonly, what));
    }
    for (const auto &m : opts.extra_mounts) TRY(bind(m.destination, m.source, m.readonly, cat("mount ", quote(m.destination))));
    return out;
}

/// Does one of the caller's mounts land on `dest` (an image volume it replaces)?
bool covered(const std::vector<json::Value> &mounts, const std::string &dest) {
    for (const auto &m : mounts)
        if (clean_path(m["destination"].get<std::string>()) == clean_path(dest)) return true;
    return false;
}

/// `base` plus the names of `extra` it does not hold yet.
std::vector<std::string> with_extra(std::vector<std::string> base, const std::vector<std::string> &extra) {
    for (const auto &e : extra)
        if (std::find(base.begin(), base.end(), e) == base.end()) base.push_back(e);
    return base;
}

/// linux.devices: the nodes the runtime creates in the container's /dev.
/// Each sits under /dev (the runtime's tmpfs: a node elsewhere would land
/// on the nodev rootfs or a volume), with an access of r, w and m only.
util::Result<json::Value> device_nodes(const std::vector<DeviceNode> &devices) {
    json::Value out = json::Value::array();
    for (const auto &d : devices) {
        std::string what = cat("device ", quote(d.path));
        if (d.path.rfind("/dev/", 0) != 0 || clean_path(d.path) != d.path || d.path == "/dev/")
            return Error::msg(cat(what, ": not a clean path under /dev"));
        if (d.type != 'c' && d.type != 'b') return Error::msg(cat(what, ": type ", quote(std::string(1, d.type)), " is not c or b"));
        if (d.permissions.empty() || d.permissions.find_first_not_of("rwm") != std::string::npos)
            return Error::msg(cat(what, ": permissions ", quote(d.permissions), " are not a subset of rwm"));
        json::Value n = json::Value::object();
        n["path"] = d.path;
        n["type"] = d.type == 'b' ? "b" : "c";
        n["major"] = d.major;
        n["minor"] = d.minor;
        n["fileMode"] = d.file_mode;
        n["uid"] = 0;
        n["gid"] = 0;
        out.push_back(std::move(n));
    }
    return out;
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

bool valid_volume_name(std::string_view name) {
    return !name.empty() && name[0] != '.' && name.find('/') == std::string_view::npos;
}

namespace {

constexpr std::string_view kImageVolumes = ".image";

/// `dest` with '/' turned into '_'.
std::string flat(std::string_view dest) {
    std::string out;
    for (char ch : dest) out += ch == '/' ? '_' : ch;
    return out;
}

bool lstat_is(const std::string &path, mode_t type) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0 && (st.st_mode & S_IFMT) == type;
}

}  // namespace

std::string volume_dir(const std::string &dir, std::string_view prefix, std::string_view dest) {
    while (dest.starts_with('/')) dest.remove_prefix(1);
    return util::path_join(util::path_join(util::path_join(dir, kImageVolumes), prefix), flat(dest));
}

std::string legacy_volume_dir(const std::string &dir, std::string_view prefix, std::string_view dest) {
    return util::path_join(dir, cat(prefix, flat(dest)));
}

util::Status migrate_legacy_volume(const std::string &dir, std::string_view prefix, std::string_view dest) {
    const std::string legacy = legacy_volume_dir(dir, prefix, dest), now = volume_dir(dir, prefix, dest);
    const std::string owner = util::dirname(now), link = util::path_join(owner, cat(".", util::basename(now), ".legacy"));
    const std::string what = cat("move the image volume ", quote(legacy), " to ", quote(now));
    const bool pending = lstat_is(link, S_IFLNK);
    if (lstat_is(legacy, S_IFDIR) && !util::path_exists(now)) {
        TRY_CTX(util::mkdir_p(owner, 0755), what);
        // The link's target is relative to the volumes directory, where it ends.
        if (!pending && ::symlink(now.substr(dir.size() + 1).c_str(), link.c_str()) < 0)
            return Error::from_errno(cat(what, ": symlink"));
        TRY_CTX(util::move_durably(legacy, now), what);
    } else if (!pending) {
        return util::ok();  // nothing to move, or moved already
    }
    if (lstat_is(legacy, S_IFDIR)) {  // a new directory at the old name since: not ours to replace
        (void)::unlink(link.c_str());
        return util::ok();
    }
    TRY_CTX(util::move_durably(link, legacy), cat(what, ": the link"));
    return util::ok();
}

util::Result<json::Value> runtime_config(const ImageConfig &image, int rootfs_fd, const RuntimeConfigOptions &opts) {
    json::Value c = json::Value::object();
    c["ociVersion"] = "1.0.2";
    json::Value proc = json::Value::object();
    proc["terminal"] = opts.terminal;
    auto ids = opts.user.empty() ? TRY_CTX(resolve_user(rootfs_fd, image.user), "image config")
                                 : TRY(resolve_user(rootfs_fd, opts.user));
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
    const std::string &cwd = opts.cwd.empty() ? image.working_dir : opts.cwd;
    if (!cwd.empty() && cwd[0] != '/') return Error::msg(cat("working directory ", quote(cwd), " is not an absolute path"));
    proc["cwd"] = cwd.empty() ? "/" : cwd;
    json::Value caps = json::Value::object();
    for (const char *set : {"bounding", "effective", "permitted"})
        caps[set] = with_extra(default_capabilities(), opts.extra_capabilities);
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
    auto binds = TRY(caller_mounts(opts));
    if (!opts.volumes_dir.empty()) {
        for (const auto &dest : image.volumes) {
            if (covered(binds, dest)) continue;
            TRY_CTX(check_volume(dest), "image config");
            std::string src = volume_dir(opts.volumes_dir, opts.volume_prefix, dest);
            TRY_CTX(util::mkdir_p(src, 0755), cat("volume ", quote(dest)));
            mounts.push_back(mount(dest.c_str(), "bind", src.c_str(), {"rbind", "rw"}));
        }
    }
    for (auto &m : binds) mounts.push_back(std::move(m));
    c["mounts"] = mounts;

    json::Value ann = json::Value::object();
    for (const auto &[k, v] : image.labels) ann[k] = v;
    if (!image.stop_signal.empty()) ann["org.opencontainers.image.stopSignal"] = image.stop_signal;
    for (const auto &[k, v] : opts.annotations) ann[k] = v;
    if (!ann.empty()) c["annotations"] = ann;

    json::Value linux_ = json::Value::object();
    json::Value ns = json::Value::array();
    for (const char *t : {"pid", "ipc", "uts", "mount", "network"}) {
        if (opts.host_network && std::string_view(t) == "network") continue;
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
    if (!opts.devices.empty()) linux_["devices"] = TRY(device_nodes(opts.devices));
    linux_["resources"] = default_resources(opts);
    linux_["seccomp"] = default_seccomp();
    c["linux"] = linux_;
    return c;
}

}  // namespace img
