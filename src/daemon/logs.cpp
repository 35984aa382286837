// svc::Logs: following each container's `current` file into rotated files,
// a RAM ring and followers (logs.hpp says how and why).
#include "daemon/logs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "util/dir.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace svc {

using util::Error;

namespace {

constexpr const char *kCurrent = "current";
constexpr const char *kOffset = "offset";
constexpr const char *kLog = "log";
/// Read from `current` per drain at most; the rest waits for the next tick.
constexpr size_t kDrainBudget = 4 << 20;
constexpr size_t kChunk = 256 << 10;

int64_t realtime_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string rotated_name(int k) { return k == 0 ? std::string(kLog) : util::cat(kLog, ".", k); }

}  // namespace

std::string log_time(int64_t time_ms) {
    time_t sec = static_cast<time_t>(time_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(time_ms % 1000));
    return buf;
}

int64_t parse_log_time(std::string_view s) {
    // YYYY-MM-DDTHH:MM:SS.mmmZ
    if (s.size() < 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != '.' || s[23] != 'Z')
        return -1;
    auto field = [&](size_t at, size_t len) { return util::parse_int<int>(s.substr(at, len)); };
    auto y = field(0, 4), mo = field(5, 2), d = field(8, 2), h = field(11, 2), mi = field(14, 2), sec = field(17, 2),
         ms = field(20, 3);
    if (!y || !mo || !d || !h || !mi || !sec || !ms) return -1;
    struct tm tm = {};
    tm.tm_year = *y - 1900;
    tm.tm_mon = *mo - 1;
    tm.tm_mday = *d;
    tm.tm_hour = *h;
    tm.tm_min = *mi;
    tm.tm_sec = *sec;
    return int64_t(timegm(&tm)) * 1000 + *ms;
}

struct Logs::Stream {
    std::string name;
    util::UniqueFd dir;      ///< <dir>/<name>
    util::UniqueFd current;  ///< O_RDWR: read, punched, emptied; never written here
    uint64_t offset = 0;     ///< copied up to here
    uint64_t punched = 0;    ///< released up to here (this run)
    bool followed = false;
    util::UniqueFd log;  ///< <name>/log, O_APPEND
    uint64_t log_size = 0;
    std::deque<LogLine> ring;
    size_t ring_bytes = 0;
};

Logs::Logs(util::EventLoop &loop, LogConfig cfg) : loop_(loop), cfg_(std::move(cfg)) {
    if (cfg_.files < 1) cfg_.files = 1;
}

Logs::~Logs() {
    loop_.cancel(timer_);
    drain_all();
}

Logs::Stream &Logs::stream(const std::string &name) {
    auto &p = streams_[name];
    if (!p) {
        p = std::make_unique<Stream>();
        p->name = name;
    }
    return *p;
}

util::Status Logs::open_current(Stream &s) {
    if (!s.dir) {
        std::string path = util::path_join(cfg_.dir, s.name);
        TRY(util::mkdir_p(path, 0750));
        s.dir = TRY(util::open_file(path, O_RDONLY | O_DIRECTORY));
    }
    if (s.current) return util::ok();
    s.current = TRY(util::open_at(s.dir.get(), kCurrent, O_RDWR | O_CREAT, 0640));
    s.offset = 0;
    s.punched = 0;
    if (auto saved = util::read_file_at(s.dir.get(), kOffset, 64))
        if (auto v = util::parse_int<uint64_t>(util::trim(*saved))) s.offset = *v;
    struct stat st;
    if (::fstat(s.current.get(), &st) < 0) return Error::from_errno(util::cat("log ", s.name, "/current"));
    if (s.offset > static_cast<uint64_t>(st.st_size)) s.offset = 0;  // a new file under the old offset
    return util::ok();
}

util::Result<util::UniqueFd> Logs::open(const std::string &name, bool fresh) {
    Stream &s = stream(name);
    TRY_CTX(open_current(s), util::cat("log of ", name));
    if (fresh) {
        // Nobody writes to it any more: copy the rest (a partial line too), then empty it.
        // The offset goes to 0 first: a crash in between copies the old
        // lines again rather than skip the new container's first ones.
        TRY_CTX(copy(s, true), util::cat("log of ", name));
        TRY(util::atomic_write_file_at(s.dir.get(), kOffset, "0", 0600, util::Durability::ProcessCrash));
        if (::ftruncate(s.current.get(), 0) < 0) return Error::from_errno(util::cat("empty the log of ", name));
        s.offset = s.punched = 0;
    }
    auto w = TRY(util::open_at(s.dir.get(), kCurrent, O_WRONLY | O_APPEND | O_CREAT, 0640));
    s.followed = true;
    arm();
    return w;
}

