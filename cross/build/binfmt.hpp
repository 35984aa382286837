// Whether this host can run a foreign platform's binaries for RUN steps:
// binfmt_misc mounted, the platform's qemu-user interpreter registered with
// the F flag (so it works inside the container's root), and the interpreter
// file present. The error says exactly what to install or run, never "exec
// format error".
#pragma once

#include <string>

#include "util/result.hpp"

namespace build {

/// The host's platform ("linux/amd64", "linux/arm64", "linux/arm/v7").
std::string host_platform();
/// OK for the host's own platform (and the 32-bit one its CPU runs: 386 on
/// amd64, arm/v7 on arm64) and for a foreign one that can run here; else
/// one line naming every missing piece with what to run or install.
util::Status check_platform_runnable(const std::string &platform);
/// The same with every host path (binfmt_misc, binfmt.d, the interpreter)
/// looked up under `host_root` instead of /: a test's fake host.
util::Status check_platform_runnable(const std::string &platform, const std::string &host_root);

}  // namespace build
