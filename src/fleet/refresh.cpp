// fleet::run_refresh and the child process that runs it; see refresh.hpp.
#include "fleet/refresh.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "ota/tuf/metadata.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

namespace fleet {

using Outcome = RefreshResult::Outcome;
using util::cat;

namespace {

/// Remembers whether any fetch failed: the difference between a repository
/// that could not be reached and one whose answer did not verify.
class WatchedFetcher : public ota::tuf::Fetcher {
public:
    explicit WatchedFetcher(ota::tuf::Fetcher &inner) : inner_(inner) {}
    util::Result<std::optional<std::string>> fetch(const std::string &url, size_t max_bytes) override {
        auto r = inner_.fetch(url, max_bytes);
        if (!r) failed_ = true;
        return r;
    }
    util::Result<ota::tuf::Conditional> fetch_if_changed(const std::string &url, size_t max_bytes,
                                                         const ota::tuf::Validators &have) override {
        auto r = inner_.fetch_if_changed(url, max_bytes, have);
        if (!r) failed_ = true;
        return r;
    }
    bool failed() const { return failed_; }

private:
    ota::tuf::Fetcher &inner_;
    bool failed_ = false;
};

RefreshResult failure(Outcome o, std::string why) {
    RefreshResult r;
    r.outcome = o;
    r.error = std::move(why);
    return r;
}

constexpr size_t kRootMaxBytes = 512 << 10;

}  // namespace

const char *outcome_name(Outcome o) {
    switch (o) {
    case Outcome::Ok: return "ok";
    case Outcome::Unreachable: return "unreachable";
    case Outcome::Refused: return "refused";
    case Outcome::PushRejected: return "push-rejected";
    }
    return "?";
}

RefreshResult run_refresh(const RefreshSettings &s, std::string_view pushed_timestamp, ota::tuf::Fetcher &fetcher,
                          ota::tuf::ClientConfig tuf) {
    if (!util::path_exists(util::path_join(s.metadata_dir, "root.json"))) {
        auto root = util::read_file(s.trusted_root, kRootMaxBytes);
        if (!root) return failure(Outcome::Refused, cat("trusted root ", util::quote(s.trusted_root), ": ", root.error().message()));
        if (auto st = ota::tuf::init_trusted_root(s.metadata_dir, *root); !st)
            return failure(Outcome::Refused, cat("trusted root ", util::quote(s.trusted_root), ": ", st.error().message()));
    }
    tuf.target_max_bytes = s.manifest_max_bytes;
    // An idle poll: a 304 for timestamp.json. Not after a push, which says
    // there is a newer one (a server's validators may not have caught up).
    tuf.conditional_timestamp = pushed_timestamp.empty();
    WatchedFetcher f(fetcher);
    auto client = ota::tuf::Client::open(s.metadata_dir, s.metadata_url, f, tuf);
    if (!client) return failure(Outcome::Refused, client.error().message());
    auto classify = [&](const util::Error &e) { return failure(f.failed() ? Outcome::Unreachable : Outcome::Refused, e.message()); };

    uint64_t pushed = 0;
    if (!pushed_timestamp.empty()) {
        // Checked before anything is fetched: a broker cannot make the fleet
        // hit the repository with garbage or forged timestamps.
        auto env = ota::tuf::parse_envelope(pushed_timestamp, "timestamp", "pushed timestamp");
        if (!env) return failure(Outcome::PushRejected, env.error().message());
        auto ts = ota::tuf::parse_timestamp(*env);
        if (!ts) return failure(Outcome::PushRejected, ts.error().message());
        const auto &root = client->root();
        auto role = root.roles.find("timestamp");
        if (role == root.roles.end()) return failure(Outcome::PushRejected, "the trusted root has no timestamp role");
        if (auto st = ota::tuf::verify_threshold(*env, root.keys, role->second, "pushed timestamp"); !st)
            return failure(Outcome::PushRejected, st.error().message());
        pushed = ts->version;
    }

    if (auto st = client->refresh(); !st) return classify(st.error());
    RefreshResult r;
    r.timestamp_version = client->timestamp() ? client->timestamp()->version : 0;
    if (pushed > r.timestamp_version)
        return failure(Outcome::Unreachable, cat("the repository's timestamp (version ", r.timestamp_version,
                                                 ") is behind the pushed one (version ", pushed, ")"));
    auto t = client->find_target(s.target);
    if (!t) return classify(t.error());
    if (!*t) return r;
    if ((*t)->length > s.manifest_max_bytes)
        return failure(Outcome::Refused, cat("target ", util::quote(s.target), ": length ", (*t)->length,
                                             " is over the limit of ", s.manifest_max_bytes));
    auto body = client->get_target(s.target, s.targets_url, s.targets_dir);
    if (!body) return classify(body.error());
    if (!*body) return r;  // gone between the two calls: cannot happen within one refresh
    r.target = ChannelTarget{(*t)->custom, std::move(**body)};
    return r;
}

// ---- the child's result on the pipe ------------------------------------------

std::string encode_result(const RefreshResult &r) {
    util::json::Value v = util::json::Value::object();
    v["outcome"] = outcome_name(r.outcome);
    v["error"] = r.error;
    v["timestamp_version"] = r.timestamp_version;
    if (r.target) v["custom"] = r.target->custom;
    v["target"] = r.target.has_value();
    std::string out = util::json::dump(v);
    out += '\n';
    if (r.target) out += r.target->manifest;
    return out;
}

util::Result<RefreshResult> decode_result(std::string_view bytes) {
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) return util::Error::msg("refresh result: no header line");
    auto v = TRY(util::json::parse(bytes.substr(0, nl), "refresh result"));
    TRY(util::json::expect_object(v, "refresh result"));
    RefreshResult r;
    auto outcome = TRY(util::json::req_string(v, "outcome", "refresh result"));
    bool known = false;
    for (Outcome o : {Outcome::Ok, Outcome::Unreachable, Outcome::Refused, Outcome::PushRejected})
        if (outcome == outcome_name(o)) {
            r.outcome = o;
            known = true;
        }
    if (!known) return util::Error::msg(cat("refresh result: unknown outcome ", util::quote(outcome)));
    r.error = TRY(util::json::opt_string(v, "error", "refresh result")).value_or("");
    r.timestamp_version = TRY(util::json::opt_uint(v, "timestamp_version", "refresh result")).value_or(0);
    if (TRY(util::json::opt_bool(v, "target", "refresh result")).value_or(false)) {
        ChannelTarget t;
        if (auto c = v.find("custom"); c != v.end()) t.custom = *c;
        t.manifest = std::string(bytes.substr(nl + 1));
        r.target = std::move(t);
    }
    return r;
}

