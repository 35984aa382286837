// Process spawning; see process.hpp.
#include "util/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "util/fd.hpp"
#include "util/strings.hpp"
#include "util/syscalls.hpp"

extern char **environ;

namespace util {
namespace {

/// The fixed head of a linux_dirent64; the name follows at kDirentNameOffset.
struct LinuxDirent64Head {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
};
constexpr size_t kDirentNameOffset = 19;

bool kept(int fd, const int *keep, size_t nkeep) {
    for (size_t i = 0; i < nkeep; i++)
        if (keep[i] == fd) return true;
    return false;
}

/// The fallback of close_fds_from: getdents64 on /proc/self/fd, no malloc.
void close_fds_by_listing(int first, const int *keep, size_t nkeep) {
    int dfd = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        for (int fd = first; fd < 65536; fd++)
            if (!kept(fd, keep, nkeep)) ::close(fd);
        return;
    }
    alignas(8) char buf[4096];
    // Closing while listing may skip entries; list again until nothing is closed.
    bool closed_any = true;
    while (closed_any) {
        closed_any = false;
        ::lseek(dfd, 0, SEEK_SET);
        long n;
        while ((n = ::syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
            for (long off = 0; off < n;) {
                auto *d = reinterpret_cast<LinuxDirent64Head *>(buf + off);
                const char *name = buf + off + kDirentNameOffset;
                off += d->d_reclen;
                int fd = 0;
                bool digits = name[0] != '\0';
                for (const char *p = name; *p; p++) {
                    if (*p < '0' || *p > '9') digits = false;
                    fd = fd * 10 + (*p - '0');
                }
                if (!digits || fd < first || fd == dfd || kept(fd, keep, nkeep)) continue;
                ::close(fd);
                closed_any = true;
            }
        }
    }
    ::close(dfd);
}

[[noreturn]] void child_fail(int errfd, int err) {
    ssize_t r = ::write(errfd, &err, sizeof err);
    (void)r;
    _exit(127);
}

}  // namespace

void close_fds_from(int first, const int *keep, size_t nkeep) {
    // close_range cannot skip fds, so use it only above the highest kept fd.
    int highest = first - 1;
    for (size_t i = 0; i < nkeep; i++)
        if (keep[i] > highest) highest = keep[i];
    if (highest < first) {
        if (sys::close_range(static_cast<unsigned>(first), ~0U, 0) == 0) return;
    } else if (sys::close_range(static_cast<unsigned>(highest + 1), ~0U, 0) == 0) {
        for (int fd = first; fd <= highest; fd++)
            if (!kept(fd, keep, nkeep)) ::close(fd);
        return;
    }
    close_fds_by_listing(first, keep, nkeep);
}

void become_worker_of(pid_t parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

int exit_code_from_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 255;
}

Result<int> Child::wait() {
    if (pid_ < 0) return Error::with_code(ECHILD, "wait: no child");
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
        if (errno != EINTR) return Error::from_errno(cat("wait for pid ", pid_));
    }
    pid_ = -1;
    return exit_code_from_status(status);
}

Child &Child::operator=(Child &&o) noexcept {
    if (this != &o) {
        terminate();
        pid_ = o.release();
    }
    return *this;
}

void Child::terminate() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

Status Child::kill(int sig) {
    if (pid_ < 0) return Error::with_code(ESRCH, "kill: no child");
    if (::kill(pid_, sig) < 0) return Error::from_errno(cat("kill pid ", pid_));
    return ok();
}

Result<Child> spawn(const std::vector<std::string> &argv, const SpawnOptions &opts) {
    if (argv.empty()) return Error::with_code(EINVAL, "spawn: empty command");
    // Everything the child needs is prepared before fork: no malloc after it.
    std::vector<char *> cargv;
    for (const auto &a : argv) cargv.push_back(const_cast<char *>(a.c_str()));
    cargv.push_back(nullptr);
    std::vector<char *> cenv;
    if (opts.env) {
        for (const auto &e : *opts.env) cenv.push_back(const_cast<char *>(e.c_str()));
        cenv.push_back(nullptr);
    }
    char **envp = opts.env ? cenv.data() : environ;

    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return Error::from_errno("pipe");
    // The child writes its errno here when it cannot exec; exec closes it.
    UniqueFd err_r(p[0]), err_w(p[1]);
    const int err_fd = err_w.get();
    std::vector<int> keep = opts.keep_fds;
    keep.push_back(err_fd);

    pid_t pid = ::fork();
    if (pid < 0) return Error::from_errno("fork");
    if (pid == 0) {
        sigset_t all;
        sigemptyset(&all);
        for (int s = 1; s < NSIG; s++) {
            if (s == SIGKILL || s == SIGSTOP) continue;
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = SIG_DFL;
            ::sigaction(s, &sa, nullptr);
        }
        ::sigprocmask(SIG_SETMASK, &all, nullptr);
        if (opts.new_session) ::setsid();
        int std_fds[3] = {opts.stdin_fd, opts.stdout_fd, opts.stderr_fd};
        for (int i = 0; i < 3; i++) {
            if (std_fds[i] < 0) continue;
            if (std_fds[i] == i) {
                ::fcntl(i, F_SETFD, 0);
            } else if (::dup2(std_fds[i], i) < 0) {
                child_fail(err_fd, errno);
            }
        }
        for (int fd : opts.keep_fds) ::fcntl(fd, F_SETFD, 0);
        close_fds_from(3, keep.data(), keep.size());
        if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) < 0) child_fail(err_fd, errno);
        if (argv[0].find('/') != std::string::npos)
            ::execve(cargv[0], cargv.data(), envp);
        else
            ::execvpe(cargv[0], cargv.data(), envp);
        child_fail(err_fd, errno);
    }
    Child child(pid);
    err_w.reset();
    int child_errno = 0;
    ssize_t n;
    do {
        n = ::read(err_r.get(), &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    if (n == sizeof child_errno) {
        (void)child.wait();
        return Error::with_code(child_errno, cat("exec ", quote(argv[0])));
    }
    return child;
}

Result<int> run_process(const std::vector<std::string> &argv, const SpawnOptions &opts) {
    auto child = TRY(spawn(argv, opts));
    return child.wait();
}

}  // namespace util
