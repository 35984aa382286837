// svc::loopback_up and socket_in (netns.hpp): setns into the target's
// namespace, the one call, setns back to ours.
#include "daemon/netns.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace svc {

namespace {

/// Runs `fn` with the calling thread in `pid`'s network namespace.
template <typename F>
auto in_netns(pid_t pid, F fn) -> decltype(fn()) {
    if (pid == 0) return fn();
    util::UniqueFd ours(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!ours) return util::Error::from_errno("open own network namespace");
    std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
    util::UniqueFd theirs(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!theirs) return util::Error::from_errno("open `" + path + "`");
    if (setns(theirs.get(), CLONE_NEWNET) < 0) return util::Error::from_errno("enter the network namespace of " + std::to_string(pid));
    auto r = fn();
    if (setns(ours.get(), CLONE_NEWNET) < 0) abort();  // cannot go on in a container's namespace
    return r;
}

}  // namespace

util::Status loopback_up() {
    util::UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s) return util::Error::from_errno("socket for loopback");
    struct ifreq ifr = {};
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(s.get(), SIOCGIFFLAGS, &ifr) < 0) return util::Error::from_errno("get flags of `lo`");
    if (ifr.ifr_flags & IFF_UP) return {};
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s.get(), SIOCSIFFLAGS, &ifr) < 0) return util::Error::from_errno("bring up `lo`");
    return {};
}

util::Status loopback_up_in(pid_t pid) {
    return in_netns(pid, [] { return loopback_up(); });
}

util::Result<util::UniqueFd> socket_in(pid_t pid, int domain, int type) {
    return in_netns(pid, [&]() -> util::Result<util::UniqueFd> {
        int fd = socket(domain, type | SOCK_CLOEXEC, 0);
        if (fd < 0) return util::Error::from_errno("socket");
        return util::UniqueFd(fd);
    });
}

}  // namespace svc
