// The notify socket of a `ready` health check (health.hpp): a unix
// datagram socket at <dir>/notify.sock that a container's app writes
// sd_notify's newline-separated assignments to ("READY=1",
// "STATUS=loading"). The bundle bind-mounts the directory, not the socket,
// so binding again after a daemon restart reaches the running container.
//
// Only a sender inside the container is heard: each datagram carries the
// sender's credentials (SO_PASSCRED) and its pid's pid namespace must be
// the container init's. A container that shares the host's pid namespace
// therefore hears every local process that may write the socket (mode 0666,
// so an app running as any user in the container can); a sender that exits
// before its datagram is read can no longer be placed and is not heard
// either (sd_notify's callers are the long-running app, which stays).
// Passed fds (FDSTORE) are closed at once.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "util/event_loop.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace svc {

class NotifySocket {
public:
    static constexpr const char *kName = "notify.sock";

    /// One datagram from inside the container: whether it said READY=1,
    /// and its last STATUS= (empty when it had none).
    using OnMessage = std::function<void(bool ready, const std::string &status)>;

    /// Creates `dir` (0755) when missing, replaces a stale socket there and
    /// watches the new one on `loop`. `container_pid` is the container's
    /// init (0: senders in our own pid namespace are heard).
    static util::Result<std::unique_ptr<NotifySocket>> open(util::EventLoop &loop, const std::string &dir,
                                                            pid_t container_pid, OnMessage on_message);
    /// Unwatches and closes the socket and removes it (unless another has
    /// been bound in its place since).
    ~NotifySocket();
    NotifySocket(const NotifySocket &) = delete;
    NotifySocket &operator=(const NotifySocket &) = delete;

    /// Datagrams dropped because their sender was not in the container.
    unsigned long refused() const { return refused_; }

private:
    NotifySocket(util::EventLoop &loop, OnMessage on_message) : loop_(loop), on_message_(std::move(on_message)) {}
    void readable();

    util::EventLoop &loop_;
    OnMessage on_message_;
    util::UniqueFd dir_;   ///< O_PATH of the directory
    util::UniqueFd sock_;  ///< the bound datagram socket
    dev_t sock_dev_ = 0;   ///< the socket file's identity, to remove only our own
    ino_t sock_ino_ = 0;
    dev_t pidns_dev_ = 0;  ///< the container's pid namespace
    ino_t pidns_ino_ = 0;
    unsigned long refused_ = 0;
};

}  // namespace svc
