// The fleet agent (agent.hpp) on a real event loop, with fakes for what it
// talks to: the refresh (a scripted Refresher: no network), the broker (a
// fake MqttClient), the daemon (hooks recording applies) and the clock.
// Each case is one behaviour: a new manifest applied once, downgrades,
// replays and other boards refused and reported, pushes that trigger a
// refresh and pushes that change nothing, backoff after errors, and the
// status reports with their (deployment, seq) key and their outbox.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "fleet/agent.hpp"
#include "fleet/agent_seams.hpp"
#include "fleet/schedule.hpp"
#include "image/digest.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"
#include "util/tests/tmpdir.hpp"

using util::cat;
using util::json::Value;
using Outcome = fleet::RefreshResult::Outcome;

namespace {

constexpr uint64_t kSeed = 20261201;
const std::string kImage = "localhost:5000/sensor@sha256:" + std::string(64, 'a');
const std::string kTimestampVector = std::string(TUF_VECTORS) + "/consistent-snapshot/step1/metadata/timestamp.json";

std::string manifest(uint64_t version) {
    return cat("{\"version\":", version, ",\"name\":\"app\",\"containers\":[{\"name\":\"app\",\"image\":\"", kImage, "\"}]}");
}
std::string digest(const std::string &doc) { return img::Digest::of_small(doc).str(); }

/// What the fakes saw and what they answer.
struct World {
    // the refresh
    std::vector<std::string> starts;  ///< each refresh's pushed bytes ("" for a poll)
    std::vector<int64_t> waits;       ///< each wait until the next poll
    fleet::Refresher::Done pending;
    // the broker
    bool mqtt_open = false, connected = false, closed = false;
    fleet::MqttConfig mqtt_config;
    fleet::MqttHandlers handlers;
    std::vector<std::string> subscribed;
    struct Message {
        std::string topic, payload;
        bool retain;
        int mid;
    };
    int next_mid = 0;
    std::vector<Message> published;
    // the daemon
    uint64_t committed = 1;
    std::optional<uint64_t> trying;
    bool busy = false;
    std::vector<std::string> applied;
    util::Status apply_result = util::ok();
    std::function<void()> during_apply;  ///< runs inside the apply (a staging's progress)
    int64_t now = 1764547200;
};

class FakeRefresher : public fleet::Refresher {
public:
    explicit FakeRefresher(World &w) : w_(w) {}
    void start(std::string pushed, Done done) override {
        w_.starts.push_back(std::move(pushed));
        w_.pending = std::move(done);
    }
    void cancel() override { w_.pending = nullptr; }

private:
    World &w_;
};

class FakeMqtt : public fleet::MqttClient {
public:
    explicit FakeMqtt(World &w) : w_(w) {}
    util::Status subscribe(const std::string &topic, int) override {
        w_.subscribed.push_back(topic);
        return {};
    }
    util::Result<int> publish(const std::string &topic, std::string_view payload, int, bool retain) override {
        if (!w_.connected) return util::Error::msg("not connected");
        w_.published.push_back({topic, std::string(payload), retain, ++w_.next_mid});
        return w_.next_mid;
    }
    bool connected() const override { return w_.connected; }
    void close() override { w_.closed = true; }

private:
    World &w_;
};

struct Harness {
    TempDir tmp;
    std::string dir = tmp.path;
    std::unique_ptr<util::EventLoop> loop;
    World w;
    fleet::AgentConfig config;
    std::unique_ptr<fleet::Agent> agent;

    explicit Harness(bool mqtt = true) {
        loop = std::move(*util::EventLoop::create());
        config.device_id = "gw-0001";
        config.fleet = "plant";
        config.metadata_url = "http://127.0.0.1:9/metadata";
        config.targets_url = "http://127.0.0.1:9/targets";
        config.board = "gw-a";
        config.poll_interval_ms = 60 * 60 * 1000;
        config.backoff_base_ms = 40;
        config.backoff_max_ms = 200;
        if (mqtt) config.mqtt = fleet::MqttConfig{};
        // The first poll is drawn from the seed: far enough for no case to see it.
        fleet::Schedule probe({config.poll_interval_ms, config.backoff_base_ms, config.backoff_max_ms}, kSeed);
        REQUIRE(probe.first_poll() > 10000);
    }
    ~Harness() { agent.reset(); }

