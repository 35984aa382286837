// The device daemon's commands: `berth daemon` (run it; `daemon status`),
// `berth ps` (the daemon's containers; `ps ID` stays runc's),
// `berth logs NAME` and `berth system poweroff|reboot`. Each one parses its
// arguments and either runs svc::run_daemon or asks the running daemon
// through its control socket (svc::ControlClient) and prints the answer.
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "commands.hpp"
#include "daemon/control.hpp"
#include "daemon/daemon.hpp"
#include "image/policy.hpp"
#include "ota/board.hpp"
#include "registry_flags.hpp"
#include "runtime/state.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace cmd {

using util::cat;
using util::quote;
using util::json::Value;

std::string daemon_run_dir(const cli::GlobalOptions &g) { return g.root.value_or(rt::kDefaultStateRoot); }

util::Result<svc::ControlClient> connect_daemon(const cli::GlobalOptions &g, std::string_view what) {
    auto c = svc::ControlClient::connect(daemon_run_dir(g));
    if (!c && svc::no_daemon(c.error()))
        return util::Error::msg(cat(what, ": no daemon is running on ", quote(daemon_run_dir(g))));
    if (!c && c.error().code == EACCES)
        return util::Error::msg(cat(what, ": permission denied: the daemon's control socket is root's"));
    return c;
}

std::string format_unix_time(int64_t t) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&tt, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm)) return std::to_string(t);
    return buf;
}

