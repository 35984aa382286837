// fleet::Agent: the device's fleet agent on the daemon's event loop; see
// agent.hpp. Its configuration and files are described in
// docs/fleet-agent.md.
#include "fleet/agent.hpp"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <deque>
#include <optional>

#include "fleet/agent_seams.hpp"
#include "fleet/outbox.hpp"
#include "fleet/refresh.hpp"
#include "fleet/schedule.hpp"
#include "image/digest.hpp"
#include "ota/manifest.hpp"
#include "ota/tuf/metadata.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace fleet {

using util::cat;
using util::quote;
using util::json::Value;

namespace {

constexpr size_t kConfigMaxBytes = 64 << 10;
constexpr size_t kPushMaxBytes = 16 << 10;  ///< the TUF client's timestamp bound
constexpr uint64_t kSeqBlock = 64;           ///< report sequence numbers reserved at a time (state.json)
constexpr size_t kStateMaxBytes = 4096;
/// How long a report may wait for the broker's PUBACK before it is written to
/// the outbox's file (while a broker is connected; without one, at once).
constexpr int64_t kOutboxGraceMs = 2000;
/// A deployment the updater fails to apply (a registry down during the
/// pull, a disk full) is tried at this many refreshes, then given up.
constexpr unsigned kApplyAttempts = 3;
/// The bounds of a poll interval the repository advertises.
constexpr int64_t kAdvertisedMinMs = 10 * 1000, kAdvertisedMaxMs = 24 * 60 * 60 * 1000;

util::Status check_known(const Value &obj, std::initializer_list<std::string_view> known, std::string_view where) {
    for (auto it = obj.begin(); it != obj.end(); ++it)
        if (std::find(known.begin(), known.end(), it.key()) == known.end())
            return util::Error::msg(cat(where, ": unknown field ", quote(it.key())));
    return {};
}

/// An optional integer field of at least `min`.
util::Status opt_at_least(const Value &obj, std::string_view key, std::string_view where, int64_t min, int64_t &out) {
    auto v = TRY(util::json::opt_int(obj, key, where));
    if (!v) return {};
    if (*v < min) return util::Error::msg(cat(util::json::field_path(where, key), ": ", *v, " is below the minimum of ", min));
    out = *v;
    return {};
}

util::Result<MqttConfig> parse_mqtt(const Value &v) {
    constexpr std::string_view w = "mqtt";
    TRY(util::json::expect_object(v, w));
    TRY(check_known(v, {"host", "port", "ca_file", "cert_file", "key_file", "keepalive_s", "reconnect_max_ms"}, w));
    MqttConfig m;
    if (auto s = TRY(util::json::opt_string(v, "host", w))) m.host = *s;
    int64_t port = m.port, keepalive = m.keepalive_s;
    TRY(opt_at_least(v, "port", w, 1, port));
    if (port > 65535) return util::Error::msg(cat("mqtt.port: ", port, " is not a port"));
    TRY(opt_at_least(v, "keepalive_s", w, 5, keepalive));
    TRY(opt_at_least(v, "reconnect_max_ms", w, 100, m.reconnect_max_ms));
    m.port = int(port);
    m.keepalive_s = int(std::min<int64_t>(keepalive, 65535));
    m.ca_file = TRY(util::json::opt_string(v, "ca_file", w)).value_or("");
    m.cert_file = TRY(util::json::opt_string(v, "cert_file", w)).value_or("");
    m.key_file = TRY(util::json::opt_string(v, "key_file", w)).value_or("");
    return m;
}

}  // namespace

std::string fleet_dir(const util::DeviceRoot &root) { return util::path_join(root.dir(), "fleet"); }

