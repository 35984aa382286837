// Passing file descriptors over AF_UNIX sockets (SCM_RIGHTS): the console
// socket protocol (the pty master) and the seccomp listener (the notify fd).
#pragma once

#include <string>
#include <string_view>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace util {

/// Sends `fd` over `sock` with `payload` (not empty; on a stream socket the
/// rest of a long payload follows the first piece).
Status send_fd(int sock, int fd, std::string_view payload);
/// Receives one message carrying an fd (received O_CLOEXEC); extra fds are
/// closed. `payload` (if given) gets the message's bytes.
Result<UniqueFd> recv_fd(int sock, std::string *payload = nullptr);

}  // namespace util