    void start() {
        fleet::AgentHooks h;
        h.committed_version = [this] { return w.committed; };
        h.trying_version = [this] { return w.trying; };
        h.busy = [this] { return w.busy; };
        h.apply = [this](std::string_view doc) {
            w.applied.emplace_back(doc);
            if (w.during_apply) w.during_apply();
            return w.apply_result;
        };
        fleet::AgentSeams seams;
        seams.refresher = std::make_unique<FakeRefresher>(w);
        seams.seed = kSeed;
        seams.wall_clock = [this] { return w.now; };
        seams.on_schedule = [this](int64_t ms) { w.waits.push_back(ms); };
        seams.mqtt_open = [this](const fleet::MqttConfig &c, util::EventLoop &, fleet::MqttHandlers h)
            -> util::Result<std::unique_ptr<fleet::MqttClient>> {
            w.mqtt_open = true;
            w.mqtt_config = c;
            w.handlers = std::move(h);
            return std::unique_ptr<fleet::MqttClient>(std::make_unique<FakeMqtt>(w));
        };
        auto a = fleet::start_agent(config, util::DeviceRoot(dir), *loop, std::move(h), std::move(seams));
        REQUIRE(a);
        agent = std::move(*a);
    }

    /// Answers the refresh in progress.
    void respond(fleet::RefreshResult r) {
        REQUIRE(w.pending);
        auto done = std::move(w.pending);
        w.pending = nullptr;
        done(std::move(r));
    }
    void respond_target(const std::string &doc, Value custom = nullptr, uint64_t ts = 4) {
        fleet::RefreshResult r;
        r.timestamp_version = ts;
        r.target = fleet::ChannelTarget{std::move(custom), doc};
        respond(std::move(r));
    }
    void respond_error(Outcome o, std::string why) {
        fleet::RefreshResult r;
        r.outcome = o;
        r.error = std::move(why);
        respond(std::move(r));
    }
    void poll_now() {
        agent->check_now();
        REQUIRE(w.pending);
    }

    std::vector<Value> outbox() const {
        std::vector<Value> out;
        auto text = util::read_file(dir + "/fleet/outbox");
        if (!text) return out;
        for (const auto &line : util::split(*text, '\n'))
            if (!line.empty()) out.push_back(*util::json::parse(line, "outbox"));
        return out;
    }
    Value last_report() const {
        auto o = outbox();
        return o.empty() ? Value() : o.back();
    }
    void connect() {
        w.connected = true;
        w.handlers.on_connection(true, "");
    }
    void disconnect() {
        w.connected = false;
        w.handlers.on_connection(false, "broker went away");
    }
    /// The broker's PUBACK for the `i`th message published.
    void ack(size_t i) {
        REQUIRE(i < w.published.size());
        if (w.handlers.on_acked) w.handlers.on_acked(w.published[i].topic, w.published[i].mid);
    }
    void ack_all() {
        for (size_t i = 0; i < w.published.size(); i++) ack(i);
    }
    /// Turns the loop until `cond` or `ms` pass.
    template <typename F> bool turn_until(F cond, int64_t ms) {
        int64_t end = util::monotonic_ms() + ms;
        while (!cond() && util::monotonic_ms() < end) (void)loop->run_once(10);
        return cond();
    }
};

std::string timestamp_with_version(uint64_t v) {
    auto text = util::read_file(kTimestampVector);
    REQUIRE(text);
    std::string s = *text;
    auto at = s.find("\"version\": 4");
    REQUIRE(at != std::string::npos);
    s.replace(at, 12, cat("\"version\": ", v));
    return s;
}

}  // namespace

// ---- manifests -------------------------------------------------------------------