// ---- the child ------------------------------------------------------------------

namespace {

class ChildRefresher : public Refresher {
public:
    ChildRefresher(util::EventLoop &loop, RefreshSettings s, img::HttpOptions http, int64_t timeout_ms, ExpectChild expect)
        : loop_(loop), s_(std::move(s)), http_(std::move(http)), timeout_ms_(timeout_ms), expect_(std::move(expect)) {}
    ~ChildRefresher() override { cancel(); }

    void start(std::string pushed, Done done) override;
    void cancel() override;

private:
    /// What the reaper's callback may touch after this object is gone.
    struct Exit {
        bool exited = false;
    };
    void readable();
    void finish();
    void reap();

    util::EventLoop &loop_;
    RefreshSettings s_;
    img::HttpOptions http_;
    int64_t timeout_ms_;
    ExpectChild expect_;

    pid_t pid_ = -1;
    std::shared_ptr<Exit> exit_;
    util::UniqueFd rd_;
    std::string buf_;
    bool overflow_ = false, timed_out_ = false;
    util::EventLoop::TimerId timer_ = 0;
    Done done_;
};

[[noreturn]] void child_main(const RefreshSettings &s, const img::HttpOptions &http, const std::string &pushed, int wr) {
    ota::tuf::UrlFetcher fetcher(http);
    RefreshResult r = run_refresh(s, pushed, fetcher);
    (void)util::write_all(wr, encode_result(r));
    ::_exit(0);
}

void ChildRefresher::start(std::string pushed, Done done) {
    auto fail = [&](std::string why) {
        loop_.after(0, [done = std::move(done), why = std::move(why)] { done(failure(Outcome::Unreachable, why)); });
    };
    if (pid_ > 0) return fail("a refresh is already running");
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return fail(util::Error::from_errno("refresh: pipe").message());
    util::UniqueFd rd(p[0]), wr(p[1]);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return fail(util::Error::from_errno("refresh: fork").message());
    if (pid == 0) {
        // The child: no loop, none of the daemon's destructors (_exit).
        util::become_worker_of(parent);
        ::signal(SIGPIPE, SIG_IGN);
        child_main(s_, http_, pushed, wr.get());
    }
    wr.reset();
    pid_ = pid;
    exit_ = std::make_shared<Exit>();
    if (expect_) expect_(pid, [e = exit_](int) { e->exited = true; });
    rd_ = std::move(rd);
    (void)::fcntl(rd_.get(), F_SETFL, O_NONBLOCK);
    buf_.clear();
    overflow_ = timed_out_ = false;
    if (auto st = loop_.watch(rd_.get(), EPOLLIN, [this](uint32_t) { readable(); }); !st) {
        cancel();
        return fail(st.error().message());
    }
    done_ = std::move(done);
    timer_ = loop_.after(timeout_ms_, [this] {
        timer_ = 0;
        timed_out_ = true;
        if (pid_ > 0 && !exit_->exited) ::kill(pid_, SIGKILL);
    });
}

void ChildRefresher::readable() {
    char chunk[16384];
    for (;;) {
        ssize_t n = ::read(rd_.get(), chunk, sizeof chunk);
        if (n > 0) {
            if (buf_.size() + size_t(n) > s_.manifest_max_bytes + 65536) {
                overflow_ = true;
                if (!exit_->exited) ::kill(pid_, SIGKILL);
                continue;
            }
            buf_.append(chunk, size_t(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        break;  // EOF (or an error: the same end)
    }
    finish();
}

void ChildRefresher::reap() {
    if (pid_ <= 0) return;
    if (!expect_) {
        int status;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
    pid_ = -1;
}

void ChildRefresher::finish() {
    loop_.unwatch(rd_.get());
    rd_.reset();
    loop_.cancel(timer_);
    timer_ = 0;
    reap();
    RefreshResult r;
    if (timed_out_)
        r = failure(Outcome::Unreachable, cat("the refresh did not finish within ", timeout_ms_ / 1000, " s (killed)"));
    else if (overflow_)
        r = failure(Outcome::Refused, "the refresh child sent more than its bound");
    else if (auto d = decode_result(buf_))
        r = std::move(*d);
    else
        r = failure(Outcome::Unreachable, buf_.empty() ? std::string("the refresh child died without a result")
                                                       : d.error().message());
    buf_.clear();
    buf_.shrink_to_fit();
    Done done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(r));
}

void ChildRefresher::cancel() {
    if (pid_ <= 0) return;
    if (!exit_->exited) ::kill(pid_, SIGKILL);
    if (rd_) {
        loop_.unwatch(rd_.get());
        rd_.reset();
    }
    loop_.cancel(timer_);
    timer_ = 0;
    reap();
    done_ = nullptr;
}

}  // namespace

std::unique_ptr<Refresher> child_refresher(util::EventLoop &loop, RefreshSettings s, img::HttpOptions http,
                                           int64_t timeout_ms, ExpectChild expect_child) {
    return std::make_unique<ChildRefresher>(loop, std::move(s), std::move(http), timeout_ms, std::move(expect_child));
}

}  // namespace fleet
