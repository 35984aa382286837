// The image config a build assembles, step by step: the instructions that
// change only the config (ENV, WORKDIR, USER, ENTRYPOINT, CMD, LABEL,
// EXPOSE, VOLUME, HEALTHCHECK, STOPSIGNAL, SHELL) applied to the "config"
// object as podman writes it (Docker's field names: Env, Entrypoint, Cmd,
// WorkingDir, User, ExposedPorts, Labels, Healthcheck, StopSignal,
// Volumes), and the history entry of each step ("/bin/sh -c #(nop) ENV
// A=b", empty_layer for config-only steps, created at the epoch).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cross/build/containerfile.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace build {

/// The PATH podman gives an image built FROM scratch.
inline constexpr const char *kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stage's image config while it is built.
struct ConfigState {
    util::json::Value config = util::json::Value::object();  ///< the image config's "config" object
    util::json::Value history = util::json::Value::array();
    std::vector<std::string> shell{"/bin/sh", "-c"};
    bool cmd_set = false;  ///< CMD given in this stage (ENTRYPOINT then keeps it)

    /// The Env entries as a map, for substitution.
    std::map<std::string, std::string> env() const;
    std::string working_dir() const;
    std::string user() const;
};

/// "1970-01-01T00:00:00Z" for unix seconds.
std::string rfc3339(int64_t t);

/// Go's durations as HEALTHCHECK takes them ("30s", "1m30s", "500ms") -> nanoseconds.
util::Result<int64_t> parse_duration(std::string_view s);

/// Appends a history entry: created at `epoch`, `created_by`, empty_layer when no layer.
void add_history(ConfigState &st, int64_t epoch, const std::string &created_by, bool empty_layer);

/// Applies one config-only instruction (ENV, WORKDIR, USER, ENTRYPOINT, CMD,
/// LABEL, EXPOSE, VOLUME, HEALTHCHECK, STOPSIGNAL, SHELL) with
/// `vars` for substitution, and records its history entry. Errors name the
/// line through `cf`.
util::Status apply_config_instruction(const Containerfile &cf, const Instruction &in,
                                      const std::map<std::string, std::string> &vars, int64_t epoch, ConfigState &st);

/// The history text podman writes for a config-only instruction: "/bin/sh -c #(nop) KEYWORD raw".
std::string nop_created_by(const Instruction &in);

}  // namespace build