TEST_CASE("a new manifest is handed to the updater once and reported as downloading") {
    Harness h;
    h.start();
    h.poll_now();
    h.respond_target(manifest(2));
    REQUIRE(h.w.applied == std::vector<std::string>{manifest(2)});
    Value r = h.last_report();
    CHECK(r["state"] == "downloading");
    CHECK(r["deployment"] == digest(manifest(2)));
    CHECK_THAT(r["detail"].get<std::string>(), Catch::Contains("version 2"));
    h.poll_now();
    h.respond_target(manifest(2));
    CHECK(h.w.applied.size() == 1);
}

TEST_CASE("while an update downloads, its reports carry the bytes of its images so far") {
    Harness h;
    h.config.progress_interval_ms = 0;
    h.start();
    h.w.during_apply = [&] {
        h.agent->progress(4096);
        h.agent->progress(525379);
    };
    h.poll_now();
    h.respond_target(manifest(2));
    auto reports = h.outbox();
    REQUIRE(reports.size() >= 3);
    std::vector<Value> down(reports.end() - 3, reports.end());
    for (const auto &r : down) CHECK(r["state"] == "downloading");
    CHECK(down[0]["bytes"] == 0);
    CHECK(down[1]["bytes"] == 4096);
    CHECK(down[2]["bytes"] == 525379);
    CHECK(down[2]["detail"] == "version 2: 525379 bytes of its images downloaded");
    CHECK(down[2]["deployment"] == digest(manifest(2)));
}

TEST_CASE("download progress is reported at most every progress_interval_ms, and only during an apply") {
    Harness h;
    h.config.progress_interval_ms = 60 * 60 * 1000;
    h.start();
    h.agent->progress(100);  // no apply in progress
    CHECK(h.outbox().size() == 1);  // the agent's start only
    h.w.during_apply = [&] {
        h.agent->progress(4096);
        h.agent->progress(8192);
    };
    h.poll_now();
    h.respond_target(manifest(2));
    auto reports = h.outbox();
    REQUIRE(reports.size() == 2);
    CHECK(reports[1]["state"] == "downloading");
    CHECK(reports[1]["bytes"] == 0);  // the first one; the next are within the interval
}

TEST_CASE("a manifest below the committed version is refused and reported, not applied") {
    Harness h;
    h.w.committed = 5;
    h.start();
    h.poll_now();
    h.respond_target(manifest(3));
    CHECK(h.w.applied.empty());
    Value r = h.last_report();
    CHECK(r["state"] == "refused");
    CHECK(r["deployment"] == digest(manifest(3)));
    CHECK_THAT(r["detail"].get<std::string>(), Catch::Contains("downgrade: version 3 is not above the committed 5"));
    size_t reports = h.outbox().size();
    h.poll_now();
    h.respond_target(manifest(3));
    CHECK(h.outbox().size() == reports);  // refused once, not on every poll
}

TEST_CASE("the committed manifest itself is neither applied nor reported") {
    Harness h;
    h.w.committed = 2;
    h.start();
    size_t reports = h.outbox().size();
    h.poll_now();
    h.respond_target(manifest(2));
    CHECK(h.w.applied.empty());
    CHECK(h.outbox().size() == reports);
}

TEST_CASE("a manifest that does not parse is refused and reported") {
    Harness h;
    h.start();
    h.poll_now();
    h.respond_target("{\"version\": \"two\"}");
    CHECK(h.w.applied.empty());
    CHECK(h.last_report()["state"] == "refused");
    CHECK_THAT(h.last_report()["detail"].get<std::string>(), Catch::StartsWith("manifest: "));
}

TEST_CASE("a manifest for other boards is refused and reported; one listing this board is applied") {
    Harness h;
    h.start();
    h.poll_now();
    h.respond_target(manifest(2), Value{{"boards", Value::array({"gw-b", "gw-c"})}});
    CHECK(h.w.applied.empty());
    CHECK(h.last_report()["state"] == "refused");
    CHECK(h.last_report()["detail"] == "not meant for board `gw-a` (boards: gw-b, gw-c)");
    h.poll_now();
    h.respond_target(manifest(3), Value{{"boards", Value::array({"gw-b", "gw-a"})}});
    CHECK(h.w.applied == std::vector<std::string>{manifest(3)});
}

