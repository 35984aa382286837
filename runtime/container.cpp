// Container lifecycle; see container.hpp.
#include "runtime/container.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>

#include "runtime/cgroup.hpp"
#include "runtime/console.hpp"
#include "runtime/hooks.hpp"
#include "runtime/init.hpp"
#include "runtime/mounts.hpp"
#include "runtime/state.hpp"
#include "runtime/namespaces.hpp"
#include "runtime/spec.hpp"
#include "util/failpoint.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

namespace rt {
namespace {

using util::Error;

constexpr const char *kHooksFile = "hooks.json";

struct SignalName {
    const char *name;
    int sig;
};
constexpr SignalName kSignals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"ILL", SIGILL},       {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT}, {"IOT", SIGIOT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},       {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},
    {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},   {"TTOU", SIGTTOU}, {"URG", SIGURG},       {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"POLL", SIGPOLL}, {"PWR", SIGPWR},     {"SYS", SIGSYS},
};

util::Result<hooks::Hooks> load_saved_hooks(const std::string &dir) {
    auto text = util::read_file(util::path_join(dir, kHooksFile), 16 << 20);
    if (!text) {
        if (text.error().code == ENOENT) return hooks::Hooks{};
        return std::move(text).error();
    }
    auto v = TRY(util::json::parse(*text, kHooksFile));
    return hooks::parse_hooks(&v);
}

std::string state_json_text(const State &st, Status s) { return util::json::dump(oci_state_json(st, s)); }

util::Result<std::unique_ptr<cgroup::Manager>> reopen_cgroup(const State &st) {
    cgroup::ManagerOptions mo;
    return cgroup::open_manager(st.cgroup_path, st.id, mo);
}

/// Waits until the init is gone (it may not be our child).
void wait_gone(const State &st, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms && init_alive(st); waited += 5) {
        int status;
        (void)::waitpid(st.pid, &status, WNOHANG);
        ::usleep(5000);
    }
}

/// One message from the init. An init that exited with our go-ahead unread
/// leaves ECONNRESET on our end, which the kernel reports once, BEFORE the
/// messages the init sent: read again to get them (or the end of file).
ssize_t recv_from_init(int fd, char *buf, size_t size, int flags) {
    bool reset_seen = false;
    for (;;) {
        ssize_t n = ::recv(fd, buf, size, flags);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == ECONNRESET && !reset_seen) {
            reset_seen = true;
            continue;
        }
        return n;
    }
}

/// Reads the init's report: "ok" or "error:<message>".
util::Status read_report(int fd, pid_t pid) {
    char buf[8192];
    ssize_t n = recv_from_init(fd, buf, sizeof buf, 0);
    if (n < 0) return Error::from_errno("read the init's report");
    std::string_view msg(buf, static_cast<size_t>(n));
    if (msg == kSyncOk) return util::ok();
    if (msg.starts_with(kSyncErrorPrefix)) return Error::msg(std::string(msg.substr(std::strlen(kSyncErrorPrefix))));
    int status = 0;
    if (::waitpid(pid, &status, 0) == pid) {
        if (WIFSIGNALED(status)) return Error::msg(util::cat("container init killed by signal ", WTERMSIG(status)));
        return Error::msg(util::cat("container init exited with status ", WEXITSTATUS(status), " before it was ready"));
    }
    return Error::msg("container init exited before it was ready");
}

