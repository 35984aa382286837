// config.json parsing; see spec.hpp. Every accessor goes through util::json's
// typed helpers, so a field of the wrong type is an error naming it, never an
// abort (berth is built without exceptions).
#include "runtime/spec.hpp"

#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>

#include "util/file.hpp"
#include "util/strings.hpp"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

namespace rt {
namespace {

using util::Error;
using util::json::Value;
namespace json = util::json;

struct NsName {
    const char *spec_name;
    const char *proc_name;
    int flag;
};
constexpr NsName kNamespaces[] = {
    {"pid", "pid", CLONE_NEWPID},       {"network", "net", CLONE_NEWNET}, {"mount", "mnt", CLONE_NEWNS},
    {"ipc", "ipc", CLONE_NEWIPC},       {"uts", "uts", CLONE_NEWUTS},     {"user", "user", CLONE_NEWUSER},
    {"cgroup", "cgroup", CLONE_NEWCGROUP}, {"time", "time", CLONE_NEWTIME},
};

struct MountFlag {
    const char *name;
    bool clear;
    unsigned long flag;
};
constexpr MountFlag kMountFlags[] = {
    {"ro", false, MS_RDONLY},        {"rw", true, MS_RDONLY},           {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},       {"nodev", false, MS_NODEV},        {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},    {"exec", true, MS_NOEXEC},         {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS}, {"dirsync", false, MS_DIRSYNC},    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},    {"nomand", true, MS_MANDLOCK},     {"atime", true, MS_NOATIME},
    {"noatime", false, MS_NOATIME},  {"diratime", true, MS_NODIRATIME}, {"nodiratime", false, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME}, {"norelatime", true, MS_RELATIME}, {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME}, {"bind", false, MS_BIND}, {"rbind", false, MS_BIND | MS_REC},
    {"silent", false, MS_SILENT},    {"loud", true, MS_SILENT},         {"lazytime", false, MS_LAZYTIME},
    {"nolazytime", true, MS_LAZYTIME}, {"nosymfollow", false, MS_NOSYMFOLLOW},
    {"symfollow", true, MS_NOSYMFOLLOW},
};
struct PropFlag {
    const char *name;
    unsigned long flag;
};
constexpr PropFlag kPropagation[] = {
    {"private", MS_PRIVATE},   {"rprivate", MS_PRIVATE | MS_REC},     {"shared", MS_SHARED},
    {"rshared", MS_SHARED | MS_REC}, {"slave", MS_SLAVE},             {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

std::string idx(std::string_view where, size_t i) { return util::cat(where, '[', i, ']'); }

bool is_absolute(std::string_view p) { return !p.empty() && p[0] == '/'; }

/// Absolute and without `..` components: what every container path must be.
util::Status check_container_path(std::string_view path, std::string_view where) {
    if (!is_absolute(path)) return Error::msg(util::cat(util::quote(where), ": ", util::quote(path), " is not an absolute path"));
    for (const auto &c : util::split(path, '/'))
        if (c == "..") return Error::msg(util::cat(util::quote(where), ": ", util::quote(path), " contains `..`"));
    return util::ok();
}

util::Result<uint32_t> u32_field(const Value &obj, std::string_view key, std::string_view where, bool required) {
    auto v = TRY(json::opt_uint(obj, key, where));
    if (!v) {
        if (required) return Error::msg(util::cat(util::quote(json::field_path(where, key)), ": missing"));
        return 0u;
    }
    if (*v > UINT32_MAX) return Error::msg(util::cat(util::quote(json::field_path(where, key)), ": out of range"));
    return static_cast<uint32_t>(*v);
}

util::Result<std::vector<IdMapping>> parse_mappings(const Value &linux_obj, std::string_view key) {
    std::vector<IdMapping> out;
    const Value *arr = TRY(json::opt_array(linux_obj, key, "linux"));
    if (!arr) return out;
    std::string where = json::field_path("linux", key);
    for (size_t i = 0; i < arr->size(); i++) {
        const Value &m = (*arr)[i];
        std::string w = idx(where, i);
        TRY(json::expect_object(m, w));
        IdMapping im;
        im.container_id = TRY(u32_field(m, "containerID", w, true));
        im.host_id = TRY(u32_field(m, "hostID", w, true));
        im.size = TRY(u32_field(m, "size", w, true));
        if (im.size == 0) return Error::msg(util::cat(util::quote(w + ".size"), ": must be greater than zero"));
        out.push_back(im);
    }
    return out;
}

util::Result<std::vector<Mount>> parse_mounts(const Value &doc, const std::string &bundle) {
    std::vector<Mount> out;
    const Value *arr = TRY(json::opt_array(doc, "mounts", ""));
    if (!arr) return out;
    for (size_t i = 0; i < arr->size(); i++) {
        const Value &v = (*arr)[i];
        std::string w = idx("mounts", i);
        TRY(json::expect_object(v, w));
        Mount m;
        m.destination = TRY(json::req_string(v, "destination", w));
        TRY(check_container_path(m.destination, w + ".destination"));
        m.type = TRY(json::opt_string(v, "type", w)).value_or("");
        m.source = TRY(json::opt_string(v, "source", w)).value_or("");
        m.options = TRY(json::opt_string_array(v, "options", w));
        if (TRY(json::opt_array(v, "uidMappings", w)) || TRY(json::opt_array(v, "gidMappings", w)))
            return Error::msg(util::cat(util::quote(w), ": idmapped mounts are not supported"));
        TRY(parse_mount_options(m, w));
        if (m.is_bind()) {
            m.type = "bind";
            if (m.source.empty()) return Error::msg(util::cat(util::quote(w + ".source"), ": missing for a bind mount"));
            if (!is_absolute(m.source)) m.source = util::path_join(bundle, m.source);
        } else if (m.type.empty()) {
            return Error::msg(util::cat(util::quote(w + ".type"), ": missing"));
        }
        out.push_back(std::move(m));
    }
    return out;
}

util::Result<std::vector<Device>> parse_devices(const Value &linux_obj) {
    std::vector<Device> out;
    const Value *arr = TRY(json::opt_array(linux_obj, "devices", "linux"));
    if (!arr) return out;
    for (size_t i = 0; i < arr->size(); i++) {
        const Value &v = (*arr)[i];
        std::string w = idx("linux.devices", i);
        TRY(json::expect_object(v, w));
        Device d;
        d.path = TRY(json::req_string(v, "path", w));
        TRY(check_container_path(d.path, w + ".path"));
        std::string type = TRY(json::req_string(v, "type", w));
        if (type.size() != 1 || std::strchr("cubp", type[0]) == nullptr)
            return Error::msg(util::cat(util::quote(w + ".type"), ": unknown device type ", util::quote(type)));
        d.type = type[0];
        auto major = TRY(json::opt_int(v, "major", w));
        auto minor = TRY(json::opt_int(v, "minor", w));
        if (d.type != 'p' && (!major || !minor))
            return Error::msg(util::cat(util::quote(w), ": major and minor are required for type ", util::quote(type)));
        d.major = major.value_or(0);
        d.minor = minor.value_or(0);
        if (auto fm = TRY(json::opt_uint(v, "fileMode", w))) d.file_mode = static_cast<uint32_t>(*fm & 07777);
        if (v.contains("uid")) d.uid = TRY(u32_field(v, "uid", w, false));
        if (v.contains("gid")) d.gid = TRY(u32_field(v, "gid", w, false));
        out.push_back(std::move(d));
    }
    return out;
}

util::Status parse_linux(Spec &s, const Value &lx) {
    TRY(json::expect_object(lx, "linux"));
    if (const Value *nss = TRY(json::opt_array(lx, "namespaces", "linux"))) {
        for (size_t i = 0; i < nss->size(); i++) {
            const Value &v = (*nss)[i];
            std::string w = idx("linux.namespaces", i);
            TRY(json::expect_object(v, w));
            std::string type = TRY(json::req_string(v, "type", w));
            Namespace ns;
            for (const auto &n : kNamespaces)
                if (type == n.spec_name) ns.type = n.flag;
            if (ns.type == 0) return Error::msg(util::cat(util::quote(w + ".type"), ": unknown namespace ", util::quote(type)));
            for (const auto &prev : s.namespaces)
                if (prev.type == ns.type)
                    return Error::msg(util::cat(util::quote(w + ".type"), ": namespace ", util::quote(type), " listed twice"));
            ns.path = TRY(json::opt_string(v, "path", w)).value_or("");
            if (!ns.path.empty() && !is_absolute(ns.path))
                return Error::msg(util::cat(util::quote(w + ".path"), ": ", util::quote(ns.path), " is not an absolute path"));
            s.namespaces.push_back(std::move(ns));
        }
    }
    s.uid_mappings = TRY(parse_mappings(lx, "uidMappings"));
    s.gid_mappings = TRY(parse_mappings(lx, "gidMappings"));
    const Namespace *user = s.find_namespace(CLONE_NEWUSER);
    if ((!s.uid_mappings.empty() || !s.gid_mappings.empty()) && !user)
        return Error::msg("`linux.uidMappings`: mappings given without a user namespace");
    if (user && user->path.empty() && (s.uid_mappings.empty() || s.gid_mappings.empty()))
        return Error::msg("`linux.uidMappings`: a new user namespace needs uidMappings and gidMappings");
    s.devices = TRY(parse_devices(lx));
    s.cgroups_path = TRY(json::opt_string(lx, "cgroupsPath", "linux")).value_or("");
    const Value *res = TRY(json::opt_object(lx, "resources", "linux"));
    s.has_resources = res != nullptr;
    s.resources = TRY(cgroup::parse_resources(res));
    if (!s.resources.devices.empty()) {
        // As runc: the default devices, any mknod, the ptys and the spec's
        // own devices stay usable whatever the device rules deny.
        auto allow = [&](char type, int64_t major, int64_t minor, const char *access) {
            cgroup::DeviceRule r;
            r.allow = true;
            r.type = type;
            r.major = major;
            r.minor = minor;
            r.access = access;
            s.resources.devices.push_back(r);
        };
        allow('c', -1, -1, "m");
        allow('b', -1, -1, "m");
        for (int minor : {3, 5, 7, 8, 9}) allow('c', 1, minor, "rwm");
        for (int minor : {0, 1, 2}) allow('c', 5, minor, "rwm");
        allow('c', 136, -1, "rwm");
        for (const auto &d : s.devices)
            if (d.type != 'p') allow(d.type == 'u' ? 'c' : d.type, d.major, d.minor, "rwm");
    }
    if (const Value *sc = TRY(json::opt_object(lx, "sysctl", "linux"))) {
        for (auto it = sc->begin(); it != sc->end(); ++it) {
            if (!it.value().is_string())
                return Error::msg(util::cat(util::quote(util::cat("linux.sysctl.", it.key())), ": expected a string, got ",
                                            json::type_name(it.value())));
            s.sysctl.emplace_back(it.key(), it.value().get<std::string>());
        }
    }
    const Value *seccomp = TRY(json::opt_object(lx, "seccomp", "linux"));
    auto filter = TRY(security::compile_seccomp(seccomp));
    s.seccomp = std::shared_ptr<security::SeccompFilter>(std::move(filter));
    if (auto prop = TRY(json::opt_string(lx, "rootfsPropagation", "linux")); prop && !prop->empty()) {
        for (const auto &p : kPropagation)
            if (*prop == p.name) s.rootfs_propagation = p.flag;
        if (s.rootfs_propagation == 0)
            return Error::msg(util::cat("`linux.rootfsPropagation`: unknown propagation ", util::quote(*prop)));
    }
    s.masked_paths = TRY(json::opt_string_array(lx, "maskedPaths", "linux"));
    s.readonly_paths = TRY(json::opt_string_array(lx, "readonlyPaths", "linux"));
    for (size_t i = 0; i < s.masked_paths.size(); i++)
        TRY(check_container_path(s.masked_paths[i], idx("linux.maskedPaths", i)));
    for (size_t i = 0; i < s.readonly_paths.size(); i++)
        TRY(check_container_path(s.readonly_paths[i], idx("linux.readonlyPaths", i)));
    s.mount_label = TRY(json::opt_string(lx, "mountLabel", "linux")).value_or("");
    s.personality = TRY(security::parse_personality(TRY(json::opt_object(lx, "personality", "linux"))));
    if (const Value *to = TRY(json::opt_object(lx, "timeOffsets", "linux"))) {
        for (auto it = to->begin(); it != to->end(); ++it) {
            std::string w = util::cat("linux.timeOffsets.", it.key());
            if (it.key() != "monotonic" && it.key() != "boottime")
                return Error::msg(util::cat(util::quote(w), ": unknown clock (monotonic or boottime)"));
            TRY(json::expect_object(it.value(), w));
            TimeOffset t;
            t.clock = it.key();
            t.secs = TRY(json::opt_int(it.value(), "secs", w)).value_or(0);
            t.nanosecs = TRY(u32_field(it.value(), "nanosecs", w, false));
            s.time_offsets.push_back(t);
        }
        if (!s.time_offsets.empty() && !s.find_namespace(CLONE_NEWTIME))
            return Error::msg("`linux.timeOffsets`: given without a time namespace");
    }
    return util::ok();
}

}  // namespace

bool Mount::is_bind() const { return type == "bind" || type == "rbind" || (flags & MS_BIND) != 0; }

const char *namespace_name(int type) {
    for (const auto &n : kNamespaces)
        if (n.flag == type) return n.proc_name;
    return "?";
}

const Namespace *Spec::find_namespace(int type) const {
    for (const auto &n : namespaces)
        if (n.type == type) return &n;
    return nullptr;
}

util::Status parse_mount_options(Mount &m, std::string_view where) {
    std::vector<std::string> data;
    if (m.type == "rbind") m.flags |= MS_BIND | MS_REC;
    if (m.type == "bind") m.flags |= MS_BIND;
    for (const auto &opt : m.options) {
        bool known = false;
        for (const auto &f : kMountFlags) {
            if (opt != f.name) continue;
            known = true;
            if (f.clear) {
                m.flags &= ~f.flag;
                m.clear_flags |= f.flag;
            } else {
                m.flags |= f.flag;
                m.clear_flags &= ~f.flag;
            }
        }
        for (const auto &p : kPropagation)
            if (opt == p.name) {
                known = true;
                m.propagation = p.flag;
            }
        if (opt == "rro") {
            known = true;
            m.recursive_readonly = true;
        } else if (opt == "rrw" || opt == "rnosuid" || opt == "rnodev" || opt == "rnoexec" || opt == "tmpcopyup") {
            known = true;  // accepted; recursive clears and copy-up are not applied
        } else if (opt == "idmap" || opt == "ridmap") {
            return Error::msg(util::cat(util::quote(where), ": mount option ", util::quote(opt), " is not supported"));
        }
        if (!known) {
            if (opt.find('\0') != std::string::npos)
                return Error::msg(util::cat(util::quote(where), ": bad mount option"));
            data.push_back(opt);
        }
    }
    m.data = util::join(data, ",");
    return util::ok();
}

util::Result<Process> parse_process(const Value &obj, std::string_view where) {
    TRY(json::expect_object(obj, where));
    Process p;
    p.terminal = TRY(json::opt_bool(obj, "terminal", where)).value_or(false);
    if (const Value *cs = TRY(json::opt_object(obj, "consoleSize", where))) {
        std::string w = json::field_path(where, "consoleSize");
        p.console_size = std::make_pair(TRY(u32_field(*cs, "height", w, true)), TRY(u32_field(*cs, "width", w, true)));
    }
    if (const Value *u = TRY(json::opt_object(obj, "user", where))) {
        std::string w = json::field_path(where, "user");
        p.user.uid = TRY(u32_field(*u, "uid", w, false));
        p.user.gid = TRY(u32_field(*u, "gid", w, false));
        if (u->contains("umask") && !(*u)["umask"].is_null()) p.user.umask = TRY(u32_field(*u, "umask", w, false)) & 0777;
        if (const Value *ag = TRY(json::opt_array(*u, "additionalGids", w))) {
            for (size_t i = 0; i < ag->size(); i++) {
                const Value &g = (*ag)[i];
                if (!g.is_number_unsigned() || g.get<uint64_t>() > UINT32_MAX)
                    return Error::msg(util::cat(util::quote(idx(w + ".additionalGids", i)), ": expected a gid, got ",
                                                json::type_name(g)));
                p.user.additional_gids.push_back(static_cast<uint32_t>(g.get<uint64_t>()));
            }
        }
        if (auto name = TRY(json::opt_string(*u, "username", w)); name && !name->empty())
            return Error::msg(util::cat(util::quote(w + ".username"), ": only numeric uid/gid are supported on Linux"));
    }
    p.args = TRY(json::opt_string_array(obj, "args", where));
    if (auto cl = TRY(json::opt_string(obj, "commandLine", where)); cl && !cl->empty())
        return Error::msg(util::cat(util::quote(json::field_path(where, "commandLine")), ": is for Windows"));
    if (p.args.empty()) return Error::msg(util::cat(util::quote(json::field_path(where, "args")), ": must not be empty"));
    p.env = TRY(json::opt_string_array(obj, "env", where));
    for (size_t i = 0; i < p.env.size(); i++)
        if (p.env[i].find('=') == std::string::npos || p.env[i].find('\0') != std::string::npos)
            return Error::msg(util::cat(util::quote(idx(json::field_path(where, "env"), i)), ": expected KEY=VALUE"));
    p.cwd = TRY(json::opt_string(obj, "cwd", where)).value_or("/");
    if (!is_absolute(p.cwd))
        return Error::msg(util::cat(util::quote(json::field_path(where, "cwd")), ": ", util::quote(p.cwd),
                                    " is not an absolute path"));
    p.capabilities = TRY(security::parse_capabilities(TRY(json::opt_object(obj, "capabilities", where))));
    p.rlimits = TRY(security::parse_rlimits(TRY(json::opt_array(obj, "rlimits", where))));
    p.no_new_privileges = TRY(json::opt_bool(obj, "noNewPrivileges", where)).value_or(false);
    if (auto o = TRY(json::opt_int(obj, "oomScoreAdj", where))) {
        if (*o < -1000 || *o > 1000)
            return Error::msg(util::cat(util::quote(json::field_path(where, "oomScoreAdj")), ": out of range -1000..1000"));
        p.oom_score_adj = static_cast<int>(*o);
    }
    p.apparmor_profile = TRY(json::opt_string(obj, "apparmorProfile", where)).value_or("");
    p.selinux_label = TRY(json::opt_string(obj, "selinuxLabel", where)).value_or("");
    return p;
}

util::Result<Spec> parse_spec(const Value &doc, const std::string &bundle) {
    TRY(json::expect_object(doc, "config.json"));
    Spec s;
    s.bundle = bundle;
    s.oci_version = TRY(json::req_string(doc, "ociVersion", ""));
    if (!s.oci_version.starts_with("1."))
        return Error::msg(util::cat("`ociVersion`: unsupported version ", util::quote(s.oci_version), " (1.x)"));
    const Value *root = TRY(json::opt_object(doc, "root", ""));
    if (!root) return Error::msg("`root`: missing");
    std::string path = TRY(json::req_string(*root, "path", "root"));
    if (path.empty()) return Error::msg("`root.path`: empty");
    s.root_path = is_absolute(path) ? path : util::path_join(bundle, path);
    s.root_readonly = TRY(json::opt_bool(*root, "readonly", "root")).value_or(false);
    s.mounts = TRY(parse_mounts(doc, bundle));
    if (const Value *p = TRY(json::opt_object(doc, "process", ""))) s.process = TRY(parse_process(*p, "process"));
    s.hostname = TRY(json::opt_string(doc, "hostname", ""));
    s.domainname = TRY(json::opt_string(doc, "domainname", ""));
    if (const Value *h = TRY(json::opt_object(doc, "hooks", ""))) s.hooks = *h;
    if (const Value *a = TRY(json::opt_object(doc, "annotations", ""))) {
        for (auto it = a->begin(); it != a->end(); ++it) {
            if (!it.value().is_string())
                return Error::msg(util::cat(util::quote(util::cat("annotations.", it.key())), ": expected a string, got ",
                                            json::type_name(it.value())));
            s.annotations.emplace_back(it.key(), it.value().get<std::string>());
        }
    }
    if (const Value *lx = TRY(json::opt_object(doc, "linux", ""))) TRY(parse_linux(s, *lx));
    s.lsm = TRY(security::parse_lsm(doc));
    if ((s.hostname && !s.hostname->empty()) && !s.find_namespace(CLONE_NEWUTS))
        return Error::msg("`hostname`: set without a uts namespace");
    s.raw = doc;
    return s;
}

util::Result<Spec> load_spec(const std::string &bundle_in) {
    std::string bundle = bundle_in.empty() ? "." : bundle_in;
    if (!is_absolute(bundle)) {
        char buf[4096];
        if (!::getcwd(buf, sizeof buf)) return Error::from_errno("getcwd");
        bundle = bundle == "." ? std::string(buf) : util::path_join(buf, bundle);
    }
    while (bundle.size() > 1 && bundle.back() == '/') bundle.pop_back();
    std::string cfg = util::path_join(bundle, "config.json");
    std::string text = TRY(util::read_file(cfg, 16 << 20));
    Value doc = TRY(util::json::parse(text, "config.json"));
    return TRY_CTX(parse_spec(doc, bundle), "config.json");
}

}  // namespace rt