util::Result<std::optional<AgentConfig>> load_agent_config(const util::DeviceRoot &root) {
    std::string path = util::path_join(fleet_dir(root), "agent.json");
    auto text = util::read_file(path, kConfigMaxBytes);
    if (!text) {
        if (text.error().code == ENOENT) return std::optional<AgentConfig>();
        return std::move(text).error().wrap(quote(path));
    }
    constexpr std::string_view w = "agent.json";
    auto v = TRY(util::json::parse(*text, w));
    TRY(util::json::expect_object(v, w));
    TRY(check_known(v, {"device_id", "fleet", "channel", "metadata_url", "targets_url", "board", "poll_interval_ms",
                        "pushed_poll_interval_ms", "backoff_base_ms", "backoff_max_ms", "refresh_timeout_ms", "outbox_max_bytes", "progress_interval_ms", "ca_file", "mqtt"},
                    w));
    AgentConfig c;
    c.device_id = TRY(util::json::req_string(v, "device_id", w));
    if (!valid_topic_level(c.device_id))
        return util::Error::msg(cat("agent.json: device_id ", quote(c.device_id), " is not one name of 1 to 64 [A-Za-z0-9._-]"));
    if (auto s = TRY(util::json::opt_string(v, "fleet", w))) c.fleet = *s;
    if (!valid_topic_level(c.fleet))
        return util::Error::msg(cat("agent.json: fleet ", quote(c.fleet), " is not one name of 1 to 64 [A-Za-z0-9._-]"));
    if (auto s = TRY(util::json::opt_string(v, "channel", w))) c.channel = *s;
    TRY_CTX(ota::tuf::channel_target(c.channel), "agent.json");
    c.metadata_url = TRY(util::json::req_string(v, "metadata_url", w));
    c.targets_url = TRY(util::json::req_string(v, "targets_url", w));
    if (c.metadata_url.empty() || c.targets_url.empty()) return util::Error::msg("agent.json: metadata_url and targets_url must not be empty");
    c.board = TRY(util::json::opt_string(v, "board", w)).value_or("");
    c.ca_file = TRY(util::json::opt_string(v, "ca_file", w)).value_or("");
    TRY(opt_at_least(v, "poll_interval_ms", w, 100, c.poll_interval_ms));
    TRY(opt_at_least(v, "pushed_poll_interval_ms", w, 100, c.pushed_poll_interval_ms));
    TRY(opt_at_least(v, "backoff_base_ms", w, 10, c.backoff_base_ms));
    TRY(opt_at_least(v, "backoff_max_ms", w, 10, c.backoff_max_ms));
    TRY(opt_at_least(v, "refresh_timeout_ms", w, 1000, c.refresh_timeout_ms));
    TRY(opt_at_least(v, "progress_interval_ms", w, 0, c.progress_interval_ms));
    int64_t outbox = int64_t(c.outbox_max_bytes);
    TRY(opt_at_least(v, "outbox_max_bytes", w, 1024, outbox));
    c.outbox_max_bytes = size_t(outbox);
    if (auto m = v.find("mqtt"); m != v.end() && !m->is_null()) c.mqtt = TRY_CTX(parse_mqtt(*m), "agent.json");
    return std::optional<AgentConfig>(std::move(c));
}

namespace {

class AgentImpl : public Agent {
public:
    AgentImpl(AgentConfig c, const util::DeviceRoot &root, util::EventLoop &loop, AgentHooks h, AgentSeams seams,
              Outbox outbox, uint64_t seed)
        : c_(std::move(c)), dir_(fleet_dir(root)), loop_(loop), hooks_(std::move(h)), refresher_(std::move(seams.refresher)),
          clock_(std::move(seams.wall_clock)), on_schedule_(std::move(seams.on_schedule)), outbox_(std::move(outbox)),
          sched_({c_.poll_interval_ms, c_.backoff_base_ms, c_.backoff_max_ms}, seed),
          ts_topic_(timestamp_topic(c_.fleet)), status_topic_(status_topic(c_.fleet, c_.device_id)) {}
    ~AgentImpl() override { stop(); }

    util::Status begin(const MqttOpen &mqtt_open);
    void report(std::string_view state, std::string_view detail, std::string_view deployment) override {
        report_bytes(state, detail, deployment, std::nullopt);
    }
    void progress(uint64_t bytes) override;
    void check_now() override { refresh({}); }
    void stop() override;

private:
    void load_state();
    void save_state();
    void load_trusted_timestamp();
    void schedule(int64_t ms);
    /// The interval polls are drawn around without a broker: the
    /// repository's advertised one, else the configured one.
    int64_t poll_interval() const { return advertised_ms_ ? advertised_ms_ : c_.poll_interval_ms; }
    /// The wait after a successful refresh: longer while a broker pushes.
    int64_t next_poll() {
        return sched_.next_poll(mqtt_ && mqtt_->connected() ? c_.pushed_poll_interval_ms : poll_interval());
    }
    void refresh(std::string pushed);
    void on_result(RefreshResult r, const std::string &pushed);
    void run_pending();
    void consider(ChannelTarget t);
    void refuse(const std::string &deployment, std::string_view why);
    void on_push(std::string_view topic, std::string_view payload);
    void on_connection(bool up, std::string_view why);
    /// Publishes the outbox's reports not yet in flight, in order; returns
    /// how many were left unsent.
    size_t flush();
    /// The broker acknowledged message `mid`: the reports acknowledged
    /// without a gap before them leave the outbox.
    void on_acked(std::string_view topic, int mid);
    std::optional<int> publish(const std::string &doc);
    /// The outbox's file after a change: written at once while no broker
    /// takes reports; while one is connected, only when a report is still
    /// unacknowledged kOutboxGraceMs later (one acknowledged sooner never
    /// costs a write).
    void keep_outbox();
    void sync_outbox();
    void report_bytes(std::string_view state, std::string_view detail, std::string_view deployment,
                      std::optional<uint64_t> bytes);
    Value status_doc(std::string_view state, std::string_view detail, std::optional<uint64_t> bytes) const;