/// `spec` is the bundle's config.json, loaded once by the caller.
util::Result<State> create_impl(const CreateOptions &o, Spec spec) {
    const int console_fd_in = o.console_fd;
    TRY(validate_id(o.id));
    TRY_CTX(util::mkdir_p(o.root, 0700), "state root");
    if (!spec.process) return Error::msg("config.json: `process`: missing");
    TRY_CTX(mounts::check_without_mount_ns(spec, o.no_pivot), "config.json: no mount namespace");
    struct stat sb;
    if (::stat(spec.root_path.c_str(), &sb) < 0) return Error::from_errno(util::cat("rootfs ", util::quote(spec.root_path)));
    if (!S_ISDIR(sb.st_mode)) return Error::msg(util::cat("rootfs ", util::quote(spec.root_path), " is not a directory"));
    // The mount code compares the rootfs with mountinfo: use its real path.
    {
        char *real = ::realpath(spec.root_path.c_str(), nullptr);
        if (!real) return Error::from_errno(util::cat("rootfs ", util::quote(spec.root_path)));
        spec.root_path = real;
        ::free(real);
    }
    hooks::Hooks hks = TRY_CTX(hooks::parse_hooks(spec.hooks.is_null() ? nullptr : &spec.hooks), "config.json");
    if (spec.process->terminal && o.console_socket.empty() && console_fd_in < 0)
        return Error::msg("process.terminal is true: --console-socket is required");

    // The state dir: its existence is the id's reservation.
    std::string dir = state_dir(o.root, o.id);
    if (::mkdir(dir.c_str(), 0711) < 0) {
        if (errno == EEXIST) return Error::with_code(EEXIST, util::cat("container ", util::quote(o.id), " already exists"));
        return Error::from_errno(util::cat("create state dir ", util::quote(dir)));
    }
    util::ScopeGuard undo_dir([&] { (void)util::remove_tree(dir); });
    auto lock = TRY(lock_container(o.root, o.id));
    if (!hks.empty()) TRY(util::atomic_write_file(util::path_join(dir, kHooksFile), util::json::dump(spec.hooks), 0600, kStateDurability));

    cgroup::ManagerOptions mo;
    mo.systemd = o.systemd_cgroup;
    auto cg = TRY_CTX(cgroup::open_manager(spec.cgroups_path, o.id, mo), "cgroup");
    TRY_CTX(cg->create(), "cgroup");
    util::ScopeGuard undo_cgroup([&] { (void)cg->destroy(); });
    if (spec.has_resources) TRY_CTX(cg->set(spec.resources), "cgroup");
    // A first state, before any process exists: should this create die
    // here, `delete` finds the cgroup to remove.
    State st;
    st.id = o.id;
    st.bundle = spec.bundle;
    st.rootfs = spec.root_path;
    st.config_path = util::path_join(spec.bundle, "config.json");
    st.created = util::rfc3339_now();
    st.status = Status::Creating;
    st.annotations = spec.annotations;
    st.cgroup_path = cg->path();
    st.cgroup_mode = cgroup::mode_name(cg->mode());
    st.systemd_cgroup = o.systemd_cgroup;
    st.terminal = spec.process->terminal;
    st.owner_uid = ::geteuid();
    TRY(save_state(o.root, st));
    TRY(util::failpoint("runtime.create.cgroup"));

    std::string fifo = util::path_join(dir, kExecFifo);
    if (::mkfifo(fifo.c_str(), 0622) < 0 || ::chmod(fifo.c_str(), 0622) < 0) return Error::from_errno("create exec fifo");
    auto fifo_fd = TRY(util::open_file(fifo, O_PATH));

    util::UniqueFd console;
    if (console_fd_in >= 0) console.reset(::fcntl(console_fd_in, F_DUPFD_CLOEXEC, 3));
    else if (!o.console_socket.empty()) console = TRY(console::connect_console_socket(o.console_socket));

    // Copies above 2, so the child's dup2 onto 0-2 cannot clobber one
    // another's source.
    util::UniqueFd stdio[3];
    for (int i = 0; i < 3; i++)
        if (o.stdio[i] >= 0) {
            stdio[i].reset(::fcntl(o.stdio[i], F_DUPFD_CLOEXEC, 3));
            if (!stdio[i]) return Error::from_errno(util::cat("container stdio fd ", i));
        }

    // The init enters its cgroup by itself (cgroup::SelfJoin: no RCU grace
    // period to wait for), unless prestart or createRuntime hooks must find
    // it there before it runs; or the runtime moves it, if the files cannot
    // be opened here.
    std::optional<cgroup::SelfJoin> self_join;
    if (hks.prestart.empty() && hks.create_runtime.empty())
        if (auto j = cg->open_self_join()) self_join = std::move(*j);

    auto joins = TRY(ns::open_joins(spec));
    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) return Error::from_errno("socketpair");
    util::UniqueFd parent_sock(sp[0]), child_sock(sp[1]);
    TRY(ns::prepare_for_children(spec, joins));

    int flags = ns::clone_flags(spec);
    // fork-like (no new stack): the child gets a copy of everything.
    bool into_cgroup = false;
    pid_t pid = ns::clone_init(flags, self_join ? self_join->v2_dir.get() : -1, &into_cgroup);
    if (pid < 0) return Error::from_errno("clone the container init");
    if (pid == 0) {
        parent_sock.reset();
        for (int i = 0; i < 3; i++)
            if (stdio[i]) {
                ::dup2(stdio[i].get(), i);  // cannot fail: a valid fd onto a free or open one
                stdio[i].reset();
            }
        InitArgs a;
        a.spec = &spec;
        a.hooks = &hks;
        a.joins = &joins;
        a.sync_fd = child_sock.release();
        a.fifo_fd = fifo_fd.release();
        a.console_fd = console.release();
        a.no_pivot = o.no_pivot;
        a.no_new_keyring = o.no_new_keyring;
        a.preserve_fds = o.preserve_fds;
        a.cgroup_dirs = cg->dirs();
        a.self_join = self_join ? &*self_join : nullptr;
        a.in_cgroup_v2 = into_cgroup || (self_join && self_join->v2_path.empty());
        run_init(a);
    }
    util::ScopeGuard undo_init([&] {
        ::kill(pid, SIGKILL);
        int status;
        (void)::waitpid(pid, &status, 0);
    });
    child_sock.reset();
    if (self_join) {
        self_join->v1_tasks.clear();
        self_join->v2_dir.reset();
    }
    console.reset();
    for (auto &f : stdio) f.reset();
    joins.clear();

    // The init may already be building the rootfs: should it fail meanwhile,
    // its report says why better than the step here that found it gone.
    auto go_ahead = [&]() -> util::Status {
        if (flags & CLONE_NEWUSER) TRY(ns::write_id_maps(pid, spec));
        if (!self_join) TRY_CTX(cg->add_process(pid), "cgroup");
        else if (!into_cgroup) TRY_CTX(cgroup::join_v2(*self_join, pid), "cgroup");
        st.pid = pid;
        st.pid_start_time = TRY(process_start_time(pid));
        for (const auto &n : spec.namespaces)
            st.namespaces.emplace_back(namespace_name(n.type),
                                       n.path.empty() ? util::cat("/proc/", pid, "/ns/", namespace_name(n.type)) : n.path);
        TRY(save_state(o.root, st));
        TRY(util::failpoint("runtime.create.cloned"));
        // The environment is created (runtime-spec "Lifecycle" step 2): the
        // prestart, createRuntime, createContainer and startContainer hooks see
        // `created` (the spec's "after step 2"; crun does the same).
        std::string sj = state_json_text(st, Status::Created);
        TRY(hooks::run_hooks(hooks::Kind::Prestart, hks, sj));
        TRY(hooks::run_hooks(hooks::Kind::CreateRuntime, hks, sj));
        if (::send(parent_sock.get(), sj.data(), sj.size(), MSG_NOSIGNAL) < 0) return Error::from_errno("send the go-ahead");
        return util::ok();
    }();
    if (!go_ahead) {
        char buf[8192];
        ssize_t n = recv_from_init(parent_sock.get(), buf, sizeof buf, MSG_DONTWAIT);
        std::string_view msg(buf, n > 0 ? static_cast<size_t>(n) : 0);
        if (msg.starts_with(kSyncErrorPrefix)) return Error::msg(std::string(msg.substr(std::strlen(kSyncErrorPrefix))));
        return std::move(go_ahead).error();
    }
    // Test builds: read the report only once the init has exited (a
    // runtime descheduled after its go-ahead, as under load).
    if (const char *late = util::test_hook_env("BERTH_TEST_READ_REPORT"); late && std::string_view(late) == "after-init-exit") {
        siginfo_t si{};
        while (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
        }
    }
    if (auto rep = read_report(parent_sock.get(), pid); !rep) {
        auto stats = cg->stats();
        if (stats && stats->oom_kills > 0)
            return std::move(rep).error().wrap("out of memory: the memory limit is too low for the container's setup");
        return std::move(rep).error();
    }

    st.status = Status::Created;
    TRY(save_state(o.root, st));
    if (!o.pid_file.empty()) TRY_CTX(util::atomic_write_file(o.pid_file, util::cat(pid), 0644, kStateDurability), "pid file");
    undo_init.dismiss();
    undo_cgroup.dismiss();
    undo_dir.dismiss();
    return st;
}

