// Network namespaces for the daemon: bringing up loopback (the host's when
// PID 1, a private container's before it starts) and opening a socket inside
// a container's namespace for an http or tcp health check. A socket belongs
// to the namespace it was created in, so the daemon enters the container's
// namespace for the socket() call only and goes back at once (it is
// single-threaded; setns(CLONE_NEWNET) needs CAP_SYS_ADMIN, which it has).
#pragma once

#include <sys/types.h>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace svc {

/// Sets `lo` up in the calling process's network namespace (no-op when up).
util::Status loopback_up();
/// loopback_up() inside the network namespace of process `pid`.
util::Status loopback_up_in(pid_t pid);
/// socket(domain, type | SOCK_CLOEXEC, 0) created in `pid`'s network
/// namespace; pid 0: in our own.
util::Result<util::UniqueFd> socket_in(pid_t pid, int domain, int type);

}  // namespace svc
