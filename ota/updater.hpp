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
// A manifest with a `system` part also replaces the root filesystem: the
// image goes into the inactive slot (ota::System, over ota/slot and
// ota/bootloader), state.json's "system" says "trying slot X, version V,
// revision R", the bootloader is asked to try X once, and the daemon
// reboots. The next start finds the outcome (resume()): booted X, the
// revision starts on probation as after an app-only apply, then commit()
// marks X good and commits the system version and the revision together,
// or rollback() marks X bad and reboots to the old slot; booted elsewhere
// after a reboot, the new system failed (its boot counter ran out): the
// failure is recorded, the version remembered as failed, the old revision
// runs on.
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

#include "ota/bootloader.hpp"
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
    // The system path (a manifest with a `system` part):
    "ota.system-installed",   // the image written into the inactive slot and read back; state says staging
    "ota.system-trying",      // state says trying the slot, version and revision; the bootloader not yet asked
    "ota.system-marked",      // the bootloader tries the slot at the next boot; the reboot not yet asked for
    "ota.system-boot-counted", // booted the tried slot: this trial boot counted; its attempt not yet given back
    "ota.system-started",     // booted the tried slot: its revision started (TRYING)
    "ota.system-good",        // commit written, then the bootloader marked the slot good
    "ota.system-failing",     // failure decided and written (why); the bootloader not yet told
    "ota.system-marked-bad",  // failure: the bootloader marks the slot bad; state still says trying
    "ota.system-failed",      // failure written (version remembered as failed); clean-up not yet done
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

/// The trial boots of a new system that reach berth, at most: each gets its
/// bootloader attempt back (a power cut after berth started does not use up
/// the slot's counter), and the boot after the last of them gives the update
/// up. A system whose berth starts and then hangs or is reset by the
/// watchdog falls back after this many boots (and the bootloader's attempts
/// for boots that never reach berth).
inline constexpr uint32_t kTrialBootsMax = 8;

/// A system update between its install and its outcome.
struct SystemTrying {
    std::string slot;       ///< the slot written and tried
    uint64_t version = 0;   ///< the system version it holds
    uint64_t revision = 0;  ///< the app revision that goes with it
    std::string boot_id;    ///< the boot that installed it (a start in the same boot has not rebooted yet)
    uint32_t boots = 0;        ///< trial boots of the slot that reached berth (kTrialBootsMax)
    std::string counted_boot;  ///< the boot id last counted in `boots` (a daemon restart is not a boot)
    /// Set once the update is given up, before the bootloader is told:
    /// why, and whether the version is remembered as failed.
    std::string failing;
    bool remember = false;
};

/// The root filesystem's part of the state ("system" in state.json).
struct SystemState {
    uint64_t version = 0;  ///< the committed system version; 0: unknown (as shipped)
    std::string slot;      ///< the slot holding it; empty: unknown
    std::optional<SystemTrying> trying;
    std::vector<uint64_t> failed;  ///< versions that failed to boot or to pass; never applied again
};

struct UpdaterState {
    std::optional<uint64_t> current, previous, trying, staging;
    uint64_t minimum = 0;  ///< the highest version ever committed
    SystemState system;
};

/// What the updater needs of the board for a system update: the
/// bootloader, the slot this boot came from, and the install into the
/// inactive slot (ota::BoardSystem in the daemon; file slots in tests).
class System {
public:
    virtual ~System() = default;
    virtual Bootloader &bootloader() = 0;
    /// The slot this boot came from.
    virtual std::string booted() = 0;
    /// Changes at every boot (/proc/sys/kernel/random/boot_id).
    virtual std::string boot_id() = 0;
    /// Streams the image into the inactive slot (marked bad first), checks
    /// it, reads it back; returns the slot written. Resumes an install cut
    /// short. Never marks the slot bootable.
    virtual util::Result<std::string> install(const SystemSpec &spec) = 0;
};

struct HistoryEntry {
    int64_t time = 0;  ///< unix seconds (CLOCK_REALTIME; may be wrong on a box without RTC)
    uint64_t version = 0;
    std::string event;  ///< "refused", "staged", "trying", "committed", "rolled-back", "stage-failed"
    std::string reason;
};

class Updater {
public:
    /// `system`: the board's slots; null on a device without system updates
    /// (a manifest with a `system` part is then refused).
    Updater(util::DeviceRoot root, Apps &apps, AppLimits limits = {}, System *system = nullptr);

    /// At daemon start: reads the state and finishes what a crash or reboot
    /// interrupted: a staging is undone (its bundles removed), a TRYING
    /// revision is rolled back ("reboot during trying"), strays are stopped;
    /// then the current revision is started. Idempotent.
    /// A system update being tried: booted into its slot (a new boot), its
    /// revision is started and stays TRYING (state().trying) for the
    /// caller's health checks, then commit() or rollback(); booted
    /// elsewhere in the same boot as the install, the bootloader is asked
    /// again and a reboot requested; booted elsewhere after a reboot, the
    /// update failed (recorded, the version remembered as failed) and the
    /// current revision runs. When every slot is bad, the booted one is
    /// marked good again (Bootloader::recover).
    util::Status resume();

    /// Applies a manifest: checks it (parse, version above `minimum`, board
    /// limits) and refuses it with nothing changed; stages it with the
    /// current revision still running; then stops current, starts the new
    /// one and enters TRYING. A failure after the stop rolls back at once.
    /// With a `system` part: the image is installed into the inactive slot
    /// after the staging, the bootloader asked to try it, and a reboot
    /// requested (reboot_requested()); the old revision keeps running.
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
    /// Set by apply(), resume() or rollback() when the box must reboot for
    /// the system update to go on (into the tried slot, or back to the old
    /// one): why. The caller reboots (the daemon: svc::power_down).
    const std::optional<std::string> &reboot_requested() const { return reboot_; }
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
    util::Status check_system(const SystemSpec &spec) const;
    util::Status resume_system();
    util::Status count_trial_boot();
    util::Status commit_system();
    util::Status fail_system(std::string_view reason, bool remember);
    util::Error fail_system_apply(uint64_t version, util::Error err);
    util::Result<uint64_t> apply_system(const Revision &rev);
    void keep_booted_good();

    util::DeviceRoot root_;
    Apps &apps_;
    AppLimits limits_;
    System *system_;
    std::optional<std::string> reboot_;
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
