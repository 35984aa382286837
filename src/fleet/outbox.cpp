// fleet::Outbox: the bounded, crash-safe queue of status reports; see
// outbox.hpp.
#include "fleet/outbox.hpp"

#include <unistd.h>

#include <cerrno>

#include "util/file.hpp"
#include "util/strings.hpp"

namespace fleet {

util::Result<Outbox> Outbox::open(std::string path, size_t max_bytes) {
    Outbox o(std::move(path), max_bytes);
    auto text = util::read_file(o.path_, 4 * max_bytes + 4096);
    if (!text) {
        if (text.error().code != ENOENT) return std::move(text).error().wrap(util::cat("outbox ", util::quote(o.path_)));
        return o;
    }
    o.on_disk_ = true;
    for (auto &line : util::split(*text, '\n')) {
        if (line.empty()) continue;
        o.bytes_ += line.size() + 1;
        o.entries_.push_back(std::move(line));
    }
    if (o.bytes_ > o.max_) {
        o.trim(0);
        o.dirty_ = true;  // not a new report, but the file is over the bound
        TRY(o.sync());
    }
    return o;
}

void Outbox::trim(size_t room) {
    while (!entries_.empty() && bytes_ + room > max_) {
        bytes_ -= entries_.front().size() + 1;
        entries_.pop_front();
        dropped_++;
    }
}

util::Status Outbox::push(std::string_view report) {
    if (report.find('\n') != std::string_view::npos) return util::Error::msg("outbox: a report must be one line");
    size_t need = report.size() + 1;
    if (need > max_)
        return util::Error::msg(util::cat("outbox: a report of ", need, " bytes is over the bound of ", max_, " bytes"));
    trim(need);
    entries_.emplace_back(report);
    bytes_ += need;
    dirty_ = true;
    return util::ok();
}

util::Status Outbox::pop(size_t n) {
    if (n == 0) return {};
    for (; n > 0 && !entries_.empty(); n--) {
        bytes_ -= entries_.front().size() + 1;
        entries_.pop_front();
    }
    if (!entries_.empty()) return util::ok();
    dirty_ = false;  // the usual case: every report acknowledged
    if (on_disk_ && ::unlink(path_.c_str()) != 0 && errno != ENOENT)
        return util::Error::from_errno(util::cat("remove ", util::quote(path_)));
    on_disk_ = false;
    return util::ok();
}

util::Status Outbox::sync() {
    if (!dirty_) return util::ok();
    std::string text;
    text.reserve(bytes_);
    for (const auto &e : entries_) {
        text += e;
        text += '\n';
    }
    TRY(util::atomic_write_file(path_, text, 0600));
    on_disk_ = true;
    dirty_ = false;
    return util::ok();
}

}  // namespace fleet
