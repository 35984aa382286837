// Unit tests of src/daemon/watchdog against the kernel's softdog, loaded
// here with soft_noboot=1 so an expiry only logs. Skipped (with the reason)
// where the module cannot be loaded, and where a watchdog already exists:
// that one may really reset the machine.
#include <catch2/catch.hpp>

#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "daemon/watchdog.hpp"
#include "util/file.hpp"

namespace {

/// The softdog device, or "" with `why` set.
std::string softdog(std::string &why) {
    static std::string device, reason;
    static bool tried = false;
    if (!tried) {
        tried = true;
        struct stat st;
        if (geteuid() != 0) reason = "needs root";
        else if (stat("/dev/watchdog", &st) == 0) reason = "a watchdog exists already: it may be a real one";
        else if (system("modprobe softdog soft_noboot=1 >/dev/null 2>&1") != 0)
            reason = "cannot load the softdog module here (modprobe softdog soft_noboot=1 failed)";
        else if (stat("/dev/watchdog", &st) != 0) reason = "softdog loaded but no /dev/watchdog";
        else device = "/dev/watchdog";
    }
    why = reason;
    return device;
}

}  // namespace

/// Declares `dev`, the softdog device, or skips the test case with the reason.
#define SOFTDOG_OR_SKIP(dev)              \
    std::string why_, dev = softdog(why_); \
    if (dev.empty()) {                    \
        WARN("skipped: " << why_);        \
        return;                           \
    }

TEST_CASE("watchdog open sets the timeout and reports it", "[watchdog]") {
    SOFTDOG_OR_SKIP(dev);
    auto wd = svc::Watchdog::open(dev, 7);
    REQUIRE(wd);
    CHECK(wd->timeout() == 7);
    CHECK(wd->feed());
    CHECK(wd->disarm());
}

TEST_CASE("watchdog disarm frees the device for the next opener", "[watchdog]") {
    SOFTDOG_OR_SKIP(dev);
    {
        auto wd = svc::Watchdog::open(dev, 5);
        REQUIRE(wd);
        REQUIRE(wd->disarm());
    }
    auto again = svc::Watchdog::open(dev, 5);
    REQUIRE(again);
    CHECK(again->disarm());
}

TEST_CASE("watchdog open of a missing device names it", "[watchdog]") {
    auto wd = svc::Watchdog::open("/nonexistent/watchdog", 5);
    REQUIRE(!wd);
    CHECK(wd.error().message().find("/nonexistent/watchdog") != std::string::npos);
}

TEST_CASE("watchdog feed after disarm is an error, not a write to a closed fd", "[watchdog]") {
    // /dev/null stands in: the ioctls fail, which open tolerates only for
    // the timeout it cannot set. A device that refuses SETTIMEOUT with
    // ENOTTY is kept with its own timeout.
    auto wd = svc::Watchdog::open("/dev/null", 5);
    if (!wd && wd.error().code == ENOSYS) {
        WARN("skipped: the watchdog ioctls are not emulated here (qemu-user): " << wd.error().message());
        return;
    }
    REQUIRE(wd);
    CHECK(wd->timeout() == 5);
    REQUIRE(wd->disarm());
    CHECK(!wd->feed());
}
