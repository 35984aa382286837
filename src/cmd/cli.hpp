// The command table shared by main and the command groups.
//
// Each command declares its options and positional arguments; dispatch()
// parses them before the command runs, so a command body only turns its
// arguments into one library call. Only dispatch() prints errors: a usage
// error exits 2, any other failure 1 (see docs/cli.md).
#pragma once

#include <optional>
#include <span>
#include <string>

#include "util/args.hpp"
#include "util/device_root.hpp"
#include "util/result.hpp"

namespace cli {

inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

/// Options given before the command, as runc takes them.
struct GlobalOptions {
    std::optional<std::string> root;   ///< --root: the runtime's state (/run/berth); for `berth image`, an alias of --store
    std::optional<std::string> store;  ///< --store: the device root (util::DeviceRoot)
    std::string log_file;             ///< --log
    bool log_json = false;            ///< --log-format json
    bool debug = false;               ///< --debug
    bool systemd_cgroup = false;      ///< --systemd-cgroup
    const char *argv0 = "berth";
};

struct Command {
    const char *name;
    const char *synopsis;  ///< after the name: "[OPTIONS] ID"
    const char *summary;   ///< one line
    std::span<const util::OptSpec> options;
    int min_positional;
    int max_positional;       ///< -1: any number
    bool stop_at_positional;  ///< options end at the first positional (exec ID CMD...)
    /// Returns the exit code, or an Error that dispatch prints.
    util::Result<int> (*run)(const GlobalOptions &, const util::ParsedArgs &);
};

/// Runs argv[0] (a command name) from `table`. `group` prefixes usage lines
/// ("image" for `berth image pull`); empty at the top level.
int dispatch(std::span<const Command> table, const char *group, const GlobalOptions &g, int argc, char **argv);

/// The usage text of a whole table.
std::string table_help(std::span<const Command> table, const char *group);

/// The device root a command works on (docs/cli.md, "The store"): its own
/// --store, else its own --root (the older spelling `berth image pull|push|
/// sign|verify` still take), else the global --store, else, when
/// `root_is_store` (the `image` group), the global --root, else
/// util::DeviceRoot::kDefault.
util::DeviceRoot device_root(const GlobalOptions &g, const util::ParsedArgs &a, bool root_is_store);

/// Prints a usage error ("berth: unknown command `x`") and returns kExitUsage.
int usage_error(const std::string &msg);

}  // namespace cli
