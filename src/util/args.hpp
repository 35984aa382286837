// Command-line parsing for berth's commands.
//
// Accepts what runc's CLI accepts, since podman and containerd drive berth as
// they drive runc: `--name value`, `--name=value`, the single-dash long form
// `-name value`, short letters (`-t`, `-d`), and `--` to end options. An
// unknown option is an error (main exits 2 on it).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace util {

struct OptSpec {
    const char *name;        ///< long name without dashes: "bundle"
    char short_name;         ///< 0 for none
    bool takes_value;
    const char *value_name;  ///< shown in help: "DIR"
    const char *help;
};

struct ParsedArgs {
    /// (name, value) in command-line order; value is empty for flags.
    std::vector<std::pair<std::string, std::string>> options;
    std::vector<std::string> positional;

    bool has(std::string_view name) const;
    /// The last value given for `name`.
    std::optional<std::string> get(std::string_view name) const;
    std::vector<std::string> get_all(std::string_view name) const;
};

/// Parses argv[0..argc). With `stop_at_positional`, everything from the first
/// positional argument on is positional (for `exec ID CMD ARGS...`).
Result<ParsedArgs> parse_args(int argc, char **argv, std::span<const OptSpec> specs, bool stop_at_positional = false);

/// The options part of a command's --help text, one line each.
std::string options_help(std::span<const OptSpec> specs);

}  // namespace util
