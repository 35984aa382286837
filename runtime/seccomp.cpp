// seccomp: compiles `linux.seccomp` with libseccomp and loads it.
//
// compile_seccomp() runs in the runtime process before any clone, so an
// unknown action, operator, architecture or flag fails `create` with the
// field named. It builds the filter with libseccomp, exports the BPF program
// and keeps it; load() in the container's init is then a single seccomp(2)
// call with the spec's flags (TSYNC, LOG, SPEC_ALLOW, WAIT_KILLABLE_RECV and,
// for SCMP_ACT_NOTIFY, NEW_LISTENER). libseccomp's own no_new_privs bit is
// turned off: the caller decides about no_new_privs (see security.hpp).
//
// As runc: unknown syscall names are skipped with a debug log (they may exist
// on another architecture or a newer kernel), a rule whose action equals the
// default action is dropped, and several conditions on one argument index are
// split into separate rules (OR) because libseccomp cannot AND them.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "runtime/named.hpp"
#include "runtime/security.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/unix_socket.hpp"

#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

namespace rt::security {
namespace {

using util::cat;
using util::Error;
using util::quote;
using util::json::Value;

using Named = NamedValue<uint32_t>;

constexpr std::array kActions = {
    Named{"SCMP_ACT_KILL", SCMP_ACT_KILL},
    Named{"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
    Named{"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
    Named{"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
    Named{"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0)},
    Named{"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0)},
    Named{"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
    Named{"SCMP_ACT_LOG", SCMP_ACT_LOG},
    Named{"SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY},
};

constexpr std::array kOperators = {
    Named{"SCMP_CMP_NE", SCMP_CMP_NE}, Named{"SCMP_CMP_LT", SCMP_CMP_LT},
    Named{"SCMP_CMP_LE", SCMP_CMP_LE}, Named{"SCMP_CMP_EQ", SCMP_CMP_EQ},
    Named{"SCMP_CMP_GE", SCMP_CMP_GE}, Named{"SCMP_CMP_GT", SCMP_CMP_GT},
    Named{"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

#define BERTH_ARCH(n) Named{#n, n}
constexpr std::array kArchs = {
    BERTH_ARCH(SCMP_ARCH_X86), BERTH_ARCH(SCMP_ARCH_X86_64), BERTH_ARCH(SCMP_ARCH_X32),
    BERTH_ARCH(SCMP_ARCH_ARM), BERTH_ARCH(SCMP_ARCH_AARCH64), BERTH_ARCH(SCMP_ARCH_MIPS),
    BERTH_ARCH(SCMP_ARCH_MIPS64), BERTH_ARCH(SCMP_ARCH_MIPS64N32), BERTH_ARCH(SCMP_ARCH_MIPSEL),
    BERTH_ARCH(SCMP_ARCH_MIPSEL64), BERTH_ARCH(SCMP_ARCH_MIPSEL64N32), BERTH_ARCH(SCMP_ARCH_PPC),
    BERTH_ARCH(SCMP_ARCH_PPC64), BERTH_ARCH(SCMP_ARCH_PPC64LE), BERTH_ARCH(SCMP_ARCH_S390),
    BERTH_ARCH(SCMP_ARCH_S390X), BERTH_ARCH(SCMP_ARCH_PARISC), BERTH_ARCH(SCMP_ARCH_PARISC64),
    BERTH_ARCH(SCMP_ARCH_RISCV64),
#ifdef SCMP_ARCH_LOONGARCH64
    BERTH_ARCH(SCMP_ARCH_LOONGARCH64),
#endif
#ifdef SCMP_ARCH_M68K
    BERTH_ARCH(SCMP_ARCH_M68K),
#endif
#ifdef SCMP_ARCH_SH
    BERTH_ARCH(SCMP_ARCH_SH),
#endif
};
#undef BERTH_ARCH

/// The spec's flag names and the kernel's seccomp(2) flag bits.
constexpr std::array kFlags = {
    Named{"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
    Named{"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    Named{"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
    Named{"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
};

Error invalid(std::string_view field, std::string_view what) {
    return Error::with_code(EINVAL, cat(quote(field), ": ", what));
}

/// Whether the running kernel accepts seccomp(2) flag `flag`: probing with a
/// NULL program gives EFAULT when the flags are valid, EINVAL when not (as runc does).
bool kernel_supports_flag(uint32_t flag) {
    if (flag == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) flag |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flag, nullptr);
    return r < 0 && errno == EFAULT;
}

/// Turns an action name and its optional errnoRet into a libseccomp action.
util::Result<uint32_t> make_action(const std::string &name, std::optional<uint64_t> errno_ret,
                                   std::string_view action_field, std::string_view errno_field) {
    const Named *a = lookup_named(kActions, name);
    if (!a) return invalid(action_field, cat("unknown action ", quote(name)));
    bool takes_data = a->value == SCMP_ACT_ERRNO(0) || a->value == SCMP_ACT_TRACE(0);
    if (errno_ret && !takes_data)
        return invalid(errno_field, cat("only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not ", name));
    if (errno_ret && *errno_ret > 0xffff) return invalid(errno_field, cat("out of range: ", *errno_ret));
    if (a->value == SCMP_ACT_ERRNO(0)) return SCMP_ACT_ERRNO(errno_ret ? static_cast<uint32_t>(*errno_ret) : EPERM);
    if (a->value == SCMP_ACT_TRACE(0)) return SCMP_ACT_TRACE(errno_ret ? static_cast<uint32_t>(*errno_ret) : EPERM);
    return a->value;
}

using Ctx = std::unique_ptr<void, util::FnDeleter<seccomp_release>>;

class CompiledFilter final : public SeccompFilter {
public:
    std::vector<sock_filter> program_;
    uint32_t flags_ = 0;  ///< kernel SECCOMP_FILTER_FLAG_* bits
    bool notify_ = false;
    std::string listener_path_, listener_metadata_;
    int notify_fd_ = -1;  ///< set by load() for a notify profile; owned until taken

    ~CompiledFilter() override {
        if (notify_fd_ >= 0) close(notify_fd_);
    }

    util::Status load() override {
        sock_fprog prog{};
        prog.len = static_cast<unsigned short>(program_.size());
        prog.filter = program_.data();
        uint32_t flags = flags_;
        if (notify_) {
            flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
            if (flags & SECCOMP_FILTER_FLAG_TSYNC) flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        } else {
            flags &= ~static_cast<uint32_t>(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
        }
        long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
        if (r < 0) {
            if (errno == EACCES)
                return Error::from_errno("load seccomp filter (needs no_new_privs or CAP_SYS_ADMIN)");
            return Error::from_errno("load seccomp filter");
        }
        if (notify_) {
            notify_fd_ = static_cast<int>(r);
        } else if (r > 0) {
            return Error::msg(cat("load seccomp filter: thread ", r, " could not be synchronized (TSYNC)"));
        }
        return util::ok();
    }
    bool uses_notify() const override { return notify_; }
    int take_notify_fd() override { return std::exchange(notify_fd_, -1); }
    const std::string &listener_path() const override { return listener_path_; }
    const std::string &listener_metadata() const override { return listener_metadata_; }
};

/// Adds one `linux.seccomp.syscalls[i]` entry to the filter.
util::Status add_syscall_rule(scmp_filter_ctx ctx, const Value &entry, std::string_view where, uint32_t default_action,
                              CompiledFilter &out) {
    TRY(util::json::expect_object(entry, where));
    auto names = TRY(util::json::opt_string_array(entry, "names", where));
    if (auto single = TRY(util::json::opt_string(entry, "name", where))) names.push_back(*single);  // old profiles
    auto action_name = TRY(util::json::req_string(entry, "action", where));
    auto errno_ret = TRY(util::json::opt_uint(entry, "errnoRet", where));
    uint32_t action = TRY(make_action(action_name, errno_ret, util::json::field_path(where, "action"),
                                      util::json::field_path(where, "errnoRet")));
    if (action == SCMP_ACT_NOTIFY) out.notify_ = true;

    std::vector<scmp_arg_cmp> conds;
    bool repeated_index = false;
    if (const Value *args = TRY(util::json::opt_array(entry, "args", where))) {
        unsigned seen[6] = {};
        for (size_t j = 0; j < args->size(); j++) {
            std::string aw = cat(where, ".args[", j, ']');
            const Value &arg = (*args)[j];
            TRY(util::json::expect_object(arg, aw));
            auto index = TRY(util::json::opt_uint(arg, "index", aw));
            if (!index) return invalid(util::json::field_path(aw, "index"), "missing");
            if (*index >= 6) return invalid(util::json::field_path(aw, "index"), cat("must be below 6, got ", *index));
            auto value = TRY(util::json::opt_uint(arg, "value", aw));
            if (!value) return invalid(util::json::field_path(aw, "value"), "missing");
            auto value_two = TRY(util::json::opt_uint(arg, "valueTwo", aw));
            auto op_name = TRY(util::json::req_string(arg, "op", aw));
            const Named *op = lookup_named(kOperators, op_name);
            if (!op) return invalid(util::json::field_path(aw, "op"), cat("unknown operator ", quote(op_name)));
            scmp_arg_cmp c{};
            c.arg = static_cast<unsigned>(*index);
            c.op = static_cast<scmp_compare>(op->value);
            c.datum_a = *value;
            c.datum_b = value_two.value_or(0);
            conds.push_back(c);
            if (++seen[*index] > 1) repeated_index = true;
        }
    }

    if (action == default_action) {
        util::log::debug(quote(where), ": action equals the default action, rule skipped");
        return util::ok();
    }
    for (const auto &name : names) {
        int nr = seccomp_syscall_resolve_name(name.c_str());
        if (nr == __NR_SCMP_ERROR) {
            util::log::debug(quote(where), ": unknown syscall ", quote(name), ", skipped");
            continue;
        }
        auto add = [&](const scmp_arg_cmp *c, unsigned n) -> util::Status {
            int r = seccomp_rule_add_array(ctx, action, nr, n, c);
            if (r == -EDOM || r == -EOPNOTSUPP) {
                // A pseudo-syscall with no number on any architecture of the filter.
                util::log::debug(quote(where), ": syscall ", quote(name), " not on the filter's architectures, skipped");
                return util::ok();
            }
            if (r < 0)
                return Error::with_code(-r, cat(quote(where), ": add rule for syscall ", quote(name), " (", action_name, ')'));
            return util::ok();
        };
        if (repeated_index) {
            for (const auto &c : conds) TRY(add(&c, 1));
        } else {
            TRY(add(conds.data(), static_cast<unsigned>(conds.size())));
        }
    }
    return util::ok();
}

util::Result<std::vector<sock_filter>> export_program(scmp_filter_ctx ctx) {
    util::UniqueFd mem(memfd_create("berth-seccomp", MFD_CLOEXEC));
    if (!mem) return Error::from_errno("export seccomp filter: memfd_create");
    if (int r = seccomp_export_bpf(ctx, mem.get()); r < 0)
        return Error::with_code(-r, "export seccomp filter");
    if (lseek(mem.get(), 0, SEEK_SET) < 0) return Error::from_errno("export seccomp filter: lseek");
    std::string bytes = TRY_CTX(util::read_all(mem.get()), "export seccomp filter");
    if (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0)
        return Error::msg(cat("export seccomp filter: unexpected program size ", bytes.size()));
    size_t n = bytes.size() / sizeof(sock_filter);
    if (n > BPF_MAXINSNS) return Error::msg(cat("seccomp filter too large: ", n, " instructions (kernel limit ", BPF_MAXINSNS, ')'));
    std::vector<sock_filter> prog(n);
    memcpy(prog.data(), bytes.data(), bytes.size());
    return prog;
}

}  // namespace

util::Result<std::unique_ptr<SeccompFilter>> compile_seccomp(const Value *seccomp) {
    using Ptr = std::unique_ptr<SeccompFilter>;
    if (!seccomp) return Ptr();
    constexpr std::string_view where = "linux.seccomp";
    TRY(util::json::expect_object(*seccomp, where));
    auto out = std::make_unique<CompiledFilter>();

    auto default_name = TRY(util::json::req_string(*seccomp, "defaultAction", where));
    auto default_errno = TRY(util::json::opt_uint(*seccomp, "defaultErrnoRet", where));
    uint32_t default_action =
        TRY(make_action(default_name, default_errno, "linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet"));
    if (default_action == SCMP_ACT_NOTIFY)
        return invalid("linux.seccomp.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action");

    Ctx ctx(seccomp_init(default_action));
    if (!ctx) return invalid("linux.seccomp.defaultAction", cat("libseccomp refused ", quote(default_name)));
    if (int r = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0); r < 0)
        return Error::with_code(-r, "seccomp: clear the no_new_privs attribute");

    auto archs = TRY(util::json::opt_string_array(*seccomp, "architectures", where));
    for (size_t i = 0; i < archs.size(); i++) {
        std::string field = cat(where, ".architectures[", i, ']');
        const Named *a = lookup_named(kArchs, archs[i]);
        if (!a) return invalid(field, cat("unknown architecture ", quote(archs[i])));
        int r = seccomp_arch_add(ctx.get(), a->value);
        if (r == -EDOM) {
            // libseccomp cannot mix byte orders in one filter; such a process cannot run here anyway.
            util::log::debug(quote(field), ": ", archs[i], " has another byte order than this host, skipped");
            continue;
        }
        if (r < 0 && r != -EEXIST) return Error::with_code(-r, cat(quote(field), ": add architecture ", archs[i]));
    }

    auto flags = TRY(util::json::opt_string_array(*seccomp, "flags", where));
    for (size_t i = 0; i < flags.size(); i++) {
        std::string field = cat(where, ".flags[", i, ']');
        const Named *f = lookup_named(kFlags, flags[i]);
        if (!f) return invalid(field, cat("unknown flag ", quote(flags[i])));
        if (!kernel_supports_flag(f->value)) return invalid(field, cat(flags[i], " is not supported by this kernel"));
        out->flags_ |= f->value;
    }

    out->listener_path_ = TRY(util::json::opt_string(*seccomp, "listenerPath", where)).value_or("");
    out->listener_metadata_ = TRY(util::json::opt_string(*seccomp, "listenerMetadata", where)).value_or("");

    if (const Value *calls = TRY(util::json::opt_array(*seccomp, "syscalls", where))) {
        for (size_t i = 0; i < calls->size(); i++)
            TRY(add_syscall_rule(ctx.get(), (*calls)[i], cat(where, ".syscalls[", i, ']'), default_action, *out));
    }
    if (out->notify_ && out->listener_path_.empty())
        return invalid("linux.seccomp.listenerPath", "required when a rule uses SCMP_ACT_NOTIFY");
    if (!out->notify_ && !out->listener_path_.empty())
        util::log::debug("linux.seccomp.listenerPath is set but no rule uses SCMP_ACT_NOTIFY");

    out->program_ = TRY(export_program(ctx.get()));
    return Ptr(std::move(out));
}

Value seccomp_features() {
    Value v = Value::object();
    v["enabled"] = true;
    Value actions = Value::array(), ops = Value::array(), archs = Value::array(), known = Value::array(),
          supported = Value::array();
    for (const auto &a : kActions) actions.push_back(a.name);
    for (const auto &o : kOperators) ops.push_back(o.name);
    for (const auto &a : kArchs) archs.push_back(a.name);
    for (const auto &f : kFlags) {
        known.push_back(f.name);
        if (kernel_supports_flag(f.value)) supported.push_back(f.name);
    }
    v["actions"] = std::move(actions);
    v["operators"] = std::move(ops);
    v["archs"] = std::move(archs);
    v["knownFlags"] = std::move(known);
    v["supportedFlags"] = std::move(supported);
    return v;
}

util::Status send_seccomp_listener_fd(const std::string &listener_path, std::string_view metadata, int notify_fd,
                                      pid_t pid, const Value &state) {
    std::string ctx = cat("send the seccomp listener fd to ", quote(listener_path));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (listener_path.empty() || listener_path.size() >= sizeof addr.sun_path)
        return Error::with_code(ENAMETOOLONG, ctx + ": bad socket path length");
    memcpy(addr.sun_path, listener_path.data(), listener_path.size());
    util::UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) return Error::from_errno(ctx + ": socket");
    if (connect(sock.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0)
        return Error::from_errno(ctx + ": connect");

    Value msg = Value::object();
    const Value *ver = state.is_object() && state.contains("ociVersion") ? &state["ociVersion"] : nullptr;
    msg["ociVersion"] = ver && ver->is_string() ? *ver : Value("1.2.0");
    msg["fds"] = Value::array({"seccompFd"});
    msg["pid"] = pid;
    msg["metadata"] = std::string(metadata);
    msg["state"] = state;
    std::string payload = util::json::dump(msg);

    TRY_CTX(util::send_fd(sock.get(), notify_fd, payload), ctx);
    return util::ok();
}

}  // namespace rt::security