TEST_CASE("an apply the updater refuses is reported with its reason, tried at two more refreshes, then given up") {
    Harness h;
    h.w.apply_result = util::Error::msg("staging: pull `app`: manifest unknown");
    h.start();
    for (int attempt = 1; attempt <= 4; attempt++) {
        h.poll_now();
        h.respond_target(manifest(2));
    }
    CHECK(h.w.applied.size() == 3);
    Value r = h.last_report();
    CHECK(r["state"] == "refused");
    CHECK(r["detail"] == "staging: pull `app`: manifest unknown");
    CHECK(r["deployment"] == digest(manifest(2)));
    auto reports = h.outbox();
    CHECK(reports[reports.size() - 3]["detail"] ==
          "staging: pull `app`: manifest unknown (attempt 2 of 3, tried again at the next refresh)");
}

TEST_CASE("an apply that failed once succeeds at the next refresh") {
    Harness h;
    h.w.apply_result = util::Error::msg("staging: pull `app`: connection refused");
    h.start();
    h.poll_now();
    h.respond_target(manifest(2));
    h.w.apply_result = util::ok();
    h.poll_now();
    h.respond_target(manifest(2));
    CHECK(h.w.applied.size() == 2);
    CHECK(h.last_report()["state"] == "downloading");
    h.poll_now();
    h.respond_target(manifest(2));
    CHECK(h.w.applied.size() == 2);  // handled now
}

TEST_CASE("while an update is in progress a new manifest waits for the next refresh") {
    Harness h;
    h.w.busy = true;
    h.start();
    h.poll_now();
    h.respond_target(manifest(2));
    CHECK(h.w.applied.empty());
    h.w.busy = false;
    h.poll_now();
    h.respond_target(manifest(2));
    CHECK(h.w.applied.size() == 1);
}

// ---- errors and backoff --------------------------------------------------------------

TEST_CASE("a refresh TUF refuses is reported once and retried with backoff") {
    Harness h;
    h.start();
    h.poll_now();
    h.respond_error(Outcome::Refused, "timestamp version 1 expired at 2020-01-01T00:00:00Z");
    Value r = h.last_report();
    CHECK(r["state"] == "refused");
    CHECK(r["detail"] == "timestamp version 1 expired at 2020-01-01T00:00:00Z");
    size_t reports = h.outbox().size();
    // The retry comes by itself, within the backoff's first ceiling (40 ms) and well before the hour.
    REQUIRE(h.turn_until([&] { return h.w.starts.size() == 2; }, 2000));
    h.respond_error(Outcome::Refused, "timestamp version 1 expired at 2020-01-01T00:00:00Z");
    CHECK(h.outbox().size() == reports);
    REQUIRE(h.turn_until([&] { return h.w.starts.size() == 3; }, 2000));
    h.respond_target(manifest(2));
    CHECK(h.w.applied.size() == 1);
}

TEST_CASE("an unreachable repository is retried and not reported") {
    Harness h;
    h.start();
    size_t reports = h.outbox().size();
    h.poll_now();
    for (int i = 0; i < 4; i++) {
        h.respond_error(Outcome::Unreachable, "connect to 127.0.0.1:9: connection refused");
        REQUIRE(h.turn_until([&] { return h.w.pending != nullptr; }, 2000));
    }
    CHECK(h.w.starts.size() == 5);
    CHECK(h.outbox().size() == reports);
}

