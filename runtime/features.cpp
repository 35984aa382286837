// `berth features` (see features.hpp): the features structure, built from
// the same tables the parsers use so it cannot claim what berth refuses.
#include "runtime/features.hpp"

#include "runtime/hooks.hpp"
#include "runtime/security.hpp"
#include "runtime/spec.hpp"

namespace rt {
namespace {

/// Candidates for `mountOptions`; only those the spec parser recognizes
/// (instead of passing them on as filesystem data) are reported.
constexpr const char *kMountOptionCandidates[] = {
    "async",     "atime",      "bind",       "defaults",    "dev",        "diratime",    "dirsync",
    "exec",      "iversion",   "lazytime",   "loud",        "mand",       "noatime",     "nodev",
    "nodiratime", "noexec",    "noiversion", "nolazytime",  "nomand",     "norelatime",  "nostrictatime",
    "nosuid",    "nosymfollow", "private",   "rbind",       "relatime",   "remount",     "rnodev",
    "rnoexec",   "rnosuid",    "ro",         "rprivate",    "rro",        "rrw",         "rshared",
    "rslave",    "runbindable", "rw",        "shared",      "silent",     "slave",       "strictatime",
    "suid",      "symfollow",  "sync",       "tmpcopyup",   "unbindable", "idmap",       "ridmap",
};

util::json::Value mount_options() {
    auto out = util::json::Value::array();
    for (const char *opt : kMountOptionCandidates) {
        Mount m;
        m.type = "none";
        m.options = {opt};
        if (!parse_mount_options(m, "features")) continue;  // refused (idmap ...)
        if (!m.data.empty()) continue;                       // passed on as fs data: not ours
        out.push_back(opt);
    }
    return out;
}

util::json::Value enabled(bool on) {
    auto v = util::json::Value::object();
    v["enabled"] = on;
    return v;
}

}  // namespace

util::json::Value features_json() {
    using util::json::Value;
    Value f = Value::object();
    f["ociVersionMin"] = kOciVersionMin;
    f["ociVersionMax"] = kOciVersionMax;
    auto hooks = Value::array();
    for (auto k : {hooks::Kind::Prestart, hooks::Kind::CreateRuntime, hooks::Kind::CreateContainer,
                   hooks::Kind::StartContainer, hooks::Kind::Poststart, hooks::Kind::Poststop})
        hooks.push_back(hooks::kind_name(k));
    f["hooks"] = hooks;
    f["mountOptions"] = mount_options();

    Value linux = Value::object();
    linux["namespaces"] = {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"};
    auto caps = Value::array();
    for (const auto &c : security::known_capabilities()) caps.push_back(c);
    linux["capabilities"] = caps;
    Value cg = Value::object();
    cg["v1"] = true;
    cg["v2"] = true;
    cg["systemd"] = false;      // systemd-style paths only, no systemd scopes over D-Bus
    cg["systemdUser"] = false;
    cg["rdma"] = false;
    linux["cgroup"] = cg;
    linux["seccomp"] = security::seccomp_features();
    linux["apparmor"] = enabled(true);
    linux["selinux"] = enabled(true);
    linux["intelRdt"] = enabled(false);
    Value ext = Value::object();
    ext["idmap"] = enabled(false);
    linux["mountExtensions"] = ext;
    linux["netDevices"] = enabled(false);
    f["linux"] = linux;

    Value ann = Value::object();
    ann["org.opencontainers.runtime-spec.features.runtime"] = "berth";
    f["annotations"] = ann;
    f["potentiallyUnsafeConfigAnnotations"] = Value::array();
    return f;
}

}  // namespace rt
