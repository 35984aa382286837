// The updater's persisted state machine (updater.hpp, docs/updater.md).
//
// Every change is ordered so that a crash between any two steps leaves a
// state resume() can finish: a manifest is saved before any pointer names
// it, a pointer is cleared before its revision's bundles and manifest go
// (gc() removes every revision file no pointer names, bundles first, file
// last), and containers are stopped and started before the pointer that
// says which revision runs is switched, so resume() redoes the start of the
// revision the state names and stops everything else.
#include "ota/updater.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <utility>

#include "ota/stored_revision.hpp"
#include "util/dir.hpp"
#include "util/failpoint.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace ota {

using util::cat;
using util::Error;
using util::Result;
using util::Status;

namespace {

constexpr size_t kHistoryMax = 100;
constexpr size_t kStateFileMax = 64 * 1024;
constexpr size_t kHistoryFileMax = 4 * 1024 * 1024;
constexpr size_t kManifestMax = 4 * 1024 * 1024;
constexpr std::string_view kResumeRollback = "reboot or daemon restart during trying";
constexpr std::string_view kResumeUnstage = "staging interrupted by a reboot or daemon restart";
constexpr size_t kFailedMax = 32;  ///< system versions remembered as failed

std::string state_path(const util::DeviceRoot &root) { return util::path_join(root.revisions(), "state.json"); }
std::string history_path(const util::DeviceRoot &root) { return util::path_join(root.revisions(), "history.json"); }
std::string manifest_name(uint64_t version) { return cat(version, ".json"); }

/// The stored revision `version`, parsed.
Result<Revision> read_revision(const util::DeviceRoot &root, uint64_t version) {
    const std::string path = util::path_join(root.revisions(), manifest_name(version));
    auto text = TRY(util::read_file(path, kManifestMax));
    return parse_revision(text).context(cat("revision ", version, " (", path, ")"));
}

/// The version of a revision file "<version>.json"; nullopt for any other name.
std::optional<uint64_t> version_of(std::string_view name) {
    constexpr std::string_view ext = ".json";
    if (name.size() <= ext.size() || !name.ends_with(ext)) return std::nullopt;
    name.remove_suffix(ext.size());
    if (name.front() == '0') return std::nullopt;
    return util::parse_int<uint64_t>(name);
}

util::json::Value system_object(const SystemState &s) {
    util::json::Value doc = util::json::Value::object();
    doc["version"] = s.version;
    doc["slot"] = s.slot.empty() ? util::json::Value() : util::json::Value(s.slot);
    if (s.trying) {
        util::json::Value t = util::json::Value::object();
        t["slot"] = s.trying->slot;
        t["version"] = s.trying->version;
        t["revision"] = s.trying->revision;
        t["boot_id"] = s.trying->boot_id;
        t["boots"] = s.trying->boots;
        t["counted_boot"] = s.trying->counted_boot;
        if (!s.trying->failing.empty()) {
            t["failing"] = s.trying->failing;
            t["remember"] = s.trying->remember;
        }
        doc["trying"] = std::move(t);
    } else {
        doc["trying"] = util::json::Value();
    }
    util::json::Value failed = util::json::Value::array();
    for (auto v : s.failed) failed.push_back(v);
    doc["failed"] = std::move(failed);
    return doc;
}

Result<SystemState> parse_system(const util::json::Value &doc, const std::string &path) {
    SystemState s;
    const auto *sys = TRY_CTX(util::json::opt_object(doc, "system", ""), path);
    if (!sys) return s;
    s.version = TRY_CTX(util::json::opt_uint(*sys, "version", "system"), path).value_or(0);
    s.slot = TRY_CTX(util::json::opt_string(*sys, "slot", "system"), path).value_or("");
    if (const auto *t = TRY_CTX(util::json::opt_object(*sys, "trying", "system"), path)) {
        SystemTrying st;
        st.slot = TRY_CTX(util::json::req_string(*t, "slot", "system.trying"), path);
        st.version = TRY_CTX(util::json::opt_uint(*t, "version", "system.trying"), path).value_or(0);
        st.revision = TRY_CTX(util::json::opt_uint(*t, "revision", "system.trying"), path).value_or(0);
        st.boot_id = TRY_CTX(util::json::opt_string(*t, "boot_id", "system.trying"), path).value_or("");
        const uint64_t boots = TRY_CTX(util::json::opt_uint(*t, "boots", "system.trying"), path).value_or(0);
        st.boots = static_cast<uint32_t>(std::min<uint64_t>(boots, kTrialBootsMax + 1));
        st.counted_boot = TRY_CTX(util::json::opt_string(*t, "counted_boot", "system.trying"), path).value_or("");
        st.failing = TRY_CTX(util::json::opt_string(*t, "failing", "system.trying"), path).value_or("");
        st.remember = TRY_CTX(util::json::opt_bool(*t, "remember", "system.trying"), path).value_or(false);
        s.trying = std::move(st);
    }
    if (const auto *f = TRY_CTX(util::json::opt_array(*sys, "failed", "system"), path)) {
        for (const auto &v : *f) {
            if (!v.is_number_unsigned()) return Error::msg(cat(path, ": system.failed: expected versions"));
            s.failed.push_back(v.get<uint64_t>());
        }
    }
    return s;
}

/// The state as an object, each pointer shown by `pointer` (state.json and
/// the status document share the shape).
template <typename F>
util::json::Value state_object(const UpdaterState &s, F &&pointer) {
    util::json::Value doc = util::json::Value::object();
    doc["current"] = pointer(s.current);
    doc["previous"] = pointer(s.previous);
    doc["trying"] = pointer(s.trying);
    doc["staging"] = pointer(s.staging);
    doc["minimum"] = s.minimum;
    doc["system"] = system_object(s.system);
    return doc;
}

std::string state_document(const UpdaterState &s) {
    auto version = [](const std::optional<uint64_t> &v) { return v ? util::json::Value(*v) : util::json::Value(); };
    return util::json::dump(state_object(s, version), 2) + "\n";
}

/// Raises the "an update is in progress" flag for one call.
class BusyScope {
public:
    explicit BusyScope(bool &busy) : busy_(busy) { busy_ = true; }
    ~BusyScope() { busy_ = false; }
    BusyScope(const BusyScope &) = delete;
    BusyScope &operator=(const BusyScope &) = delete;

private:
    bool &busy_;
};

Error in_progress() { return Error::msg("an update is in progress"); }

/// `first` unless it is already set.
void keep_first(std::optional<Error> &first, Error err) {
    if (!first) first = std::move(err);
}

}  // namespace

