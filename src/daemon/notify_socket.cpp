// svc::NotifySocket: bind through the directory's fd (/proc/self/fd/N/, so
// a long state root never overflows sun_path) under a umask that gives the
// socket its mode (the daemon is single-threaded), one datagram read per wakeup
// (the callback may destroy the socket; level-triggered epoll calls again
// for the next), the sender placed by the pid namespace of its pid.
#include "daemon/notify_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/file.hpp"
#include "util/strings.hpp"

namespace svc {

namespace {

/// The pid namespace of `pid` (0: ours) as (st_dev, st_ino).
bool pid_namespace(pid_t pid, dev_t &dev, ino_t &ino) {
    std::string path = pid == 0 ? std::string("/proc/self/ns/pid") : util::cat("/proc/", pid, "/ns/pid");
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) return false;
    dev = st.st_dev;
    ino = st.st_ino;
    return true;
}

}  // namespace

util::Result<std::unique_ptr<NotifySocket>> NotifySocket::open(util::EventLoop &loop, const std::string &dir,
                                                               pid_t container_pid, OnMessage on_message) {
    std::unique_ptr<NotifySocket> n(new NotifySocket(loop, std::move(on_message)));
    if (!pid_namespace(container_pid, n->pidns_dev_, n->pidns_ino_))
        return util::Error::from_errno(util::cat("pid namespace of ", container_pid));
    TRY_CTX(util::mkdir_p(dir, 0755), "notify directory " + util::quote(dir));
    n->dir_.reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!n->dir_) return util::Error::from_errno("open " + util::quote(dir));
    if (::unlinkat(n->dir_.get(), kName, 0) < 0 && errno != ENOENT)
        return util::Error::from_errno(util::cat("remove the stale ", util::quote(dir + "/" + kName)));

    n->sock_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!n->sock_) return util::Error::from_errno("notify socket");
    int on = 1;
    if (::setsockopt(n->sock_.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
        return util::Error::from_errno("notify socket: SO_PASSCRED");
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    std::string path = util::cat("/proc/self/fd/", n->dir_.get(), "/", kName);
    memcpy(a.sun_path, path.c_str(), path.size() + 1);  // well below sizeof sun_path
    // Any user in the container may notify (the sender check is the pid
    // namespace): the socket is made 0666 by the umask around bind, never
    // by a chmod of the name, which the container (it can write the
    // directory) could have turned into a symlink to a host file by then.
    mode_t old_umask = ::umask(0111);
    int bound = ::bind(n->sock_.get(), reinterpret_cast<struct sockaddr *>(&a), sizeof a);
    int bind_errno = errno;
    ::umask(old_umask);
    if (bound < 0) return util::Error::with_code(bind_errno, "bind " + util::quote(dir + "/" + kName));
    struct stat st;
    if (::fstatat(n->dir_.get(), kName, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return util::Error::from_errno("stat the notify socket");
    n->sock_dev_ = st.st_dev;
    n->sock_ino_ = st.st_ino;

    NotifySocket *self = n.get();
    TRY_CTX(loop.watch(n->sock_.get(), EPOLLIN, [self](uint32_t) { self->readable(); }), "watch the notify socket");
    return n;
}

NotifySocket::~NotifySocket() {
    if (sock_) loop_.unwatch(sock_.get());
    struct stat st;
    if (dir_ && ::fstatat(dir_.get(), kName, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == sock_dev_ &&
        st.st_ino == sock_ino_)
        ::unlinkat(dir_.get(), kName, 0);
}

void NotifySocket::readable() {
    char buf[4096];
    union {
        char bytes[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(16 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {buf, sizeof buf};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    ssize_t n = ::recvmsg(sock_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return;  // EAGAIN, EINTR: the next wakeup reads it

    pid_t sender = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof cred);
            sender = cred.pid;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                ::close(fd);
            }
        }
    }
    dev_t dev = 0;
    ino_t ino = 0;
    if (sender <= 0 || !pid_namespace(sender, dev, ino) || dev != pidns_dev_ || ino != pidns_ino_) {
        ++refused_;
        return;
    }

    bool ready = false;
    std::string status;
    for (const std::string &line : util::split(std::string_view(buf, size_t(n)), '\n')) {
        if (line == "READY=1")
            ready = true;
        else if (line.rfind("STATUS=", 0) == 0)
            status = line.substr(7);
    }
    OnMessage cb = on_message_;  // the call may destroy this socket
    cb(ready, status);
}

}  // namespace svc
