// svc::Watchdog (watchdog.hpp): the Linux watchdog API (WDIOC_SETTIMEOUT,
// WDIOC_GETTIMEOUT, WDIOC_KEEPALIVE) on the board's device; disarm is the
// magic close, a 'V' written just before close(2), which drivers honour
// unless built with nowayout.
#include "daemon/watchdog.hpp"

#include <fcntl.h>
#include <linux/watchdog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "util/file.hpp"
#include "util/strings.hpp"

namespace svc {

util::Result<Watchdog> Watchdog::open(const std::string &device, int timeout_s) {
    auto fd = TRY(util::open_file(device, O_WRONLY | O_NOCTTY));
    // Armed from here on. A driver without a settable timeout (ENOTTY,
    // EOPNOTSUPP) keeps its own, which GETTIMEOUT reports.
    int t = timeout_s;
    if (ioctl(fd.get(), WDIOC_SETTIMEOUT, &t) < 0 && errno != ENOTTY && errno != EOPNOTSUPP)
        return util::Error::from_errno(util::cat("set the timeout of ", util::quote(device), " to ", timeout_s, " s"));
    if (ioctl(fd.get(), WDIOC_GETTIMEOUT, &t) < 0) t = timeout_s;
    return Watchdog(std::move(fd), t);
}

util::Status Watchdog::feed() {
    if (!fd_) return util::Error::msg("feed a closed watchdog");
    int dummy = 0;
    if (ioctl(fd_.get(), WDIOC_KEEPALIVE, &dummy) == 0) return util::ok();
    // Drivers without the ioctl are fed by any write.
    if (::write(fd_.get(), "\0", 1) == 1) return util::ok();
    return util::Error::from_errno("feed the watchdog");
}

util::Status Watchdog::disarm() {
    if (!fd_) return util::ok();
    util::Status st = util::write_all(fd_.get(), "V");
    fd_.reset();
    if (!st) return std::move(st).error().wrap("disarm the watchdog");
    return util::ok();
}

}  // namespace svc
