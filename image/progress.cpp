// ProgressPrinter: the per-blob lines on a terminal and the JSON events.
// The lines are redrawn by moving the cursor up over them (ESC [ n A) and
// clearing each (ESC [ K); they stay under 70 columns so that none wraps.
#include "image/progress.hpp"

#include <unistd.h>

#include <algorithm>

#include "image/http.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

/// 1536 -> "1.5 KiB"; one decimal, binary units.
std::string human_bytes(uint64_t b) {
    if (b < 1024) return util::cat(b, " B");
    const char *units[] = {"KiB", "MiB", "GiB"};
    uint64_t div = 1024;
    size_t u = 0;
    while (u + 1 < std::size(units) && b >= div * 1024) {
        div *= 1024;
        u++;
    }
    uint64_t tenths = b * 10 / div;
    return util::cat(tenths / 10, '.', tenths % 10, ' ', units[u]);
}

std::string clock_time(uint64_t s) {
    return s >= 3600 ? util::cat(s / 3600, 'h', (s / 60) % 60 / 10, (s / 60) % 10, 'm')
                     : util::cat(s / 60, ':', (s % 60) / 10, s % 10);
}

}  // namespace

ProgressMode auto_progress_mode(int fd) { return ::isatty(fd) == 1 ? ProgressMode::Human : ProgressMode::Json; }

ProgressPrinter::ProgressPrinter(int fd, ProgressMode mode) : fd_(fd), mode_(mode) {}

void ProgressPrinter::operator()(const FetchProgress &p) {
    std::string d = p.digest ? p.digest->str() : "";
    if (mode_ == ProgressMode::Json) {
        util::json::Value v = util::json::Value::object();
        v["event"] = p.done ? "done" : "progress";
        v["digest"] = d;
        v["offset"] = p.offset;
        v["size"] = p.size;
        if (p.resumed_from) v["resumedFrom"] = p.resumed_from;
        (void)util::write_all(fd_, util::json::dump(v) + "\n");
        return;
    }
    if (mode_ != ProgressMode::Human) return;
    auto it = std::find_if(rows_.begin(), rows_.end(), [&](const Row &r) { return r.digest == d; });
    if (it == rows_.end()) it = rows_.insert(rows_.end(), Row{d, 0, 0, p.resumed_from, monotonic_ms(), false, false});
    it->offset = p.offset;
    it->size = p.size;
    it->verified = p.done;
    redraw();
}

void ProgressPrinter::note(std::string_view event, std::string_view detail) {
    if (mode_ == ProgressMode::Json) {
        util::json::Value v = util::json::Value::object();
        v["event"] = std::string(event);
        v["detail"] = std::string(detail);
        (void)util::write_all(fd_, util::json::dump(v) + "\n");
        return;
    }
    if (mode_ != ProgressMode::Human) return;
    if (event == "unpacked") {
        for (auto &r : rows_)
            if (r.digest == detail) {
                r.unpacked = true;
                return redraw();
            }
    }
    redraw(util::cat(event, ": ", detail));
}

void ProgressPrinter::redraw(std::string_view above) {
    std::string out = drawn_ ? util::cat("\x1b[", drawn_, "A") : "";
    if (!above.empty()) out += util::cat("\r", above, "\x1b[K\n");
    int64_t now = monotonic_ms();
    for (const Row &r : rows_) {
        std::string_view hex = std::string_view(r.digest).substr(r.digest.find(':') + 1, 12);
        std::string line = util::cat("\r  ", hex, "  ");
        if (r.verified) {
            line += util::cat(human_bytes(r.size), "  verified", r.unpacked ? ", unpacked" : "");
        } else {
            int64_t ms = now - r.start_ms;
            uint64_t rate = ms > 0 ? (r.offset - r.resumed_from) * 1000 / static_cast<uint64_t>(ms) : 0;
            line += util::cat(r.size ? r.offset * 100 / r.size : 0, "%  ", human_bytes(r.offset), " / ", human_bytes(r.size), "  ",
                              human_bytes(rate), "/s  ETA ", rate ? clock_time((r.size - r.offset) / rate) : std::string("-:--"));
        }
        out += line + "\x1b[K\n";
    }
    drawn_ = rows_.size();
    (void)util::write_all(fd_, out);
}

}  // namespace img