util::Status Logs::attach(const std::string &name) {
    Stream &s = stream(name);
    TRY_CTX(open_current(s), util::cat("log of ", name));
    s.followed = true;
    TRY_CTX(copy(s, false), util::cat("log of ", name));
    arm();
    return util::ok();
}

void Logs::detach(const std::string &name) {
    auto it = streams_.find(name);
    if (it == streams_.end() || !it->second->current) return;
    Stream &s = *it->second;
    if (auto r = copy(s, true); !r) last_error_ = r.error().message();
    s.followed = false;
    s.current.reset();
    s.log.reset();
}

util::Status Logs::drain(const std::string &name) {
    auto it = streams_.find(name);
    if (it == streams_.end() || !it->second->current) return util::ok();
    return copy(*it->second, false);
}

void Logs::drain_all() {
    bool failed = false;
    for (auto &[name, s] : streams_) {
        if (!s->followed) continue;
        if (auto r = copy(*s, false); !r) {
            last_error_ = util::cat("log of ", name, ": ", r.error().message());
            failed = true;
        }
    }
    if (!failed) last_error_.clear();
}

void Logs::arm() {
    if (timer_ != 0) return;
    bool any = false;
    for (auto &[name, s] : streams_) any = any || s->followed;
    if (!any) return;
    timer_ = loop_.after(cfg_.poll_ms, [this] {
        timer_ = 0;
        drain_all();
        arm();
    });
}

util::Status Logs::copy(Stream &s, bool all) {
    struct stat st;
    if (::fstat(s.current.get(), &st) < 0) return Error::from_errno("stat current");
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    std::vector<LogLine> lines;
    uint64_t offset = s.offset;
    std::string buf;
    size_t budget = kDrainBudget;
    while (offset < size && budget > 0) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(size - offset, kChunk));
        buf.resize(want);
        ssize_t n = ::pread(s.current.get(), buf.data(), want, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error::from_errno("read current");
        }
        if (n == 0) break;
        const size_t got = static_cast<size_t>(n);
        const bool at_end = offset + got >= size;
        const int64_t now = realtime_ms();
        size_t pos = 0;
        for (;;) {
            size_t lim = std::min(got, pos + kMaxLine);
            const char *nl = static_cast<const char *>(std::memchr(buf.data() + pos, '\n', lim - pos));
            if (nl) {
                size_t end = static_cast<size_t>(nl - buf.data());
                lines.push_back({now, buf.substr(pos, end - pos)});
                pos = end + 1;
            } else if (lim - pos == kMaxLine || (all && at_end && lim > pos)) {
                lines.push_back({now, buf.substr(pos, lim - pos)});
                pos = lim;
            } else {
                break;
            }
        }
        offset += pos;
        budget -= std::min(budget, got);
        if (at_end || pos == 0) break;
    }
    if (offset == s.offset) return util::ok();

    std::string out;
    for (const auto &l : lines) {
        std::string rec = util::cat(log_time(l.time_ms), " ", l.text, "\n");
        const uint64_t per_file = std::max<uint64_t>(cfg_.bytes_per_container / cfg_.files, 1);
        if (!s.log || s.log_size + out.size() + rec.size() > per_file) {
            TRY(append_files(s, out));
            out.clear();
            if (s.log_size > 0 && s.log_size + rec.size() > per_file) rotate(s);
        }
        out += rec;
    }
    TRY(append_files(s, out));
    // Copied: from here a crash repeats nothing, and the blocks can go.
    s.offset = offset;
    TRY(util::atomic_write_file_at(s.dir.get(), kOffset, util::cat(offset), 0600, util::Durability::ProcessCrash));
    uint64_t to = offset & ~uint64_t(4095);
    if (to > s.punched) {
        // A filesystem without hole punching (EOPNOTSUPP) keeps the blocks until the next fresh open.
        if (::fallocate(s.current.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(s.punched),
                        static_cast<off_t>(to - s.punched)) == 0)
            s.punched = to;
    }

    for (auto &l : lines) {
        // A follower may unfollow itself or another: look each one up again.
        std::vector<FollowId> ids;
        for (const auto &[id, f] : followers_)
            if (f.first == s.name) ids.push_back(id);
        for (FollowId id : ids)
            if (auto f = followers_.find(id); f != followers_.end()) {
                auto cb = f->second.second;
                cb(l);
            }
        s.ring_bytes += l.text.size() + kLineOverhead;
        s.ring.push_back(std::move(l));
        while (s.ring_bytes > cfg_.ring_bytes && !s.ring.empty()) {
            s.ring_bytes -= s.ring.front().text.size() + kLineOverhead;
            s.ring.pop_front();
        }
    }
    return util::ok();
}

