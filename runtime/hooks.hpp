// OCI lifecycle hooks: parsing the spec's `hooks` object and running hooks.
//
// A hook is a program (absolute path, args, env, optional timeout in seconds)
// that gets the container's state JSON on its stdin. What happens when one
// fails depends on the point of the lifecycle (runtime-spec config.md,
// "POSIX-platform Hooks"): a failing prestart, createRuntime, createContainer
// or startContainer hook fails the operation; a failing poststart or poststop
// hook is logged and the operation goes on. A hook that outlives its timeout
// is killed (SIGKILL) and counts as failed.
//
// run_hook forks and execs directly (no shell) with exactly the env given,
// only fds 0/1/2 open; the state JSON is written into the stdin pipe before
// the hook starts, so a hook that never reads cannot block the runtime. Its
// stdout and stderr are captured and quoted in the error when it fails.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/json.hpp"
#include "util/result.hpp"

namespace rt::hooks {

struct Hook {
    std::string path;               ///< absolute path of the program
    std::vector<std::string> args;  ///< argv, args[0] included (empty: {path})
    std::vector<std::string> env;   ///< the whole environment ("K=V")
    std::optional<int> timeout;     ///< seconds, > 0; nullopt: no limit
};

enum class Kind { Prestart, CreateRuntime, CreateContainer, StartContainer, Poststart, Poststop };

/// "prestart", "createRuntime", ... as spelled in config.json.
const char *kind_name(Kind k);
/// True when a failure of a hook of this kind fails the operation.
bool is_fatal(Kind k);

struct Hooks {
    std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart, poststop;
    const std::vector<Hook> &of(Kind k) const;
    std::vector<Hook> &of(Kind k);
    bool empty() const;
};

/// Parses the spec's `hooks` object (nullptr: no hooks). Errors name the field
/// ("`hooks.prestart[0].timeout`: must be greater than zero").
util::Result<Hooks> parse_hooks(const util::json::Value *hooks);
/// Back to JSON (state files, `features` tests).
util::json::Value hooks_to_json(const Hooks &h);

/// Runs one hook with `state_json` on stdin and waits for it (or its timeout).
/// Fails when it cannot start, exits non-zero, is killed, or times out.
util::Status run_hook(const Hook &hook, std::string_view state_json);

/// Runs the hooks of kind `k` in order. For a fatal kind the first failure
/// stops and is returned ("prestart hook 0 `/bin/x`: exited with status 1");
/// for poststart/poststop failures are logged (util::log::warn) and the rest still run.
util::Status run_hooks(Kind k, const std::vector<Hook> &hooks, std::string_view state_json);
inline util::Status run_hooks(Kind k, const Hooks &all, std::string_view state_json) {
    return run_hooks(k, all.of(k), state_json);
}

}  // namespace rt::hooks
