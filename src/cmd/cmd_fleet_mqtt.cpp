// `berth fleet publish|status`: the controller's side of the fleet's MQTT
// topics (docs/fleet.md), through fleet::MqttClient on a short-lived event
// loop, as the controller's identity (a client certificate) in a clean
// session.
//
//   publish DIR: DIR/metadata/timestamp.json's exact bytes, as a retained
//     QoS 1 message on berth/<fleet>/timestamp; done when the broker
//     acknowledges it.
//   status: subscribes to berth/<fleet>/devices/+/status, collects the
//     retained reports for --wait-ms after the connection is up, and prints
//     one line a device (or, with --json, the reports as a JSON array).
//
// Both wait at most --timeout-ms for the broker, and stop at the first
// failed connection with one line saying why.
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <map>

#include "commands.hpp"
#include "fleet/mqtt.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace cmd {
namespace {

using util::cat;
using util::quote;
using util::json::Value;

constexpr int64_t kDefaultTimeoutMs = 10000;

util::Result<int64_t> ms_option(const util::ParsedArgs &a, const char *name, int64_t fallback) {
    auto v = a.get(name);
    if (!v) return fallback;
    auto n = util::parse_int<int64_t>(*v);
    if (!n || *n < 0) return util::Error::msg(cat("--", name, " ", quote(*v), ": not a number of milliseconds"));
    return *n;
}

/// The broker and identity options common to publish and status.
util::Result<fleet::MqttConfig> mqtt_config(const util::ParsedArgs &a) {
    fleet::MqttConfig c;
    auto addr = a.get("mqtt");
    if (!addr || addr->empty()) return util::Error::msg("--mqtt HOST:PORT is required");
    std::string_view s = *addr;
    std::string_view port = "8883";
    if (s.front() == '[') {  // [v6 address]:port
        auto close = s.find(']');
        if (close == std::string_view::npos) return util::Error::msg(cat("--mqtt ", quote(*addr), ": missing `]`"));
        if (close + 1 < s.size()) {
            if (s[close + 1] != ':') return util::Error::msg(cat("--mqtt ", quote(*addr), ": expected `]:PORT`"));
            port = s.substr(close + 2);
        }
        s = s.substr(1, close - 1);
    } else if (auto colon = s.rfind(':'); colon != std::string_view::npos) {
        port = s.substr(colon + 1);
        s = s.substr(0, colon);
    }
    auto p = util::parse_int<int>(port);
    if (s.empty() || !p || *p <= 0 || *p > 65535)
        return util::Error::msg(cat("--mqtt ", quote(*addr), ": expected HOST:PORT"));
    c.host = std::string(s);
    c.port = *p;
    for (auto [opt, field] : {std::pair{"cafile", &c.ca_file}, {"cert", &c.cert_file}, {"key", &c.key_file}}) {
        auto v = a.get(opt);
        if (!v || v->empty()) return util::Error::msg(cat("--", opt, " is required"));
        *field = *v;
    }
    return c;
}

util::Result<std::string> fleet_name(const util::ParsedArgs &a) {
    std::string f = a.get("fleet").value_or("default");
    if (!fleet::valid_topic_level(f))
        return util::Error::msg(cat("--fleet ", quote(f), ": expected 1 to 64 of [A-Za-z0-9._-]"));
    return f;
}

/// One exchange with the broker: runs `loop` until done() or a failure,
/// at most `timeout_ms`. The first connection failure ends it (the client
/// would retry; a command does not).
struct Session {
    std::unique_ptr<util::EventLoop> loop;
    std::unique_ptr<fleet::MqttClient> client;
    std::string where;
    std::optional<util::Error> failure;
    bool done = false;

