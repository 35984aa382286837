// Placeholder: `berth build` lands on its own branch.
#include "commands.hpp"

namespace cmd {
std::span<const cli::Command> build_commands() { return {}; }
}  // namespace cmd
