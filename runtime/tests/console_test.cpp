// Unit tests of runtime/console: a real pty pair and the SCM_RIGHTS exchange
// of runc's console-socket protocol over a real unix socket.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "runtime/console.hpp"
#include "util/file.hpp"

TEST_CASE("open_pty gives a connected pair and set_size sets the window", "[console]") {
    if (access("/dev/ptmx", R_OK | W_OK) != 0) {
        WARN("skipped: no /dev/ptmx");
        return;
    }
    auto pty = rt::console::open_pty();
    REQUIRE(pty);
    CHECK(pty->slave_path.rfind("/dev/pts/", 0) == 0);
    CHECK((fcntl(pty->master.get(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((fcntl(pty->slave.get(), F_GETFD) & FD_CLOEXEC) != 0);
    REQUIRE(rt::console::set_size(pty->master.get(), {24, 80}));
    winsize ws{};
    REQUIRE(ioctl(pty->slave.get(), TIOCGWINSZ, &ws) == 0);
    CHECK(ws.ws_row == 24);
    CHECK(ws.ws_col == 80);
    // Bytes written on the slave come out of the master.
    REQUIRE(write(pty->slave.get(), "hi", 2) == 2);
    char buf[16] = {};
    REQUIRE(read(pty->master.get(), buf, sizeof buf) >= 2);
    CHECK(std::string(buf, 2) == "hi");

    auto bad = rt::console::open_pty("/nonexistent/ptmx");
    REQUIRE(!bad);
    CHECK_THAT(bad.error().message(), Catch::Contains("/nonexistent/ptmx"));
}

TEST_CASE("send_fd/recv_fd pass an fd and runc's payload", "[console]") {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    util::UniqueFd a(sv[0]), b(sv[1]);
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    util::UniqueFd pr(p[0]), pw(p[1]);
    REQUIRE(rt::console::send_fd(a.get(), pw.get()));
    std::string name;
    auto got = rt::console::recv_fd(b.get(), &name);
    REQUIRE(got);
    CHECK(name == "/dev/ptmx");
    CHECK((fcntl(got->get(), F_GETFD) & FD_CLOEXEC) != 0);
    pw.reset();
    REQUIRE(write(got->get(), "x", 1) == 1);
    char c = 0;
    REQUIRE(read(pr.get(), &c, 1) == 1);
    CHECK(c == 'x');

    // A message without an fd is an error, not a hang or a bogus fd.
    REQUIRE(write(a.get(), "junk", 4) == 4);
    auto none = rt::console::recv_fd(b.get());
    REQUIRE(!none);
    CHECK_THAT(none.error().message(), Catch::Contains("no file descriptor"));
}

TEST_CASE("connect_console_socket names the path when nobody listens", "[console]") {
    auto r = rt::console::connect_console_socket("/tmp/berth-no-such-console.sock");
    REQUIRE(!r);
    CHECK_THAT(r.error().message(), Catch::Contains("/tmp/berth-no-such-console.sock"));
    auto long_path = rt::console::connect_console_socket(std::string(200, 'a'));
    CHECK(!long_path);
}

TEST_CASE("setup_console in a child: the master arrives and the slave is its terminal", "[console]") {
    if (access("/dev/ptmx", R_OK | W_OK) != 0) {
        WARN("skipped: no /dev/ptmx");
        return;
    }
    char dir[] = "/tmp/berth-console-XXXXXX";
    REQUIRE(mkdtemp(dir));
    std::string path = std::string(dir) + "/sock";
    util::UniqueFd l(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    REQUIRE(bind(l.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    REQUIRE(listen(l.get(), 1) == 0);

    auto sock = rt::console::connect_console_socket(path);
    REQUIRE(sock);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        auto st = rt::console::setup_console(sock->get(), rt::console::Size{30, 100});
        if (!st) _exit(10);
        if (!isatty(0) || !isatty(1) || !isatty(2)) _exit(11);
        winsize ws{};
        if (ioctl(1, TIOCGWINSZ, &ws) != 0 || ws.ws_row != 30 || ws.ws_col != 100) _exit(12);
        if (tcgetpgrp(0) != getpgrp()) _exit(13);  // controlling terminal, foreground
        (void)!write(1, "ok", 2);
        _exit(0);
    }
    sock->reset();
    util::UniqueFd conn(accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(conn);
    auto master = rt::console::recv_fd(conn.get());
    REQUIRE(master);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    char buf[16] = {};
    ssize_t n = read(master->get(), buf, sizeof buf);
    CHECK(n >= 2);
    CHECK(std::string(buf, 2) == "ok");
    (void)util::remove_tree(dir);
}
