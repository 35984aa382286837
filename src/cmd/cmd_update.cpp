// `berth update apply|status|history|rollback|check`: app revisions, through the
// running daemon (docs/cli.md, "Updates"). `status` and `history` read the
// persisted state when no daemon runs; `apply` and `rollback` need one (they
// stop and start containers). runc's `berth update [OPTIONS] ID` (a
// container's cgroup limits) and `berth ps ID` keep their meaning:
// dispatch_daemon_forms() picks the daemon's form by its first argument.
#include <cstring>

#include "commands.hpp"
#include "daemon/control.hpp"
#include "ota/updater.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

using util::cat;
using util::quote;
using util::json::Value;

constexpr size_t kMaxManifest = 4 << 20;

/// `key` of object `v` when it is a string, else "".
std::string text_of(const Value &v, const char *key) {
    return v.is_object() && v.contains(key) && v[key].is_string() ? v[key].get<std::string>() : std::string();
}

std::string version_of(const Value &p) {
    if (!p.is_object() || !p.contains("version")) return "-";
    std::string s = util::json::dump(p["version"]);
    if (std::string name = text_of(p, "name"); !name.empty()) s += cat(" (", name, ")");
    return s;
}

/// The daemon's answer when one runs; nullopt when none does.
util::Result<std::optional<Value>> ask_daemon(const cli::GlobalOptions &g, const char *op) {
    auto c = svc::ControlClient::connect(daemon_run_dir(g));
    if (!c) {
        if (svc::no_daemon(c.error())) return std::optional<Value>();
        return std::move(c).error();
    }
    return std::optional<Value>(TRY(c->call(Value{{"op", op}})));
}

util::Result<int> run_apply(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    const std::string &file = a.positional[0];
    std::string doc = file == "-" ? TRY_CTX(util::read_all(0, kMaxManifest), "update apply: read the manifest from stdin")
                                  : TRY_CTX(util::read_file(file, kMaxManifest), cat("update apply: ", quote(file)));
    util::DeviceRoot root = cli::device_root(g, a, false);
    auto c = svc::ControlClient::connect(daemon_run_dir(g));
    if (!c && svc::no_daemon(c.error())) return util::Error::msg(cat("update apply: no daemon is running on ", quote(root.dir())));
    if (!c) return std::move(c).error();
    TRY(c->send(Value{{"op", "update-apply"}, {"manifest", doc}, {"wait", !a.has("no-wait")}}));
    for (;;) {
        auto r = TRY(c->next());
        if (!r) return util::Error::msg("update apply: the daemon closed the connection before the outcome (it may be shutting down)");
        Value &v = *r;
        if (v.contains("event") && v["event"] == "trying") {
            std::string line = cat("revision ", util::json::dump(v["version"]), " is trying (health window ",
                                   v["window_ms"].is_number() ? v["window_ms"].get<int64_t>() / 1000 : 0, " s)\n");
            TRY(util::write_all(1, line));
            if (a.has("no-wait")) return 0;
            continue;
        }
        if (v.contains("event") && v["event"] == "reboot") {
            TRY(util::write_all(1, cat("revision ", util::json::dump(v["version"]),
                                       ": the system image is installed; rebooting into it (checked and committed "
                                       "after the reboot)\n")));
            return 0;
        }
        if (v["ok"] == true && v.contains("outcome") && v["outcome"] == "committed") {
            TRY(util::write_all(1, cat("revision ", util::json::dump(v["version"]), " committed\n")));
            return 0;
        }
        if (v.contains("error") && v["error"].is_string()) return util::Error::msg(cat("update apply: ", v["error"].get<std::string>()));
        return util::Error::msg("update apply: the daemon's answer has no outcome");
    }
}

util::Result<int> run_status(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    util::DeviceRoot root = cli::device_root(g, a, false);
    Value status;
    bool daemon = false;
    if (auto r = TRY(ask_daemon(g, "update-status"))) {
        status = (*r)["status"];
        daemon = true;
    } else {
        status = ota::status_json(root, TRY(ota::read_state(root)));
    }
    status["daemon"] = daemon;
    if (a.has("json")) {
        TRY(util::write_all(1, util::json::dump(status, 2) + "\n"));
        return 0;
    }
    std::string out = cat("current:  ", version_of(status["current"]), '\n', "previous: ", version_of(status["previous"]), '\n',
                          "trying:   ", version_of(status["trying"]), '\n', "minimum:  ", util::json::dump(status["minimum"]), '\n');
    if (status["staging"].is_object()) out += cat("staging:  ", version_of(status["staging"]), '\n');
    if (const auto &sys = status["system"]; sys.is_object() && (sys["version"] != 0 || sys["trying"].is_object())) {
        out += cat("system:   ", util::json::dump(sys["version"]), sys["slot"].is_string() ? cat(" in slot ", sys["slot"].get<std::string>()) : "", '\n');
        if (sys["trying"].is_object())
            out += cat("          trying ", util::json::dump(sys["trying"]["version"]), " in slot ",
                       sys["trying"]["slot"].get<std::string>(), '\n');
    }
    out += daemon ? "daemon:   running\n" : "daemon:   not running (read from the state on disk)\n";
    TRY(util::write_all(1, out));
    return 0;
}

