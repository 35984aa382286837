// Container logs: each container's stdout and stderr are one file,
// <dir>/<name>/current, opened by the daemon (O_APPEND) and given to the
// container as its fds 1 and 2. The container writes there directly, so
// nothing it writes depends on the daemon being alive: a daemon killed and
// restarted finds the lines written meanwhile in `current` and carries on.
//
// The daemon follows `current` on a loop timer (every poll_ms): each
// complete line is stamped with the time it was read (a line written while
// the daemon was down gets the time of the restart), appended to the
// rotated files <name>/log, log.1 ... log.<files-1> ("<RFC 3339 UTC ms>
// <text>" per line; each file at most bytes_per_container / files, so the
// set stays within bytes_per_container; the oldest rotated files of any
// container go first when all of them pass bytes_total), kept in a RAM
// ring (ring_bytes per container, for `berth logs` without reading the
// disk) and handed to followers (`berth logs -f`). The follow offset is
// persisted in <name>/offset (atomic rename, process-crash durable) after
// the copy, and the copied range of `current` is released with
// fallocate(FALLOC_FL_PUNCH_HOLE): the file's size grows, its blocks do
// not. A crash between the copy and the offset's write copies those lines
// again on the next start (a duplicate, never a loss). A new container
// (fresh) empties `current` once what its predecessor left is copied.
//
// A partial line stays in `current` until its newline comes (or it passes
// kMaxLine, or the container exits: detach() takes it as a line).
//
// Memory per container: the ring's text plus ~48 bytes a line (bounded by
// ring_bytes, counted with that overhead) and ~300 bytes of bookkeeping;
// see logs_test.cpp's measurement.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "util/event_loop.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace svc {

struct LogConfig {
    std::string dir;                       ///< <device root>/logs
    uint64_t bytes_per_container = 1 << 20;  ///< log + log.1 ... together
    uint64_t bytes_total = 16 << 20;         ///< every container's rotated files together
    size_t ring_bytes = 64 << 10;            ///< RAM per container, text + per-line overhead
    int files = 4;                           ///< log, log.1 ... log.<files-1>
    int64_t poll_ms = 100;                   ///< how often `current` is read
};

struct LogLine {
    int64_t time_ms = 0;  ///< CLOCK_REALTIME, when the daemon read it
    std::string text;     ///< without the newline
};

class Logs {
public:
    /// Lines longer than this are cut into lines of this length.
    static constexpr size_t kMaxLine = 16 << 10;
    /// Bytes counted per ring line beyond its text.
    static constexpr size_t kLineOverhead = sizeof(LogLine) + 16;

    Logs(util::EventLoop &loop, LogConfig cfg);
    /// Copies what is pending and persists the offsets; `current` stays
    /// for the next daemon.
    ~Logs();
    Logs(const Logs &) = delete;
    Logs &operator=(const Logs &) = delete;

    /// A writer on <name>/current (O_WRONLY | O_APPEND | O_CLOEXEC) for a
    /// container's fds 1 and 2, and `name` followed from now on. `fresh`: no
    /// process still writes to the old file (a container about to be
    /// created): what is left in it is copied, then it is emptied.
    util::Result<util::UniqueFd> open(const std::string &name, bool fresh);
    /// Follows <name>/current from its persisted offset without a writer
    /// (a container adopted after a daemon restart).
    util::Status attach(const std::string &name);
    /// A last copy (a partial last line included), then no more following
    /// until open() or attach(); the ring and the files stay.
    void detach(const std::string &name);
    /// Copies what `current` holds now (every followed name for drain_all).
    util::Status drain(const std::string &name);
    void drain_all();

    /// The last `n` lines (from the ring when it holds that many, else the files).
    std::vector<LogLine> last(const std::string &name, size_t n) const;
    /// The lines read at or after `time_ms`.
    std::vector<LogLine> since(const std::string &name, int64_t time_ms) const;

    using FollowId = uint64_t;
    /// `cb` gets every new line of `name` until unfollow().
    FollowId follow(const std::string &name, std::function<void(const LogLine &)> cb);
    void unfollow(FollowId id);

    /// The ring's accounted bytes (text + kLineOverhead a line).
    size_t ring_bytes(const std::string &name) const;
    /// The last error met while following (a full disk, ...), cleared on success.
    std::string last_error() const { return last_error_; }

private:
    struct Stream;
    Stream &stream(const std::string &name);
    util::Status open_current(Stream &s);
    util::Status copy(Stream &s, bool all);
    util::Status append_files(Stream &s, const std::string &text);
    void rotate(Stream &s);
    void enforce_total();
    std::vector<LogLine> read_files(const std::string &name) const;
    void arm();

    util::EventLoop &loop_;
    LogConfig cfg_;
    std::map<std::string, std::unique_ptr<Stream>> streams_;
    std::map<FollowId, std::pair<std::string, std::function<void(const LogLine &)>>> followers_;
    FollowId next_follow_ = 1;
    util::EventLoop::TimerId timer_ = 0;
    std::string last_error_;
};

/// "2026-12-01T02:33:00.123Z" for a CLOCK_REALTIME time in ms, and back
/// (-1 when `s` does not start with one).
std::string log_time(int64_t time_ms);
int64_t parse_log_time(std::string_view s);

}  // namespace svc
