// SCM_RIGHTS fd passing; see unix_socket.hpp.
#include "util/unix_socket.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace util {

Status send_fd(int sock, int fd, std::string_view payload) {
    std::string data(payload.empty() ? std::string_view(" ") : payload);
    iovec iov{data.data(), data.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t r;
    do {
        r = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return Error::from_errno("send a file descriptor (sendmsg)");
    // A stream socket may take the payload in pieces; the fd went with the first.
    for (size_t sent = static_cast<size_t>(r); sent < data.size();) {
        ssize_t m = ::send(sock, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (m < 0 && errno == EINTR) continue;
        if (m < 0) return Error::from_errno("send a file descriptor's message (send)");
        sent += static_cast<size_t>(m);
    }
    return ok();
}

Result<UniqueFd> recv_fd(int sock, std::string *payload) {
    char buf[4096];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t r;
    do {
        r = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return Error::from_errno("receive a file descriptor (recvmsg)");
    UniqueFd got;
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; ++i) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (!got)
                got.reset(fd);
            else
                ::close(fd);  // one fd is the protocol; never leak extras
        }
    }
    if (!got) return Error::msg("the message carried no file descriptor");
    if (payload) payload->assign(buf, static_cast<size_t>(r));
    return got;
}

}  // namespace util