Result<UpdaterState> read_state(const util::DeviceRoot &root) {
    const std::string path = state_path(root);
    auto text = util::read_file(path, kStateFileMax);
    if (!text) {
        if (text.error().code == ENOENT) return UpdaterState{};
        return std::move(text).error();
    }
    auto doc = TRY(util::json::parse(*text, path));
    TRY_CTX(util::json::expect_object(doc, ""), path);
    UpdaterState s;
    s.current = TRY_CTX(util::json::opt_uint(doc, "current", ""), path);
    s.previous = TRY_CTX(util::json::opt_uint(doc, "previous", ""), path);
    s.trying = TRY_CTX(util::json::opt_uint(doc, "trying", ""), path);
    s.staging = TRY_CTX(util::json::opt_uint(doc, "staging", ""), path);
    s.minimum = TRY_CTX(util::json::opt_uint(doc, "minimum", ""), path).value_or(0);
    s.system = TRY(parse_system(doc, path));
    return s;
}

Result<std::vector<HistoryEntry>> read_history(const util::DeviceRoot &root) {
    const std::string path = history_path(root);
    auto text = util::read_file(path, kHistoryFileMax);
    if (!text) {
        if (text.error().code == ENOENT) return std::vector<HistoryEntry>{};
        return std::move(text).error();
    }
    auto doc = TRY(util::json::parse(*text, path));
    if (!doc.is_array()) return Error::msg(cat(path, ": expected an array, got ", util::json::type_name(doc)));
    std::vector<HistoryEntry> out;
    for (size_t i = 0; i < doc.size(); i++) {
        const std::string where = cat("[", i, "]");
        const auto &e = doc[i];
        TRY_CTX(util::json::expect_object(e, where), path);
        HistoryEntry h;
        h.time = TRY_CTX(util::json::opt_int(e, "time", where), path).value_or(0);
        h.version = TRY_CTX(util::json::opt_uint(e, "version", where), path).value_or(0);
        h.event = TRY_CTX(util::json::req_string(e, "event", where), path);
        h.reason = TRY_CTX(util::json::opt_string(e, "reason", where), path).value_or("");
        out.push_back(std::move(h));
    }
    return out;
}

