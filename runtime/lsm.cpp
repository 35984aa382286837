// AppArmor and SELinux fields: `process.apparmorProfile`,
// `process.selinuxLabel` and `linux.mountLabel`.
//
// berth does not load profiles or policy; it asks the kernel to switch the
// init to the given profile/label at exec, as runc does. A non-empty field on
// a kernel without that LSM is refused at parse time, so a container never
// silently runs unconfined when its spec asked for confinement.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/procfs.hpp"
#include "runtime/security.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace rt::security {
namespace {

using util::cat;
using util::Error;
using util::quote;

}  // namespace

LsmSupport detect_lsm_support() {
    LsmSupport s;
    auto enabled = util::read_file("/sys/module/apparmor/parameters/enabled", 16);
    s.apparmor = enabled.ok() && util::trim(*enabled) == "Y";
    s.selinux = access("/sys/fs/selinux/enforce", F_OK) == 0;
    return s;
}

util::Result<LsmConfig> parse_lsm(const util::json::Value &spec, const LsmSupport &support) {
    LsmConfig out;
    const util::json::Value *process = TRY(util::json::opt_object(spec, "process", ""));
    const util::json::Value *linux_obj = TRY(util::json::opt_object(spec, "linux", ""));
    if (process) {
        out.apparmor_profile = TRY(util::json::opt_string(*process, "apparmorProfile", "process")).value_or("");
        out.selinux_label = TRY(util::json::opt_string(*process, "selinuxLabel", "process")).value_or("");
    }
    if (linux_obj) out.mount_label = TRY(util::json::opt_string(*linux_obj, "mountLabel", "linux")).value_or("");
    if (!out.apparmor_profile.empty() && !support.apparmor)
        return Error::with_code(EINVAL, cat("`process.apparmorProfile`: profile ", quote(out.apparmor_profile),
                                            " requested but AppArmor is not enabled on this kernel"));
    if (!out.selinux_label.empty() && !support.selinux)
        return Error::with_code(EINVAL, cat("`process.selinuxLabel`: label ", quote(out.selinux_label),
                                            " requested but SELinux is not enabled on this kernel"));
    if (!out.mount_label.empty() && !support.selinux)
        return Error::with_code(EINVAL, cat("`linux.mountLabel`: label ", quote(out.mount_label),
                                            " requested but SELinux is not enabled on this kernel"));
    return out;
}

util::Result<LsmConfig> parse_lsm(const util::json::Value &spec) { return parse_lsm(spec, detect_lsm_support()); }

util::Status apply_lsm(const LsmConfig &lsm) {
    if (!lsm.apparmor_profile.empty()) {
        std::string cmd = cat("exec ", lsm.apparmor_profile);
        // Kernels since 5.1 have the per-LSM directory; older ones only the shared attr.
        // Written through a verified procfs handle (procfs.hpp), never by path.
        const char *attr = procfs::self_exists("attr/apparmor/exec") ? "attr/apparmor/exec" : "attr/exec";
        TRY_CTX(procfs::write_self(attr, cmd), cat("apply AppArmor profile ", quote(lsm.apparmor_profile)));
    }
    if (!lsm.selinux_label.empty())
        TRY_CTX(procfs::write_self("attr/exec", lsm.selinux_label),
                cat("apply SELinux label ", quote(lsm.selinux_label)));
    return util::ok();
}

std::string mount_label_option(const LsmConfig &lsm) {
    if (lsm.mount_label.empty()) return {};
    return cat("context=\"", lsm.mount_label, '"');
}

}  // namespace rt::security
