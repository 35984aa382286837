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

Updater::Updater(util::DeviceRoot root, Apps &apps, AppLimits limits)
    : root_(std::move(root)), apps_(apps), limits_(std::move(limits)) {
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

Status Updater::commit() {
    if (busy_) return in_progress();
    TRY(ensure_loaded());
    if (!state_.trying) return Error::msg("commit: no update is being tried");
    BusyScope busy(busy_);
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
    TRY_CTX(ensure_loaded(), "resume");
    std::optional<Error> cleanup;
    if (state_.staging) {
        record(*state_.staging, "stage-failed", kResumeUnstage);
        if (auto st = unstage(); !st) keep_first(cleanup, std::move(st).error());
    }
    // The revision that was being tried may still run (a daemon restart) or
    // not (a reboot); stop_others() and start() below start current either way.
    if (state_.trying)
        if (auto st = rollback_trying(kResumeRollback, false); !st) keep_first(cleanup, std::move(st).error());
    if (auto st = gc(); !st) keep_first(cleanup, std::move(st).error());

    std::optional<Revision> cur;
    bool started = false;
    if (state_.current) {
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
    if (cleanup) return std::move(*cleanup).wrap("resume (the current revision runs)");
    return util::ok();
}

}  // namespace ota
