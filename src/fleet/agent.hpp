// The fleet agent inside `berth daemon` (DESIGN.md, "Fleet channel";
// docs/fleet.md): follows one channel of a TUF repository and hands each new
// update manifest, after TUF verified it, to the updater.
//
// Two paths end in the same ota::tuf::Client::refresh(): a poll timer (the
// repository's advertised interval, or `poll_interval_ms`, each wait drawn
// with jitter so devices never poll in lockstep; on errors full-jitter
// exponential backoff) and, when an MQTT broker is configured, a pushed
// timestamp: a retained message on the fleet's topic whose bytes are TUF
// timestamp metadata with a version above the trusted one triggers a
// refresh at once (the broker is never trusted: the bytes are only a hint;
// refresh() fetches and verifies everything over HTTP(S)).
//
// A channel target whose version (the manifest's own "version") is above
// the committed one and that is meant for this board is downloaded (into
// <state root>/fleet/targets), then given to `apply`. A manifest not meant
// for this board, or refused (downgrade, bad signature, expired metadata,
// malformed), is skipped and reported; the device keeps running what it
// runs. Refresh runs off the event loop's thread only in the sense that it
// is bounded by download size limits and timeouts; it never blocks the
// supervisor longer than `refresh_timeout_ms`.
//
// Status reports (online via the MQTT last will; committed and trying
// versions; progress: downloading with bytes, staged, trying, committed,
// rolled back with the reason; refusals) go out as retained JSON on the
// device's own topic, each with an idempotent (deployment, sequence) key.
// While offline they queue in a bounded file (<state root>/fleet/outbox,
// oldest dropped first) and are sent on reconnect.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "fleet/mqtt.hpp"
#include "util/device_root.hpp"
#include "util/event_loop.hpp"
#include "util/result.hpp"

namespace fleet {

struct AgentConfig {
    std::string device_id;
    std::string fleet = "default";      ///< MQTT topic prefix
    std::string channel = "stable";     ///< follows channels/<channel>/manifest.json
    std::string metadata_url;           ///< TUF metadata base URL
    std::string targets_url;            ///< TUF targets base URL
    std::string board;                  ///< board name matched against a manifest's selectors
    int64_t poll_interval_ms = 15 * 60 * 1000;
    int64_t backoff_max_ms = 60 * 60 * 1000;
    size_t outbox_max_bytes = 64 << 10;
    std::optional<MqttConfig> mqtt;     ///< no broker: polling only
};

/// What the agent needs from the daemon (a seam: unit tests pass a fake).
struct AgentHooks {
    /// The committed revision's version (0: none), for the downgrade check
    /// before anything is downloaded.
    std::function<uint64_t()> committed_version;
    /// Hands a verified manifest's exact bytes to the updater; the returned
    /// status is the apply's (a refusal's message is reported).
    std::function<util::Status(std::string_view manifest_bytes)> apply;
};

/// Reads the agent's configuration (docs/fleet.md): <root>/fleet/agent.json.
/// nullopt when the file does not exist (the daemon runs without an agent).
util::Result<std::optional<AgentConfig>> load_agent_config(const util::DeviceRoot &root);

class Agent {
public:
    virtual ~Agent() = default;
    static util::Result<std::unique_ptr<Agent>> start(AgentConfig config, const util::DeviceRoot &root,
                                                      util::EventLoop &loop, AgentHooks hooks);

    /// The updater's progress, reported on the status topic ("downloading",
    /// "staged", "trying", "committed", "rolled-back", "refused") with a
    /// detail (bytes, a version, the reason).
    virtual void report(std::string_view state, std::string_view detail) = 0;
    /// Refresh now (the control socket's `berth update check`).
    virtual void check_now() = 0;
    virtual void stop() = 0;
};

}  // namespace fleet
