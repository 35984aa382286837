// Dir and list_dir; see dir.hpp.
#include "util/dir.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "util/strings.hpp"

namespace util {

Result<Dir> Dir::open(const std::string &path) {
    DIR *d = ::opendir(path.c_str());
    if (!d) return Error::from_errno(cat("open ", quote(path)));
    return Dir(d);
}

Result<Dir> Dir::of_fd(int fd) {
    UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!dup) return Error::from_errno("dup directory fd");
    DIR *d = ::fdopendir(dup.get());
    if (!d) return Error::from_errno("open directory stream");
    (void)dup.release();  // the stream owns it now
    // The dup shares the offset of `fd`, which may have been read before.
    ::rewinddir(d);
    return Dir(d);
}

Result<const dirent *> Dir::next() {
    for (;;) {
        errno = 0;
        const dirent *e = ::readdir(dir_.get());
        if (!e) {
            if (errno != 0) return Error::from_errno("read directory");
            return static_cast<const dirent *>(nullptr);
        }
        std::string_view n = e->d_name;
        if (n != "." && n != "..") return e;
    }
}

namespace {

Result<std::vector<std::string>> names_of(Dir &d) {
    std::vector<std::string> out;
    while (const dirent *e = TRY(d.next())) out.emplace_back(e->d_name);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

Result<std::vector<std::string>> list_dir(const std::string &path) {
    auto d = TRY(Dir::open(path));
    return names_of(d).context(cat("list ", quote(path)));
}

Result<std::vector<std::string>> list_dir_fd(int fd) {
    auto d = TRY(Dir::of_fd(fd));
    return names_of(d);
}

}  // namespace util