    AgentConfig c_;
    std::string dir_;
    util::EventLoop &loop_;
    AgentHooks hooks_;
    std::unique_ptr<Refresher> refresher_;
    std::function<int64_t()> clock_;
    std::function<void(int64_t)> on_schedule_;
    Outbox outbox_;
    Schedule sched_;
    std::string ts_topic_, status_topic_;
    std::string offline_;  ///< the will's payload, also said on a clean stop
    std::unique_ptr<MqttClient> mqtt_;
    /// The outbox's oldest reports, published on this connection and not yet
    /// removed: their message ids, and whether the broker acknowledged them.
    struct InFlight {
        int mid;
        bool acked;
    };
    std::deque<InFlight> in_flight_;

    util::EventLoop::TimerId timer_ = 0;
    util::EventLoop::TimerId outbox_timer_ = 0;
    bool refreshing_ = false, applying_ = false, stopped_ = false;
    bool pending_poll_ = false;
    std::string pending_push_;    ///< the newest push that came during a refresh or an apply
    std::string rejected_push_;   ///< the last push whose signature did not verify
    uint64_t trusted_ts_ = 0;     ///< the trusted timestamp's version
    int64_t advertised_ms_ = 0;   ///< the channel target's custom.poll_interval_s, bounded (0: none)
    uint64_t seq_ = 0;            ///< the last report's sequence number
    /// The sequence numbers up to this one are taken: state.json holds it,
    /// and a restart goes on above it. Reserved kSeqBlock at a time, so a
    /// report does not cost a durable write of state.json besides the outbox's.
    uint64_t seq_reserved_ = 0;
    std::string deployment_;      ///< the deployment the reports are about
    std::string handled_;         ///< the last deployment applied or refused: not tried again (persisted)
    std::string failing_;         ///< the deployment whose applies failed so far...
    unsigned apply_failures_ = 0; ///< ...this many times
    std::string last_error_;      ///< the last refresh error, logged (and reported) once
    std::string last_state_ = "idle", last_detail_;
    int64_t last_progress_ms_ = 0;  ///< when the last progress report went out (monotonic)
    std::string applying_version_;  ///< "version N" of the apply in progress, for progress reports
};

util::Status AgentImpl::begin(const MqttOpen &mqtt_open) {
    load_state();
    load_trusted_timestamp();
    if (c_.mqtt) {
        MqttConfig m = *c_.mqtt;
        if (m.client_id.empty()) m.client_id = c_.device_id;
        // The broker drops a larger push for this device instead of sending
        // it (on_push ignores one over kPushMaxBytes anyway): room for the
        // timestamp, its topic and MQTT 5's headers.
        if (!m.max_packet_bytes) m.max_packet_bytes = uint32_t(kPushMaxBytes + 1024);
        m.will_topic = status_topic_;
        Value will = Value::object();
        will["device"] = c_.device_id;
        will["online"] = false;
        m.will_payload = offline_ = util::json::dump(will);
        MqttHandlers h;
        h.on_message = [this](std::string_view topic, std::string_view payload, bool) { on_push(topic, payload); };
        h.on_connection = [this](bool up, std::string_view why) { on_connection(up, why); };
        h.on_acked = [this](std::string_view topic, int mid) { on_acked(topic, mid); };
        auto client = mqtt_open ? mqtt_open(m, loop_, std::move(h)) : MqttClient::open(m, loop_, std::move(h));
        if (!client) {
            // Polling still works: the broker is an accelerator, not a dependency.
            util::log::error("fleet: mqtt: ", client.error().message(), " (polling only)");
        } else {
            mqtt_ = std::move(*client);
            if (auto st = mqtt_->subscribe(ts_topic_); !st) util::log::error("fleet: mqtt: subscribe: ", st.error().message());
        }
    }
    util::log::info("fleet: device ", quote(c_.device_id), " follows channel ", quote(c_.channel), " of ",
                    c_.metadata_url, c_.mqtt ? cat(", pushed by mqtt://", c_.mqtt->host, ':', c_.mqtt->port) : "");
    report("idle", cat("agent started: channel ", c_.channel), {});
    schedule(sched_.first_poll());
    return {};
}

void AgentImpl::stop() {
    if (stopped_) return;
    stopped_ = true;
    loop_.cancel(timer_);
    timer_ = 0;
    sync_outbox();
    if (refresher_) refresher_->cancel();
    if (mqtt_) {
        // A DISCONNECT suppresses the will: say it ourselves.
        if (mqtt_->connected()) (void)mqtt_->publish(status_topic_, offline_, 1, true);
        mqtt_->close();
    }
}

// ---- persisted state -------------------------------------------------------

void AgentImpl::load_state() {
    std::string path = util::path_join(dir_, "state.json");
    auto text = util::read_file(path, kStateMaxBytes);
    if (!text) {
        if (text.error().code != ENOENT) util::log::warn("fleet: ", text.error().message(), " (starting afresh)");
        return;
    }
    auto v = util::json::parse(*text, path);
    if (!v || !v->is_object()) {
        util::log::warn("fleet: ", quote(path), " is not a json object (starting afresh)");
        return;
    }
    if (auto s = util::json::opt_uint(*v, "seq", "state.json"); s && *s) seq_ = seq_reserved_ = **s;
    if (auto h = util::json::opt_string(*v, "handled", "state.json"); h && *h) handled_ = deployment_ = **h;
}

void AgentImpl::save_state() {
    Value v = Value::object();
    v["seq"] = seq_reserved_;
    v["handled"] = handled_;
    if (auto st = util::atomic_write_file(util::path_join(dir_, "state.json"), util::json::dump(v) + "\n", 0600); !st)
        util::log::error("fleet: save state: ", st.error().message());
}

void AgentImpl::load_trusted_timestamp() {
    auto text = util::read_file(util::path_join(util::path_join(dir_, "metadata"), "timestamp.json"), kPushMaxBytes);
    if (!text) return;
    auto env = ota::tuf::parse_envelope(*text, "timestamp", "trusted timestamp");
    if (!env) return;
    if (auto ts = ota::tuf::parse_timestamp(*env)) trusted_ts_ = ts->version;
}

// ---- refresh ------------------------------------------------------------------

void AgentImpl::schedule(int64_t ms) {
    if (on_schedule_) on_schedule_(ms);
    loop_.cancel(timer_);
    timer_ = loop_.after(ms, [this] {
        timer_ = 0;
        refresh({});
    });
}

void AgentImpl::refresh(std::string pushed) {
    if (stopped_) return;
    if (refreshing_ || applying_) {
        if (!pushed.empty()) pending_push_ = std::move(pushed);
        else pending_poll_ = true;
        return;
    }
    refreshing_ = true;
    refresher_->start(pushed, [this, pushed](RefreshResult r) { on_result(std::move(r), pushed); });
}

void AgentImpl::on_result(RefreshResult r, const std::string &pushed) {
    refreshing_ = false;
    if (stopped_) return;
    using Outcome = RefreshResult::Outcome;
    switch (r.outcome) {
    case Outcome::PushRejected:
        // Changes nothing: not even the poll schedule.
        util::log::warn("fleet: a pushed timestamp was ignored: ", r.error);
        rejected_push_ = pushed;
        if (!timer_) schedule(next_poll());
        break;
    case Outcome::Unreachable:
    case Outcome::Refused: {
        int64_t wait = sched_.next_retry();
        if (r.error != last_error_) {
            util::log::warn("fleet: refresh ", r.outcome == Outcome::Refused ? "refused" : "failed", ": ", r.error,
                            " (retry within ", wait / 1000, " s)");
            if (r.outcome == Outcome::Refused) report("refused", r.error, {});
        }
        last_error_ = r.error;
        schedule(wait);
        break;
    }
    case Outcome::Ok:
        if (!last_error_.empty()) util::log::info("fleet: refresh succeeded again");
        last_error_.clear();
        trusted_ts_ = std::max(trusted_ts_, r.timestamp_version);
        advertised_ms_ = 0;
        if (r.target && r.target->custom.is_object())
            if (auto p = r.target->custom.find("poll_interval_s"); p != r.target->custom.end() && p->is_number_integer()) {
                int64_t s = p->is_number_unsigned() ? int64_t(std::min<uint64_t>(p->get<uint64_t>(), kAdvertisedMaxMs / 1000))
                                                    : std::clamp<int64_t>(p->get<int64_t>(), 0, kAdvertisedMaxMs / 1000);
                advertised_ms_ = std::clamp(s * 1000, kAdvertisedMinMs, kAdvertisedMaxMs);
            }
        schedule(next_poll());
        if (r.target) consider(std::move(*r.target));
        else util::log::debug("fleet: channel ", quote(c_.channel), " has no manifest");
        break;
    }
    run_pending();
}

void AgentImpl::run_pending() {
    if (stopped_ || refreshing_ || applying_) return;
    if (!pending_push_.empty()) {
        std::string p = std::move(pending_push_);
        pending_push_.clear();
        on_push(ts_topic_, p);  // checked again: the refresh may have caught up with it
    }
    if (!refreshing_ && pending_poll_) {
        pending_poll_ = false;
        refresh({});
    }
}

void AgentImpl::refuse(const std::string &deployment, std::string_view why) {
    util::log::warn("fleet: ", deployment, " refused: ", why);
    handled_ = deployment;
    report("refused", why, deployment);
}

void AgentImpl::consider(ChannelTarget t) {
    std::string deployment = img::Digest::of_small(t.manifest).str();
    if (deployment == handled_) return;  // applied, or refused, once
    if (const Value *boards = t.custom.is_object() && t.custom.contains("boards") ? &t.custom["boards"] : nullptr) {
        std::vector<std::string> names;
        bool listed = false;
        for (const auto &b : boards->is_array() ? *boards : Value::array())
            if (b.is_string()) {
                names.push_back(b.get<std::string>());
                listed = listed || names.back() == c_.board;
            }
        if (!boards->is_array()) return refuse(deployment, "the channel target's custom.boards is not a list");
        if (!listed)
            return refuse(deployment, cat("not meant for board ", quote(c_.board.empty() ? "(none)" : c_.board),
                                          " (boards: ", util::join(names, ", "), ")"));
    }
    auto rev = ota::parse_revision(t.manifest);
    if (!rev) return refuse(deployment, cat("manifest: ", rev.error().message()));
    uint64_t committed = hooks_.committed_version ? hooks_.committed_version() : 0;
    if (rev->version == committed) {  // what runs (applied by hand, or before the state file was written)
        handled_ = deployment;
        save_state();
        return;
    }
    if (rev->version < committed)
        return refuse(deployment, cat("downgrade: version ", rev->version, " is not above the committed ", committed));
    if (hooks_.busy && hooks_.busy()) {
        util::log::info("fleet: an update is in progress; version ", rev->version, " waits for the next refresh");
        return;
    }
    applying_version_ = cat("version ", rev->version);
    report_bytes("downloading", cat(applying_version_, ": manifest verified; downloading its images"), deployment, 0);
    last_progress_ms_ = util::monotonic_ms();
    applying_ = true;
    util::Status st = hooks_.apply(t.manifest);  // may turn the loop for long (a pull, the start)
    applying_ = false;
    if (stopped_) return;
    // Handled once the updater answered: a crash or power cut during the
    // staging tries the deployment again after the restart. (One during
    // TRYING is the updater's rollback, "reboot during trying".)
    if (st) {
        handled_ = deployment;
        save_state();
        return;
    }
    if (failing_ != deployment) apply_failures_ = 0;
    failing_ = deployment;
    bool give_up = ++apply_failures_ >= kApplyAttempts;
    if (give_up) handled_ = deployment;
    report("refused", cat(st.error().message(), give_up ? "" : cat(" (attempt ", apply_failures_, " of ", kApplyAttempts,
                                                                   ", tried again at the next refresh)")),
           deployment);
}

// ---- push ----------------------------------------------------------------------

void AgentImpl::on_push(std::string_view topic, std::string_view payload) {
    if (stopped_ || topic != ts_topic_) return;
    if (payload.size() > kPushMaxBytes) {
        util::log::warn("fleet: a pushed message of ", payload.size(), " bytes was ignored (over ", kPushMaxBytes, ")");
        return;
    }
    auto env = ota::tuf::parse_envelope(payload, "timestamp", "pushed timestamp");
    auto ts = env ? ota::tuf::parse_timestamp(*env) : util::Result<ota::tuf::Timestamp>(env.error());
    if (!ts) {
        util::log::warn("fleet: a pushed message was ignored: ", ts.error().message());
        return;
    }
    if (ts->version <= trusted_ts_) {
        util::log::debug("fleet: pushed timestamp version ", ts->version, " is not above the trusted ", trusted_ts_);
        return;
    }
    if (payload == rejected_push_) return;
    util::log::info("fleet: pushed timestamp version ", ts->version, " (trusted ", trusted_ts_, "): refreshing");
    refresh(std::string(payload));
}

void AgentImpl::on_connection(bool up, std::string_view why) {
    if (stopped_) return;
    if (!up) {
        in_flight_.clear();  // unacknowledged reports go again on the next connection
        sync_outbox();
        util::log::info("fleet: mqtt: disconnected", why.empty() ? "" : ": ", why);
        // Nobody pushes now: back to the polling interval.
        if (timer_ && loop_.remaining(timer_) > poll_interval() + poll_interval() / 2)
            schedule(sched_.jittered(poll_interval()));
        return;
    }
    util::log::info("fleet: mqtt: connected");
    size_t queued = outbox_.entries().size();
    if (flush() == 0 && queued == 0) report(last_state_, last_detail_, {});  // online again: the will said otherwise
}

// ---- reports --------------------------------------------------------------------

void AgentImpl::progress(uint64_t bytes) {
    if (!applying_) return;
    int64_t now = util::monotonic_ms();
    if (now - last_progress_ms_ < c_.progress_interval_ms) return;
    last_progress_ms_ = now;
    report_bytes("downloading", cat(applying_version_, ": ", bytes, " bytes of its images downloaded"), {}, bytes);
}

Value AgentImpl::status_doc(std::string_view state, std::string_view detail, std::optional<uint64_t> bytes) const {
    Value v = Value::object();
    v["device"] = c_.device_id;
    v["online"] = true;
    v["committed"] = hooks_.committed_version ? hooks_.committed_version() : 0;
    std::optional<uint64_t> trying = hooks_.trying_version ? hooks_.trying_version() : std::nullopt;
    if (trying) v["trying"] = *trying;
    else v["trying"] = nullptr;
    v["state"] = std::string(state);
    v["detail"] = std::string(detail);
    if (bytes) v["bytes"] = *bytes;
    v["deployment"] = deployment_;
    v["seq"] = seq_;
    v["time"] = clock_ ? clock_() : int64_t(::time(nullptr));
    return v;
}

std::optional<int> AgentImpl::publish(const std::string &doc) {
    if (!mqtt_ || !mqtt_->connected()) return std::nullopt;
    auto mid = mqtt_->publish(status_topic_, doc, 1, true);
    if (!mid) {
        util::log::warn("fleet: mqtt: publish: ", mid.error().message());
        return std::nullopt;
    }
    return *mid;
}

size_t AgentImpl::flush() {
    const auto &queued = outbox_.entries();
    while (in_flight_.size() < queued.size()) {
        auto mid = publish(queued[in_flight_.size()]);
        if (!mid) break;
        in_flight_.push_back({*mid, false});
    }
    return queued.size() - in_flight_.size();
}

void AgentImpl::on_acked(std::string_view topic, int mid) {
    if (topic != status_topic_) return;
    auto it = std::find_if(in_flight_.begin(), in_flight_.end(), [&](const InFlight &f) { return f.mid == mid; });
    if (it == in_flight_.end()) return;  // a copy from before a reconnect: its report went again
    it->acked = true;
    size_t done = 0;
    while (done < in_flight_.size() && in_flight_[done].acked) done++;
    if (done == 0) return;
    in_flight_.erase(in_flight_.begin(), in_flight_.begin() + ptrdiff_t(done));
    if (auto st = outbox_.pop(done); !st) util::log::error("fleet: ", st.error().message());
    keep_outbox();
}

void AgentImpl::keep_outbox() {
    if (outbox_.synced()) {
        loop_.cancel(outbox_timer_);
        outbox_timer_ = 0;
    } else if (!mqtt_ || !mqtt_->connected()) {
        sync_outbox();
    } else if (!outbox_timer_) {
        outbox_timer_ = loop_.after(kOutboxGraceMs, [this] {
            outbox_timer_ = 0;
            sync_outbox();
        });
    }
}

void AgentImpl::sync_outbox() {
    loop_.cancel(outbox_timer_);
    outbox_timer_ = 0;
    if (auto st = outbox_.sync(); !st) util::log::error("fleet: ", st.error().message());
}

void AgentImpl::report_bytes(std::string_view state, std::string_view detail, std::string_view deployment,
                             std::optional<uint64_t> bytes) {
    if (stopped_) return;
    if (!deployment.empty()) deployment_ = deployment;
    if (++seq_ > seq_reserved_) {
        seq_reserved_ = seq_ + kSeqBlock - 1;
        save_state();
    }
    last_state_ = state;
    last_detail_ = detail;
    std::string doc = util::json::dump(status_doc(state, detail, bytes));
    util::log::info("fleet: status ", state, detail.empty() ? "" : ": ", detail);
    // Queued first, sent from the queue, removed when the broker acknowledged
    // it: a lost connection before the PUBACK sends it again, and so does a
    // crash once the report is in the file (keep_outbox).
    size_t dropped = outbox_.dropped();
    if (auto st = outbox_.push(doc); !st) {
        util::log::error("fleet: ", st.error().message());
        (void)publish(doc);  // at least try, unqueued
        return;
    }
    // The bound dropped the oldest reports, perhaps some in flight.
    for (size_t n = outbox_.dropped() - dropped; n > 0 && !in_flight_.empty(); n--) in_flight_.pop_front();
    flush();
    keep_outbox();
}

uint64_t random_seed() {
    uint64_t seed = 0;
    if (::getrandom(&seed, sizeof seed, GRND_NONBLOCK) != ssize_t(sizeof seed))
        seed = uint64_t(::time(nullptr)) * 0x9e3779b97f4a7c15ULL ^ uint64_t(::getpid());
    return seed;
}

}  // namespace

