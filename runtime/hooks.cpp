// OCI lifecycle hooks (see hooks.hpp): parsing and running them.
//
// The state JSON goes into the stdin pipe before the fork (the pipe is grown
// with F_SETPIPE_SZ when needed), so the runtime never blocks on a hook that
// does not read and never gets SIGPIPE from one that exits early. The hook's
// exit is waited for with a pidfd where the kernel has pidfd_open (5.3+),
// otherwise by polling waitpid every few milliseconds.
#include "runtime/hooks.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"
#include "util/syscalls.hpp"

namespace rt::hooks {
namespace {

constexpr size_t kMaxCapture = 4096;  ///< output quoted in an error, per hook

constexpr Kind kKinds[] = {Kind::Prestart,       Kind::CreateRuntime, Kind::CreateContainer,
                           Kind::StartContainer, Kind::Poststart,     Kind::Poststop};

util::Result<Hook> parse_hook(const util::json::Value &v, const std::string &where) {
    TRY(util::json::expect_object(v, where));
    Hook h;
    h.path = TRY(util::json::req_string(v, "path", where));
    if (h.path.empty() || h.path[0] != '/')
        return util::Error::msg(util::cat(util::quote(util::json::field_path(where, "path")), ": ",
                                          util::quote(h.path), " is not an absolute path"));
    h.args = TRY(util::json::opt_string_array(v, "args", where));
    h.env = TRY(util::json::opt_string_array(v, "env", where));
    if (auto t = TRY(util::json::opt_int(v, "timeout", where))) {
        if (*t <= 0)
            return util::Error::msg(
                util::cat(util::quote(util::json::field_path(where, "timeout")), ": must be greater than zero"));
        h.timeout = static_cast<int>(*t > 1000000 ? 1000000 : *t);
    }
    return h;
}

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

/// A NULL-terminated char* array over `v` (which must outlive it).
std::vector<char *> c_array(std::vector<std::string> &v) {
    std::vector<char *> out;
    out.reserve(v.size() + 1);
    for (auto &s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

std::string describe_output(const std::string &out) {
    auto t = util::trim(out);
    if (t.empty()) return {};
    return util::cat(" (output: ", util::quote(t), ")");
}

}  // namespace

const char *kind_name(Kind k) {
    switch (k) {
        case Kind::Prestart: return "prestart";
        case Kind::CreateRuntime: return "createRuntime";
        case Kind::CreateContainer: return "createContainer";
        case Kind::StartContainer: return "startContainer";
        case Kind::Poststart: return "poststart";
        case Kind::Poststop: return "poststop";
    }
    return "unknown";
}

bool is_fatal(Kind k) { return k != Kind::Poststart && k != Kind::Poststop; }

const std::vector<Hook> &Hooks::of(Kind k) const {
    switch (k) {
        case Kind::Prestart: return prestart;
        case Kind::CreateRuntime: return create_runtime;
        case Kind::CreateContainer: return create_container;
        case Kind::StartContainer: return start_container;
        case Kind::Poststart: return poststart;
        case Kind::Poststop: break;
    }
    return poststop;
}

std::vector<Hook> &Hooks::of(Kind k) { return const_cast<std::vector<Hook> &>(static_cast<const Hooks *>(this)->of(k)); }

bool Hooks::empty() const {
    for (Kind k : kKinds)
        if (!of(k).empty()) return false;
    return true;
}

util::Result<Hooks> parse_hooks(const util::json::Value *hooks) {
    Hooks out;
    if (!hooks || hooks->is_null()) return out;
    TRY(util::json::expect_object(*hooks, "hooks"));
    for (Kind k : kKinds) {
        const util::json::Value *arr = TRY(util::json::opt_array(*hooks, kind_name(k), "hooks"));
        if (!arr) continue;
        std::string base = util::json::field_path("hooks", kind_name(k));
        for (size_t i = 0; i < arr->size(); ++i)
            out.of(k).push_back(TRY(parse_hook((*arr)[i], util::cat(base, '[', i, ']'))));
    }
    return out;
}

util::json::Value hooks_to_json(const Hooks &h) {
    auto v = util::json::Value::object();
    for (Kind k : kKinds) {
        if (h.of(k).empty()) continue;
        auto arr = util::json::Value::array();
        for (const auto &hook : h.of(k)) {
            auto o = util::json::Value::object();
            o["path"] = hook.path;
            if (!hook.args.empty()) o["args"] = hook.args;
            if (!hook.env.empty()) o["env"] = hook.env;
            if (hook.timeout) o["timeout"] = *hook.timeout;
            arr.push_back(std::move(o));
        }
        v[kind_name(k)] = std::move(arr);
    }
    return v;
}

util::Status run_hook(const Hook &hook, std::string_view state_json) {
    // stdin: a pipe already holding the whole state.
    int in[2];
    if (pipe2(in, O_CLOEXEC) < 0) return util::Error::from_errno("pipe");
    util::UniqueFd in_r(in[0]), in_w(in[1]);
    if (state_json.size() >= 65536 && fcntl(in_w.get(), F_SETPIPE_SZ, static_cast<int>(state_json.size() + 1)) < 0)
        return util::Error::from_errno("grow the hook's stdin pipe");
    TRY_CTX(util::write_all(in_w.get(), state_json), "write the state to the hook's stdin");
    in_w.reset();

    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0) return util::Error::from_errno("pipe");
    util::UniqueFd out_r(out[0]), out_w(out[1]);

    // Everything the child touches is prepared before fork.
    std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
    std::vector<std::string> env = hook.env;
    auto argv = c_array(args);
    auto envp = c_array(env);
    const char *path = hook.path.c_str();

    pid_t pid = fork();
    if (pid < 0) return util::Error::from_errno("fork");
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
        if (dup2(in_r.get(), 0) < 0 || dup2(out_w.get(), 1) < 0 || dup2(out_w.get(), 2) < 0) _exit(126);
        util::close_fds_from(3, nullptr, 0);
        execve(path, argv.data(), envp.data());
        _exit(errno == ENOENT ? 127 : 126);
    }
    in_r.reset();
    out_w.reset();

