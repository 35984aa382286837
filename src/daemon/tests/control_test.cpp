// svc::ControlServer and ControlClient: a request line gets its answer, a
// malformed one an error, a non-root peer is refused, a stream runs until
// the client hangs up. The server turns the loop in this thread; clients
// run in a thread (or a child, for another uid).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "daemon/control.hpp"
#include "util/file.hpp"

namespace {

using util::json::Value;

struct Fixture {
    std::string dir;
    std::unique_ptr<util::EventLoop> loop = util::EventLoop::create().value();
    std::unique_ptr<svc::ControlServer> server;

    explicit Fixture(svc::ControlServer::Handler h) {
        char tmpl[] = "/tmp/berth-control-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        dir = tmpl;
        auto s = svc::ControlServer::listen(*loop, svc::control_socket_path(dir), std::move(h));
        REQUIRE(s.ok());
        server = std::move(*s);
    }
    ~Fixture() {
        server.reset();
        (void)util::remove_tree(dir);
    }
    /// Turns the loop until `done` (bounded: 10 s).
    void turn_until(const std::atomic<bool> &done) {
        for (int i = 0; i < 1000 && !done; ++i) REQUIRE(loop->run_once(10).ok());
        REQUIRE(done);
    }
};

}  // namespace

TEST_CASE("control: a request line gets its answer and the socket is mode 0600") {
    Fixture f([](std::shared_ptr<svc::ControlConn> c, const Value &req) {
        Value v = Value::object();
        v["ok"] = true;
        v["op"] = req["op"];
        c->reply(v);
    });
    struct stat st;
    REQUIRE(stat(svc::control_socket_path(f.dir).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    std::atomic<bool> done{false};
    std::string got;
    std::thread t([&] {
        auto c = svc::ControlClient::connect(f.dir);
        if (c) {
            auto r = c->call(Value{{"op", "ps"}});
            if (r) got = (*r)["op"].get<std::string>();
        }
        done = true;
    });
    f.turn_until(done);
    t.join();
    CHECK(got == "ps");
}

TEST_CASE("control: a malformed request is answered with an error") {
    Fixture f([](std::shared_ptr<svc::ControlConn> c, const Value &) { c->reply(Value{{"ok", true}}); });
    std::atomic<bool> done{false};
    std::string err;
    std::thread t([&] {
        auto c = svc::ControlClient::connect(f.dir);
        if (c) {
            auto r = c->call(Value::array());  // not an object
            if (!r) err = r.error().message();
        }
        done = true;
    });
    f.turn_until(done);
    t.join();
    CHECK(err.find("\"op\"") != std::string::npos);
}

TEST_CASE("control: no daemon is an error the CLI recognises") {
    auto c = svc::ControlClient::connect("/tmp/berth-control-nonexistent-dir");
    REQUIRE_FALSE(c.ok());
    CHECK(svc::no_daemon(c.error()));
}

TEST_CASE("control: a non-root peer is refused even when the socket's mode lets it connect") {
    if (geteuid() != 0) {
        WARN("skipped: needs root to connect as another uid");
        return;
    }
    std::atomic<bool> handled{false};
    Fixture f([&](std::shared_ptr<svc::ControlConn> c, const Value &) {
        handled = true;
        c->reply(Value{{"ok", true}});
    });
    REQUIRE(chmod(f.dir.c_str(), 0755) == 0);
    REQUIRE(chmod(svc::control_socket_path(f.dir).c_str(), 0666) == 0);
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
        auto c = svc::ControlClient::connect(f.dir);
        if (!c) _exit(3);
        auto r = c->call(Value{{"op", "ps"}});
        std::string msg = r ? "accepted" : r.error().message();
        (void)util::write_all(p[1], msg);
        _exit(0);
    }
    close(p[1]);
    std::atomic<bool> done{false};
    int status = 0;
    for (int i = 0; i < 1000 && !done; ++i) {
        REQUIRE(f.loop->run_once(10).ok());
        if (waitpid(pid, &status, WNOHANG) == pid) done = true;
    }
    REQUIRE(done);
    auto msg = util::read_all(p[0]);
    close(p[0]);
    CHECK(WEXITSTATUS(status) == 0);
    REQUIRE(msg.ok());
    CHECK(msg->find("root only") != std::string::npos);
    CHECK_FALSE(handled);
}

TEST_CASE("control: a stream goes on until the client hangs up, then on_close runs") {
    std::shared_ptr<svc::ControlConn> stream;
    std::atomic<bool> closed{false};
    Fixture f([&](std::shared_ptr<svc::ControlConn> c, const Value &) {
        stream = c;
        c->on_close([&] { closed = true; });
        c->send(Value{{"line", "first"}});
    });
    std::atomic<bool> read_two{false};
    std::thread t([&] {
        auto c = svc::ControlClient::connect(f.dir);
        if (c && c->send(Value{{"op", "logs"}})) {
            auto a = c->next();
            auto b = c->next();
            read_two = a && *a && b && *b;
        }
    });  // the client goes away here
    for (int i = 0; i < 1000 && !stream; ++i) REQUIRE(f.loop->run_once(10).ok());
    REQUIRE(stream);
    stream->send(Value{{"line", "second"}});
    f.turn_until(closed);
    t.join();
    CHECK(read_two);
    CHECK(stream->closed());
}