TEST_CASE("consecutive failures wait longer, up to the cap, and a success starts over") {
    Harness h;
    h.start();
    const int64_t ceilings[] = {40, 80, 160, 200, 200, 200};
    for (int64_t ceiling : ceilings) {
        h.poll_now();
        h.w.waits.clear();
        h.respond_error(Outcome::Unreachable, "connect to 127.0.0.1:9: connection refused");
        REQUIRE(h.w.waits.size() == 1);
        CHECK(h.w.waits[0] >= 0);
        CHECK(h.w.waits[0] <= ceiling);
    }
    h.poll_now();
    h.w.waits.clear();
    h.respond_target(manifest(1));
    REQUIRE(h.w.waits.size() == 1);
    CHECK(h.w.waits[0] >= h.config.poll_interval_ms / 2);
    h.poll_now();
    h.w.waits.clear();
    h.respond_error(Outcome::Unreachable, "connect to 127.0.0.1:9: connection refused");
    REQUIRE(h.w.waits.size() == 1);
    CHECK(h.w.waits[0] <= 40);
}

TEST_CASE("while the broker is connected polls wait the pushed interval; when it drops, the poll interval") {
    Harness h;
    h.config.pushed_poll_interval_ms = 8 * h.config.poll_interval_ms;
    h.start();
    h.connect();
    h.poll_now();
    h.w.waits.clear();
    h.respond_target(manifest(1));
    REQUIRE(h.w.waits.size() == 1);
    CHECK(h.w.waits[0] >= 4 * h.config.poll_interval_ms);
    h.w.connected = false;
    h.w.handlers.on_connection(false, "broker went away");
    REQUIRE(h.w.waits.size() == 2);
    CHECK(h.w.waits[1] >= h.config.poll_interval_ms / 2);
    CHECK(h.w.waits[1] < h.config.poll_interval_ms * 3 / 2);
}

TEST_CASE("the repository advertises its poll interval in the channel target's custom.poll_interval_s, bounded") {
    Harness h(false);
    h.start();
    auto wait_after = [&](Value custom) {
        h.poll_now();
        h.w.waits.clear();
        h.respond_target(manifest(1), std::move(custom));
        REQUIRE(h.w.waits.size() == 1);
        return h.w.waits[0];
    };
    int64_t w = wait_after(Value{{"poll_interval_s", 120}});
    CHECK(w >= 60000);
    CHECK(w < 180000);
    w = wait_after(Value{{"poll_interval_s", 1}});  // raised to 10 s
    CHECK(w >= 5000);
    CHECK(w < 15000);
    w = wait_after(Value{{"poll_interval_s", UINT64_MAX}});  // lowered to a day
    CHECK(w >= 12 * 3600 * 1000);
    CHECK(w < 36 * 3600 * 1000);
    w = wait_after(Value{{"poll_interval_s", "soon"}});  // not a number: the configured hour
    CHECK(w >= h.config.poll_interval_ms / 2);
    w = wait_after(nullptr);
    CHECK(w >= h.config.poll_interval_ms / 2);
}

// ---- push --------------------------------------------------------------------------------

TEST_CASE("a pushed timestamp newer than the trusted one triggers a refresh at once, with its bytes") {
    Harness h;
    h.start();
    h.poll_now();
    h.respond_target(manifest(1), nullptr, 4);  // trusted timestamp: version 4
    std::string newer = timestamp_with_version(5);
    h.w.handlers.on_message("berth/plant/timestamp", newer, true);
    REQUIRE(h.w.starts.size() == 2);
    CHECK(h.w.starts.back() == newer);
}

TEST_CASE("a replayed timestamp (not above the trusted one) changes nothing") {
    Harness h;
    h.start();
    h.poll_now();
    h.respond_target(manifest(1), nullptr, 4);
    size_t reports = h.outbox().size();
    h.w.handlers.on_message("berth/plant/timestamp", timestamp_with_version(4), true);
    h.w.handlers.on_message("berth/plant/timestamp", timestamp_with_version(3), true);
    CHECK(h.w.starts.size() == 1);
    CHECK(h.outbox().size() == reports);
}