    void finish() {
        done = true;
        loop->stop();
    }
    void fail(std::string why) {
        if (!failure) failure = util::Error::msg(cat(where, ": ", why));
        loop->stop();
    }
    util::Status run(int64_t timeout_ms) {
        auto timer = loop->after(timeout_ms, [this, timeout_ms] {
            fail(cat("no answer within ", timeout_ms, " ms"));
        });
        while (!done && !failure) TRY(loop->run_once());
        loop->cancel(timer);
        if (client) client->close();
        if (failure) return *failure;
        return util::ok();
    }
};

util::Result<std::unique_ptr<Session>> open_session(const util::ParsedArgs &a, fleet::MqttHandlers handlers,
                                                    std::function<void(Session &)> on_up) {
    auto config = TRY(mqtt_config(a));
    // A broker that hangs up while TLS writes must not kill the command
    // (the daemon ignores SIGPIPE for the same reason).
    ::signal(SIGPIPE, SIG_IGN);
    auto s = std::make_unique<Session>();
    s->loop = TRY(util::EventLoop::create());
    s->where = fleet::broker_name(config);
    Session *sp = s.get();
    handlers.on_connection = [sp, on_up = std::move(on_up)](bool up, std::string_view why) {
        if (!up) return sp->fail(std::string(why));
        on_up(*sp);
    };
    s->client = TRY(fleet::MqttClient::open(config, *s->loop, std::move(handlers)));
    return s;
}

util::Result<int> run_publish(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    auto fleet = TRY(fleet_name(a));
    int64_t timeout = TRY(ms_option(a, "timeout-ms", kDefaultTimeoutMs));
    std::string path = cat(a.positional[0], "/metadata/timestamp.json");
    auto bytes = TRY(util::read_file(path, 1 << 20));
    // Only a sanity check: devices verify what they receive.
    auto doc = TRY(util::json::parse(bytes, path));
    TRY(util::json::expect_object(doc, path));
    const Value *sig = TRY(util::json::opt_object(doc, "signed", ""));
    auto type = sig ? TRY(util::json::opt_string(*sig, "_type", "signed")) : std::nullopt;
    if (type != "timestamp")
        return util::Error::msg(cat(quote(path), ": not TUF timestamp metadata (signed._type is not \"timestamp\")"));

    std::string topic = fleet::timestamp_topic(fleet);
    fleet::MqttHandlers h;
    Session *session = nullptr;
    h.on_acked = [&](std::string_view acked, int) {
        if (acked == topic && session) session->finish();
    };
    auto s = TRY(open_session(a, std::move(h), [&](Session &s) {
        if (auto r = s.client->publish(topic, bytes, 1, true); !r) s.fail(r.error().message());
    }));
    session = s.get();
    TRY(s->run(timeout));
    TRY(util::write_all(1, cat("published ", topic, " (", bytes.size(), " bytes)\n")));
    return 0;
}

/// A report's "time" as unix seconds: RFC 3339 ("2026-12-01T02:33:00Z",
/// fractions ignored) or a number.
std::optional<int64_t> report_time(const Value &report) {
    auto it = report.find("time");
    if (it == report.end()) return std::nullopt;
    if (it->is_number_integer()) return it->get<int64_t>();
    if (it->is_number_float()) {  // in range before the conversion: a device wrote it
        double d = it->get<double>();
        if (d > -1e12 && d < 1e12) return int64_t(d);
        return std::nullopt;
    }
    if (!it->is_string()) return std::nullopt;
    std::string t = it->get<std::string>();
    struct tm tm = {};
    const char *end = strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || (*end != 'Z' && *end != '.' && *end != '\0')) return std::nullopt;
    return int64_t(timegm(&tm));
}

std::string age_text(std::optional<int64_t> t, int64_t now) {
    if (!t) return "-";
    int64_t d = std::max<int64_t>(0, now - *t);
    if (d < 120) return cat(d, "s");
    if (d < 7200) return cat(d / 60, "m");
    if (d < 172800) return cat(d / 3600, "h");
    return cat(d / 86400, "d");
}

/// What a device wrote, made safe for a terminal: control characters
/// (escape sequences, newlines) become `?`, and long text is cut.
std::string printable(std::string s) {
    constexpr size_t kMax = 80;
    for (char &ch : s)
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
    if (s.size() > kMax) s = s.substr(0, kMax - 3) + "...";
    return s;
}

/// A field of a report for the table: strings as they are, null or absent
/// as "-", anything else as JSON.
std::string cell(const Value &report, const char *key) {
    auto it = report.find(key);
    if (it == report.end() || it->is_null()) return "-";
    return printable(it->is_string() ? it->get<std::string>() : util::json::dump(*it));
}