util::json::Value history_json(const std::vector<HistoryEntry> &entries) {
    util::json::Value doc = util::json::Value::array();
    for (const auto &e : entries) {
        util::json::Value j = util::json::Value::object();
        j["time"] = e.time;
        j["version"] = e.version;
        j["event"] = e.event;
        if (!e.reason.empty()) j["reason"] = e.reason;
        doc.push_back(std::move(j));
    }
    return doc;
}

util::json::Value status_json(const util::DeviceRoot &root, const UpdaterState &state, bool busy) {
    auto pointer = [&](const std::optional<uint64_t> &v) {
        if (!v) return util::json::Value();
        util::json::Value p = util::json::Value::object();
        p["version"] = *v;
        auto rev = read_revision(root, *v);
        if (rev) {
            p["name"] = rev->name;
            p["digest"] = rev->digest;
        } else {
            p["error"] = rev.error().message();
        }
        return p;
    };
    util::json::Value doc = state_object(state, pointer);
    doc["busy"] = busy;
    return doc;
}

Updater::Updater(util::DeviceRoot root, Apps &apps, AppLimits limits, System *system)
    : root_(std::move(root)), apps_(apps), limits_(std::move(limits)), system_(system) {
    (void)ensure_loaded();  // state() is meaningful at once; an error shows again in resume()
}

Status Updater::ensure_loaded() {
    if (loaded_) return util::ok();
    state_ = TRY(read_state(root_));
    loaded_ = true;
    return util::ok();
}

Status Updater::save_state(const UpdaterState &next) {
    TRY(util::mkdir_p(root_.revisions()));
    auto st = util::atomic_write_file(state_path(root_), state_document(next));
    if (!st) {
        // A failed directory sync may come after the rename: believe the disk.
        state_ = read_state(root_).value_or(state_);
        return std::move(st).error().wrap("save the update state");
    }
    state_ = next;
    return util::ok();
}

// History is a record for people, not state: losing an entry (a failed or
// interrupted write) never fails or undoes the step it describes.
void Updater::record(uint64_t version, std::string_view event, std::string_view reason) {
    auto entries = read_history(root_).value_or({});
    entries.push_back({static_cast<int64_t>(::time(nullptr)), version, std::string(event), std::string(reason)});
    if (entries.size() > kHistoryMax) entries.erase(entries.begin(), entries.end() - kHistoryMax);
    if (!util::mkdir_p(root_.revisions())) return;
    (void)util::atomic_write_file(history_path(root_), util::json::dump(history_json(entries), 1) + "\n");
}

Result<Revision> Updater::revision(uint64_t version) const { return read_revision(root_, version); }

std::vector<HistoryEntry> Updater::history() const { return read_history(root_).value_or({}); }

util::json::Value Updater::status_json() const { return ota::status_json(root_, state_, busy_); }

// Removes every revision no pointer names: stops it, removes its bundles,
// then its manifest file, so a crash in between leaves a file the next gc()
// finds again (Apps::stop and remove of what is gone are fine). Also the temporaries of
// interrupted atomic writes. Goes on past a revision it cannot remove.
Status Updater::gc() {
    auto dir = util::open_file(root_.revisions(), O_RDONLY | O_DIRECTORY);
    if (!dir && dir.error().code == ENOENT) return util::ok();  // nothing applied yet
    auto dirfd = TRY(std::move(dir));
    auto names = TRY(util::list_dir_fd(dirfd.get()));
    std::optional<Error> first;
    for (const auto &name : names) {
        if (name.starts_with(util::kTempPrefix)) {
            if (::unlinkat(dirfd.get(), name.c_str(), 0) != 0 && errno != ENOENT)
                keep_first(first, Error::from_errno(cat("remove ", util::quote(name))));
            continue;
        }
        auto v = version_of(name);
        if (!v || v == state_.current || v == state_.previous || v == state_.trying || v == state_.staging) continue;
        auto rev = revision(*v);
        std::string unreadable;  // a manifest a later parser refuses goes by the names it still gives
        if (!rev) {
            unreadable = rev.error().message();
            rev = revision_to_clean_up(root_, *v);
        }
        // Stopped first: a crash may have left a container of it running.
        if (auto st = apps_.stop(*rev); !st) {
            keep_first(first, std::move(st).error().wrap(cat("stop revision ", *v)));
            continue;
        }
        if (auto st = apps_.remove(*rev); !st) {
            keep_first(first, std::move(st).error().wrap(cat("remove the bundles of revision ", *v)));
            continue;
        }
        TRY(util::failpoint("ota.gc"));
        if (::unlinkat(dirfd.get(), name.c_str(), 0) != 0 && errno != ENOENT)
            keep_first(first, Error::from_errno(cat("remove ", util::quote(name))));
        else if (!unreadable.empty())
            record(*v, "dropped", cat("its manifest no longer parses: ", unreadable));
    }
    if (first) return std::move(*first).wrap("clean up revisions");
    return util::ok();
}