TEST_CASE("garbage, other metadata, oversized messages and other topics pushed change nothing") {
    Harness h;
    h.start();
    size_t reports = h.outbox().size();
    auto root = util::read_file(std::string(TUF_VECTORS) + "/consistent-snapshot/root.json");
    REQUIRE(root);
    h.w.handlers.on_message("berth/plant/timestamp", "garbage", true);
    h.w.handlers.on_message("berth/plant/timestamp", "", true);
    h.w.handlers.on_message("berth/plant/timestamp", *root, true);
    h.w.handlers.on_message("berth/plant/timestamp", std::string(1 << 20, '{'), true);
    h.w.handlers.on_message("berth/other/timestamp", timestamp_with_version(9), true);
    CHECK(h.w.starts.empty());
    CHECK(h.outbox().size() == reports);
}

TEST_CASE("a pushed timestamp that does not verify changes nothing, and the same bytes again are ignored") {
    Harness h;
    h.start();
    h.poll_now();
    h.respond_target(manifest(1), nullptr, 4);
    size_t reports = h.outbox().size();
    std::string forged = timestamp_with_version(7);
    h.w.handlers.on_message("berth/plant/timestamp", forged, true);
    REQUIRE(h.w.starts.size() == 2);
    h.respond_error(Outcome::PushRejected, "pushed timestamp: 0 of 1 required signatures verify (threshold not met)");
    CHECK(h.outbox().size() == reports);
    h.w.handlers.on_message("berth/plant/timestamp", forged, true);
    CHECK(h.w.starts.size() == 2);
    CHECK(h.w.applied.empty());
}

TEST_CASE("a push during a refresh runs right after it") {
    Harness h;
    h.start();
    h.poll_now();
    std::string newer = timestamp_with_version(5);
    h.w.handlers.on_message("berth/plant/timestamp", newer, true);
    CHECK(h.w.starts.size() == 1);
    h.respond_target(manifest(1), nullptr, 4);
    REQUIRE(h.w.starts.size() == 2);
    CHECK(h.w.starts.back() == newer);
}

// ---- reports -------------------------------------------------------------------------------

TEST_CASE("the agent subscribes to its fleet's timestamp and leaves a will saying it is offline") {
    Harness h;
    h.start();
    REQUIRE(h.w.mqtt_open);
    CHECK(h.w.subscribed == std::vector<std::string>{"berth/plant/timestamp"});
    CHECK(h.w.mqtt_config.client_id == "gw-0001");
    CHECK(h.w.mqtt_config.will_topic == "berth/plant/devices/gw-0001/status");
    auto will = util::json::parse(h.w.mqtt_config.will_payload, "will");
    REQUIRE(will);
    CHECK(*will == Value{{"device", "gw-0001"}, {"online", false}});
}

TEST_CASE("reports queue in the outbox while the broker is down and are flushed in order on connect") {
    Harness h;
    h.start();
    h.poll_now();
    h.respond_target(manifest(2));
    auto queued = h.outbox();
    REQUIRE(queued.size() == 2);
    CHECK(queued[0]["state"] == "idle");
    CHECK(queued[1]["state"] == "downloading");
    h.connect();
    REQUIRE(h.w.published.size() == 2);
    for (size_t i = 0; i < 2; i++) {
        CHECK(h.w.published[i].topic == "berth/plant/devices/gw-0001/status");
        CHECK(h.w.published[i].retain);
        CHECK(*util::json::parse(h.w.published[i].payload, "report") == queued[i]);
    }
    h.ack_all();
    CHECK(h.outbox().empty());
    h.agent->report("trying", "revision 2", digest(manifest(2)));
    REQUIRE(h.w.published.size() == 3);
    h.ack(2);
    CHECK(h.outbox().empty());
}

namespace {

/// Started and connected, everything before acknowledged: one report
/// published and not yet acknowledged; its message's index.
size_t report_unacknowledged(Harness &h) {
    h.start();
    h.connect();
    h.ack_all();
    h.agent->report("trying", "revision 2", digest(manifest(2)));
    REQUIRE(!h.w.published.empty());
    return h.w.published.size() - 1;
}

}  // namespace

