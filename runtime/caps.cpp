// Capabilities: names <-> numbers, parsing of `process.capabilities` and
// applying the five sets in the container's init.
//
// The name table comes from the kernel headers (CAP_CHOWN .. CAP_CHECKPOINT_RESTORE),
// not from libcap's lowercase names, so `features` and error messages use the
// spec's spelling. Capabilities the running kernel does not know (above
// /proc/sys/kernel/cap_last_cap) are skipped with a debug log, as runc does:
// a spec written for a newer kernel still runs. Applying follows runc: drop
// the bounding set, set effective/permitted/inheritable with libcap, then
// rebuild the ambient set. Inheritable is always set from the spec, so an
// empty spec set leaves nothing inheritable for the exec.
#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "runtime/security.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rt::security {
namespace {

using util::cat;
using util::Error;
using util::quote;

struct CapName {
    const char *name;
    int value;
};

#define BERTH_CAP(n) CapName{#n, n}
constexpr std::array kCaps = {
    BERTH_CAP(CAP_CHOWN), BERTH_CAP(CAP_DAC_OVERRIDE), BERTH_CAP(CAP_DAC_READ_SEARCH), BERTH_CAP(CAP_FOWNER),
    BERTH_CAP(CAP_FSETID), BERTH_CAP(CAP_KILL), BERTH_CAP(CAP_SETGID), BERTH_CAP(CAP_SETUID),
    BERTH_CAP(CAP_SETPCAP), BERTH_CAP(CAP_LINUX_IMMUTABLE), BERTH_CAP(CAP_NET_BIND_SERVICE),
    BERTH_CAP(CAP_NET_BROADCAST), BERTH_CAP(CAP_NET_ADMIN), BERTH_CAP(CAP_NET_RAW), BERTH_CAP(CAP_IPC_LOCK),
    BERTH_CAP(CAP_IPC_OWNER), BERTH_CAP(CAP_SYS_MODULE), BERTH_CAP(CAP_SYS_RAWIO), BERTH_CAP(CAP_SYS_CHROOT),
    BERTH_CAP(CAP_SYS_PTRACE), BERTH_CAP(CAP_SYS_PACCT), BERTH_CAP(CAP_SYS_ADMIN), BERTH_CAP(CAP_SYS_BOOT),
    BERTH_CAP(CAP_SYS_NICE), BERTH_CAP(CAP_SYS_RESOURCE), BERTH_CAP(CAP_SYS_TIME), BERTH_CAP(CAP_SYS_TTY_CONFIG),
    BERTH_CAP(CAP_MKNOD), BERTH_CAP(CAP_LEASE), BERTH_CAP(CAP_AUDIT_WRITE), BERTH_CAP(CAP_AUDIT_CONTROL),
    BERTH_CAP(CAP_SETFCAP), BERTH_CAP(CAP_MAC_OVERRIDE), BERTH_CAP(CAP_MAC_ADMIN), BERTH_CAP(CAP_SYSLOG),
    BERTH_CAP(CAP_WAKE_ALARM), BERTH_CAP(CAP_BLOCK_SUSPEND), BERTH_CAP(CAP_AUDIT_READ),
#ifdef CAP_PERFMON
    BERTH_CAP(CAP_PERFMON),
#endif
#ifdef CAP_BPF
    BERTH_CAP(CAP_BPF),
#endif
#ifdef CAP_CHECKPOINT_RESTORE
    BERTH_CAP(CAP_CHECKPOINT_RESTORE),
#endif
};
#undef BERTH_CAP

using CapPtr = util::CPtr<std::remove_pointer_t<cap_t>, cap_free>;

Error cap_error(std::string_view what) { return Error::from_errno(std::string(what)); }

/// Sets `flag` for every capability in `list` (all <= last_cap()).
util::Status set_flags(cap_t c, cap_flag_t flag, const std::vector<int> &list) {
    for (int cap : list) {
        cap_value_t v = cap;
        if (cap_set_flag(c, flag, 1, &v, CAP_SET) != 0) return cap_error(cat("set ", capability_name(cap)));
    }
    return util::ok();
}

bool contains(const std::vector<int> &v, int cap) { return std::find(v.begin(), v.end(), cap) != v.end(); }

}  // namespace

int last_cap() {
    static int cached = [] {
        auto text = util::read_file("/proc/sys/kernel/cap_last_cap");
        if (text.ok())
            if (auto n = util::parse_int<int>(util::trim(*text)); n && *n >= 0 && *n < 64) return *n;
        int bits = cap_max_bits();  // libcap's own probe (the bounding set)
        return bits > 0 ? bits - 1 : CAP_LAST_CAP;
    }();
    return cached;
}

int capability_from_name(std::string_view name) {
    for (const auto &c : kCaps)
        if (name == c.name) return c.value;
    return -1;
}

std::string capability_name(int cap) {
    for (const auto &c : kCaps)
        if (c.value == cap) return c.name;
    return cat("CAP_", cap);
}