// A staging that failed or was interrupted: the pointer goes, then gc()
// removes the bundles and the manifest of the revision no pointer names.
Status Updater::unstage() {
    if (state_.staging) {
        UpdaterState next = state_;
        next.staging.reset();
        TRY(save_state(next));
    }
    TRY(util::failpoint("ota.unstaged"));
    return gc();
}

Error Updater::fail_staging(uint64_t version, Error err) {
    record(version, "stage-failed", err.message());
    (void)unstage();  // what is left, resume() removes
    return std::move(err).wrap(cat("apply revision ", version));
}

Error Updater::fail_trying(uint64_t version, Error err) {
    const std::string reason = err.message();
    if (auto st = rollback_trying(reason, true); !st)
        return std::move(err).wrap(cat("apply revision ", version, " (rollback failed: ", st.error().message(), ")"));
    return std::move(err).wrap(cat("apply revision ", version, " (rolled back)"));
}

Result<uint64_t> Updater::apply(std::string_view document) {
    if (busy_) return in_progress();
    TRY(ensure_loaded());
    if (state_.trying || state_.staging) return in_progress();
    BusyScope busy(busy_);
    reboot_.reset();

    auto refuse = [&](uint64_t version, const Error &err) {
        record(version, "refused", err.message());
        return Error{err.code, cat("refused: ", err.context)};
    };
    if (document.size() > kManifestMax)
        return refuse(0, Error::msg(cat("the manifest is larger than ", kManifestMax >> 20, " MiB")));
    auto parsed = parse_revision(document);
    if (!parsed) return refuse(0, parsed.error());
    Revision rev = std::move(parsed).value();
    const uint64_t v = rev.version;
    const uint64_t committed = std::max(state_.minimum, state_.current.value_or(0));
    if (v <= committed)
        return refuse(v, Error::msg(cat("version ", v, " is not above the committed version ", committed)));
    if (auto st = check_limits(rev, limits_); !st) return refuse(v, st.error());
    if (rev.system) {
        if (!system_)
            return refuse(v, Error::msg("the manifest has a system part, but this device has no root filesystem slots "
                                        "(no board profile with slots)"));
        if (auto st = check_system(*rev.system); !st) return refuse(v, st.error());
    }
    // Strays of an interrupted cleanup first: a file or bundles of this very
    // version may be among them.
    TRY_CTX(gc(), cat("apply revision ", v));

    TRY_CTX(util::mkdir_p(root_.revisions()), cat("apply revision ", v));
    TRY_CTX(util::atomic_write_file(util::path_join(root_.revisions(), manifest_name(v)), document),
            cat("apply revision ", v));
    if (auto st = util::failpoint("ota.manifest-saved"); !st) return fail_staging(v, std::move(st).error());

    UpdaterState next = state_;
    next.staging = v;
    if (auto st = save_state(next); !st) return fail_staging(v, std::move(st).error());
    if (auto st = util::failpoint("ota.staging"); !st) return fail_staging(v, std::move(st).error());
    if (auto st = apps_.stage(rev); !st) return fail_staging(v, std::move(st).error().wrap("stage"));
    record(v, "staged");
    if (auto st = util::failpoint("ota.staged"); !st) return fail_staging(v, std::move(st).error());
    if (rev.system) return apply_system(rev);

    next = state_;
    next.staging.reset();
    next.trying = v;
    if (auto st = save_state(next); !st) {
        // The write may have happened after all (save_state re-read the disk).
        if (state_.trying) return fail_trying(v, std::move(st).error());
        return fail_staging(v, std::move(st).error());
    }
    // From here on, any failure rolls back to the current revision at once.
    if (auto st = util::failpoint("ota.trying"); !st) return fail_trying(v, std::move(st).error());
    if (state_.current) {
        auto old = revision(*state_.current);
        if (!old) old = revision_to_clean_up(root_, *state_.current);  // refused by a later parser: stopped by name
        if (auto st = apps_.stop(*old); !st)
            return fail_trying(v, std::move(st).error().wrap(cat("stop revision ", *state_.current)));
    }
    if (auto st = util::failpoint("ota.stopped-old"); !st) return fail_trying(v, std::move(st).error());
    if (auto st = apps_.start(rev); !st) return fail_trying(v, std::move(st).error().wrap("start"));
    if (auto st = util::failpoint("ota.started-new"); !st) return fail_trying(v, std::move(st).error());
    record(v, "trying");
    return v;
}

