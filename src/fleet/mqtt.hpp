// One MQTT connection on the daemon's event loop (DESIGN.md, "Fleet
// channel"), through libmosquitto (Debian's libmosquitto1), opened with
// dlopen on first use like image/'s libraries, so the runtime path never
// loads it.
//
// The connection is TLS with a per-device client certificate, a persistent
// session (clean_session false, the client id is the device id), QoS 1 and
// a keepalive of 300 s by default. It registers its socket with the
// util::EventLoop (read, and write while libmosquitto has output queued)
// and a timer for mosquitto_loop_misc (keepalive pings); it never starts a
// thread; a broker given by name is resolved in a child process
// (resolve.hpp) and its certificate still checked against the name. A lost
// connection is retried with full-jitter exponential backoff
// (a wait drawn uniformly below a window that starts at `reconnect_base_ms`,
// 1 s, and doubles up to `reconnect_max_ms`), so a broker restart does not
// bring every device back in the same second. A client that sets a maximum
// packet size speaks MQTT 5 to ask the broker for it. Subscriptions are renewed on every
// (re)connect. The broker is never trusted: messages are handed to the
// caller as bytes and verified there.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "util/event_loop.hpp"
#include "util/result.hpp"

namespace fleet {

struct MqttConfig {
    std::string host = "127.0.0.1";
    int port = 8883;
    std::string ca_file;    ///< the broker's CA; empty: no TLS (tests of the plain path only)
    std::string cert_file;  ///< this device's client certificate (PEM)
    std::string key_file;   ///< and its key
    /// The device id; also the session's identity. Empty: a clean session
    /// under a broker-made id (the controller's one-shot commands, which
    /// must not leave a session queueing messages at the broker).
    std::string client_id;
    int keepalive_s = 300;
    int64_t reconnect_base_ms = 1000;  ///< the first retry's window
    int64_t reconnect_max_ms = 300000;
    /// Nonzero: the largest packet this client takes, told to the broker in
    /// the CONNECT (MQTT 5's Maximum Packet Size; the connection then speaks
    /// MQTT 5), so a broker drops a larger message for this client instead
    /// of sending it. 0: MQTT 3.1.1, no limit asked.
    uint32_t max_packet_bytes = 0;
    /// The last will, published by the broker when the connection drops
    /// without a DISCONNECT (retained, QoS 1). Empty topic: no will.
    std::string will_topic;
    std::string will_payload;
};

struct MqttHandlers {
    /// A message on a subscribed topic (retained: delivered from the
    /// broker's store on subscribe).
    std::function<void(std::string_view topic, std::string_view payload, bool retained)> on_message;
    /// The connection came up (true), or went down or an attempt failed
    /// (false, with why; a retry is scheduled).
    std::function<void(bool connected, std::string_view why)> on_connection;
    /// Optional: the broker acknowledged the QoS 1 publish `mid` (publish()'s
    /// answer) to `topic`: a caller that must know its message arrived, or
    /// keeps an outbox. Never called for a publish whose connection was lost
    /// before its PUBACK came: the caller sends it again if it must.
    std::function<void(std::string_view topic, int mid)> on_acked;
};

/// The handlers run on the loop's thread from inside the client; they may
/// publish, subscribe or close(), but must not destroy the client.
class MqttClient {
public:
    virtual ~MqttClient() = default;
    /// Loads libmosquitto and starts connecting (asynchronously: the result
    /// arrives through on_connection). Fails only on a bad configuration or
    /// a missing library.
    static util::Result<std::unique_ptr<MqttClient>> open(const MqttConfig &config, util::EventLoop &loop,
                                                          MqttHandlers handlers);

    /// Kept and renewed on every reconnect.
    virtual util::Status subscribe(const std::string &topic, int qos = 1) = 0;
    /// Queued by libmosquitto while disconnected only for QoS > 0 within the
    /// session; callers that need durability keep their own queue. Returns
    /// the message id on_acked names (0 for QoS 0, which is never acked).
    virtual util::Result<int> publish(const std::string &topic, std::string_view payload, int qos = 1,
                                 bool retain = false) = 0;
    virtual bool connected() const = 0;
    /// Sends DISCONNECT (so the will is not published) and stops.
    /// Destroying the client without close() drops the connection as a
    /// crash would: the broker publishes the will.
    virtual void close() = 0;
};

/// Topics (docs/fleet.md): the fleet's retained timestamp, and one device's
/// retained status. A device id is one topic level of [A-Za-z0-9._-].
std::string timestamp_topic(std::string_view fleet);
std::string status_topic(std::string_view fleet, std::string_view device_id);
/// "mqtt HOST:PORT" ("mqtt [v6]:PORT"), how errors name the broker.
std::string broker_name(const MqttConfig &config);
/// A reconnect (or retry) wait: uniform in [0, min(cap, base * 2^attempt)]
/// ("full jitter"), so clients that lost the same broker spread out.
int64_t full_jitter_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms);
/// Whether `s` can be a fleet name or a device id: one topic level of
/// [A-Za-z0-9._-], 1 to 64 characters, not "." or "..".
bool valid_topic_level(std::string_view s);

}  // namespace fleet