util::Status Logs::append_files(Stream &s, const std::string &text) {
    if (!s.log) {
        s.log = TRY(util::open_at(s.dir.get(), kLog, O_WRONLY | O_APPEND | O_CREAT, 0640));
        struct stat st;
        if (::fstat(s.log.get(), &st) < 0) return Error::from_errno("stat log");
        s.log_size = static_cast<uint64_t>(st.st_size);
    }
    if (text.empty()) return util::ok();
    TRY_CTX(util::write_all(s.log.get(), text), util::cat("write the log of ", s.name));
    s.log_size += text.size();
    return util::ok();
}

void Logs::rotate(Stream &s) {
    s.log.reset();
    s.log_size = 0;
    if (cfg_.files == 1) {
        (void)::unlinkat(s.dir.get(), kLog, 0);
    } else {
        for (int k = cfg_.files - 1; k >= 1; k--)
            (void)::renameat(s.dir.get(), rotated_name(k - 1).c_str(), s.dir.get(), rotated_name(k).c_str());
    }
    enforce_total();
}

void Logs::enforce_total() {
    struct File {
        int64_t mtime_ns;
        std::string path;
        uint64_t size;
        bool rotated;
    };
    std::vector<File> files;
    uint64_t total = 0;
    auto d = util::Dir::open(cfg_.dir);
    if (!d) return;
    for (;;) {
        auto e = d->next();
        if (!e || !*e) break;
        std::string name = (*e)->d_name;
        if (name == "." || name == "..") continue;
        for (int k = 0; k < cfg_.files; k++) {
            std::string rel = util::path_join(name, rotated_name(k));
            struct stat st;
            if (::fstatat(d->fd(), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) continue;
            files.push_back({int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, rel,
                             static_cast<uint64_t>(st.st_size), k > 0});
            total += static_cast<uint64_t>(st.st_size);
        }
    }
    std::sort(files.begin(), files.end(), [](const File &a, const File &b) { return a.mtime_ns < b.mtime_ns; });
    for (const auto &f : files) {
        if (total <= cfg_.bytes_total) break;
        if (!f.rotated) continue;  // the files being written stay
        if (::unlinkat(d->fd(), f.path.c_str(), 0) == 0) total -= f.size;
    }
}

std::vector<LogLine> Logs::read_files(const std::string &name) const {
    std::vector<LogLine> out;
    auto dir = util::open_file(util::path_join(cfg_.dir, name), O_RDONLY | O_DIRECTORY);
    if (!dir) return out;
    for (int k = cfg_.files - 1; k >= 0; k--) {
        auto text = util::read_file_at(dir->get(), rotated_name(k));
        if (!text) continue;
        std::string_view v = *text;
        while (!v.empty()) {
            size_t nl = v.find('\n');
            std::string_view line = v.substr(0, nl);
            v = nl == std::string_view::npos ? std::string_view() : v.substr(nl + 1);
            int64_t t = parse_log_time(line);
            if (t < 0) continue;
            out.push_back({t, std::string(line.substr(std::min<size_t>(25, line.size())))});
        }
    }
    return out;
}

std::vector<LogLine> Logs::last(const std::string &name, size_t n) const {
    auto it = streams_.find(name);
    if (it != streams_.end() && it->second->ring.size() >= n) {
        const auto &r = it->second->ring;
        return std::vector<LogLine>(r.end() - static_cast<std::ptrdiff_t>(n), r.end());
    }
    auto all = read_files(name);
    if (all.size() > n) all.erase(all.begin(), all.end() - static_cast<std::ptrdiff_t>(n));
    return all;
}

std::vector<LogLine> Logs::since(const std::string &name, int64_t time_ms) const {
    std::vector<LogLine> out;
    auto it = streams_.find(name);
    if (it != streams_.end() && !it->second->ring.empty() && it->second->ring.front().time_ms < time_ms) {
        for (const auto &l : it->second->ring)
            if (l.time_ms >= time_ms) out.push_back(l);
        return out;
    }
    for (auto &l : read_files(name))
        if (l.time_ms >= time_ms) out.push_back(std::move(l));
    return out;
}

Logs::FollowId Logs::follow(const std::string &name, std::function<void(const LogLine &)> cb) {
    FollowId id = next_follow_++;
    followers_[id] = {name, std::move(cb)};
    return id;
}

void Logs::unfollow(FollowId id) { followers_.erase(id); }

size_t Logs::ring_bytes(const std::string &name) const {
    auto it = streams_.find(name);
    return it == streams_.end() ? 0 : it->second->ring_bytes;
}

}  // namespace svc
