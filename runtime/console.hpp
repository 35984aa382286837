// The container's terminal (`process.terminal`) and runc's console socket.
//
// As runc documents (docs/terminals.md), the runtime does not keep the pty:
// the process that will run in the container opens a pty pair from the
// container's own /dev/ptmx (after pivot_root, so the slave lives in the
// container's devpts), sends the master to whoever listens on
// `--console-socket` (one SCM_RIGHTS message whose payload is the name
// "/dev/ptmx"), then makes the slave its controlling terminal and its
// stdin/stdout/stderr. podman's conmon and containerd's shim receive the
// master that way.
//
// Order in the init (and in `exec`): connect_console_socket() in the runtime
// process before any namespace is entered (the socket path is a host path),
// pass the fd down, then setup_console() once the rootfs is in place.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/fd.hpp"
#include "util/result.hpp"
#include "util/unix_socket.hpp"

namespace rt::console {

struct Size {
    unsigned short rows = 0, cols = 0;  ///< `process.consoleSize.height` / `.width`
};

struct Pty {
    util::UniqueFd master;
    util::UniqueFd slave;
    std::string slave_path;  ///< "/dev/pts/N"
};

/// Opens a pty pair from `ptmx` (default "/dev/ptmx": inside the container's
/// mount namespace that is the container's devpts). Both fds O_CLOEXEC|O_NOCTTY.
util::Result<Pty> open_pty(const char *ptmx = "/dev/ptmx");

/// TIOCSWINSZ on a pty fd; a zero size is left alone.
util::Status set_size(int pty_fd, Size size);

/// Connects to the listener at `path` (an AF_UNIX SOCK_STREAM socket). The
/// error names the path. Call in the runtime process, before setns/pivot.
util::Result<util::UniqueFd> connect_console_socket(const std::string &path);

/// Sends the pty master `fd` over the console socket with SCM_RIGHTS, with
/// `name` as the message payload (runc sends "/dev/ptmx").
inline util::Status send_fd(int sock, int fd, std::string_view name = "/dev/ptmx") {
    return util::send_fd(sock, fd, name).context("console socket");
}
/// Receives the fd sent with send_fd; `name` (if given) gets the payload.
inline util::Result<util::UniqueFd> recv_fd(int sock, std::string *name = nullptr) {
    return util::recv_fd(sock, name).context("console socket");
}

/// Makes `slave` the calling process's controlling terminal (setsid when not
/// already a session leader, then TIOCSCTTY) and dup2s it onto 0, 1 and 2.
util::Status make_controlling_terminal(int slave);

/// The whole in-container sequence: open_pty, set_size, send the master over
/// `socket_fd`, close the master and the socket, make the slave the
/// controlling terminal and 0/1/2. Called by the init (and exec) after the
/// rootfs is in place and before privileges are dropped.
util::Status setup_console(int socket_fd, std::optional<Size> size);

/// For `run`/`exec` with --tty but no --console-socket (runc does the same):
/// the runtime keeps the master and copies between its own stdin/stdout and
/// the pty until the master reads EOF/EIO. Puts stdin in raw mode while it
/// runs when stdin is a terminal, and restores it.
util::Status proxy_console(int master);

}  // namespace rt::console
