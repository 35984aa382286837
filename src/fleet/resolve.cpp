// fleet::Resolver: getaddrinfo in a forked child; see resolve.hpp.
//
// The child writes one line, "ok ADDRESS" or "error WHY", and exits; the
// loop reads it to EOF, then reaps the child (it has exited or is about
// to: waitpid is immediate).
#include "fleet/resolve.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/file.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

namespace fleet {

bool is_numeric_host(std::string_view host) {
    std::string h(host);
    unsigned char buf[sizeof(struct in6_addr)];
    return ::inet_pton(AF_INET, h.c_str(), buf) == 1 || ::inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

namespace {

[[noreturn]] void resolve_child(const std::string &host, int wr) {
    struct addrinfo hints = {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    struct addrinfo *res = nullptr;
    int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
    std::string line;
    if (rc != 0 || !res) {
        line = util::cat("error ", rc == EAI_SYSTEM ? std::string(std::strerror(errno)) : std::string(::gai_strerror(rc)));
    } else {
        char text[INET6_ADDRSTRLEN] = {0};
        const void *a = res->ai_family == AF_INET6
                            ? static_cast<const void *>(&reinterpret_cast<sockaddr_in6 *>(res->ai_addr)->sin6_addr)
                            : static_cast<const void *>(&reinterpret_cast<sockaddr_in *>(res->ai_addr)->sin_addr);
        line = ::inet_ntop(res->ai_family, a, text, sizeof text) ? util::cat("ok ", text) : std::string("error inet_ntop");
        ::freeaddrinfo(res);
    }
    (void)util::write_all(wr, line + "\n");
    ::_exit(0);
}

}  // namespace

void Resolver::start(const std::string &host, int64_t timeout_ms, Done done) {
    cancel();
    host_ = host;
    auto fail = [&](util::Error e) {
        loop_.after(0, [done = std::move(done), e = std::move(e)]() mutable { done(std::move(e)); });
    };
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return fail(util::Error::from_errno("resolve: pipe"));
    util::UniqueFd rd(p[0]), wr(p[1]);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return fail(util::Error::from_errno("resolve: fork"));
    if (pid == 0) {
        // The child: no loop, none of the daemon's destructors (_exit).
        util::become_worker_of(parent);
        ::signal(SIGPIPE, SIG_IGN);
        resolve_child(host, wr.get());
    }
    wr.reset();
    pid_ = pid;
    rd_ = std::move(rd);
    (void)::fcntl(rd_.get(), F_SETFL, O_NONBLOCK);
    buf_.clear();
    done_ = std::move(done);
    if (auto st = loop_.watch(rd_.get(), EPOLLIN, [this](uint32_t) { readable(); }); !st) {
        Done d = std::move(done_);
        cancel();
        loop_.after(0, [d = std::move(d), e = st.error()]() mutable { d(std::move(e)); });
        return;
    }
    timer_ = loop_.after(timeout_ms, [this, timeout_ms] {
        timer_ = 0;
        finish(util::Error::msg(util::cat("resolve ", util::quote(host_), ": no answer within ", timeout_ms / 1000, " s")));
    });
}

void Resolver::readable() {
    char chunk[512];
    for (;;) {
        ssize_t n = ::read(rd_.get(), chunk, sizeof chunk);
        if (n > 0) {
            if (buf_.size() < 1024) buf_.append(chunk, size_t(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        break;  // EOF
    }
    child_closed_ = true;
    std::string line = buf_.substr(0, buf_.find('\n'));
    if (line.starts_with("ok ") && is_numeric_host(line.substr(3))) return finish(line.substr(3));
    std::string why = line.starts_with("error ") ? line.substr(6) : std::string("the resolver child died");
    finish(util::Error::msg(util::cat("resolve ", util::quote(host_), ": ", why)));
}

void Resolver::finish(util::Result<std::string> r) {
    Done done = std::move(done_);
    stop(!child_closed_);
    if (done) done(std::move(r));
}

void Resolver::cancel() { stop(true); }

void Resolver::stop(bool kill) {
    if (rd_) {
        loop_.unwatch(rd_.get());
        rd_.reset();
    }
    loop_.cancel(timer_);
    timer_ = 0;
    if (pid_ > 0) {
        // After EOF the child has exited (or is exiting): it is only waited
        // for, and a reaper of the whole process (the daemon as PID 1) may
        // have waited for it already (ECHILD), so its pid is never signalled
        // then: it could be another process's now.
        if (kill) ::kill(pid_, SIGKILL);
        while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }
    done_ = nullptr;
    child_closed_ = false;
}

}  // namespace fleet
