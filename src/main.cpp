// berth: one executable for ARM IoT gateways — OCI runtime, signed image
// store, A/B updater and PID 1. main() parses the global options (runc's,
// so podman and containerd can drive berth), builds the command table from
// the command groups and dispatches. Only main and cli::dispatch print errors.
#include <vector>

#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "util/args.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace {

const util::OptSpec kGlobalOptions[] = {
    {"root", 0, true, "DIR", "the runtime's state directory (default /run/berth); before `image`: an alias of --store"},
    {"store", 0, true, "DIR", "the device root: image store, containers, volumes, trust (default /var/lib/berth)"},
    {"log", 0, true, "FILE", "write log lines to FILE instead of stderr"},
    {"log-format", 0, true, "text|json", "log line format"},
    {"debug", 0, false, nullptr, "log debug messages"},
    {"systemd-cgroup", 0, false, nullptr, "use systemd cgroup paths (slice:prefix:name)"},
    {"help", 'h', false, nullptr, "show this help"},
    {"version", 'v', false, nullptr, "print the version"},
};

std::vector<cli::Command> command_table() {
    std::vector<cli::Command> table;
    for (auto group : {cmd::version_commands(), cmd::image_commands(), cmd::runtime_commands(), cmd::runtime_ops_commands(),
                       cmd::daemon_commands(), cmd::tuf_commands(), cmd::fleet_commands(),
                       cmd::build_commands(), cmd::slot_commands()}) table.insert(table.end(), group.begin(), group.end());
    return table;
}

}  // namespace

int main(int argc, char **argv) {
    cli::GlobalOptions g;
    if (argc > 0) g.argv0 = argv[0];
    // Global options come before the command name; the first positional
    // argument is the command and everything after it is the command's.
    auto parsed = util::parse_args(argc - 1, argv + 1, kGlobalOptions, true);
    if (!parsed) return cli::usage_error(parsed.error().context);
    int cmd_index = argc - static_cast<int>(parsed->positional.size());
    if (parsed->has("root")) g.root = *parsed->get("root");
    if (parsed->has("store")) g.store = *parsed->get("store");
    if (auto f = parsed->get("log-format")) {
        if (*f == "json")
            g.log_json = true;
        else if (*f != "text")
            return cli::usage_error(util::cat("unknown log format ", util::quote(*f), " (text or json)"));
    }
    g.debug = parsed->has("debug");
    g.systemd_cgroup = parsed->has("systemd-cgroup");
    if (auto f = parsed->get("log")) {
        g.log_file = *f;
        if (auto st = util::log::set_file(*f); !st) return cli::usage_error(st.error().message());
    }
    util::log::set_format(g.log_json ? util::log::Format::Json : util::log::Format::Text);
    if (g.debug) util::log::set_level(util::log::Level::Debug);

    auto table = command_table();
    if (parsed->has("version")) {
        char name[] = "version";
        char *args[] = {name};
        return cli::dispatch(table, "", g, 1, args);
    }
    if (parsed->has("help") || cmd_index >= argc) {
        std::string help = cli::table_help(table, "");
        help += util::cat("\nglobal options:\n", util::options_help(kGlobalOptions));
        (void)util::write_all(parsed->has("help") ? 1 : 2, help);
        return parsed->has("help") ? 0 : cli::kExitUsage;
    }
    if (auto rc = cmd::dispatch_daemon_forms(g, argc - cmd_index, argv + cmd_index)) return *rc;
    return cli::dispatch(table, "", g, argc - cmd_index, argv + cmd_index);
}
