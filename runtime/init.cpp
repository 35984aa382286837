// The container's init; see init.hpp.
#include "runtime/init.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "runtime/console.hpp"
#include "runtime/mounts.hpp"
#include "runtime/process_setup.hpp"
#include "runtime/procfs.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

namespace rt {
namespace {

using util::Error;

struct InitContext {
    InitArgs *args;
    std::string state_json;
    bool go_ahead = false;
    bool reported = false;
};

/// The go-ahead (maps written, cgroup joined, createRuntime hooks done), once.
util::Status await_go_ahead(InitContext &ctx) {
    if (ctx.go_ahead) return util::ok();
    char buf[65536];
    ssize_t n;
    do n = ::recv(ctx.args->sync_fd, buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return Error::msg("runtime went away before the go-ahead");
    ctx.state_json.assign(buf, static_cast<size_t>(n));
    ctx.go_ahead = true;
    return util::ok();
}

void send_msg(int fd, std::string_view msg) {
    (void)::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL);
}

util::Status run_create_container_hooks(void *p) {
    auto *ctx = static_cast<InitContext *>(p);
    TRY(await_go_ahead(*ctx));
    return hooks::run_hooks(hooks::Kind::CreateContainer, *ctx->args->hooks, ctx->state_json);
}

/// Reports "ok", then blocks until `start` opens the fifo for reading.
util::Status wait_for_start(void *p) {
    auto *ctx = static_cast<InitContext *>(p);
    InitArgs &a = *ctx->args;
    // From here the init outlives the runtime (`create` exits).
    ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    TRY(await_go_ahead(*ctx));
    send_msg(a.sync_fd, kSyncOk);
    ctx->reported = true;
    ::close(a.sync_fd);
    a.sync_fd = -1;
    // Through the procfs handle: a container without a mount namespace has no /proc.
    auto w = TRY_CTX(procfs::reopen_fd(a.fifo_fd, O_WRONLY), "open exec fifo");
    ::close(a.fifo_fd);
    a.fifo_fd = -1;
    if (::write(w.get(), "0", 1) != 1) return Error::from_errno("write exec fifo");
    w.reset();
    return hooks::run_hooks(hooks::Kind::StartContainer, *a.hooks, ctx->state_json);
}

util::Status init_steps(InitContext &ctx) {
    InitArgs &a = *ctx.args;
    const Spec &spec = *a.spec;
    // Into the cgroup first, so that what we allocate is charged there.
    bool in_cgroup = false;
    if (a.self_join) {
        TRY(cgroup::join_self_v1(*a.self_join));
        a.self_join->v2_dir.reset();
        in_cgroup = a.in_cgroup_v2;
    }
    // Nothing else before the createContainer hooks needs the runtime's side
    // (the cgroup mounts bind the directories it names), except the id maps
    // of a new user namespace, and the cgroup a new cgroup namespace is
    // rooted at when the runtime moves us: the rootfs is built meanwhile.
    if (spec.find_namespace(CLONE_NEWUSER) || (spec.find_namespace(CLONE_NEWCGROUP) && !in_cgroup))
        TRY(await_go_ahead(ctx));

    TRY(ns::join_in_init(*a.joins));
    if (int f = ns::unshare_after_join(spec); f && ::unshare(f) < 0) return Error::from_errno("unshare namespaces");
    if (spec.find_namespace(CLONE_NEWUSER)) {
        // Become root of the user namespace (we entered it as the overflow
        // uid); files we create must belong to a mapped id.
        if (::setresgid(0, 0, 0) < 0) return Error::from_errno("setgid 0 in the user namespace");
        if (::setresuid(0, 0, 0) < 0) return Error::from_errno("setuid 0 in the user namespace");
    }
    if (ns::wants_new_cgroupns(spec) && ::unshare(CLONE_NEWCGROUP) < 0) return Error::from_errno("create cgroup namespace");
    if (::setsid() < 0 && errno != EPERM) return Error::from_errno("setsid");
    if (!a.no_new_keyring) {
        // KEYCTL_JOIN_SESSION_KEYRING with no name: a fresh anonymous keyring.
        if (::syscall(SYS_keyctl, 1, nullptr) < 0 && errno != ENOSYS && errno != EPERM && errno != EACCES)
            return Error::from_errno("join session keyring");
    }
    // Test builds: hold here until the go-ahead is queued, unread (the
    // runtime sends it while the rootfs is built; a step failing after it
    // came must still be reported, see read_report in container.cpp).
    if (const char *hold = util::test_hook_env("BERTH_TEST_INIT_HOLD"); hold && std::string_view(hold) == "go-ahead") {
        struct pollfd p = {a.sync_fd, POLLIN, 0};
        while (!ctx.go_ahead && ::poll(&p, 1, -1) < 0 && errno == EINTR) {
        }
    }
    ::umask(0);
    mounts::RootfsOptions ro;
    ro.no_pivot = a.no_pivot;
    ro.new_cgroupns = ns::wants_new_cgroupns(spec);
    ro.before_pivot = run_create_container_hooks;
    ro.before_pivot_ctx = &ctx;
    ro.cgroup_dirs = &a.cgroup_dirs;
    TRY_CTX(mounts::setup_rootfs(spec, ro), "rootfs");
    const Process &p = *spec.process;
    if (p.terminal) {
        std::optional<console::Size> size;
        if (p.console_size)
            size = console::Size{static_cast<unsigned short>(p.console_size->first),
                                 static_cast<unsigned short>(p.console_size->second)};
        TRY_CTX(console::setup_console(a.console_fd, size), "console");
        a.console_fd = -1;
    } else if (a.console_fd >= 0) {
        ::close(a.console_fd);
        a.console_fd = -1;
    }
    if (spec.hostname && ::sethostname(spec.hostname->data(), spec.hostname->size()) < 0)
        return Error::from_errno("sethostname");
    if (spec.domainname && ::setdomainname(spec.domainname->data(), spec.domainname->size()) < 0)
        return Error::from_errno("setdomainname");
    if (spec.personality) TRY(security::apply_personality(*spec.personality));
    ProcessSetup ps;
    ps.process = &p;
    ps.seccomp = spec.seccomp;
    ps.preserve_fds = a.preserve_fds;
    ps.before_exec = wait_for_start;
    ps.before_exec_ctx = &ctx;
    ps.internal_fds = {a.sync_fd, a.fifo_fd};
    return setup_process_and_exec(ps);
}

}  // namespace

void run_init(InitArgs &args) {
    // Until exec: not dumpable (no ptrace, no /proc/<pid>/exe or mem for
    // others without CAP_SYS_PTRACE; with it, /proc/<pid>/exe still reaches
    // no writable berth binary, see exe_protect.hpp), killed if the
    // runtime dies before we report.
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() == 1) _exit(1);
    // Whatever the runtime blocked or ignored must not reach the container.
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP) ::signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Log lines go to our stderr (the log file fd is closed with the others).
    util::log::set_fd(2);
    InitContext ctx{&args, {}, false};
    auto st = init_steps(ctx);
    std::string msg = st ? std::string("exec returned") : st.error().message();
    if (!ctx.reported && args.sync_fd >= 0) {
        send_msg(args.sync_fd, util::cat(kSyncErrorPrefix, msg));
    } else {
        util::log::error(msg);
    }
    _exit(127);
}

}  // namespace rt