std::string table(const std::map<std::string, Value> &reports) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    std::vector<std::vector<std::string>> rows = {{"DEVICE", "ONLINE", "COMMITTED", "TRYING", "STATE", "DETAIL", "AGE"}};
    for (const auto &[id, r] : reports) {
        auto online = r.find("online");
        std::string on = online == r.end() || !online->is_boolean() ? "-" : online->get<bool>() ? "yes" : "no";
        rows.push_back({printable(id), on, cell(r, "committed"), cell(r, "trying"), cell(r, "state"), cell(r, "detail"),
                        age_text(report_time(r), now.tv_sec)});
    }
    std::vector<size_t> width(rows[0].size(), 0);
    for (const auto &row : rows)
        for (size_t i = 0; i < row.size(); i++) width[i] = std::max(width[i], row[i].size());
    std::string out;
    for (const auto &row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); i++) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        out += line + "\n";
    }
    return out;
}

util::Result<int> run_status(const cli::GlobalOptions &, const util::ParsedArgs &a) {
    auto fleet = TRY(fleet_name(a));
    int64_t timeout = TRY(ms_option(a, "timeout-ms", kDefaultTimeoutMs));
    int64_t wait = TRY(ms_option(a, "wait-ms", 1000));
    std::string prefix = cat("berth/", fleet, "/devices/");
    std::map<std::string, Value> reports;  // by device id (the topic's, which the broker's ACL vouches for)
    fleet::MqttHandlers h;
    h.on_message = [&](std::string_view topic, std::string_view payload, bool) {
        if (topic.substr(0, prefix.size()) != prefix) return;
        std::string_view rest = topic.substr(prefix.size());
        auto slash = rest.find('/');
        if (slash == std::string_view::npos || rest.substr(slash) != "/status") return;
        std::string id(rest.substr(0, slash));
        if (payload.empty()) {  // a retained report cleared
            reports.erase(id);
            return;
        }
        auto v = util::json::parse(payload, cat("report of ", id));
        Value r = v && v->is_object() ? std::move(*v) : Value{{"detail", "(not a JSON object)"}};
        r["device"] = id;
        reports[id] = std::move(r);
    };
    auto s = TRY(open_session(a, std::move(h), [&](Session &s) {
        // Retained reports arrive right after the subscription; collect for
        // --wait-ms from here (a total bound, not an idle one).
        s.loop->after(wait, [&s] { s.finish(); });
    }));
    TRY(s->client->subscribe(fleet::status_topic(fleet, "+"), 1));
    TRY(s->run(std::max(timeout, wait + 1000)));
    if (a.has("json")) {
        Value arr = Value::array();
        for (auto &[id, r] : reports) arr.push_back(r);
        TRY(util::write_all(1, util::json::dump(arr, 2) + "\n"));
    } else {
        TRY(util::write_all(1, table(reports)));
    }
    return 0;
}

// publish takes the first six, status all.
const util::OptSpec kOptions[] = {
    {"mqtt", 0, true, "HOST:PORT", "the fleet's broker (TLS)"},
    {"cafile", 0, true, "FILE", "the broker's CA certificate (PEM)"},
    {"cert", 0, true, "FILE", "the controller's client certificate (PEM)"},
    {"key", 0, true, "FILE", "its key (PEM)"},
    {"fleet", 0, true, "NAME", "the fleet's topic prefix (default `default`)"},
    {"timeout-ms", 0, true, "N", "give up after N ms without the broker's answer (default 10000)"},
    {"wait-ms", 0, true, "N", "collect the devices' reports for N ms once connected (default 1000)"},
    {"json", 0, false, nullptr, "print the reports as a JSON array"},
};
constexpr std::span<const util::OptSpec> kPublishOptions(kOptions, 6);

const cli::Command kCommands[] = {
    {"publish", "--mqtt HOST:PORT --cafile FILE --cert FILE --key FILE [--fleet NAME] DIR",
     "push DIR's signed timestamp to the fleet's devices (a retained MQTT message)", kPublishOptions, 1, 1, false,
     run_publish},
    {"status", "--mqtt HOST:PORT --cafile FILE --cert FILE --key FILE [--fleet NAME] [--json] [--wait-ms N]",
     "the fleet's devices as they last reported (online, versions, update state)", kOptions, 0, 0, false,
     run_status},
};

}  // namespace

std::span<const cli::Command> fleet_mqtt_commands() { return kCommands; }

}  // namespace cmd