util::Result<std::unique_ptr<Agent>> start_agent(AgentConfig config, const util::DeviceRoot &root,
                                                 util::EventLoop &loop, AgentHooks hooks, AgentSeams seams) {
    if (!hooks.apply) return util::Error::msg("fleet agent: no apply hook");
    std::string dir = fleet_dir(root);
    TRY_CTX(util::mkdir_p(dir, 0700), cat("fleet directory ", quote(dir)));
    auto target = TRY(ota::tuf::channel_target(config.channel));
    if (!seams.refresher) {
        RefreshSettings s;
        s.metadata_dir = util::path_join(dir, "metadata");
        s.trusted_root = util::path_join(util::path_join(root.trust(), "tuf"), "root.json");
        s.targets_dir = util::path_join(dir, "targets");
        s.metadata_url = config.metadata_url;
        s.targets_url = config.targets_url;
        s.target = target;
        img::HttpOptions http;
        http.ca_file = config.ca_file;
        http.connect_timeout_s = 20;
        // Each refresh is a new process: the TLS session kept here lets its
        // handshake resume instead of carrying the certificate chain again.
        http.tls_session_dir = dir;
        seams.refresher = child_refresher(loop, std::move(s), std::move(http), config.refresh_timeout_ms, hooks.expect_child);
    }
    auto outbox = TRY(Outbox::open(util::path_join(dir, "outbox"), config.outbox_max_bytes));
    uint64_t seed = seams.seed ? *seams.seed : random_seed();
    MqttOpen mqtt_open = std::move(seams.mqtt_open);
    auto agent = std::make_unique<AgentImpl>(std::move(config), root, loop, std::move(hooks), std::move(seams),
                                             std::move(outbox), seed);
    TRY(agent->begin(mqtt_open));
    return std::unique_ptr<Agent>(std::move(agent));
}

util::Result<std::unique_ptr<Agent>> Agent::start(AgentConfig config, const util::DeviceRoot &root,
                                                  util::EventLoop &loop, AgentHooks hooks) {
    return start_agent(std::move(config), root, loop, std::move(hooks), AgentSeams{});
}

}  // namespace fleet
