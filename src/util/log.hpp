// Logging: levels, to stderr or a file, as text or as JSON lines, or as
// kernel log records (/dev/kmsg: "<prio>berth: msg", one write each).
//
// The JSON form is runc's ({"level":"error","msg":"...","time":"..."}) so that
// podman and containerd, which read the runtime's --log file, show berth's
// messages as they show runc's.
#pragma once

#include <string_view>

#include "util/result.hpp"
#include "util/strings.hpp"

namespace util::log {

enum class Level { Debug, Info, Warn, Error };
enum class Format { Text, Json, Kmsg };

/// Sends log lines to `path` (appending) instead of stderr.
Status set_file(const std::string &path);
void set_fd(int fd);  ///< Borrowed; the caller keeps it open.
void set_format(Format f);
void set_level(Level l);
Level level();
Format format();
/// The fd log lines go to (2 unless set_file/set_fd changed it).
int fd();

void write(Level l, std::string_view msg);

template <typename... A> void debug(const A &...a) { if (level() <= Level::Debug) write(Level::Debug, cat(a...)); }
template <typename... A> void info(const A &...a) { if (level() <= Level::Info) write(Level::Info, cat(a...)); }
template <typename... A> void warn(const A &...a) { if (level() <= Level::Warn) write(Level::Warn, cat(a...)); }
template <typename... A> void error(const A &...a) { write(Level::Error, cat(a...)); }

}  // namespace util::log