// The system part, once the revision is staged: the image into the inactive
// slot (read back), then one write naming the slot, version and revision
// being tried, then the bootloader's try; the old revision keeps running
// until the reboot. Before the write a failure is a failed staging; after
// it, fail_system_apply undoes the try (the version is not remembered as
// failed: it never booted).
Result<uint64_t> Updater::apply_system(const Revision &rev) {
    const uint64_t v = rev.version;
    const SystemSpec &sys = *rev.system;
    auto slot = system_->install(sys);
    if (!slot) return fail_staging(v, std::move(slot).error().wrap(cat("install system ", sys.version)));
    record(v, "system-installed", cat("system ", sys.version, " in slot ", *slot));
    if (auto st = util::failpoint("ota.system-installed"); !st) return fail_staging(v, std::move(st).error());

    UpdaterState next = state_;
    next.staging.reset();
    next.trying = v;
    next.system.trying = SystemTrying{.slot = *slot, .version = sys.version, .revision = v, .boot_id = system_->boot_id(),
                                      .boots = 0, .counted_boot = {}, .failing = {}, .remember = false};
    if (auto st = save_state(next); !st) {
        if (state_.system.trying) return fail_system_apply(v, std::move(st).error());
        return fail_staging(v, std::move(st).error());
    }
    if (auto st = util::failpoint("ota.system-trying"); !st) return fail_system_apply(v, std::move(st).error());
    if (auto st = system_->bootloader().mark_try(*slot); !st) return fail_system_apply(v, std::move(st).error());
    if (auto st = util::failpoint("ota.system-marked"); !st) return fail_system_apply(v, std::move(st).error());
    record(v, "trying", cat("system ", sys.version, " in slot ", *slot, ": rebooting into it"));
    reboot_ = cat("try system ", sys.version, " in slot ", *slot);
    return v;
}

Error Updater::fail_system_apply(uint64_t version, Error err) {
    if (auto st = fail_system(err.message(), false); !st)
        return std::move(err).wrap(cat("apply revision ", version, " (undo failed: ", st.error().message(), ")"));
    return std::move(err).wrap(cat("apply revision ", version, " (undone)"));
}

Status Updater::check_system(const SystemSpec &spec) const {
    const uint64_t installed = state_.system.version;
    if (spec.version <= installed)
        return Error::msg(cat("system version ", spec.version, " is not above the committed system version ", installed));
    if (installed < spec.min_version || installed > spec.max_version)
        return Error::msg(cat("system version ", spec.version, " replaces versions ", spec.min_version, " to ",
                              spec.max_version, ", the installed one is ", installed));
    if (std::find(state_.system.failed.begin(), state_.system.failed.end(), spec.version) != state_.system.failed.end())
        return Error::msg(cat("system version ", spec.version, " failed before; it is not tried again"));
    return util::ok();
}

// A system update given up, in three steps so a crash anywhere finishes it
// and never retries it: the decision written first (why, and whether the
// version is remembered as failed), then the slot marked bad, then one
// write clearing the try; then the clean-up of the abandoned revision.
// Booted in the tried slot, a reboot back to the old one is requested.
Status Updater::fail_system(std::string_view reason, bool remember) {
    const std::string what = cat("give up system ", state_.system.trying->version, " in slot ",
                                 state_.system.trying->slot);
    if (state_.system.trying->failing.empty()) {
        UpdaterState next = state_;
        next.system.trying->failing = std::string(reason);
        next.system.trying->remember = remember;
        TRY_CTX(save_state(next), what);
        TRY_CTX(util::failpoint("ota.system-failing"), what);
    }
    const SystemTrying t = *state_.system.trying;
    if (system_) {
        TRY_CTX(system_->bootloader().mark_bad(t.slot), what);
        TRY_CTX(util::failpoint("ota.system-marked-bad"), what);
    }
    if (state_.trying)
        if (auto rev = revision(*state_.trying)) TRY_CTX(apps_.stop(*rev), what);
    UpdaterState next = state_;
    next.trying.reset();
    next.system.trying.reset();
    auto &failed = next.system.failed;
    if (t.remember && std::find(failed.begin(), failed.end(), t.version) == failed.end()) {
        failed.push_back(t.version);
        if (failed.size() > kFailedMax) failed.erase(failed.begin());
    }
    TRY_CTX(save_state(next), what);
    record(t.revision, "rolled-back", cat("system ", t.version, " in slot ", t.slot, ": ", t.failing));
    if (system_ && system_->booted() == t.slot) reboot_ = cat("back from slot ", t.slot, ": ", t.failing);
    TRY_CTX(util::failpoint("ota.system-failed"), what);
    return gc();
}

