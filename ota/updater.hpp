// The updater: a persisted state machine switching app revisions
// (DESIGN.md, "Update model"). Its state lives under <device root>/revisions:
//
//   <version>.json   each known revision's manifest, the exact bytes applied
//   state.json       {"current", "previous", "trying", "staging", "minimum"}:
//                    the pointers, replaced as one document by one atomic
//                    rename (util::atomic_write_file), so a power cut leaves
//                    the old pointers or the new ones, never a mix
//   history.json     the last outcomes (applied, committed, rolled back and
//                    why, refused and why), newest last, bounded
//
// The updater never touches containers itself: it drives an Apps (the
// daemon's supervisor; a recording fake in unit tests). Apps calls may take
// long (a pull, a grace period): the daemon keeps its event loop turning
// inside them, and the updater refuses to be re-entered meanwhile.
//
// Every persistence step is a failpoint ("ota.<step>", kFailpoints below,
// described in docs/updater.md); resume() after a crash at any of them
// leaves exactly the committed revision running (or the new one, when the
// crash came after its commit), with no bundle of any other revision left.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ota/manifest.hpp"
#include "util/device_root.hpp"
#include "util/json.hpp"
#include "util/result.hpp"

namespace ota {

/// Every failpoint the updater passes, in the order an apply, a commit and a
/// rollback reach them; docs/updater.md says what resume() does after a
/// crash at each. The crash-loop test arms each of them.
inline constexpr std::string_view kFailpoints[] = {
    "ota.manifest-saved",   // <version>.json written; state not yet touched
    "ota.staging",          // state.staging = version written; nothing staged yet
    "ota.staged",           // Apps::stage done; state still says staging
    "ota.trying",           // state.trying = version written; the old revision still runs
    "ota.stopped-old",      // the old revision stopped; the new one not started
    "ota.started-new",      // the new revision started (TRYING)
    "ota.unstaged",         // a failed or interrupted staging cleared from the state
    "ota.commit",           // commit decided; state not yet written
    "ota.committed",        // the commit written; older bundles not yet removed
    "ota.rollback-stopped", // rollback: the abandoned revision stopped, the other not started
    "ota.rollback",         // rollback: the other revision started; state not yet written
    "ota.rolled-back",      // the rollback written; the abandoned bundles not yet removed
    "ota.gc",               // a revision's bundles removed, its manifest file not yet
};

/// What the updater needs of whoever runs containers.
class Apps {
public:
    virtual ~Apps() = default;
    /// Builds every bundle of `rev` while the running revision keeps running
    /// (ota::stage_revision, in the daemon in a child process). All or nothing.
    virtual util::Status stage(const Revision &rev) = 0;
    /// Starts (or adopts, when already running) `rev`'s containers in
    /// dependency order; returns once they are started, not once healthy.
    virtual util::Status start(const Revision &rev) = 0;
    /// Stops `rev`'s containers in reverse dependency order (stop signal,
    /// grace, SIGKILL; returns as soon as all exited) and deletes them.
    /// Containers of `rev` that are not running are fine.
    virtual util::Status stop(const Revision &rev) = 0;
    /// Removes `rev`'s bundles (never volumes).
    virtual util::Status remove(const Revision &rev) = 0;
    /// Stops and deletes every container the runtime has that belongs to no
    /// revision in `keep` (strays left by a crash).
    virtual util::Status stop_others(const std::vector<const Revision *> &keep) = 0;
};

struct UpdaterState {
    std::optional<uint64_t> current, previous, trying, staging;
    uint64_t minimum = 0;  ///< the highest version ever committed
};

struct HistoryEntry {
    int64_t time = 0;  ///< unix seconds (CLOCK_REALTIME; may be wrong on a box without RTC)
    uint64_t version = 0;
    std::string event;  ///< "refused", "staged", "trying", "committed", "rolled-back", "stage-failed"
    std::string reason;
};

class Updater {
public:
    Updater(util::DeviceRoot root, Apps &apps, AppLimits limits = {});

    /// At daemon start: reads the state and finishes what a crash or reboot
    /// interrupted: a staging is undone (its bundles removed), a TRYING
    /// revision is rolled back ("reboot during trying"), strays are stopped;
    /// then the current revision is started. Idempotent.
    util::Status resume();

    /// Applies a manifest: checks it (parse, version above `minimum`, board
    /// limits) and refuses it with nothing changed; stages it with the
    /// current revision still running; then stops current, starts the new
    /// one and enters TRYING. A failure after the stop rolls back at once.
    /// Returns the new version.
    util::Result<uint64_t> apply(std::string_view document);

    /// TRYING only: every health check passed; the new revision becomes
    /// current, the minimum rises, bundles older than `previous` go. Once
    /// the state is written it succeeds: a clean-up cut short is finished
    /// by the next resume().
    util::Status commit();
    /// TRYING: back to `current` (the failed revision's bundles go).
    /// Not trying: back to `previous` (an operator's `berth update rollback`);
    /// the minimum does not fall, so the rolled-back version cannot be
    /// applied again, only a higher one; `previous` becomes none (the
    /// abandoned revision's bundles go) and a second rollback is refused.
    util::Status rollback(std::string_view reason);

    bool busy() const { return busy_; }
    const UpdaterState &state() const { return state_; }
    /// The revision `version` as applied (its stored manifest).
    util::Result<Revision> revision(uint64_t version) const;
    std::vector<HistoryEntry> history() const;
    /// `berth update status --json`: the state, and each pointer's revision name.
    util::json::Value status_json() const;

private:
    util::Status ensure_loaded();
    util::Status save_state(const UpdaterState &next);
    void record(uint64_t version, std::string_view event, std::string_view reason = {});
    util::Error fail_staging(uint64_t version, util::Error err);
    util::Error fail_trying(uint64_t version, util::Error err);
    util::Status unstage();
    util::Status rollback_trying(std::string_view reason, bool start_current);
    util::Status rollback_to_previous(std::string_view reason);
    util::Status gc();

    util::DeviceRoot root_;
    Apps &apps_;
    AppLimits limits_;
    UpdaterState state_;
    bool loaded_ = false;  ///< state_ was read from state.json
    bool busy_ = false;
};

/// Reads <revisions>/state.json (all empty when missing), for the CLI
/// without a daemon.
util::Result<UpdaterState> read_state(const util::DeviceRoot &root);
util::Result<std::vector<HistoryEntry>> read_history(const util::DeviceRoot &root);
/// The entries as history.json holds them (docs/updater.md), for
/// `berth update history --json`.
util::json::Value history_json(const std::vector<HistoryEntry> &entries);
/// The document of Updater::status_json for a state read without a daemon
/// (docs/updater.md): each pointer as {"version", "name", "digest"} or null,
/// "minimum" and "busy".
util::json::Value status_json(const util::DeviceRoot &root, const UpdaterState &state, bool busy = false);

}  // namespace ota
