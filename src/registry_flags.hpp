// The registry and trust flags shared by `berth image pull|push|verify` and
// `berth run IMAGE`: --ca, --pin, --creds, --limit-rate, --timeout,
// --retries, --retry-delay-ms, --insecure-http, and --policy.
#pragma once

#include <cstdint>
#include <string>

#include "image/policy.hpp"
#include "image/registry.hpp"
#include "util/args.hpp"
#include "util/result.hpp"

namespace cmd {

/// "500", "64k", "2M", "1G" -> bytes; errors name the flag `--what`.
util::Result<uint64_t> parse_size(const std::string &s, const char *what);

/// The registry options from the flags, checked up front.
util::Result<img::RegistryOptions> registry_options(const util::ParsedArgs &a);

/// --policy FILE, else <store>/policy.json, else the device default
/// (signed by a key in <store>/trust).
util::Result<img::Policy> load_policy(const std::string &store, const util::ParsedArgs &a);

}  // namespace cmd
