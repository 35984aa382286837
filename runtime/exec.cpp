// `exec` (see exec.hpp): building the process and entering the container.
//
// Three fds tie berth and its child together, all O_CLOEXEC: `sync` (berth
// writes one byte once the child is in the cgroup), `errors` (the child
// writes why it failed; EOF without data means execve succeeded), and, with
// --tty, the console socket (conmon's, or our own socketpair when berth
// proxies the terminal itself).
#include "runtime/exec.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/cgroup.hpp"
#include "runtime/console.hpp"
#include "runtime/process_setup.hpp"
#include "runtime/security.hpp"
#include "runtime/state.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/log.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

namespace rt {
namespace {

volatile sig_atomic_t g_exec_child = 0;  ///< the pid signals are forwarded to; 0: none
volatile sig_atomic_t g_exec_master = -1; ///< the pty master berth proxies; -1: none

void forward_signal(int sig) {
    // With a proxied terminal a resize is copied to the pty (the kernel then
    // sends SIGWINCH to the process's foreground group itself).
    if (sig == SIGWINCH && g_exec_master >= 0) {
        winsize ws{};
        if (::ioctl(0, TIOCGWINSZ, &ws) == 0) ::ioctl(g_exec_master, TIOCSWINSZ, &ws);
        return;
    }
    pid_t child = g_exec_child;
    if (child > 0) ::kill(child, sig);
}

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};

void install_forwarding(pid_t child) {
    g_exec_child = child;
    struct sigaction sa {};
    sa.sa_handler = forward_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int s : kForwarded) sigaction(s, &sa, nullptr);
}

void add_cap(std::vector<int> &set, int cap) {
    for (int c : set)
        if (c == cap) return;
    set.push_back(cap);
}

/// Runs in the forked child; returns only with the reason it failed.
util::Status child_main(const State &st, const Spec &spec, const Process &proc, const ExecOptions &opts, int sync_fd,
                        int console_fd, int error_fd) {
    char go = 0;
    ssize_t n;
    do {
        n = ::read(sync_fd, &go, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) return util::Error::msg("berth gave up before the process could start");
    ::close(sync_fd);
    TRY_CTX(enter_container(st), "enter the container");
    if (proc.terminal) {
        std::optional<console::Size> size;
        if (proc.console_size)
            size = console::Size{static_cast<unsigned short>(proc.console_size->first),
                                 static_cast<unsigned short>(proc.console_size->second)};
        TRY(console::setup_console(console_fd, size));
    }
    ProcessSetup setup;
    setup.process = &proc;
    setup.seccomp = spec.seccomp;
    setup.preserve_fds = opts.preserve_fds;
    setup.internal_fds = {error_fd};
    return setup_process_and_exec(setup);
}

}  // namespace

util::Status parse_exec_user(std::string_view s, User &user) {
    auto parts = util::split(s, ':');
    if (parts.empty() || parts.size() > 2)
        return util::Error::msg(util::cat("--user ", util::quote(s), ": expected uid[:gid]"));
    auto uid = util::parse_int<uint32_t>(parts[0]);
    if (!uid) return util::Error::msg(util::cat("--user ", util::quote(s), ": uid must be a number"));
    user.uid = *uid;
    if (parts.size() == 2) {
        auto gid = util::parse_int<uint32_t>(parts[1]);
        if (!gid) return util::Error::msg(util::cat("--user ", util::quote(s), ": gid must be a number"));
        user.gid = *gid;
    }
    return util::ok();
}

util::Result<Process> exec_process(const ExecRequest &req, const Process *base) {
    if (!req.process_file.empty()) {
        auto text = TRY_CTX(util::read_file(req.process_file, 1 << 20), util::cat("--process ", util::quote(req.process_file)));
        auto doc = TRY_CTX(util::json::parse(text, req.process_file), "--process");
        auto p = TRY_CTX(parse_process(doc, "process"), util::cat("--process ", util::quote(req.process_file)));
        if (p.args.empty()) return util::Error::msg(util::cat("--process ", util::quote(req.process_file), ": `process.args` is empty"));
        return p;
    }
    Process p = base ? *base : Process{};
    if (req.args.empty()) return util::Error::msg("exec: no command given (pass it after the container id, or --process)");
    p.args = req.args;
    if (req.cwd) p.cwd = *req.cwd;
    if (!req.apparmor.empty()) p.apparmor_profile = req.apparmor;
    if (!req.process_label.empty()) p.selinux_label = req.process_label;
    for (const auto &name : req.caps) {
        std::string full = name;
        for (auto &c : full) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
        if (!full.starts_with("CAP_")) full = "CAP_" + full;
        int cap = security::capability_from_name(full);
        if (cap < 0) return util::Error::msg(util::cat("--cap ", util::quote(name), ": unknown capability"));
        add_cap(p.capabilities.bounding, cap);
        add_cap(p.capabilities.effective, cap);
        add_cap(p.capabilities.permitted, cap);
        // As runc: ambient only when the spec already grants inheritable ones.
        if (!p.capabilities.inheritable.empty()) add_cap(p.capabilities.ambient, cap);
    }
    for (const auto &e : req.env) p.env.push_back(e);
    p.terminal = req.tty.value_or(false);
    if (!p.terminal) p.console_size.reset();
    if (req.no_new_privs) p.no_new_privileges = *req.no_new_privs;
    if (req.user) TRY(parse_exec_user(*req.user, p.user));
    for (uint32_t g : req.additional_gids) p.user.additional_gids.push_back(g);
    return p;
}