    util::UniqueFd pidfd(util::sys::pidfd_open(pid, 0));
    const int64_t deadline = hook.timeout ? now_ms() + int64_t{*hook.timeout} * 1000 : -1;
    std::string output;
    int status = 0;
    bool timed_out = false;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return util::Error::from_errno("wait for the hook");
        int wait_ms = pidfd ? -1 : 10;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                timed_out = true;
                kill(pid, SIGKILL);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
                }
                break;
            }
            if (wait_ms < 0 || left < wait_ms) wait_ms = static_cast<int>(left);
        }
        pollfd fds[2];
        nfds_t n = 0;
        if (out_r) fds[n++] = {out_r.get(), POLLIN, 0};
        if (pidfd) fds[n++] = {pidfd.get(), POLLIN, 0};
        if (n == 0) {
            ::poll(nullptr, 0, wait_ms);
            continue;
        }
        if (::poll(fds, n, wait_ms) < 0 && errno != EINTR) return util::Error::from_errno("poll");
        if (out_r && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            char buf[1024];
            ssize_t got = read(out_r.get(), buf, sizeof buf);
            if (got > 0) {
                if (output.size() < kMaxCapture) output.append(buf, std::min<size_t>(got, kMaxCapture - output.size()));
            } else if (got == 0 || errno != EINTR) {
                out_r.reset();  // EOF: only the exit is left to wait for
            }
        }
    }
    // Whatever is still buffered (the hook exited; its children may hold the pipe).
    if (out_r) {
        fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
        char buf[1024];
        ssize_t got;
        while (output.size() < kMaxCapture && (got = read(out_r.get(), buf, sizeof buf)) > 0)
            output.append(buf, std::min<size_t>(got, kMaxCapture - output.size()));
    }
    if (timed_out)
        return util::Error::with_code(ETIMEDOUT, util::cat("killed after its timeout of ", *hook.timeout, "s",
                                                           describe_output(output)));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return util::ok();
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if (code == 127 && output.empty())
            return util::Error::with_code(ENOENT, "cannot execute it");
        return util::Error::msg(util::cat("exited with status ", code, describe_output(output)));
    }
    return util::Error::msg(
        util::cat("killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")", describe_output(output)));
}

util::Status run_hooks(Kind k, const std::vector<Hook> &hooks, std::string_view state_json) {
    for (size_t i = 0; i < hooks.size(); ++i) {
        auto st = run_hook(hooks[i], state_json);
        if (st) continue;
        std::string what = util::cat(kind_name(k), " hook ", i, ' ', util::quote(hooks[i].path));
        if (is_fatal(k)) return std::move(st).error().wrap(what);
        util::log::warn(std::move(st).error().wrap(what).message());
    }
    return util::ok();
}

}  // namespace rt::hooks
