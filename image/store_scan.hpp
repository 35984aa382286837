// Small helpers fsck.cpp and gc.cpp share to scan the store's directories.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "image/digest.hpp"
#include "util/strings.hpp"

namespace img::scan {

inline std::vector<std::string> list_dir(const std::string &dir) {
    std::vector<std::string> out;
    DIR *d = ::opendir(dir.c_str());
    if (!d) return out;
    while (auto *e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
    return out;
}

/// True when someone holds the flock at `path` (a writer at work).
inline bool lock_busy(const std::string &path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    bool busy = ::flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return busy;
}

inline std::optional<Digest> hex_digest(std::string_view hex) {
    auto d = Digest::parse(util::cat("sha256:", hex));
    if (!d) return std::nullopt;
    return *d;
}

}  // namespace img::scan