/// Reads the init's byte from the exec fifo; fails if the init dies first.
util::Status open_exec_fifo(const State &st, const std::string &fifo) {
    auto fd = TRY(util::open_file(fifo, O_RDONLY | O_NONBLOCK));
    for (;;) {
        struct pollfd p = {fd.get(), POLLIN, 0};
        int n = ::poll(&p, 1, 100);
        if (n < 0 && errno != EINTR) return Error::from_errno("poll exec fifo");
        if (n > 0 && (p.revents & POLLIN)) {
            char c;
            ssize_t r = ::read(fd.get(), &c, 1);
            if (r == 1) return util::ok();
            if (r < 0 && errno == EAGAIN) continue;
            return Error::msg("container init closed the exec fifo without starting");
        }
        if (!init_alive(st)) return Error::msg("container init exited before start");
    }
}

}  // namespace

util::Result<int> parse_signal(std::string_view s) {
    if (auto n = util::parse_int<int>(s)) {
        if (*n <= 0 || *n >= NSIG) return Error::msg(util::cat("invalid signal ", util::quote(s)));
        return *n;
    }
    std::string_view name = s;
    if (name.starts_with("SIG")) name.remove_prefix(3);
    for (const auto &sn : kSignals)
        if (name == sn.name) return sn.sig;
    if (name.starts_with("RTMIN") || name.starts_with("RTMAX")) {
        int base = name.starts_with("RTMIN") ? SIGRTMIN : SIGRTMAX;
        auto rest = name.substr(5);
        int off = 0;
        if (!rest.empty()) {
            auto v = util::parse_int<int>(rest[0] == '+' ? rest.substr(1) : rest);
            if (!v) return Error::msg(util::cat("unknown signal ", util::quote(s)));
            off = *v;
        }
        int sig = base + off;
        if (sig >= SIGRTMIN && sig <= SIGRTMAX) return sig;
    }
    return Error::msg(util::cat("unknown signal ", util::quote(s)));
}

