// The command groups main.cpp puts in its table, one file each.
#pragma once

#include <span>

#include "cli.hpp"

namespace cmd {

std::span<const cli::Command> version_commands();  // cmd_version.cpp
std::span<const cli::Command> image_commands();         // cmd_image.cpp: the `image` group
std::span<const cli::Command> image_remote_commands();  // cmd_image_remote.cpp: image pull|push|sign|verify
std::span<const cli::Command> runtime_commands();      // cmd_runtime.cpp
std::span<const cli::Command> runtime_ops_commands();  // cmd_runtime_ops.cpp
std::span<const cli::Command> tuf_commands();          // cmd_tuf.cpp: the TUF conformance client

}  // namespace cmd
