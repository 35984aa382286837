// The command groups main.cpp puts in its table, one file each.
#pragma once

#include <span>

#include "cli.hpp"

namespace cmd {

std::span<const cli::Command> version_commands();  // cmd_version.cpp

}  // namespace cmd
