// The foreground `run` driver; see run_bundle.hpp.
#include "run_bundle.hpp"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "runtime/console.hpp"
#include "runtime/init_handle.hpp"
#include "util/fd.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

/// Reaps the exited children that are not the init (orphans the container
/// left to us as subreaper). True when the init itself has exited: it is
/// left for InitHandle::try_wait, which gives its code.
bool reap_orphans(pid_t init) {
    for (;;) {
        siginfo_t si{};
        if (::waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0) return false;
        if (si.si_pid == init) return true;
        int status;
        (void)::waitpid(si.si_pid, &status, WNOHANG);
    }
}

}  // namespace

BlockedSignals::BlockedSignals(std::initializer_list<int> sigs) {
    sigemptyset(&set_);
    for (int s : sigs) sigaddset(&set_, s);
    sigprocmask(SIG_BLOCK, &set_, &old_);
}

BlockedSignals::~BlockedSignals() { sigprocmask(SIG_SETMASK, &old_, nullptr); }

util::Result<int> run_bundle(const rt::CreateOptions &opts, bool detach, bool keep) {
    if (detach) {
        TRY(rt::create_container(opts));
        TRY(rt::start_container(opts.root, opts.id));
        return 0;
    }
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    BlockedSignals blocked{SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

    // A terminal without --console-socket: the master comes to us.
    rt::CreateOptions co = opts;
    util::UniqueFd console_ours, console_theirs;
    if (co.console_socket.empty() && co.console_fd < 0) {
        int sp[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) return util::Error::from_errno("socketpair");
        console_ours.reset(sp[0]);
        console_theirs.reset(sp[1]);
        co.console_fd = console_theirs.get();
    }
    rt::State st = TRY(rt::create_container(co));
    console_theirs.reset();
    auto started = [&]() -> util::Result<std::pair<rt::InitHandle, util::UniqueFd>> {
        util::UniqueFd master;
        if (st.terminal && console_ours) master = TRY(rt::console::recv_fd(console_ours.get()));
        auto init = TRY(rt::InitHandle::open(st));
        TRY(rt::start_container(opts.root, opts.id));
        return std::make_pair(std::move(init), std::move(master));
    }();
    if (!started) {
        (void)rt::delete_container(opts.root, opts.id, true);
        return std::move(started).error();
    }
    auto [init, master] = std::move(*started);
    if (master) (void)rt::console::proxy_console(master.get());

    int code = 255;
    for (;;) {
        auto done = init.try_wait();
        if (!done) break;  // not our child any more: nothing to wait for
        if (*done) {
            code = **done;
            break;
        }
        if (reap_orphans(init.pid())) continue;
        siginfo_t info;
        int sig = ::sigwaitinfo(&blocked.set(), &info);
        if (sig > 0 && sig != SIGCHLD) ::kill(init.pid(), sig);
    }
    if (!keep) TRY(rt::delete_container(opts.root, opts.id, true));
    return code;
}

}  // namespace cmd
