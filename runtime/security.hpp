// Per-process security settings of the runtime spec: capabilities (all five
// sets, through libcap), seccomp (through libseccomp), rlimits, personality,
// and the AppArmor/SELinux fields.
//
// Parsing happens in the runtime process before any clone, so a bad profile
// fails `create` with a clear message before anything was set up; the
// apply_* functions run in the container's init, in the order runc uses:
// rlimits, personality, capabilities (after setuid), no_new_privs, seccomp
// last before exec.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/json.hpp"
#include "util/result.hpp"

namespace rt::security {

/// Capability numbers (CAP_*), per set.
struct Capabilities {
    std::vector<int> bounding, effective, inheritable, permitted, ambient;
};

/// Parses `process.capabilities` (nullptr: all sets empty). Unknown names are
/// an error naming them ("`process.capabilities.bounding[2]`: unknown capability `CAP_FOO`").
util::Result<Capabilities> parse_capabilities(const util::json::Value *caps);
/// "CAP_SYS_ADMIN" -> 21; -1 when unknown.
int capability_from_name(std::string_view name);
std::string capability_name(int cap);
/// Every capability this kernel knows (for `features` and the default set).
std::vector<std::string> known_capabilities();
/// The running kernel's highest capability (/proc/sys/kernel/cap_last_cap).
int last_cap();

/// Drops from the bounding set what is not in it, then sets effective,
/// permitted and inheritable, then the ambient set. Call after setuid/setgid
/// (with PR_SET_KEEPCAPS set before them): it first raises the effective set
/// to the permitted one so that CAP_SETPCAP allows the bounding drop.
/// Inheritable never reaches an exec unless the spec lists it.
util::Status apply_capabilities(const Capabilities &caps);
/// Sets PR_SET_KEEPCAPS so capabilities survive the switch to a non-root uid.
util::Status keep_capabilities_across_setuid();
/// Raises the effective set to the permitted one (setuid() cleared it).
util::Status raise_effective_capabilities();

/// A compiled seccomp filter, ready to load.
///
/// compile_seccomp() builds the BPF program with libseccomp in the runtime
/// process; load() is one seccomp(2) call, so the container's init does no
/// allocation and no libseccomp work. The kernel refuses the load unless the
/// caller has no_new_privs set or CAP_SYS_ADMIN: load() does NOT set
/// no_new_privs itself. setup_process_and_exec loads it after every syscall
/// of the runtime's own: last before exec with `noNewPrivileges` true (or
/// when the process keeps CAP_SYS_ADMIN), otherwise right before
/// apply_capabilities drops CAP_SYS_ADMIN.
class SeccompFilter {
public:
    virtual ~SeccompFilter() = default;
    /// Loads the filter into the calling thread (with the spec's flags).
    virtual util::Status load() = 0;
    /// True when the profile uses SCMP_ACT_NOTIFY: load() then creates a
    /// listener fd that must reach `listener_path()` (send_seccomp_listener_fd).
    virtual bool uses_notify() const = 0;
    /// After a successful load() of a notify profile: the listener fd (the
    /// caller owns it); -1 otherwise. Ownership passes on the first call.
    virtual int take_notify_fd() = 0;
    /// `linux.seccomp.listenerPath` and `listenerMetadata` ("" when absent).
    virtual const std::string &listener_path() const = 0;
    virtual const std::string &listener_metadata() const = 0;
};

/// Parses and compiles `linux.seccomp` (nullptr: no filter, returns nullptr).
util::Result<std::unique_ptr<SeccompFilter>> compile_seccomp(const util::json::Value *seccomp);
/// `linux.seccomp` part of `berth features` (actions, operators, archs, flags).
util::json::Value seccomp_features();
/// Sends a seccomp listener fd to the agent at `listener_path` as runtime-spec
/// config-linux.md describes: one message on a SOCK_STREAM unix socket whose
/// payload is the container process state ({"ociVersion", "fds": ["seccompFd"],
/// "pid", "metadata", "state"}) and whose SCM_RIGHTS carries `notify_fd`.
/// Runs in the runtime process (the path is a host path): the init passes its
/// fd back over the sync socket first. `state` is the container's state JSON.
util::Status send_seccomp_listener_fd(const std::string &listener_path, std::string_view metadata, int notify_fd,
                                      pid_t pid, const util::json::Value &state);

struct Rlimit {
    int resource;
    uint64_t soft, hard;
};
/// Parses `process.rlimits` ("RLIMIT_NOFILE" ...).
util::Result<std::vector<Rlimit>> parse_rlimits(const util::json::Value *rlimits);
util::Status apply_rlimits(const std::vector<Rlimit> &limits);

/// Parses `linux.personality` ({"domain": "LINUX32", "flags": []}); nullopt when absent.
util::Result<std::optional<unsigned long>> parse_personality(const util::json::Value *personality);
util::Status apply_personality(unsigned long persona);

/// Checks `process.apparmorProfile`, `process.selinuxLabel`, `linux.mountLabel`:
/// a non-empty one on a kernel without that LSM is refused with a clear error.
/// `apply_lsm` sets the exec-time label/profile in the init (AppArmor: /proc/self/attr/apparmor/exec
/// or /proc/self/attr/exec; SELinux: /proc/self/attr/exec).
struct LsmConfig {
    std::string apparmor_profile, selinux_label, mount_label;
};
util::Result<LsmConfig> parse_lsm(const util::json::Value &spec);
util::Status apply_lsm(const LsmConfig &lsm);
/// Which LSMs the running kernel has enabled (the seam parse_lsm's tests use).
struct LsmSupport {
    bool apparmor = false;  ///< /sys/module/apparmor/parameters/enabled is Y
    bool selinux = false;   ///< selinuxfs is mounted at /sys/fs/selinux
};
LsmSupport detect_lsm_support();
util::Result<LsmConfig> parse_lsm(const util::json::Value &spec, const LsmSupport &support);
/// The mount option for `linux.mountLabel` (`context="<label>"`), "" when none:
/// the mount code appends it to tmpfs/devpts/mqueue... data strings.
std::string mount_label_option(const LsmConfig &lsm);

}  // namespace rt::security