// Booted the tried slot, every check passed: one write commits the system
// version and the revision together, then the slot is marked good. A crash
// in between leaves the slot on trial in the bootloader with the state
// committed: the next start in that slot (the bootloader boots it first)
// marks it good (keep_booted_good).
Status Updater::commit_system() {
    const SystemTrying t = *state_.system.trying;
    const uint64_t v = *state_.trying;
    const std::string what = cat("commit revision ", v, " with system ", t.version);
    if (!system_) return Error::msg(cat(what, ": the device has no root filesystem slots"));
    if (system_->booted() != t.slot)
        return Error::msg(cat(what, ": slot ", t.slot, " is not booted yet (booted: ", system_->booted(), ")"));
    TRY_CTX(util::failpoint("ota.commit"), what);
    UpdaterState next = state_;
    next.previous = state_.current;
    next.current = v;
    next.trying.reset();
    next.minimum = std::max(state_.minimum, v);
    next.system.version = t.version;
    next.system.slot = t.slot;
    next.system.trying.reset();
    TRY_CTX(save_state(next), what);
    record(v, "committed", cat("system ", t.version, " in slot ", t.slot));
    // Committed: the rest is what the next start redoes.
    if (!system_->bootloader().mark_good(t.slot)) return util::ok();
    if (!util::failpoint("ota.system-good")) return util::ok();
    if (!util::failpoint("ota.committed")) return util::ok();
    (void)gc();
    return util::ok();
}

// At start with a system update being tried (see resume()).
Status Updater::resume_system() {
    const SystemTrying t = *state_.system.trying;
    if (!t.failing.empty()) return fail_system(t.failing, t.remember);  // decided before a restart
    if (!system_) return fail_system("the device has no root filesystem slots any more", false);
    const std::string booted = system_->booted();
    auto st = TRY_CTX(system_->bootloader().status(), "resume the system update");
    const SlotBoot *slot = st.slot(t.slot);
    if (booted == t.slot) {
        // The new system runs, unless the slot was marked bad meanwhile
        // (taken out of the boot order). Its counter at 0 says nothing
        // here: the boot script spent its last attempt on this very boot
        // (power cuts during the earlier ones).
        if (slot && slot->position < 0)
            return fail_system(cat("slot ", t.slot, " was marked bad while it was tried"), true);
        return count_trial_boot();  // then TRYING: the caller health-checks the revision
    }
    if (st.trying != t.slot || t.boot_id == system_->boot_id()) {
        // Not tried yet: the bootloader was never asked (a crash before
        // it), or no reboot since. The slot was read back: ask, reboot.
        if (st.trying != t.slot || st.next != t.slot) {
            TRY_CTX(system_->bootloader().mark_try(t.slot), "resume the system update");
            TRY(util::failpoint("ota.system-marked"));
        }
        reboot_ = cat("try system ", t.version, " in slot ", t.slot);
        return util::ok();
    }
    std::string reason =
        slot && slot->left == 0
            ? cat("the boot counter of slot ", t.slot, " ran out (booted slot ", booted,
                  "): the new system did not start or did not pass its checks")
            : cat("the bootloader booted slot ", booted, ", not ", t.slot);
    return fail_system(reason, true);
}

// Booted the tried slot, a new boot: counted in state.json first, then its
// bootloader attempt given back (mark_try again), so power cuts once berth
// runs do not use up the slot's counter; the boot after kTrialBootsMax of
// them gives the update up instead (a berth that starts and then hangs, or
// is reset by the watchdog, falls back all the same). A crash between the
// two leaves the boot counted and the attempt spent: the safe side.
Status Updater::count_trial_boot() {
    const SystemTrying t = *state_.system.trying;
    const std::string id = system_->boot_id();
    if (t.counted_boot == id) return util::ok();  // a daemon restart in the same boot
    if (t.boots >= kTrialBootsMax)
        return fail_system(cat("slot ", t.slot, " booted ", t.boots + 1, " times on trial without passing its checks (",
                               kTrialBootsMax, " at most)"),
                           true);
    const std::string what = cat("count trial boot ", t.boots + 1, " of system ", t.version, " in slot ", t.slot);
    UpdaterState next = state_;
    next.system.trying->boots = t.boots + 1;
    next.system.trying->counted_boot = id;
    TRY_CTX(save_state(next), what);
    TRY_CTX(util::failpoint("ota.system-boot-counted"), what);
    std::string said = cat("boot ", t.boots + 1, " of at most ", kTrialBootsMax, " of system ", t.version, " in slot ",
                           t.slot, " reached berth: ");
    if (auto st = system_->bootloader().mark_try(t.slot); !st)
        said += cat("its boot attempt could not be given back (", st.error().message(), ")");
    else
        said += "its boot attempt given back";
    record(t.revision, "trial-boot", said);
    return util::ok();
}

