// flock(2) locks held by an fd: taken with one loop (EINTR retried), held
// while the returned UniqueFd is open, released by closing it. The store's
// blob, layer and store-wide locks and the runtime's container lock use it.
#pragma once

#include <sys/file.h>

#include <string>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace util {

/// flock(fd, op), retried on EINTR. With LOCK_NB a held lock is EWOULDBLOCK.
Status flock_fd(int fd, int op);
/// Opens (creating, 0600) the lock file `path` and takes `op` (LOCK_SH or
/// LOCK_EX) on it, waiting for other holders.
Result<UniqueFd> lock_file(const std::string &path, int op);
/// True when another holder has a lock on `path` (taking LOCK_EX without
/// waiting fails); false when nobody does or the file is missing.
bool lock_busy(const std::string &path);

}  // namespace util
