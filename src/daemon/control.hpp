// The daemon's control socket: a unix stream socket (<run dir>/daemon.sock,
// mode 0600) that the CLI (`berth ps`, `logs`, `update ...`, `daemon
// status`, `system poweroff|reboot`) talks to while the daemon runs.
//
// The protocol is JSON lines: the client sends one request object on one
// line ({"op":"ps"}), the daemon answers with one or more response objects,
// one per line, and closes the connection when it is done (a `logs -f`
// stream or an `update apply` that waits for its outcome stays open until
// then). Every final response has "ok" (true, or false with "error": one
// line naming what was wrong). Only uid 0 is served: the peer's credentials
// (SO_PEERCRED) are checked at accept and anyone else gets an error and is
// disconnected.
//
// The server is a part of the daemon's event loop and never blocks: a slow
// reader's output is buffered (bounded; a client that stops reading is
// dropped). The client half is for the CLI and blocks.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "util/event_loop.hpp"
#include "util/fd.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace svc {

/// <run_dir>/daemon.sock
std::string control_socket_path(std::string_view run_dir);

/// One client connection on the server side. Kept alive by the server while
/// open; a handler that answers later (a stream) keeps a shared_ptr.
class ControlServer;

class ControlConn {
public:
    /// Queues `v` as one line and writes what the socket takes now.
    void send(const util::json::Value &v);
    /// Closes once everything queued is written.
    void finish();
    /// send() then finish().
    void reply(const util::json::Value &v) {
        send(v);
        finish();
    }
    bool closed() const { return closed_; }
    uid_t uid() const { return uid_; }
    /// Called once when the connection goes away (the peer hung up, an
    /// error, or finish() done); a stream stops here.
    void on_close(std::function<void()> cb) { on_close_ = std::move(cb); }

private:
    friend class ControlServer;
    ControlConn(util::EventLoop &loop, util::UniqueFd fd, uid_t uid) : loop_(loop), fd_(std::move(fd)), uid_(uid) {}
    void flush();
    void arm();
    void close_now();
    void readable();

    util::EventLoop &loop_;
    util::UniqueFd fd_;
    uid_t uid_;
    std::string in_, out_;
    bool requested_ = false;   ///< the request line was read (one per connection)
    bool finishing_ = false;   ///< close once out_ is written
    bool closed_ = false;
    bool dispatching_ = false; ///< the handler runs (it may turn the loop): not watched meanwhile
    std::function<void()> on_close_;
    ControlServer *server_ = nullptr;  ///< null once closed
    std::weak_ptr<ControlConn> self_;  ///< kept alive across its own callbacks
};

class ControlServer {
public:
    /// Gets each request (a JSON object with "op") of a root peer.
    using Handler = std::function<void(std::shared_ptr<ControlConn>, const util::json::Value &request)>;

    /// Listens on `path` (a stale socket file is replaced: the caller holds
    /// the daemon's lock, so no other daemon owns it), mode 0600.
    static util::Result<std::unique_ptr<ControlServer>> listen(util::EventLoop &loop, const std::string &path,
                                                               Handler handler);
    /// Closes every connection and the socket, and unlinks it.
    ~ControlServer();
    size_t connections() const { return conns_.size(); }

private:
    friend class ControlConn;
    ControlServer(util::EventLoop &loop, std::string path, util::UniqueFd fd, Handler h);
    void accept_all();
    void dispatch(ControlConn *c, const util::json::Value &request);
    void release(ControlConn *c) { conns_.erase(c); }

    util::EventLoop &loop_;
    std::string path_;
    util::UniqueFd fd_;
    Handler handler_;
    std::unordered_map<ControlConn *, std::shared_ptr<ControlConn>> conns_;
};

// ---- the client (the CLI) --------------------------------------------------

class ControlClient {
public:
    /// Connects to the daemon of `run_dir`. ENOENT or ECONNREFUSED: no
    /// daemon runs there (error code kept, so the CLI can fall back).
    static util::Result<ControlClient> connect(const std::string &run_dir);
    /// Sends one request line.
    util::Status send(const util::json::Value &request);
    /// The next response line; nullopt at the end (the daemon closed).
    util::Result<std::optional<util::json::Value>> next();
    /// Sends `request` and returns its one response, an error when it is
    /// {"ok":false,"error":...}.
    util::Result<util::json::Value> call(const util::json::Value &request);

private:
    explicit ControlClient(util::UniqueFd fd) : fd_(std::move(fd)) {}
    util::UniqueFd fd_;
    std::string buf_;
};

/// True when `e` (from ControlClient::connect) means that no daemon listens.
bool no_daemon(const util::Error &e);

}  // namespace svc
