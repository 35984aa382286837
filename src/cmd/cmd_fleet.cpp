// `berth fleet ...`: the fleet controller's commands. The repository
// commands (init, release, refresh, rotate, delegate: signing TUF metadata)
// are in cmd_fleet_repo.cpp; the MQTT ones (publish, status) in
// cmd_fleet_mqtt.cpp; the herd benchmark's simulated device (device) in
// cmd_fleet_device.cpp. This file only joins them into one group.
#include <iterator>
#include <vector>

#include "commands.hpp"

namespace cmd {
namespace {

util::Result<int> run_fleet(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    std::vector<cli::Command> table;
    for (auto group : {fleet_repo_commands(), fleet_mqtt_commands(), fleet_device_commands()})
        table.insert(table.end(), group.begin(), group.end());
    std::vector<std::string> args = a.positional;
    std::vector<char *> argv;
    for (auto &s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    return cli::dispatch(table, "fleet", g, static_cast<int>(args.size()), argv.data());
}

const cli::Command kCommands[] = {
    {"fleet", "COMMAND [ARGS...]", "the fleet controller: init, release, refresh, rotate, delegate, publish, status, device", {},
     0, -1, true, run_fleet},
};

}  // namespace

std::span<const cli::Command> fleet_commands() { return kCommands; }

}  // namespace cmd
