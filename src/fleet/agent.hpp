// The fleet agent inside `berth daemon` (DESIGN.md, "Fleet channel";
// docs/fleet-agent.md): follows one channel of a TUF repository and hands
// each new update manifest, after TUF verified it, to the updater.
//
// Two paths end in the same refresh: a poll timer (`poll_interval_ms`, or
// the repository's own, the channel target's custom.poll_interval_s; the
// longer `pushed_poll_interval_ms` while a broker is connected; each wait
// drawn with jitter so devices never poll in lockstep; on errors full-jitter
// exponential backoff, schedule.hpp) and, when an MQTT broker is
// configured, a pushed timestamp: a retained message on the fleet's topic
// whose bytes are TUF timestamp metadata with a version above the trusted
// one triggers a refresh at once (the broker is never trusted: the bytes are
// only a hint; their signature is checked against the trusted root before
// anything is fetched, and the refresh fetches and verifies everything over
// HTTP(S)). Garbage and replayed (old) timestamps change nothing.
//
// The refresh (ota::tuf::Client: root chain, timestamp, snapshot, targets,
// then the channel target's download) runs in a child process, one at a
// time (refresh.hpp): the TUF client and the HTTP client block, and a child keeps
// the daemon's event loop free whatever the network does, can be killed at
// `refresh_timeout_ms`, and gives back the memory (and keeps libssl out of
// the daemon's address space). A thread would share the
// daemon's heap and locks with its fork()s (staging children) and could not
// be stopped. The child hands back one JSON document through a pipe.
//
// The channel target's manifest is then checked on the loop: not meant for
// this board (the target's `custom.boards`), malformed, or a version not
// above the committed one (a downgrade or a replay): refused, reported, not
// applied, before any image is downloaded. Otherwise it goes to `apply`
// (the path of `berth update apply`). A deployment (the manifest's digest)
// is handled once: a rolled-back or refused one is not tried again.
//
// Status reports (the committed and trying versions; progress: downloading
// with the images' bytes so far, staged, trying, committed, rolled back with the reason; refusals) are
// JSON with an idempotent (deployment, seq) key, published retained on the
// device's own topic while MQTT is up (the last will says offline). Each
// one is queued first in a bounded file (<root>/fleet/outbox, outbox.hpp,
// oldest dropped first), published from there in order, and removed only
// when the broker acknowledged it (its PUBACK): one whose connection drops
// first, or queued while there is no connection (or no broker), goes out on
// the next (re)connect.
#pragma once

#include <sys/types.h>

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
    /// The poll interval while the broker is connected: pushes say when to
    /// look, polls only bound what a broker withholding them can delay.
    int64_t pushed_poll_interval_ms = 4 * 60 * 60 * 1000;
    int64_t backoff_max_ms = 60 * 60 * 1000;
    int64_t backoff_base_ms = 5 * 1000;   ///< the first retry waits up to this
    int64_t refresh_timeout_ms = 5 * 60 * 1000;  ///< a refresh child running longer is killed
    size_t outbox_max_bytes = 64 << 10;
    /// A "downloading" report with the bytes so far goes out at most this often.
    int64_t progress_interval_ms = 5000;
    std::string ca_file;                ///< PEM CA bundle for https repositories; empty: the system's
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
    /// Optional. An update is in progress (applying or TRYING): a new
    /// manifest waits for the next refresh.
    std::function<bool()> busy;
    /// Optional. The revision being tried, for the reports' "trying".
    std::function<std::optional<uint64_t>()> trying_version;
    /// Optional. Hands the refresh child's pid to whoever reaps (the
    /// daemon's Reaper); without it the agent reaps its child itself.
    std::function<void(pid_t pid, std::function<void(int code)> on_exit)> expect_child;
};

/// Reads the agent's configuration (docs/fleet-agent.md): <root>/fleet/agent.json.
/// nullopt when the file does not exist (the daemon runs without an agent).
util::Result<std::optional<AgentConfig>> load_agent_config(const util::DeviceRoot &root);

class Agent {
public:
    virtual ~Agent() = default;
    static util::Result<std::unique_ptr<Agent>> start(AgentConfig config, const util::DeviceRoot &root,
                                                      util::EventLoop &loop, AgentHooks hooks);

    /// The updater's progress, reported on the status topic ("downloading",
    /// "staged", "trying", "committed", "rolled-back", "refused") with a
    /// detail (bytes, a version, the reason). `deployment`: the manifest's
    /// digest ("sha256:..."); empty: the one the agent last handled.
    virtual void report(std::string_view state, std::string_view detail, std::string_view deployment = {}) = 0;
    /// The images of the update being applied: `bytes` downloaded so far
    /// (the staging's count). Reported as "downloading" with a "bytes"
    /// field, at most every progress_interval_ms.
    virtual void progress(uint64_t bytes) = 0;
    /// Refresh now (the control socket's `berth update check`).
    virtual void check_now() = 0;
    virtual void stop() = 0;
};

}  // namespace fleet