util::Result<int> exec_in_container(const State &st, const Spec &spec, const Process &proc, const ExecOptions &opts) {
    if (proc.args.empty()) return util::Error::msg("exec: the process has no args");
    if (proc.terminal && opts.detach && opts.console_socket.empty())
        return util::Error::msg("exec: cannot allocate a terminal for a detached process without --console-socket");
    if (!proc.terminal && !opts.console_socket.empty())
        return util::Error::msg("exec: --console-socket is only used with --tty (process.terminal)");

    cgroup::ManagerOptions mopts;
    mopts.systemd = opts.systemd_cgroup || st.systemd_cgroup;
    auto mgr = TRY_CTX(cgroup::open_manager(st.cgroup_path, st.id, mopts), "exec: open the container's cgroup");

    // With --tty: the socket the child sends the pty master over.
    util::UniqueFd console_parent, console_child;
    if (proc.terminal) {
        if (!opts.console_socket.empty()) {
            console_child = TRY_CTX(console::connect_console_socket(opts.console_socket), "exec");
        } else {
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return util::Error::from_errno("exec: socketpair");
            console_parent.reset(sv[0]);
            console_child.reset(sv[1]);
        }
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return util::Error::from_errno("exec: pipe");
    util::UniqueFd sync_r(p[0]), sync_w(p[1]);
    if (pipe2(p, O_CLOEXEC) < 0) return util::Error::from_errno("exec: pipe");
    util::UniqueFd err_r(p[0]), err_w(p[1]);

    // Only our children enter it; berth itself stays in the host's.
    TRY_CTX(enter_pid_namespace(st), "exec: join the container's pid namespace");

    pid_t pid = fork();
    if (pid < 0) return util::Error::from_errno("exec: fork");
    if (pid == 0) {
        sync_w.reset();
        err_r.reset();
        console_parent.reset();
        auto st2 = child_main(st, spec, proc, opts, sync_r.release(), console_child.get(), err_w.get());
        std::string msg = st2 ? std::string("exec returned") : st2.error().message();
        (void)util::write_all(err_w.get(), msg);
        _exit(127);
    }
    util::Child child(pid);  // killed and reaped on every error return below
    sync_r.reset();
    err_w.reset();
    console_child.reset();

    TRY_CTX(mgr->add_process(pid, opts.sub_cgroups), "exec: join the container's cgroup");
    char go = 1;
    if (::write(sync_w.get(), &go, 1) != 1) return util::Error::from_errno("exec: start the process");
    sync_w.reset();

    util::UniqueFd master;
    std::optional<util::Error> console_error;
    if (console_parent) {
        auto got = console::recv_fd(console_parent.get());
        if (got)
            master = std::move(*got);
        else
            console_error = std::move(got).error().wrap("exec: receive the terminal");
    }
    // The child's own reason comes first: a console that never arrived is
    // usually the consequence of it.
    auto why = TRY_CTX(util::read_all(err_r.get(), 64 * 1024), "exec: read the process's start status");
    if (!why.empty()) return util::Error::msg(util::cat("exec: ", why));
    if (console_error) return std::move(*console_error);

    if (!opts.pid_file.empty())
        TRY_CTX(util::atomic_write_file(opts.pid_file, util::cat(pid), 0644, kStateDurability), util::cat("write --pid-file ", util::quote(opts.pid_file)));
    if (opts.detach) {
        (void)child.release();
        return 0;
    }

    if (master) g_exec_master = master.get();
    install_forwarding(pid);
    if (master) {
        auto st2 = console::proxy_console(master.get());
        g_exec_master = -1;
        master.reset();
        if (!st2) util::log::warn("exec: ", st2.error().message());  // the exit code below still matters
    }
    auto code = child.wait();
    g_exec_child = 0;
    return code;
}

}  // namespace rt