// Not trying a system: every slot bad -> the booted one good again; the
// booted slot holding the committed system (before the first system
// update: any slot still in the boot order, as a failed first update took
// its slot out) gets its counter back (the boot script spends one at every
// boot); booted elsewhere in a slot marked bad (a failure finished after a
// restart in the failed slot), a reboot to the good one is requested.
void Updater::keep_booted_good() {
    Bootloader &boot = system_->bootloader();
    const std::string booted = system_->booted();
    if (auto r = boot.recover(booted); r && !r->empty()) record(state_.system.version, "recovered", *r);
    auto st = boot.status();
    if (!st) return;
    const SlotBoot *b = st->slot(booted);
    if (!b) return;
    if (state_.system.slot.empty() ? b->position >= 0 : state_.system.slot == booted) {
        if (b->health != SlotHealth::Good || b->left != boot.attempts() || b->position != 0) (void)boot.mark_good(booted);
    } else if (b->health == SlotHealth::Bad && !st->next.empty() && st->next != booted) {
        reboot_ = cat("slot ", booted, " is marked bad; the committed system is in slot ", state_.system.slot);
    }
}

Status Updater::commit() {
    if (busy_) return in_progress();
    TRY(ensure_loaded());
    if (!state_.trying) return Error::msg("commit: no update is being tried");
    BusyScope busy(busy_);
    if (state_.system.trying) return commit_system();
    const uint64_t v = *state_.trying;
    TRY_CTX(util::failpoint("ota.commit"), cat("commit revision ", v));
    UpdaterState next = state_;
    next.previous = state_.current;
    next.current = v;
    next.trying.reset();
    next.minimum = std::max(state_.minimum, v);
    TRY_CTX(save_state(next), cat("commit revision ", v));
    record(v, "committed");
    // Committed: what follows is cleanup, which resume() redoes when it
    // fails or is cut short; the commit itself stands.
    if (!util::failpoint("ota.committed")) return util::ok();
    (void)gc();
    return util::ok();
}

Status Updater::rollback(std::string_view reason) {
    if (busy_) return in_progress();
    TRY(ensure_loaded());
    if (state_.staging) return in_progress();
    BusyScope busy(busy_);
    reboot_.reset();
    if (state_.system.trying) {
        // Booted the tried slot: back to the old one by a reboot. Not
        // rebooted yet: the try is undone, the old revision still runs.
        const bool booted = system_ && system_->booted() == state_.system.trying->slot;
        return fail_system(reason, booted);
    }
    if (state_.trying) return rollback_trying(reason, true);
    return rollback_to_previous(reason);
}

// TRYING -> current: stops the revision being tried, starts current (when
// there is one and `start_current`), then clears the pointer; gc() removes
// the abandoned revision. A crash before the state write redoes all of it.
Status Updater::rollback_trying(std::string_view reason, bool start_current) {
    const uint64_t v = *state_.trying;
    const std::string what = cat("roll back revision ", v);
    auto failed = revision(v);
    if (failed) {
        TRY_CTX(apps_.stop(*failed), what);
    } else {
        // Its manifest is unreadable: stop whatever is not the current revision.
        std::optional<Revision> cur;
        if (state_.current) cur = TRY_CTX(revision(*state_.current), what);
        std::vector<const Revision *> keep;
        if (cur) keep.push_back(&*cur);
        TRY_CTX(apps_.stop_others(keep), what);
    }
    TRY_CTX(util::failpoint("ota.rollback-stopped"), what);
    std::optional<Error> start_error;
    if (state_.current && start_current) {
        auto cur = revision(*state_.current);
        Status st = cur ? apps_.start(*cur) : Status(std::move(cur).error());
        // Go on: the tried revision is stopped either way, and the pointer
        // must say which one the box runs (resume() starts it again).
        if (!st) start_error = std::move(st).error().wrap(cat("start revision ", *state_.current));
    }
    TRY_CTX(util::failpoint("ota.rollback"), what);
    UpdaterState next = state_;
    next.trying.reset();
    TRY_CTX(save_state(next), what);
    record(v, "rolled-back", reason);
    if (start_error) return std::move(*start_error).wrap(what);
    if (!util::failpoint("ota.rolled-back")) return util::ok();
    (void)gc();
    return util::ok();
}

