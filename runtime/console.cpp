// The container's terminal and runc's console-socket protocol (see console.hpp).
//
// Everything here is plain syscalls so that it can run in the container's
// init between clone and exec. proxy_console is the one piece that runs in
// the runtime itself (--tty without --console-socket).
#include "runtime/console.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/file.hpp"
#include "util/strings.hpp"

namespace rt::console {

util::Result<Pty> open_pty(const char *ptmx) {
    Pty p;
    p.master.reset(::open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!p.master) return util::Error::from_errno(util::cat("open ", util::quote(ptmx)));
    int unlock = 0;
    if (ioctl(p.master.get(), TIOCSPTLCK, &unlock) < 0) return util::Error::from_errno("unlock the pty");
    // TIOCGPTPEER opens the slave through the master's own devpts instance, so
    // a /dev/pts swapped in the container cannot hand us another file (5.2+).
    int slave = ioctl(p.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    unsigned int n = 0;
    if (ioctl(p.master.get(), TIOCGPTN, &n) < 0) return util::Error::from_errno("get the pty number");
    p.slave_path = util::cat("/dev/pts/", n);
    if (slave < 0) {
        if (errno != EINVAL && errno != ENOTTY) return util::Error::from_errno("open the pty's peer");
        slave = ::open(p.slave_path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0) return util::Error::from_errno(util::cat("open ", util::quote(p.slave_path)));
    }
    p.slave.reset(slave);
    return p;
}

util::Status set_size(int pty_fd, Size size) {
    if (size.rows == 0 && size.cols == 0) return util::ok();
    winsize ws{};
    ws.ws_row = size.rows;
    ws.ws_col = size.cols;
    if (ioctl(pty_fd, TIOCSWINSZ, &ws) < 0) return util::Error::from_errno("set the console size");
    return util::ok();
}

util::Result<util::UniqueFd> connect_console_socket(const std::string &path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return util::Error::with_code(ENAMETOOLONG, util::cat("console socket ", util::quote(path)));
    memcpy(addr.sun_path, path.data(), path.size());
    util::UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) return util::Error::from_errno("socket");
    int r;
    do {
        r = ::connect(s.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return util::Error::from_errno(util::cat("connect to the console socket ", util::quote(path)));
    return s;
}

util::Status make_controlling_terminal(int slave) {
    if (getsid(0) != getpid() && setsid() < 0) return util::Error::from_errno("setsid");
    if (ioctl(slave, TIOCSCTTY, 0) < 0) return util::Error::from_errno("make the pty the controlling terminal");
    for (int fd = 0; fd < 3; ++fd)
        if (slave != fd && dup2(slave, fd) < 0) return util::Error::from_errno(util::cat("dup2 the pty onto fd ", fd));
    return util::ok();
}

util::Status setup_console(int socket_fd, std::optional<Size> size) {
    auto pty = TRY_CTX(open_pty(), "console");
    if (size) TRY_CTX(set_size(pty.master.get(), *size), "console");
    TRY_CTX(send_fd(socket_fd, pty.master.get()), "console");
    pty.master.reset();
    ::close(socket_fd);
    TRY_CTX(make_controlling_terminal(pty.slave.get()), "console");
    if (pty.slave.get() > 2) pty.slave.reset();
    else pty.slave.release();  // it is one of 0/1/2 now
    return util::ok();
}

util::Status proxy_console(int master) {
    termios saved{};
    bool raw = isatty(0) && tcgetattr(0, &saved) == 0;
    if (raw) {
        termios t = saved;
        cfmakeraw(&t);
        t.c_oflag |= OPOST;  // keep output post-processing as runc does
        tcsetattr(0, TCSANOW, &t);
        winsize ws{};
        if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
    }
    bool stdin_open = true;
    util::Status result;
    char buf[8192];
    for (;;) {
        pollfd fds[2] = {{master, POLLIN, 0}, {0, POLLIN, 0}};
        int r = ::poll(fds, stdin_open ? 2 : 1, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            result = util::Error::from_errno("poll the console");
            break;
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = ::read(master, buf, sizeof buf);
            if (n <= 0) {
                if (n < 0 && errno == EINTR) continue;
                break;  // EIO: every slave fd is closed, the process is gone
            }
            if (auto st = util::write_all(1, std::string_view(buf, static_cast<size_t>(n))); !st) {
                result = std::move(st).error().wrap("copy from the console");
                break;
            }
        }
        if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = ::read(0, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                stdin_open = false;
                char eof = 4;  // ^D: end of input for the program on the terminal
                (void)!::write(master, &eof, 1);
                continue;
            }
            if (auto st = util::write_all(master, std::string_view(buf, static_cast<size_t>(n))); !st) {
                result = std::move(st).error().wrap("copy to the console");
                break;
            }
        }
    }
    if (raw) tcsetattr(0, TCSANOW, &saved);
    return result;
}

}  // namespace rt::console
