// The image mode of `berth run` (cmd_run_image.cpp), for cmd_runtime.cpp,
// which owns the `run` command and decides between its two modes.
#pragma once

#include <span>
#include <string_view>

#include "cli.hpp"

namespace cmd {

/// The options only the image mode takes; `run` accepts runc's and these.
std::span<const util::OptSpec> image_run_options();
/// True for one of image_run_options().
bool image_only_option(std::string_view name);

/// The rule (docs/cli.md): image mode when there is no --bundle/-b and the
/// first argument contains '/', ':' or '@', which no container id may
/// contain and every image reference does (it names its registry: host/repo).
bool image_mode(const util::ParsedArgs &a);

/// `berth run [OPTIONS] IMAGE [CMD [ARG...]]`; returns the container's exit code.
util::Result<int> run_image_command(const cli::GlobalOptions &g, const util::ParsedArgs &a);

}  // namespace cmd
