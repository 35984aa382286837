// ProgressPrinter: the bar and the JSON events.
#include "image/progress.hpp"

#include <time.h>
#include <unistd.h>

#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace img {
namespace {

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string mib(uint64_t b) {
    uint64_t tenths = b * 10 / (1 << 20);
    return util::cat(tenths / 10, '.', tenths % 10, " MiB");
}

}  // namespace

ProgressPrinter::ProgressPrinter(int fd, bool quiet) : fd_(fd), tty_(::isatty(fd) == 1), quiet_(quiet), start_ms_(now_ms()) {}

void ProgressPrinter::operator()(const FetchProgress &p) {
    if (quiet_) return;
    std::string d = p.digest ? p.digest->str() : "";
    if (d != current_) {
        current_ = d;
        start_ms_ = now_ms();
    }
    if (!tty_) {
        util::json::Value v = util::json::Value::object();
        v["event"] = p.done ? "done" : "progress";
        v["digest"] = d;
        v["offset"] = p.offset;
        v["size"] = p.size;
        if (p.resumed_from) v["resumedFrom"] = p.resumed_from;
        (void)util::write_all(fd_, util::json::dump(v) + "\n");
        return;
    }
    constexpr int kWidth = 30;
    int filled = p.size ? static_cast<int>(p.offset * kWidth / p.size) : kWidth;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(kWidth - filled), '.');
    int64_t ms = now_ms() - start_ms_;
    uint64_t rate = ms > 0 ? (p.offset - p.resumed_from) * 1000 / static_cast<uint64_t>(ms) : 0;
    std::string line = util::cat("\r", d.size() > 19 ? d.substr(7, 12) : d, " [", bar, "] ", mib(p.offset), " / ", mib(p.size), "  ",
                                 mib(rate), "/s", p.resumed_from ? util::cat(" (resumed at ", mib(p.resumed_from), ")") : "",
                                 "\x1b[K", p.done ? "\n" : "");
    (void)util::write_all(fd_, line);
}

void ProgressPrinter::note(std::string_view event, std::string_view detail) {
    if (quiet_) return;
    if (!tty_) {
        util::json::Value v = util::json::Value::object();
        v["event"] = std::string(event);
        v["detail"] = std::string(detail);
        (void)util::write_all(fd_, util::json::dump(v) + "\n");
        return;
    }
    (void)util::write_all(fd_, util::cat(event, ": ", detail, "\n"));
}

}  // namespace img
