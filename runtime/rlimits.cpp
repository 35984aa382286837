// Resource limits (`process.rlimits`) and the execution domain
// (`linux.personality`): parsed in the runtime process, applied in the init.
//
// Every RLIMIT_* the kernel defines is accepted by name; an unknown name, a
// duplicate type or a soft limit above the hard one is an error naming the
// entry, as the runtime-spec asks ("MUST generate an error for any values
// which cannot be mapped").
#include <sys/personality.h>
#include <sys/resource.h>

#include <array>
#include <cerrno>

#include "runtime/named.hpp"
#include "runtime/security.hpp"
#include "util/strings.hpp"

namespace rt::security {
namespace {

using util::cat;
using util::Error;
using util::quote;

using Named = NamedValue<unsigned long>;

#define BERTH_RL(n) Named{#n, n}
constexpr std::array kRlimits = {
    BERTH_RL(RLIMIT_AS),      BERTH_RL(RLIMIT_CORE),       BERTH_RL(RLIMIT_CPU),     BERTH_RL(RLIMIT_DATA),
    BERTH_RL(RLIMIT_FSIZE),   BERTH_RL(RLIMIT_LOCKS),      BERTH_RL(RLIMIT_MEMLOCK), BERTH_RL(RLIMIT_MSGQUEUE),
    BERTH_RL(RLIMIT_NICE),    BERTH_RL(RLIMIT_NOFILE),     BERTH_RL(RLIMIT_NPROC),   BERTH_RL(RLIMIT_RSS),
    BERTH_RL(RLIMIT_RTPRIO),  BERTH_RL(RLIMIT_RTTIME),     BERTH_RL(RLIMIT_SIGPENDING),
    BERTH_RL(RLIMIT_STACK),
};
#undef BERTH_RL

constexpr std::array kDomains = {
    Named{"LINUX", PER_LINUX},
    Named{"LINUX32", PER_LINUX32},
};

constexpr std::array kPersonaFlags = {
    Named{"ADDR_NO_RANDOMIZE", ADDR_NO_RANDOMIZE}, Named{"ADDR_COMPAT_LAYOUT", ADDR_COMPAT_LAYOUT},
    Named{"ADDR_LIMIT_32BIT", ADDR_LIMIT_32BIT},   Named{"ADDR_LIMIT_3GB", ADDR_LIMIT_3GB},
    Named{"FDPIC_FUNCPTRS", FDPIC_FUNCPTRS},       Named{"MMAP_PAGE_ZERO", MMAP_PAGE_ZERO},
    Named{"READ_IMPLIES_EXEC", READ_IMPLIES_EXEC}, Named{"SHORT_INODE", SHORT_INODE},
    Named{"STICKY_TIMEOUTS", STICKY_TIMEOUTS},     Named{"UNAME26", UNAME26},
    Named{"WHOLE_SECONDS", WHOLE_SECONDS},
};

}  // namespace

util::Result<std::vector<Rlimit>> parse_rlimits(const util::json::Value *rlimits) {
    std::vector<Rlimit> out;
    if (!rlimits) return out;
    if (!rlimits->is_array())
        return Error::with_code(EINVAL, cat("`process.rlimits`: expected an array, got ", util::json::type_name(*rlimits)));
    for (size_t i = 0; i < rlimits->size(); i++) {
        std::string where = cat("process.rlimits[", i, ']');
        const auto &entry = (*rlimits)[i];
        TRY(util::json::expect_object(entry, where));
        auto type = TRY(util::json::req_string(entry, "type", where));
        const Named *r = lookup_named(kRlimits, type);
        if (!r) return Error::with_code(EINVAL, cat(quote(where + ".type"), ": unknown resource limit ", quote(type)));
        auto soft = TRY(util::json::opt_uint(entry, "soft", where));
        auto hard = TRY(util::json::opt_uint(entry, "hard", where));
        if (!soft) return Error::with_code(EINVAL, cat(quote(where + ".soft"), ": missing"));
        if (!hard) return Error::with_code(EINVAL, cat(quote(where + ".hard"), ": missing"));
        if (*soft > *hard)
            return Error::with_code(EINVAL, cat(quote(where), ": soft limit ", *soft, " is above the hard limit ", *hard,
                                                " for ", type));
        for (const auto &prev : out)
            if (prev.resource == static_cast<int>(r->value))
                return Error::with_code(EINVAL, cat(quote(where + ".type"), ": duplicate ", type));
        out.push_back(Rlimit{static_cast<int>(r->value), *soft, *hard});
    }
    return out;
}

util::Status apply_rlimits(const std::vector<Rlimit> &limits) {
    for (const auto &l : limits) {
        rlimit64 r{l.soft, l.hard};
        if (setrlimit64(static_cast<__rlimit_resource>(l.resource), &r) != 0) {
            std::string name = cat(l.resource);
            for (const auto &n : kRlimits)
                if (static_cast<int>(n.value) == l.resource) name = n.name;
            return Error::from_errno(cat("setrlimit ", name, " (soft ", l.soft, ", hard ", l.hard, ')'));
        }
    }
    return util::ok();
}

util::Result<std::optional<unsigned long>> parse_personality(const util::json::Value *personality) {
    using Opt = std::optional<unsigned long>;
    if (!personality) return Opt();
    constexpr std::string_view where = "linux.personality";
    TRY(util::json::expect_object(*personality, where));
    auto domain = TRY(util::json::req_string(*personality, "domain", where));
    const Named *d = lookup_named(kDomains, domain);
    if (!d) return Error::with_code(EINVAL, cat("`linux.personality.domain`: unknown domain ", quote(domain)));
    unsigned long persona = d->value;
    auto flags = TRY(util::json::opt_string_array(*personality, "flags", where));
    for (size_t i = 0; i < flags.size(); i++) {
        const Named *f = lookup_named(kPersonaFlags, flags[i]);
        if (!f)
            return Error::with_code(EINVAL, cat(quote(cat(where, ".flags[", i, ']')), ": unknown personality flag ",
                                                quote(flags[i])));
        persona |= f->value;
    }
    return Opt(persona);
}

util::Status apply_personality(unsigned long persona) {
    if (personality(persona) < 0) return Error::from_errno(cat("personality(", persona, ')'));
    return util::ok();
}

}  // namespace rt::security
