// The control socket's server (on the daemon's loop) and client (the CLI);
// see control.hpp for the protocol.
#include "daemon/control.hpp"

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

constexpr size_t kMaxRequest = 4 << 20;  ///< a manifest travels in a request
constexpr size_t kMaxPending = 4 << 20;  ///< a client this far behind is dropped

util::Result<sockaddr_un> unix_address(const std::string &path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return util::Error::msg(util::cat("control socket path ", util::quote(path), " is too long"));
    memcpy(addr.sun_path, path.data(), path.size());
    return addr;
}

util::json::Value error_response(std::string_view why) {
    util::json::Value v = util::json::Value::object();
    v["ok"] = false;
    v["error"] = std::string(why);
    return v;
}

}  // namespace

std::string control_socket_path(std::string_view run_dir) { return util::path_join(run_dir, "daemon.sock"); }

// ---- server ------------------------------------------------------------------

void ControlConn::send(const util::json::Value &v) {
    if (closed_) return;
    out_ += util::json::dump(v);
    out_ += '\n';
    if (out_.size() > kMaxPending) {  // not reading: give up on it
        close_now();
        return;
    }
    flush();
}

void ControlConn::finish() {
    if (closed_) return;
    finishing_ = true;
    flush();
}

void ControlConn::flush() {
    while (!out_.empty()) {
        ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0) {
            close_now();
            return;
        }
        out_.erase(0, size_t(n));
    }
    if (out_.empty() && finishing_) {
        close_now();
        return;
    }
    if (!dispatching_) arm();
}

void ControlConn::arm() {
    if (closed_) return;
    // Before the request: read it. After it: only notice a hang-up (and
    // write what is pending); further input is ignored.
    uint32_t ev = requested_ ? EPOLLRDHUP : EPOLLIN | EPOLLRDHUP;
    if (!out_.empty()) ev |= EPOLLOUT;
    (void)loop_.watch(fd_.get(), ev, [this](uint32_t e) {
        auto keep = self_.lock();  // close_now() may drop the server's reference
        if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
            if (!requested_ && (e & EPOLLIN)) readable();  // a request then EOF: answer it
            else {
                close_now();
                return;
            }
        } else if (e & EPOLLIN) {
            readable();
        }
        if (!closed_ && (e & EPOLLOUT)) flush();
    });
}

void ControlConn::readable() {
    char buf[65536];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
        close_now();
        return;
    }
    in_.append(buf, size_t(n));
    auto nl = in_.find('\n');
    if (nl == std::string::npos) {
        if (in_.size() > kMaxRequest) reply(error_response("request too long"));
        return;
    }
    requested_ = true;
    std::string line = in_.substr(0, nl);
    in_.clear();
    auto req = util::json::parse(line, "request");
    if (!req || !req->is_object() || !(*req)["op"].is_string()) {
        reply(error_response(req ? "request: expected an object with a string \"op\"" : req.error().message()));
        return;
    }
    if (server_) server_->dispatch(this, *req);
}

void ControlConn::close_now() {
    if (closed_) return;
    closed_ = true;
    loop_.unwatch(fd_.get());
    fd_.reset();
    out_.clear();
    auto cb = std::move(on_close_);
    on_close_ = nullptr;
    if (cb) cb();
    if (auto *s = std::exchange(server_, nullptr)) s->release(this);  // may destroy this
}

ControlServer::ControlServer(util::EventLoop &loop, std::string path, util::UniqueFd fd, Handler h)
    : loop_(loop), path_(std::move(path)), fd_(std::move(fd)), handler_(std::move(h)) {}

util::Result<std::unique_ptr<ControlServer>> ControlServer::listen(util::EventLoop &loop, const std::string &path,
                                                                   Handler handler) {
    auto addr = TRY(unix_address(path));
    util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return util::Error::from_errno("control socket");
    if (::unlink(path.c_str()) < 0 && errno != ENOENT) return util::Error::from_errno(util::cat("remove stale ", util::quote(path)));
    // Created 0600 (the umask covers the bind), so nobody else connects
    // even before the chmod; the peer check below is the real gate.
    mode_t old = ::umask(0177);
    int r = ::bind(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr);
    ::umask(old);
    if (r < 0) return util::Error::from_errno(util::cat("bind ", util::quote(path)));
    if (::chmod(path.c_str(), 0600) < 0) return util::Error::from_errno(util::cat("chmod ", util::quote(path)));
    if (::listen(fd.get(), 64) < 0) return util::Error::from_errno(util::cat("listen on ", util::quote(path)));
    std::unique_ptr<ControlServer> s(new ControlServer(loop, path, std::move(fd), std::move(handler)));
    ControlServer *raw = s.get();
    TRY(loop.watch(raw->fd_.get(), EPOLLIN, [raw](uint32_t) { raw->accept_all(); }));
    return s;
}

