// The command groups main.cpp puts in its table, one file each.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "cli.hpp"

namespace cmd {

std::span<const cli::Command> version_commands();  // cmd_version.cpp
std::span<const cli::Command> image_commands();         // cmd_image.cpp: the `image` group
std::span<const cli::Command> image_remote_commands();  // cmd_image_remote.cpp: image pull|push|sign|verify
std::span<const cli::Command> runtime_commands();      // cmd_runtime.cpp
std::span<const cli::Command> runtime_ops_commands();  // cmd_runtime_ops.cpp
std::span<const cli::Command> tuf_commands();          // cmd_tuf.cpp: the TUF conformance client
std::span<const cli::Command> daemon_commands();       // cmd_daemon.cpp: daemon, logs, system
const cli::Command &daemon_ps_command();               // cmd_daemon.cpp: `ps` without an id
std::span<const cli::Command> fleet_commands();        // cmd_fleet.cpp: the `fleet` group, joining:
std::span<const cli::Command> fleet_repo_commands();   //   cmd_fleet_repo.cpp: init, release, refresh, rotate, delegate
std::span<const cli::Command> fleet_mqtt_commands();   //   cmd_fleet_mqtt.cpp: publish, status
std::span<const cli::Command> fleet_device_commands(); //   cmd_fleet_device.cpp: device (the herd benchmark's)
std::span<const cli::Command> build_commands();        // cmd_build.cpp: `build`
std::span<const cli::Command> slot_commands();         // cmd_slot.cpp: the `slot` group

/// `update apply|status|history|rollback` and `ps` without a container id
/// are the daemon's (cmd_update.cpp); runc's `update ID` and `ps ID` stay.
/// Runs the command when argv (from the command name on) is one of those.
std::optional<int> dispatch_daemon_forms(const cli::GlobalOptions &g, int argc, char **argv);

// Shared by the daemon's commands (cmd_daemon.cpp).
/// The daemon's run directory: the global --root, default /run/berth.
std::string daemon_run_dir(const cli::GlobalOptions &g);
/// "2026-12-01T02:33:00Z" for unix seconds.
std::string format_unix_time(int64_t t);

}  // namespace cmd
