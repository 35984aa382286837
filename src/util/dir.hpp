// Directory streams with an owner: Dir closes its DIR* (and the fd under it)
// exactly once, including when opening fails half-way, and list_dir is the
// one "names in this directory" loop. A PID 1 lists directories for months;
// none of these paths may leak an fd.
#pragma once

#include <dirent.h>

#include <string>
#include <vector>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace util {

/// An open directory stream. Move-only; the destructor closes it.
class Dir {
public:
    /// opendir(3) (O_CLOEXEC); the error names the path.
    static Result<Dir> open(const std::string &path);
    /// A stream over the directory `fd` refers to, from its first entry,
    /// through a CLOEXEC dup: the caller keeps `fd`. When fdopendir fails
    /// (not a directory) the dup is closed.
    static Result<Dir> of_fd(int fd);

    /// The next entry other than "." and ".."; nullptr at the end.
    Result<const dirent *> next();
    /// The stream's own fd, for *at() calls on its entries.
    int fd() const { return ::dirfd(dir_.get()); }

private:
    explicit Dir(DIR *d) : dir_(d) {}
    CPtr<DIR, closedir> dir_;
};

/// The names in directory `path` (without "." and ".."), sorted.
Result<std::vector<std::string>> list_dir(const std::string &path);
/// Same, for an open directory fd (which stays the caller's).
Result<std::vector<std::string>> list_dir_fd(int fd);

}  // namespace util
