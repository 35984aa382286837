// The fleet agent's outbox: status reports not yet published (no broker
// configured, or the connection is down), kept across restarts and power
// cuts in one file, <root>/fleet/outbox, sent in order on (re)connect.
//
// The file holds one report per line (JSON, no newline inside), oldest
// first, and never more than `max_bytes`: pushing a report drops the oldest
// ones until it fits (the newest say most about the device). The queue
// lives in memory; sync() makes the file hold it, replacing the whole file
// with util::atomic_write_file (temporary, fsync, rename, fsync of the
// directory), so a crash leaves the old queue or the new one. The owner
// decides when: at once while no broker can take a report, later while one
// is connected (a report acknowledged first never costs a write; see
// docs/fleet-agent.md, "Status reports").
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace fleet {

class Outbox {
public:
    /// Reads `path` (missing: empty). Lines that are empty are skipped;
    /// when the file is over `max_bytes` (the bound was lowered), the oldest
    /// lines are dropped as push() would.
    static util::Result<Outbox> open(std::string path, size_t max_bytes);

    /// Appends `report` (one line: a newline in it is an error), dropping
    /// the oldest reports until the queue fits; one larger than the whole
    /// bound is refused. The file follows at sync().
    util::Status push(std::string_view report);
    /// Removes the `n` oldest (the broker acknowledged them). Emptied, the
    /// file is removed at once (no fsync); otherwise it keeps them until
    /// the next write. Either way a power cut that brings them back only
    /// sends acknowledged reports again, which their (deployment, seq) key
    /// makes harmless.
    util::Status pop(size_t n);
    /// Writes the queue to the file durably when a queued report is not in
    /// it yet.
    util::Status sync();
    /// Whether every queued report is in the file.
    bool synced() const { return !dirty_; }

    const std::deque<std::string> &entries() const { return entries_; }
    bool empty() const { return entries_.empty(); }
    /// The file's size: the reports and their newlines.
    size_t bytes() const { return bytes_; }
    /// Reports dropped to keep the bound, since open().
    size_t dropped() const { return dropped_; }

private:
    Outbox(std::string path, size_t max) : path_(std::move(path)), max_(max) {}
    void trim(size_t room);

    std::string path_;
    size_t max_;
    std::deque<std::string> entries_;
    size_t bytes_ = 0;
    size_t dropped_ = 0;
    bool dirty_ = false;    ///< a queued report is not in the file
    bool on_disk_ = false;  ///< the file exists (as far as this object knows)
};

}  // namespace fleet