util::Result<State> create_container(const CreateOptions &opts) {
    const std::string where = util::cat("create ", util::quote(opts.id));
    Spec spec = TRY_CTX(load_spec(opts.bundle), where);
    return create_impl(opts, std::move(spec)).context(where);
}

util::Status start_container(const std::string &root, const std::string &id) {
    std::string where = util::cat("start ", util::quote(id));
    auto lock = TRY_CTX(lock_container(root, id), where);
    State st = TRY_CTX(load_state(root, id), where);
    Status s = refresh_status(root, st);
    if (s != Status::Created)
        return Error::msg(util::cat(where, ": cannot start a container that is ", status_name(s)));
    std::string fifo = util::path_join(state_dir(root, id), kExecFifo);
    TRY_CTX(open_exec_fifo(st, fifo), where);
    ::unlink(fifo.c_str());
    st.status = Status::Running;
    TRY_CTX(save_state(root, st), where);
    auto hks = load_saved_hooks(state_dir(root, id));
    if (hks) (void)hooks::run_hooks(hooks::Kind::Poststart, *hks, state_json_text(st, Status::Running));
    return util::ok();
}

util::Result<std::pair<State, Status>> container_state(const std::string &root, const std::string &id) {
    State st = TRY(load_state(root, id));
    Status s = refresh_status(root, st);
    return std::make_pair(std::move(st), s);
}

util::Status kill_container(const std::string &root, const std::string &id, int sig, bool all) {
    std::string where = util::cat("kill ", util::quote(id));
    State st = TRY_CTX(load_state(root, id), where);
    Status s = refresh_status(root, st);
    if (all) {
        auto cg = TRY_CTX(reopen_cgroup(st), where);
        auto pids = TRY_CTX(cg->pids(), where);
        if (pids.empty() && s == Status::Stopped) return Error::msg(util::cat(where, ": container not running"));
        for (pid_t p : pids)
            if (::kill(p, sig) < 0 && errno != ESRCH) return Error::from_errno(util::cat(where, ": pid ", p));
        return util::ok();
    }
    if (s == Status::Stopped || s == Status::Creating) return Error::msg(util::cat(where, ": container not running"));
    if (::kill(st.pid, sig) < 0) return Error::from_errno(where);
    return util::ok();
}

util::Result<std::optional<State>> delete_container(const std::string &root, const std::string &id, bool force) {
    std::string where = util::cat("delete ", util::quote(id));
    TRY_CTX(validate_id(id), where);
    std::string dir = state_dir(root, id);
    if (!util::path_exists(dir)) {
        if (force) return std::optional<State>();
        return Error::with_code(ENOENT, util::cat(where, ": container does not exist"));
    }
    auto lock = TRY_CTX(lock_container(root, id), where);
    auto loaded = load_state(root, id);
    if (!loaded) {
        // A state dir without a readable state.json: left by a create that
        // crashed before it saved anything. Nothing else can exist for it.
        if (loaded.error().code != ENOENT && !force) return std::move(loaded).error().wrap(where);
        cgroup::ManagerOptions mo;
        if (auto cg = cgroup::open_manager("", id, mo)) (void)(*cg)->destroy();
        TRY_CTX(util::remove_tree(dir), where);
        return std::optional<State>();
    }
    State st = std::move(*loaded);
    Status s = refresh_status(root, st);
    if ((s == Status::Running || s == Status::Paused) && !force)
        return Error::msg(util::cat(where, ": cannot delete a container that is ", status_name(s), " (use --force)"));
    if (s != Status::Stopped && init_alive(st)) ::kill(st.pid, SIGKILL);
    if (!st.cgroup_path.empty()) {
        auto cg = TRY_CTX(reopen_cgroup(st), where);
        TRY_CTX(cg->destroy(), where);
    }
    wait_gone(st, 2000);
    auto hks = load_saved_hooks(dir);
    if (hks) (void)hooks::run_hooks(hooks::Kind::Poststop, *hks, state_json_text(st, Status::Stopped));
    TRY_CTX(util::remove_tree(dir), where);
    return std::optional<State>(std::move(st));
}

util::Result<std::vector<std::pair<State, Status>>> list_containers(const std::string &root) {
    std::vector<std::pair<State, Status>> out;
    for (const auto &id : TRY(list_ids(root))) {
        auto st = load_state(root, id);
        if (!st) continue;
        Status s = refresh_status(root, *st);
        out.emplace_back(std::move(*st), s);
    }
    return out;
}

}  // namespace rt