std::vector<std::string> known_capabilities() {
    std::vector<std::string> out;
    int last = last_cap();
    for (const auto &c : kCaps)
        if (c.value <= last) out.emplace_back(c.name);
    return out;
}

util::Result<Capabilities> parse_capabilities(const util::json::Value *caps) {
    Capabilities out;
    if (!caps) return out;
    constexpr std::string_view where = "process.capabilities";
    TRY(util::json::expect_object(*caps, where));
    int last = last_cap();
    struct Set {
        const char *key;
        std::vector<int> *dst;
    };
    for (Set set : {Set{"bounding", &out.bounding}, Set{"effective", &out.effective},
                    Set{"inheritable", &out.inheritable}, Set{"permitted", &out.permitted},
                    Set{"ambient", &out.ambient}}) {
        auto names = TRY(util::json::opt_string_array(*caps, set.key, where));
        for (size_t i = 0; i < names.size(); i++) {
            int cap = capability_from_name(names[i]);
            if (cap < 0)
                return Error::with_code(EINVAL, cat(quote(cat(where, '.', set.key, '[', i, ']')),
                                                    ": unknown capability ", quote(names[i])));
            if (cap > last) {
                util::log::debug("capability ", names[i], " is not supported by this kernel (cap_last_cap ", last,
                                 "), skipped");
                continue;
            }
            if (!contains(*set.dst, cap)) set.dst->push_back(cap);
        }
    }
    return out;
}

util::Status keep_capabilities_across_setuid() {
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return Error::from_errno("prctl(PR_SET_KEEPCAPS)");
    return util::ok();
}

util::Status raise_effective_capabilities() {
    int last = last_cap();
    CapPtr cur(cap_get_proc());
    if (!cur) return cap_error("raise capabilities: cap_get_proc");
    for (int cap = 0; cap <= last; cap++) {
        cap_value_t v = cap;
        cap_flag_value_t permitted = CAP_CLEAR;
        if (cap_get_flag(cur.get(), v, CAP_PERMITTED, &permitted) == 0) cap_set_flag(cur.get(), CAP_EFFECTIVE, 1, &v, permitted);
    }
    if (cap_set_proc(cur.get()) != 0) return cap_error("raise the effective capability set");
    return util::ok();
}

util::Status apply_capabilities(const Capabilities &caps) {
    int last = last_cap();

    // Dropping from the bounding set needs CAP_SETPCAP in the effective set,
    // which setuid() cleared: raise effective to what is still permitted.
    TRY_CTX(raise_effective_capabilities(), "apply capabilities");

    for (int cap = 0; cap <= last; cap++) {
        if (contains(caps.bounding, cap)) continue;
        int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        if (in < 0) {
            if (errno == EINVAL) continue;  // unknown to this kernel
            return cap_error(cat("apply capabilities: read bounding ", capability_name(cap)));
        }
        if (in == 1 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
            return cap_error(cat("apply capabilities: drop ", capability_name(cap), " from the bounding set"));
    }

    // Name what the spec asks for that this process does not hold (cap_set_proc only says EPERM).
    {
        CapPtr cur(cap_get_proc());
        if (!cur) return cap_error("apply capabilities: cap_get_proc");
        std::string missing;
        for (const auto *set : {&caps.permitted, &caps.effective}) {
            for (int cap : *set) {
                cap_flag_value_t held = CAP_CLEAR;
                if (cap_get_flag(cur.get(), cap, CAP_PERMITTED, &held) == 0 && held != CAP_SET &&
                    missing.find(capability_name(cap)) == std::string::npos)
                    missing += (missing.empty() ? "" : ", ") + capability_name(cap);
            }
        }
        if (!missing.empty())
            return Error::with_code(EPERM, cat("apply capabilities: the runtime does not hold ", missing,
                                               " (not in its permitted set)"));
    }

    CapPtr next(cap_init());
    if (!next) return cap_error("apply capabilities: cap_init");
    TRY_CTX(set_flags(next.get(), CAP_EFFECTIVE, caps.effective), "apply capabilities: effective");
    TRY_CTX(set_flags(next.get(), CAP_PERMITTED, caps.permitted), "apply capabilities: permitted");
    TRY_CTX(set_flags(next.get(), CAP_INHERITABLE, caps.inheritable), "apply capabilities: inheritable");
    if (cap_set_proc(next.get()) != 0)
        return cap_error("apply capabilities: set effective, permitted and inheritable");

    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
        // Kernels before 4.3 have no ambient set: fine unless the spec asks for one.
        if (errno != EINVAL || !caps.ambient.empty()) return cap_error("apply capabilities: clear the ambient set");
    }
    for (int cap : caps.ambient) {
        // As runc: a cap not in both permitted and inheritable cannot be ambient;
        // note it at debug level (runc's default spec asks for exactly that) and go on.
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
            util::log::debug("raise ambient capability ", capability_name(cap), ": ", strerror(errno),
                             " (it must be permitted and inheritable)");
    }
    return util::ok();
}

}  // namespace rt::security