TEST_CASE("a report the broker acknowledges at once never reaches the outbox's file") {
    Harness h;
    size_t i = report_unacknowledged(h);
    CHECK(!util::path_exists(h.dir + "/fleet/outbox"));
    h.ack(i);
    // Past the grace a PUBACK gets: still nothing written.
    CHECK(!h.turn_until([&] { return util::path_exists(h.dir + "/fleet/outbox"); }, 3000));
}

TEST_CASE("a published report the broker has not acknowledged after the grace is in the outbox's file") {
    Harness h;
    size_t i = report_unacknowledged(h);
    REQUIRE(h.turn_until([&] { return h.outbox().size() == 1; }, 5000));
    CHECK(h.last_report()["state"] == "trying");
    h.ack(i);
    CHECK(h.outbox().empty());
}

TEST_CASE("reports published but not acknowledged when the connection drops are sent again on reconnect") {
    Harness h;
    h.start();
    h.connect();
    h.ack_all();
    size_t first = h.w.published.size();
    h.agent->report("trying", "revision 2", digest(manifest(2)));
    h.agent->report("committed", "revision 2", digest(manifest(2)));
    REQUIRE(h.w.published.size() == first + 2);
    h.ack(first);  // the first one arrived; the second one's PUBACK never comes
    h.disconnect();
    REQUIRE(h.outbox().size() == 1);
    CHECK(h.last_report()["state"] == "committed");
    h.connect();
    REQUIRE(h.w.published.size() == first + 3);
    CHECK(h.w.published.back().payload == h.w.published[first + 1].payload);
    h.ack(first);  // a late PUBACK of something already acknowledged changes nothing
    CHECK(h.outbox().size() == 1);
    h.ack(first + 2);
    CHECK(h.outbox().empty());
}

TEST_CASE("online again after a reconnect with nothing queued, the device says so") {
    Harness h;
    h.start();
    h.connect();
    size_t n = h.w.published.size();
    h.w.connected = false;
    h.w.handlers.on_connection(false, "broker went away");
    h.connect();
    REQUIRE(h.w.published.size() == n + 1);
    auto r = util::json::parse(h.w.published.back().payload, "report");
    REQUIRE(r);
    CHECK((*r)["online"] == true);
}

TEST_CASE("an agent that stops says the device is offline, as its will would") {
    Harness h;
    h.start();
    h.connect();
    h.agent->stop();
    REQUIRE(!h.w.published.empty());
    CHECK(h.w.published.back().payload == h.w.mqtt_config.will_payload);
    CHECK(h.w.published.back().retain);
    CHECK(h.w.closed);
}

TEST_CASE("a report has the agreed fields: device, versions, state, detail, deployment, seq, time") {
    Harness h(false);
    h.w.committed = 3;
    h.w.trying = 4;
    h.start();
    h.agent->report("trying", "revision 4", "sha256:abc");
    Value r = h.last_report();
    CHECK(r["device"] == "gw-0001");
    CHECK(r["online"] == true);
    CHECK(r["committed"] == 3);
    CHECK(r["trying"] == 4);
    CHECK(r["state"] == "trying");
    CHECK(r["detail"] == "revision 4");
    CHECK(r["deployment"] == "sha256:abc");
    CHECK(r["time"] == h.w.now);
    CHECK(r["seq"].get<uint64_t>() == h.outbox().front()["seq"].get<uint64_t>() + 1);
    h.w.trying.reset();
    h.agent->report("committed", "revision 4", {});
    CHECK(h.last_report()["trying"].is_null());
    CHECK(h.last_report()["deployment"] == "sha256:abc");  // the one the reports are about
}

TEST_CASE("seq grows across restarts and a handled deployment is not applied again") {
    Harness h(false);
    h.start();
    h.poll_now();
    h.respond_target(manifest(2));
    uint64_t seq = h.last_report()["seq"].get<uint64_t>();
    h.agent.reset();
    h.start();
    CHECK(h.last_report()["seq"].get<uint64_t>() > seq);
    h.poll_now();
    h.respond_target(manifest(2));
    CHECK(h.w.applied.size() == 1);
}

