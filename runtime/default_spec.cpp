// `berth spec`: runc's example config.json (libcontainer/specconv Example and
// ToRootless), so bundles made for runc and for berth look the same.
#include <string>
#include <vector>

#include "runtime/features.hpp"

namespace rt {
namespace {

using util::json::Value;

Value mount(const char *dest, const char *type, const char *source, std::vector<std::string> options) {
    Value m = Value::object();
    m["destination"] = dest;
    m["type"] = type;
    m["source"] = source;
    if (!options.empty()) m["options"] = options;
    return m;
}

Value ns(const char *type) {
    Value v = Value::object();
    v["type"] = type;
    return v;
}

Value id_map(uint32_t host) {
    Value v = Value::object();
    v["containerID"] = 0;
    v["hostID"] = host;
    v["size"] = 1;
    return v;
}

}  // namespace

Value default_spec(bool rootless, uid_t uid, gid_t gid) {
    Value s = Value::object();
    s["ociVersion"] = kOciVersionMax;

    Value p = Value::object();
    p["terminal"] = true;
    Value user = Value::object();
    user["uid"] = 0;
    user["gid"] = 0;
    p["user"] = user;
    p["args"] = {"sh"};
    p["env"] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"};
    p["cwd"] = "/";
    const std::vector<std::string> caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
    Value c = Value::object();
    for (const char *set : {"bounding", "effective", "permitted", "ambient"}) c[set] = caps;
    p["capabilities"] = c;
    Value rl = Value::object();
    rl["type"] = "RLIMIT_NOFILE";
    rl["hard"] = 1024;
    rl["soft"] = 1024;
    p["rlimits"] = Value::array({rl});
    p["noNewPrivileges"] = true;
    s["process"] = p;

    Value root = Value::object();
    root["path"] = "rootfs";
    root["readonly"] = true;
    s["root"] = root;
    s["hostname"] = "berth";

    Value mounts = Value::array();
    mounts.push_back(mount("/proc", "proc", "proc", {}));
    mounts.push_back(mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
    if (rootless)
        mounts.push_back(mount("/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}));
    else
        mounts.push_back(mount("/dev/pts", "devpts", "devpts",
                               {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
    mounts.push_back(mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
    mounts.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
    if (rootless)
        mounts.push_back(mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}));
    else
        mounts.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
    mounts.push_back(mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}));
    s["mounts"] = mounts;

    Value linux = Value::object();
    if (rootless) {
        linux["uidMappings"] = Value::array({id_map(uid)});
        linux["gidMappings"] = Value::array({id_map(gid)});
        linux["namespaces"] = {ns("pid"), ns("ipc"), ns("uts"), ns("mount"), ns("cgroup"), ns("user")};
    } else {
        Value dev = Value::object();
        dev["allow"] = false;
        dev["access"] = "rwm";
        Value res = Value::object();
        res["devices"] = Value::array({dev});
        linux["resources"] = res;
        linux["namespaces"] = {ns("pid"), ns("network"), ns("ipc"), ns("uts"), ns("mount"), ns("cgroup")};
    }
    linux["maskedPaths"] = {"/proc/acpi",        "/proc/asound",       "/proc/kcore",       "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                            "/sys/firmware",     "/proc/scsi"};
    linux["readonlyPaths"] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
    s["linux"] = linux;
    return s;
}

}  // namespace rt
