// The registry and trust flags shared by `berth image pull|push|verify` and
// `berth run IMAGE`: --ca, --pin, --creds, --limit-rate, --timeout,
// --speed-limit, --speed-time, --retries, --retry-delay-ms, --insecure-http,
// --policy, and the progress display (-q, --progress).
#pragma once

#include <cstdint>
#include <string>

#include "image/policy.hpp"
#include "image/progress.hpp"
#include "image/registry.hpp"
#include "util/args.hpp"
#include "util/result.hpp"

namespace cmd {

/// "500", "64k", "2M", "1G" -> bytes; errors name the flag `--what`.
util::Result<uint64_t> parse_size(const std::string &s, const char *what);

/// Defaults of the transport flags (docs/cli.md explains them).
inline constexpr long kDefaultTimeoutS = 900;
inline constexpr const char *kDefaultSpeedLimit = "1k";
inline constexpr long kDefaultSpeedTimeS = 30;

/// The registry options from the flags, checked up front.
util::Result<img::RegistryOptions> registry_options(const util::ParsedArgs &a);

/// -q: Quiet; --progress=human|json|none; else (auto) Human when stderr is
/// a terminal, Json when not.
util::Result<img::ProgressMode> progress_mode(const util::ParsedArgs &a);

/// --policy FILE, else <store>/policy.json, else the device default
/// (signed by a key in <store>/trust).
util::Result<img::Policy> load_policy(const std::string &store, const util::ParsedArgs &a);

}  // namespace cmd