// An operator's rollback: current -> previous. The abandoned revision is
// not kept as `previous` (its version stays below the minimum, so it can
// never run again); previous becomes none and a second rollback is refused.
Status Updater::rollback_to_previous(std::string_view reason) {
    if (!state_.previous || !state_.current) return Error::msg("rollback: there is no previous revision");
    const uint64_t from = *state_.current, to = *state_.previous;
    const std::string what = cat("roll back from revision ", from, " to ", to);
    auto cur = revision(from);
    if (!cur) cur = revision_to_clean_up(root_, from);  // refused by a later parser: stopped by name
    auto prev = TRY_CTX(revision(to), what);
    // Undoes a half-done switch: the current revision runs again.
    auto restore = [&](Error err) {
        (void)apps_.stop(prev);
        (void)apps_.start(*cur);
        return std::move(err).wrap(what);
    };
    if (auto st = apps_.stop(*cur); !st) return restore(std::move(st).error());
    if (auto st = util::failpoint("ota.rollback-stopped"); !st) return restore(std::move(st).error());
    if (auto st = apps_.start(prev); !st) return restore(std::move(st).error());
    if (auto st = util::failpoint("ota.rollback"); !st) return restore(std::move(st).error());
    UpdaterState next = state_;
    next.current = to;
    next.previous.reset();
    if (auto st = save_state(next); !st && state_.current == from) return restore(std::move(st).error());
    record(from, "rolled-back", reason);
    if (!util::failpoint("ota.rolled-back")) return util::ok();
    (void)gc();
    return util::ok();
}

Status Updater::resume() {
    if (busy_) return in_progress();
    BusyScope busy(busy_);
    loaded_ = false;
    reboot_.reset();
    TRY_CTX(ensure_loaded(), "resume");
    std::optional<Error> cleanup;
    if (state_.staging) {
        record(*state_.staging, "stage-failed", kResumeUnstage);
        if (auto st = unstage(); !st) keep_first(cleanup, std::move(st).error());
    }
    if (state_.system.trying) {
        if (auto st = resume_system(); !st) keep_first(cleanup, std::move(st).error());
    } else if (state_.trying) {
        // The revision that was being tried may still run (a daemon restart)
        // or not (a reboot); stop_others() and start() below start current
        // either way.
        if (auto st = rollback_trying(kResumeRollback, false); !st) keep_first(cleanup, std::move(st).error());
    }
    if (auto st = gc(); !st) keep_first(cleanup, std::move(st).error());
    if (system_ && !state_.system.trying) keep_booted_good();

    // Booted into a system being tried: its revision runs, on probation.
    const bool trying_here = state_.system.trying && state_.trying && system_ && !reboot_ &&
                             system_->booted() == state_.system.trying->slot;
    std::optional<Revision> cur;
    bool started = false;
    if (trying_here) {
        cur = TRY_CTX(revision(*state_.trying), "resume");
    } else if (state_.current) {
        auto r = revision(*state_.current);
        if (!r) {
            // A committed revision that a later parser refuses cannot start:
            // back to the previous one, else nothing runs until an apply.
            const std::string why = cat("revision ", *state_.current, " can no longer be read: ", r.error().message());
            Status back = state_.previous ? rollback_to_previous(why) : Status(Error::msg("there is no previous revision"));
            if (!back) {
                (void)apps_.stop_others({});
                return Error::msg(cat("resume: ", why, "; ", back.error().message(), ": nothing runs until a new revision is applied"));
            }
            r = revision(*state_.current);
            started = true;
        }
        cur = TRY_CTX(std::move(r), "resume");
    }
    std::vector<const Revision *> keep;
    if (cur) keep.push_back(&*cur);
    TRY_CTX(apps_.stop_others(keep), "resume: stop stray containers");
    if (cur && !started) TRY_CTX(apps_.start(*cur), cat("resume: start revision ", cur->version));
    if (trying_here) TRY(util::failpoint("ota.system-started"));
    if (cleanup) return std::move(*cleanup).wrap("resume (the current revision runs)");
    return util::ok();
}

}  // namespace ota
