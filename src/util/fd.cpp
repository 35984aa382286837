// UniqueFd; see fd.hpp.
#include "util/fd.hpp"

#include <unistd.h>

namespace util {

void UniqueFd::reset(int fd) {
    int old = std::exchange(fd_, fd);
    if (old >= 0) ::close(old);  // never retried: the fd is gone either way
}

}  // namespace util