util::Result<int> run_history(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    util::DeviceRoot root = cli::device_root(g, a, false);
    Value h;
    if (auto r = TRY(ask_daemon(g, "update-history")))
        h = (*r)["history"];
    else
        h = ota::history_json(TRY(ota::read_history(root)));
    if (a.has("json")) {
        TRY(util::write_all(1, util::json::dump(h, 2) + "\n"));
        return 0;
    }
    std::string out;
    for (const auto &e : h) {
        if (!e.is_object()) continue;
        int64_t t = e.contains("time") && e["time"].is_number() ? e["time"].get<int64_t>() : 0;
        out += cat(format_unix_time(t), "  ", e.contains("version") ? util::json::dump(e["version"]) : "?", "  ",
                   text_of(e, "event"));
        if (std::string why = text_of(e, "reason"); !why.empty()) out += cat("  ", why);
        out += '\n';
    }
    TRY(util::write_all(1, out));
    return 0;
}

util::Result<int> run_rollback(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    util::DeviceRoot root = cli::device_root(g, a, false);
    auto c = svc::ControlClient::connect(daemon_run_dir(g));
    if (!c && svc::no_daemon(c.error())) return util::Error::msg(cat("update rollback: no daemon is running on ", quote(root.dir())));
    if (!c) return std::move(c).error();
    Value v = TRY_CTX(c->call(Value{{"op", "update-rollback"}}), "update rollback");
    TRY(util::write_all(1, cat("rolled back; current revision ", version_of(v["status"]["current"]), '\n')));
    return 0;
}

util::Result<int> run_check(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    util::DeviceRoot root = cli::device_root(g, a, false);
    auto v = TRY_CTX(ask_daemon(g, "update-check"), "update check");
    if (!v) return util::Error::msg(cat("update check: no daemon is running on ", quote(root.dir())));
    TRY(util::write_all(1, "the fleet agent is refreshing from its repository\n"));
    return 0;
}

const util::OptSpec kStoreOption[] = {{"store", 0, true, "DIR", "the device root (default /var/lib/berth)"}};
const util::OptSpec kApplyOptions[] = {
    {"store", 0, true, "DIR", "the device root (default /var/lib/berth)"},
    {"no-wait", 0, false, nullptr, "return once the revision is trying, not once it is committed or rolled back"},
};
const util::OptSpec kJsonOptions[] = {
    {"store", 0, true, "DIR", "the device root (default /var/lib/berth)"},
    {"json", 0, false, nullptr, "print as JSON"},
};

const cli::Command kUpdate[] = {
    {"apply", "[--no-wait] FILE|-",
     "apply an update manifest; waits until it is committed (exit 0) or rolled back (exit 1)", kApplyOptions, 1, 1, false,
     run_apply},
    {"status", "[--json]", "the current, previous and trying revisions", kJsonOptions, 0, 0, false, run_status},
    {"history", "[--json]", "what happened to each update, and why", kJsonOptions, 0, 0, false, run_history},
    {"rollback", "", "back to the previous revision (or end the one being tried)", kStoreOption, 0, 0, false, run_rollback},
    {"check", "", "the fleet agent refreshes from its repository now", kStoreOption, 0, 0, false, run_check},
};

}  // namespace

std::optional<int> dispatch_daemon_forms(const cli::GlobalOptions &g, int argc, char **argv) {
    if (argc < 1) return std::nullopt;
    std::string_view name = argv[0];
    if (name == "update" && argc >= 2) {
        std::string_view sub = argv[1];
        for (const auto &c : kUpdate)
            if (sub == c.name) return cli::dispatch(kUpdate, "update", g, argc - 1, argv + 1);
        if (sub == "help") return cli::dispatch(kUpdate, "update", g, argc - 1, argv + 1);
    }
    if (name == "ps") {
        for (int i = 1; i < argc; ++i)
            if (argv[i][0] != '-') return std::nullopt;  // an id: runc's ps
        const cli::Command ps[] = {daemon_ps_command()};
        return cli::dispatch(ps, "", g, argc, argv);
    }
    return std::nullopt;
}

}  // namespace cmd
