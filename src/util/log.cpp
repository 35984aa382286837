// Logging; see log.hpp. One write(2) per line, so lines from several
// processes sharing the log file do not interleave.
#include "util/log.hpp"

#include <fcntl.h>
#include <unistd.h>


#include "util/file.hpp"
#include "util/json.hpp"

namespace util::log {
namespace {

struct State {
    int fd = 2;
    bool owned = false;
    Format format = Format::Text;
    Level level = Level::Warn;
};

State &state() {
    static State s;
    return s;
}

const char *level_name(Level l) {
    switch (l) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warning";
    case Level::Error: return "error";
    }
    return "info";
}

}  // namespace

Status set_file(const std::string &path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Error::from_errno(cat("open log file ", quote(path)));
    if (state().owned) ::close(state().fd);
    state().fd = fd;
    state().owned = true;
    return ok();
}

void set_fd(int fd) {
    if (state().owned) ::close(state().fd);
    state().fd = fd;
    state().owned = false;
}

void set_format(Format f) { state().format = f; }
void set_level(Level l) { state().level = l; }
Level level() { return state().level; }
Format format() { return state().format; }
int fd() { return state().fd; }

void write(Level l, std::string_view msg) {
    std::string line;
    if (state().format == Format::Json) {
        json::Value v = json::Value::object();
        v["level"] = level_name(l);
        v["msg"] = std::string(msg);
        v["time"] = rfc3339_now();
        line = json::dump(v);
    } else if (state().format == Format::Kmsg) {
        // syslog priorities; the kernel takes one record per write(2) and
        // refuses one longer than 1024 bytes.
        int prio = l == Level::Error ? 3 : l == Level::Warn ? 4 : l == Level::Info ? 6 : 7;
        line = cat('<', prio, ">berth: ", msg.substr(0, 960));
        for (char &c : line) c = c == '\n' ? ' ' : c;
    } else if (state().fd == 2) {
        line = cat("berth: ", l == Level::Error ? "" : cat(level_name(l), ": "), msg);
    } else {
        line = cat(rfc3339_now(), ' ', level_name(l), ": ", msg);
    }
    line.push_back('\n');
    (void)write_all(state().fd, line);
}

}  // namespace util::log