TEST_CASE("without a broker the agent polls and keeps its reports in the outbox") {
    Harness h(false);
    h.start();
    CHECK(!h.w.mqtt_open);
    h.poll_now();
    h.respond_target(manifest(2));
    CHECK(h.outbox().size() == 2);
}

// ---- configuration -----------------------------------------------------------------------

namespace {

struct ConfigDir {
    TempDir tmp;
    std::string dir = tmp.path;
    ConfigDir() { REQUIRE(util::mkdir_p(dir + "/fleet")); }
    util::Result<std::optional<fleet::AgentConfig>> load(const std::string &json) {
        REQUIRE(util::atomic_write_file(dir + "/fleet/agent.json", json));
        return fleet::load_agent_config(util::DeviceRoot(dir));
    }
};

}  // namespace

TEST_CASE("no agent.json: no agent") {
    ConfigDir d;
    auto c = fleet::load_agent_config(util::DeviceRoot(d.dir));
    REQUIRE(c);
    CHECK(!*c);
}

TEST_CASE("agent.json with the required fields gets the documented defaults") {
    ConfigDir d;
    auto c = d.load(R"({"device_id": "gw-1", "metadata_url": "https://r/metadata", "targets_url": "https://r/targets"})");
    REQUIRE(c);
    REQUIRE(*c);
    CHECK((*c)->device_id == "gw-1");
    CHECK((*c)->fleet == "default");
    CHECK((*c)->channel == "stable");
    CHECK((*c)->poll_interval_ms == 15 * 60 * 1000);
    CHECK((*c)->outbox_max_bytes == 64 * 1024);
    CHECK(!(*c)->mqtt);
}

TEST_CASE("agent.json's mqtt section configures the broker") {
    ConfigDir d;
    auto c = d.load(R"({"device_id": "gw-1", "metadata_url": "u", "targets_url": "t", "fleet": "plant", "channel": "beta",
        "poll_interval_ms": 30000, "mqtt": {"host": "127.0.0.1", "port": 18883, "ca_file": "/ca.pem",
        "cert_file": "/gw-1.pem", "key_file": "/gw-1.key", "keepalive_s": 600}})");
    REQUIRE(c);
    REQUIRE((*c)->mqtt);
    CHECK((*c)->mqtt->port == 18883);
    CHECK((*c)->mqtt->keepalive_s == 600);
    CHECK((*c)->mqtt->cert_file == "/gw-1.pem");
    CHECK((*c)->channel == "beta");
    CHECK((*c)->poll_interval_ms == 30000);
}

TEST_CASE("agent.json with an unknown field, a bad device id, a bad channel or no URL is refused by name") {
    ConfigDir d;
    auto c = d.load(R"({"device_id": "gw-1", "metadata_url": "u", "targets_url": "t", "poll_intervl_ms": 5})");
    REQUIRE(!c);
    CHECK(c.error().message() == "agent.json: unknown field `poll_intervl_ms`");
    c = d.load(R"({"device_id": "gw/1", "metadata_url": "u", "targets_url": "t"})");
    REQUIRE(!c);
    CHECK_THAT(c.error().message(), Catch::Contains("device_id `gw/1`"));
    c = d.load(R"({"device_id": "gw-1", "metadata_url": "u", "targets_url": "t", "channel": "../x"})");
    REQUIRE(!c);
    c = d.load(R"({"device_id": "gw-1", "targets_url": "t"})");
    REQUIRE(!c);
    CHECK_THAT(c.error().message(), Catch::Contains("metadata_url"));
    c = d.load(R"({"device_id": "gw-1", "metadata_url": "u", "targets_url": "t", "poll_interval_ms": 5})");
    REQUIRE(!c);
    CHECK_THAT(c.error().message(), Catch::Contains("poll_interval_ms: 5 is below the minimum"));
}
