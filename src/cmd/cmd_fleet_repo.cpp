// Placeholder: `berth fleet init|release|refresh|rotate|delegate` land on their own branch.
#include "commands.hpp"

namespace cmd {
std::span<const cli::Command> fleet_repo_commands() { return {}; }
}  // namespace cmd
