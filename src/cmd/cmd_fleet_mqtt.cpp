// Placeholder: `berth fleet publish|status` land on their own branch.
#include "commands.hpp"

namespace cmd {
std::span<const cli::Command> fleet_mqtt_commands() { return {}; }
}  // namespace cmd