namespace {

std::string str(const Value &v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return "-";
    return util::json::dump(v);
}

std::string pad(std::string s, size_t w) {
    if (s.size() < w) s.append(w - s.size(), ' ');
    return s;
}

std::string mib(uint64_t bytes) {
    uint64_t tenths = bytes * 10 / (1 << 20);
    return cat(tenths / 10, '.', tenths % 10, " MiB");
}

// ---- daemon ------------------------------------------------------------------

util::Result<int> run_daemon_status(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto c = TRY(connect_daemon(g, "daemon status"));
    Value v = TRY(c.call(Value{{"op", "daemon-status"}}));
    v.erase("ok");
    if (a.has("json")) {
        TRY(util::write_all(1, util::json::dump(v, 2) + "\n"));
        return 0;
    }
    std::string out = cat("pid ", str(v["pid"]), v["pid1"] == true ? " (PID 1)" : " (subreaper)", ", up ", str(v["uptime_s"]),
                          " s, RSS ", mib(v["rss_bytes"].is_number_unsigned() ? v["rss_bytes"].get<uint64_t>() : 0), '\n');
    out += cat("root ", str(v["root"]), ", run directory ", str(v["run_dir"]), '\n');
    out += cat("revision ", str(v["revision"]), ", trying ", str(v["trying"]), '\n');
    out += cat("containers ", str(v["containers"]), ", orphans reaped ", str(v["orphans_reaped"]), '\n');
    if (v["board"].is_object())
        out += cat("board ", str(v["board"]["path"]), " (", str(v["board"]["from"]), ")\n");
    else
        out += "board none\n";
    if (v["watchdog"].is_object())
        out += cat("watchdog ", str(v["watchdog"]["device"]), ", timeout ", str(v["watchdog"]["timeout_s"]), " s\n");
    else
        out += "watchdog off\n";
    TRY(util::write_all(1, out));
    return 0;
}

util::Result<int> run_daemon_cmd(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    if (!a.positional.empty()) {
        if (a.positional[0] != "status") return cli::usage_error(cat("daemon: unknown command ", quote(a.positional[0]), " (status)"));
        for (const auto &[name, value] : a.options)
            if (name != "json") return cli::usage_error(cat("daemon status: --", name, " is for `berth daemon`"));
        return run_daemon_status(g, a);
    }
    if (a.has("json")) return cli::usage_error("daemon: --json is for `berth daemon status`");
    svc::DaemonOptions o;
    o.root = cli::device_root(g, a, false);
    // Relative paths would change meaning for the daemon's children.
    char cwd[4096];
    if (o.root.dir()[0] != '/' && ::getcwd(cwd, sizeof cwd)) o.root = util::DeviceRoot(util::path_join(cwd, o.root.dir()));
    o.run_dir = daemon_run_dir(g);
    if (o.run_dir[0] != '/' && ::getcwd(cwd, sizeof cwd)) o.run_dir = util::path_join(cwd, o.run_dir);
    o.init = a.has("init");
    // --board, else berth.board= on the kernel command line, else
    // /etc/berth/board.json when there (docs/board.md); none: no slots.
    if (auto b = ota::find_board(a.get("board").value_or(""), ota::kernel_cmdline())) {
        o.board = b->path;
        o.board_from = b->from;
    } else if (b.error().code != ENOENT) {
        return std::move(b).error();
    }
    o.watchdog = a.get("watchdog").value_or("");
    if (auto t = a.get("watchdog-timeout")) {
        auto n = util::parse_int<int>(*t);
        if (!n || *n < 1) return cli::usage_error(cat("daemon: --watchdog-timeout ", quote(*t), ": not a number of seconds"));
        o.watchdog_timeout_s = *n;
    }
    auto reg_opts = TRY(registry_options(a));
    TRY(util::mkdir_p(o.root.dir(), 0755));
    // A policy that does not load must not keep the committed revision
    // from running (its bundles are staged): updates are refused instead.
    auto loaded = load_policy(o.root.store(), a);
    if (!loaded) util::log::warn("daemon: ", loaded.error().message(), "; every update's images are refused");
    img::Policy policy = loaded ? std::move(*loaded) : img::Policy::device_default("").value_or(img::Policy());
    o.stage.policy = &policy;
    o.stage.open_registry = [&reg_opts](const img::Reference &ref) { return img::Registry::open(img::registry_host(ref), reg_opts); };
    o.stage.note = [](std::string_view event, std::string_view detail) { util::log::info("stage: ", event, " ", detail); };
    return svc::run_daemon(std::move(o));
}

const util::OptSpec kDaemonOptions[] = {
    {"store", 0, true, "DIR", "the device root (default /var/lib/berth)"},
    {"init", 0, false, nullptr, "do PID 1's work (mount, kmsg log, power off) even when not PID 1"},
    {"board", 0, true, "FILE", "the board profile, or none (default: berth.board= on the kernel command line, else /etc/berth/board.json)"},
    {"watchdog", 0, true, "DEV", "feed this watchdog device (e.g. /dev/watchdog)"},
    {"watchdog-timeout", 0, true, "S", "the watchdog's timeout in seconds (default 30)"},
    {"policy", 0, true, "FILE", "trust policy for the images of updates (default <store>/policy.json, else keys in <store>/trust)"},
    {"creds", 0, true, "FILE", "registry credentials, docker config.json format"},
    {"ca", 0, true, "FILE", "trust this PEM CA bundle for TLS"},
    {"insecure-http", 0, false, nullptr, "plain http to registries (loopback ones fall back to it by themselves)"},
    {"json", 0, false, nullptr, "daemon status: print as JSON"},
};

// ---- ps ------------------------------------------------------------------------

util::Result<int> run_daemon_ps(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    auto c = TRY(connect_daemon(g, "ps"));
    Value v = TRY(c.call(Value{{"op", "ps"}}));
    const Value &services = v["services"];
    if (a.has("json")) {
        TRY(util::write_all(1, util::json::dump(services, 2) + "\n"));
        return 0;
    }
    std::string out = cat(pad("NAME", 16), pad("REVISION", 10), pad("STATUS", 11), pad("PID", 8), pad("RESTARTS", 10),
                          pad("UP", 8), "WHY\n");
    for (const auto &s : services) {
        std::string status = str(s["status"]);
        if (s["crash_looping"] == true) status += "!";
        out += cat(pad(str(s["name"]), 16), pad(str(s["revision"]), 10), pad(status, 11),
                   pad(s["pid"] == 0 ? "-" : str(s["pid"]), 8), pad(str(s["restarts"]), 10), pad(cat(str(s["for_s"]), "s"), 8),
                   str(s["why"]), '\n');
    }
    TRY(util::write_all(1, out));
    return 0;
}

// ---- logs ----------------------------------------------------------------------

/// --since: RFC 3339 ("2026-12-01T02:33:00Z"), unix seconds, or a duration
/// back from now ("90s", "10m", "2h", "1d"); CLOCK_REALTIME ms.
util::Result<int64_t> parse_since(const std::string &s) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = int64_t(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
    if (s.empty()) return util::Error::msg("--since: empty");
    char unit = s.back();
    if (unit == 's' || unit == 'm' || unit == 'h' || unit == 'd') {
        if (auto n = util::parse_int<int64_t>(std::string_view(s).substr(0, s.size() - 1)); n && *n >= 0) {
            int64_t mult = unit == 's' ? 1000 : unit == 'm' ? 60000 : unit == 'h' ? 3600000 : 86400000;
            return now_ms - *n * mult;
        }
    }
    if (auto n = util::parse_int<int64_t>(s); n && *n >= 0) return *n * 1000;
    struct tm tm = {};
    const char *end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (end && (*end == 'Z' || *end == '\0' || *end == '.')) return int64_t(timegm(&tm)) * 1000;
    return util::Error::msg(cat("--since ", quote(s), ": expected RFC 3339 (2026-12-01T02:33:00Z), unix seconds or a duration (10m)"));
}

util::Result<int> run_logs(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    Value req{{"op", "logs"}, {"name", a.positional[0]}, {"follow", a.has("follow")}};
    if (auto t = a.get("tail")) {
        auto n = util::parse_int<int64_t>(*t);
        if (!n || *n < 0) return cli::usage_error(cat("logs: --tail ", quote(*t), ": not a count"));
        req["tail"] = *n;
    }
    if (auto s = a.get("since")) {
        auto ms = parse_since(*s);
        if (!ms) return cli::usage_error(cat("logs: ", ms.error().message()));
        req["since_ms"] = *ms;
    }
    auto c = TRY(connect_daemon(g, "logs"));
    TRY(c.send(req));
    for (;;) {
        auto r = TRY(c.next());
        if (!r) return util::Error::msg("logs: the daemon closed the stream");
        if (r->contains("line")) {
            TRY(util::write_all(1, cat(str((*r)["line"]), '\n')));
            continue;
        }
        if ((*r)["ok"] == true) return 0;
        return util::Error::msg(cat("logs: ", str((*r)["error"])));
    }
}

const util::OptSpec kLogsOptions[] = {
    {"follow", 'f', false, nullptr, "keep printing new lines"},
    {"since", 0, true, "T", "lines from T on: RFC 3339, unix seconds, or a duration back (10m)"},
    {"tail", 0, true, "N", "the last N lines only"},
};

// ---- system --------------------------------------------------------------------

util::Result<int> run_system(const cli::GlobalOptions &g, const util::ParsedArgs &a) {
    const std::string &action = a.positional[0];
    if (action != "poweroff" && action != "reboot" && action != "halt")
        return cli::usage_error(cat("system: unknown action ", quote(action), " (poweroff, reboot or halt)"));
    auto c = TRY(connect_daemon(g, cat("system ", action)));
    Value v = TRY(c.call(Value{{"op", "shutdown"}, {"action", action}}));
    TRY(util::write_all(1, v["pid1"] == true ? cat("the daemon stops its containers, then the system goes down (", action, ")\n")
                                             : std::string("the daemon stops its containers and exits (it is not PID 1)\n")));
    return 0;
}

const util::OptSpec kJsonOption[] = {{"json", 0, false, nullptr, "print as JSON"}};

const cli::Command kCommands[] = {
    {"daemon", "[OPTIONS] | status [--json]",
     "run the device daemon (supervises the committed app revision, applies updates); `status`: ask it how it is",
     kDaemonOptions, 0, 1, false, run_daemon_cmd},
    {"logs", "[-f] [--since T] [--tail N] NAME", "print a daemon container's log", kLogsOptions, 1, 1, false, run_logs},
    {"system", "poweroff|reboot|halt", "stop every container, then power off or reboot (through the daemon)", {}, 1, 1, false,
     run_system},
};

const cli::Command kPs = {"ps", "[--json]", "list the daemon's containers (`ps ID`: a container's processes)", kJsonOption, 0, 0,
                          false, run_daemon_ps};

}  // namespace

std::span<const cli::Command> daemon_commands() { return kCommands; }
const cli::Command &daemon_ps_command() { return kPs; }

}  // namespace cmd
