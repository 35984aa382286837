// One refresh of the fleet agent (agent.hpp): the TUF client's update of
// the trusted metadata and the download of the channel's manifest, and the
// Refresher that runs it off the daemon's event loop.
//
// run_refresh() is the work itself, blocking, over any ota::tuf::Fetcher:
//   1. the metadata directory gets its trusted root from the device's
//      pinned one (<root>/trust/tuf/root.json) when it has none yet;
//   2. a pushed timestamp (MQTT) must verify against the trusted root's
//      timestamp keys, else nothing is fetched at all ("push-rejected");
//   3. ota::tuf::Client::refresh() (root chain, timestamp, snapshot,
//      targets, with every check of the specification);
//   4. the channel target (find_target; its `custom` comes back as signed)
//      and its bytes (get_target: cached in the target directory, else
//      downloaded, length and hashes checked, at most manifest_max_bytes).
// A failure is "unreachable" when a fetch failed (the network, a server
// error: retried with backoff, not reported) and "refused" otherwise (the
// repository answered with something that does not verify: reported).
//
// ChildRefresher runs it in a forked child (why a child: agent.hpp) and
// reads the result from a pipe on the loop: one JSON line, then the
// manifest's exact bytes to EOF. The child is killed at the timeout or on
// cancel(); its pid goes to the daemon's reaper when one is given.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "image/http.hpp"
#include "ota/tuf/client.hpp"
#include "ota/tuf/fetcher.hpp"
#include "util/event_loop.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace fleet {

struct RefreshSettings {
    std::string metadata_dir;   ///< the TUF client's trusted metadata (<root>/fleet/metadata)
    std::string trusted_root;   ///< the pinned root installed there when it has none (<root>/trust/tuf/root.json)
    std::string targets_dir;    ///< downloaded targets (<root>/fleet/targets)
    std::string metadata_url;
    std::string targets_url;
    std::string target;         ///< the channel's target path (ota::tuf::channel_target)
    size_t manifest_max_bytes = 1 << 20;
};

struct ChannelTarget {
    util::json::Value custom;   ///< the target's "custom" (null when absent)
    std::string manifest;       ///< the verified bytes
};

struct RefreshResult {
    enum class Outcome { Ok, Unreachable, Refused, PushRejected };
    Outcome outcome = Outcome::Ok;
    std::string error;                   ///< one line, when not Ok
    uint64_t timestamp_version = 0;      ///< the trusted timestamp's after the refresh (0: none)
    std::optional<ChannelTarget> target; ///< Ok: nullopt when the channel has no target
    bool ok() const { return outcome == Outcome::Ok; }
};

const char *outcome_name(RefreshResult::Outcome o);

/// The blocking work (the child's). `pushed_timestamp`: empty for a poll.
RefreshResult run_refresh(const RefreshSettings &s, std::string_view pushed_timestamp, ota::tuf::Fetcher &fetcher,
                          ota::tuf::ClientConfig tuf = {});

/// The result as the child sends it (a JSON line, then the manifest), and back.
std::string encode_result(const RefreshResult &r);
util::Result<RefreshResult> decode_result(std::string_view bytes);

/// How a refresh runs off the loop (a seam: unit tests pass a fake).
class Refresher {
public:
    using Done = std::function<void(RefreshResult)>;
    virtual ~Refresher() = default;
    /// Starts one refresh; `done` runs later on the loop, never inside
    /// start(). One at a time: the caller waits for `done`.
    virtual void start(std::string pushed_timestamp, Done done) = 0;
    /// Stops a refresh in progress; its `done` is not called.
    virtual void cancel() = 0;
};

using ExpectChild = std::function<void(pid_t pid, std::function<void(int code)> on_exit)>;

/// Runs run_refresh over a UrlFetcher (http(s) and file URLs) in a child
/// process, killed after `timeout_ms`.
std::unique_ptr<Refresher> child_refresher(util::EventLoop &loop, RefreshSettings s, img::HttpOptions http,
                                           int64_t timeout_ms, ExpectChild expect_child);

}  // namespace fleet
