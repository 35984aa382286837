// flock helpers; see flock.hpp.
#include "util/flock.hpp"

#include <fcntl.h>

#include <cerrno>

#include "util/file.hpp"
#include "util/strings.hpp"

namespace util {

Status flock_fd(int fd, int op) {
    while (::flock(fd, op) < 0)
        if (errno != EINTR) return Error::from_errno("flock");
    return ok();
}

Result<UniqueFd> lock_file(const std::string &path, int op) {
    auto fd = TRY(open_file(path, O_RDWR | O_CREAT, 0600));
    TRY_CTX(flock_fd(fd.get(), op), cat("lock ", quote(path)));
    return fd;
}

bool lock_busy(const std::string &path) {
    auto fd = open_file(path, O_RDWR);
    if (!fd) return false;
    auto st = flock_fd(fd->get(), LOCK_EX | LOCK_NB);
    return !st && st.error().code == EWOULDBLOCK;
}

}  // namespace util
