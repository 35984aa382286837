// Command dispatch; see cli.hpp.
#include "cli.hpp"

#include <cstring>

#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace cli {
namespace {

std::string command_help(const Command &c, const char *group) {
    std::string prefix = group && *group ? util::cat("berth ", group, ' ') : std::string("berth ");
    std::string out = util::cat("usage: ", prefix, c.name, c.synopsis[0] ? " " : "", c.synopsis, "\n\n", c.summary, '\n');
    if (!c.options.empty()) out += util::cat("\noptions:\n", util::options_help(c.options));
    return out;
}

void print(const std::string &s) { (void)util::write_all(1, s); }

}  // namespace

util::DeviceRoot device_root(const GlobalOptions &g, const util::ParsedArgs &a, bool root_is_store) {
    if (auto s = a.get("store")) return util::DeviceRoot(*s);
    if (auto r = a.get("root")) return util::DeviceRoot(*r);
    if (g.store) return util::DeviceRoot(*g.store);
    if (root_is_store && g.root) return util::DeviceRoot(*g.root);
    return util::DeviceRoot();
}

int usage_error(const std::string &msg) {
    (void)util::write_all(2, util::cat("berth: ", msg, "\n"));
    return kExitUsage;
}

std::string table_help(std::span<const Command> table, const char *group) {
    std::string prefix = group && *group ? util::cat("berth ", group) : std::string("berth [GLOBAL OPTIONS]");
    std::string out = util::cat("usage: ", prefix, " COMMAND [ARGS]\n\ncommands:\n");
    for (const auto &c : table) {
        std::string left = util::cat("  ", c.name);
        if (left.size() < 14) left.append(14 - left.size(), ' ');
        out += util::cat(left, c.summary, '\n');
    }
    out += util::cat("\nRun `", prefix, " COMMAND --help` for a command's options.\n");
    return out;
}

int dispatch(std::span<const Command> table, const char *group, const GlobalOptions &g, int argc, char **argv) {
    if (argc < 1) {
        (void)util::write_all(2, table_help(table, group));
        return kExitUsage;
    }
    std::string_view name = argv[0];
    if (name == "help" || name == "--help" || name == "-h") {
        if (argc > 1) {
            for (const auto &c : table)
                if (std::strcmp(c.name, argv[1]) == 0) {
                    print(command_help(c, group));
                    return 0;
                }
            return usage_error(util::cat("unknown command ", util::quote(argv[1])));
        }
        print(table_help(table, group));
        return 0;
    }
    const Command *cmd = nullptr;
    for (const auto &c : table)
        if (name == c.name) cmd = &c;
    if (!cmd) {
        std::string full = group && *group ? util::cat(group, ' ', name) : std::string(name);
        return usage_error(util::cat("unknown command ", util::quote(full), "; see `berth ",
                                     group && *group ? util::cat(group, " ") : "", "help`"));
    }
    // --help anywhere before the positionals ends parsing.
    for (int i = 1; i < argc; i++) {
        std::string_view a = argv[i];
        if (a == "--help" || a == "-h") {
            print(command_help(*cmd, group));
            return 0;
        }
        if (cmd->stop_at_positional && !a.empty() && a[0] != '-') break;
    }
    auto parsed = util::parse_args(argc - 1, argv + 1, cmd->options, cmd->stop_at_positional);
    if (!parsed) return usage_error(util::cat(cmd->name, ": ", parsed.error().context));
    int npos = static_cast<int>(parsed->positional.size());
    if (npos < cmd->min_positional || (cmd->max_positional >= 0 && npos > cmd->max_positional))
        return usage_error(util::cat(cmd->name, ": wrong number of arguments; usage: berth ",
                                     group && *group ? util::cat(group, " ") : "", cmd->name, ' ', cmd->synopsis));
    auto result = cmd->run(g, *parsed);
    if (!result) {
        util::log::error(result.error().message());
        // The log may be a file (--log); the user still sees the error.
        if (util::log::fd() != 2) (void)util::write_all(2, util::cat("berth: ", result.error().message(), "\n"));
        return kExitFailure;
    }
    return *result;
}

}  // namespace cli