ControlServer::~ControlServer() {
    loop_.unwatch(fd_.get());
    auto conns = std::move(conns_);
    for (auto &[raw, c] : conns) {
        c->server_ = nullptr;
        c->close_now();
    }
    ::unlink(path_.c_str());
}

void ControlServer::accept_all() {
    for (;;) {
        util::UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!c) return;  // EAGAIN: all taken; anything else: the next wake-up retries
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) continue;
        auto conn = std::shared_ptr<ControlConn>(new ControlConn(loop_, std::move(c), cred.uid));
        conn->server_ = this;
        conn->self_ = conn;
        conns_[conn.get()] = conn;
        if (cred.uid != 0) {
            conn->requested_ = true;
            conn->reply(error_response(util::cat("permission denied: the berth daemon answers root only (peer uid ",
                                                 cred.uid, ")")));
            continue;
        }
        conn->arm();
    }
}

void ControlServer::dispatch(ControlConn *c, const util::json::Value &request) {
    auto it = conns_.find(c);
    if (it == conns_.end()) return;
    std::shared_ptr<ControlConn> conn = it->second;  // alive through the handler
    conn->dispatching_ = true;
    loop_.unwatch(conn->fd_.get());  // the handler may turn the loop
    handler_(conn, request);
    conn->dispatching_ = false;
    if (!conn->closed()) conn->flush();
}

// ---- client ------------------------------------------------------------------

util::Result<ControlClient> ControlClient::connect(const std::string &run_dir) {
    std::string path = control_socket_path(run_dir);
    auto addr = TRY(unix_address(path));
    util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return util::Error::from_errno("control socket");
    int r;
    do {
        r = ::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return util::Error::from_errno(util::cat("connect to the daemon at ", util::quote(path)));
    return ControlClient(std::move(fd));
}

util::Status ControlClient::send(const util::json::Value &request) {
    std::string line = util::json::dump(request) + "\n";
    while (!line.empty()) {
        ssize_t n = ::send(fd_.get(), line.data(), line.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        // The daemon may have answered and closed already (a refused
        // peer): next() reads why.
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return {};
        if (n < 0) return util::Error::from_errno("send a request to the daemon");
        line.erase(0, size_t(n));
    }
    return {};
}

util::Result<std::optional<util::json::Value>> ControlClient::next() {
    for (;;) {
        auto nl = buf_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return std::optional<util::json::Value>(TRY(util::json::parse(line, "the daemon's response")));
        }
        char b[65536];
        ssize_t n = ::recv(fd_.get(), b, sizeof b, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == ECONNRESET) n = 0;
        if (n < 0) return util::Error::from_errno("read the daemon's response");
        if (n == 0) {
            if (!buf_.empty()) return util::Error::msg("the daemon's response ended in the middle of a line");
            return std::optional<util::json::Value>();
        }
        buf_.append(b, size_t(n));
    }
}

util::Result<util::json::Value> ControlClient::call(const util::json::Value &request) {
    TRY(send(request));
    auto r = TRY(next());
    if (!r) return util::Error::msg("the daemon closed the connection without an answer");
    if (!r->is_object()) return util::Error::msg("the daemon's response is not an object");
    if (!r->contains("ok") || (*r)["ok"] != true) {
        if (r->contains("error") && (*r)["error"].is_string()) return util::Error::msg((*r)["error"].get<std::string>());
        return util::Error::msg("the daemon refused the request");
    }
    return std::move(*r);
}

bool no_daemon(const util::Error &e) { return e.code == ENOENT || e.code == ECONNREFUSED; }

}  // namespace svc
