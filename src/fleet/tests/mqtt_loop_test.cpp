// fleet::MqttClient on util::EventLoop, against a fake broker on the same
// loop (plain TCP on 127.0.0.1, the few MQTT 3.1.1 packets a session
// needs): what the client sends on connect (session, keepalive, will),
// subscriptions renewed on reconnect, retries with full-jitter backoff, no
// wake-ups while idle, QoS 1 acknowledgements, close(). The TLS path and
// the ACLs are tested with a real mosquitto (src/tests/fleet_mqtt_test.py).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "fleet/mqtt.hpp"

using util::EventLoop;

namespace {

struct Packet {
    uint8_t type;  ///< the fixed header's first byte
    std::string body;
};

/// Reads a 2-byte-length string at `pos` of an MQTT body.
std::string mqtt_string(const std::string &b, size_t &pos) {
    size_t n = (uint8_t(b[pos]) << 8) | uint8_t(b[pos + 1]);
    std::string s = b.substr(pos + 2, n);
    pos += 2 + n;
    return s;
}

std::string encode(uint8_t type, const std::string &body) {
    std::string out(1, char(type));
    size_t n = body.size();
    do {
        uint8_t d = n % 128;
        n /= 128;
        out.push_back(char(n ? d | 0x80 : d));
    } while (n);
    return out + body;
}

std::string with_length(const std::string &s) { return std::string{char(s.size() >> 8), char(s.size() & 0xff)} + s; }

/// One client at a time; answers CONNECT, SUBSCRIBE, PUBLISH (QoS 1) and
/// PINGREQ, and records every packet.
struct FakeBroker {
    explicit FakeBroker(EventLoop &l) : loop(l) {
        listener = util::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        REQUIRE(listener.get() >= 0);
        struct sockaddr_in a = {};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        REQUIRE(::listen(listener.get(), 8) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr *>(&a), &len) == 0);
        port = ntohs(a.sin_port);
        REQUIRE(loop.watch(listener.get(), EPOLLIN, [this](uint32_t) { accept_one(); }).ok());
    }
    ~FakeBroker() {
        drop();
        loop.unwatch(listener.get());
    }

    void accept_one() {
        int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        accept_times.push_back(util::monotonic_ms());
        if (hang_up_at_once) {
            ::close(fd);
            return;
        }
        drop();
        conn = util::UniqueFd(fd);
        in.clear();
        REQUIRE(loop.watch(fd, EPOLLIN, [this](uint32_t) { read_some(); }).ok());
    }

    void drop() {
        if (conn.get() < 0) return;
        loop.unwatch(conn.get());
        conn = util::UniqueFd();
    }

    void send(const std::string &bytes) {
        REQUIRE(conn.get() >= 0);
        REQUIRE(::write(conn.get(), bytes.data(), bytes.size()) == ssize_t(bytes.size()));
    }

    void read_some() {
        char buf[4096];
        ssize_t n = ::read(conn.get(), buf, sizeof buf);
        if (n <= 0) return drop();
        in.append(buf, size_t(n));
        for (;;) {
            size_t len = 0, pos = 1;
            int shift = 0;
            for (;; pos++) {
                if (pos >= in.size()) return;
                len |= size_t(uint8_t(in[pos]) & 0x7f) << shift;
                shift += 7;
                if (!(uint8_t(in[pos]) & 0x80)) break;
            }
            pos++;
            if (in.size() < pos + len) return;
            Packet p{uint8_t(in[0]), in.substr(pos, len)};
            in.erase(0, pos + len);
            packets.push_back(p);
            answer(p);
            if (conn.get() < 0) return;
        }
    }

    void answer(const Packet &p) {
        switch (p.type >> 4) {
            case 1: send(encode(0x20, std::string{'\0', char(connack_code)})); break;  // CONNECT: CONNACK
            case 8: send(encode(0x90, p.body.substr(0, 2) + "\x01")); break;            // SUBSCRIBE: SUBACK QoS 1
            case 3:                                                                     // PUBLISH
                if (((p.type >> 1) & 3) == 1) {
                    size_t pos = 0;
                    mqtt_string(p.body, pos);
                    send(encode(0x40, p.body.substr(pos, 2)));                          // PUBACK
                }
                break;
            case 12: send(encode(0xd0, "")); break;                                     // PINGREQ: PINGRESP
            case 14: drop(); break;                                                     // DISCONNECT
        }
    }

    size_t count(uint8_t kind) const {
        size_t n = 0;
        for (const auto &p : packets) n += (p.type >> 4) == kind;
        return n;
    }
    const Packet *last(uint8_t kind) const {
        for (auto it = packets.rbegin(); it != packets.rend(); ++it)
            if ((it->type >> 4) == kind) return &*it;
        return nullptr;
    }

    EventLoop &loop;
    util::UniqueFd listener;
    util::UniqueFd conn;
    std::string in;
    int port = 0;
    bool hang_up_at_once = false;  ///< accept and close: a broker that refuses everyone
    uint8_t connack_code = 0;      ///< 0: accepted; 5: not authorised
    std::vector<int64_t> accept_times;
    std::vector<Packet> packets;
};

bool run_until(EventLoop &loop, const std::function<bool()> &cond, int64_t ms = 5000) {
    int64_t end = util::monotonic_ms() + ms;
    while (!cond()) {
        if (util::monotonic_ms() > end) return false;
        REQUIRE(loop.run_once(20).ok());
    }
    return true;
}

struct Events {
    int ups = 0, downs = 0;
    std::vector<std::string> why;
    std::vector<std::tuple<std::string, std::string, bool>> messages;
    std::vector<std::string> acked;
    fleet::MqttHandlers handlers() {
        fleet::MqttHandlers h;
        h.on_connection = [this](bool up, std::string_view w) {
            (up ? ups : downs)++;
            if (!up) why.emplace_back(w);
        };
        h.on_message = [this](std::string_view t, std::string_view p, bool r) { messages.emplace_back(t, p, r); };
        h.on_acked = [this](std::string_view t, int) { acked.emplace_back(t); };
        return h;
    }
};

fleet::MqttConfig plain(int port, std::string id = "dev-1") {
    fleet::MqttConfig c;
    c.port = port;
    c.client_id = std::move(id);
    return c;
}

/// A loop, a fake broker on it, and a client of that broker (its
/// configuration and handlers adjusted by the test).
struct Rig {
    explicit Rig(const std::function<void(fleet::MqttConfig &)> &tweak = {},
                 const std::function<void(fleet::MqttHandlers &)> &hook = {}) {
        auto c = plain(broker.port);
        if (tweak) tweak(c);
        auto h = ev.handlers();
        if (hook) hook(h);
        client = fleet::MqttClient::open(c, *loop, h).value();
    }
    bool until(const std::function<bool()> &cond, int64_t ms = 5000) { return run_until(*loop, cond, ms); }
    bool up() { return until([&] { return ev.ups >= 1; }); }

    std::unique_ptr<EventLoop> loop = EventLoop::create().value();
    FakeBroker broker{*loop};
    Events ev;
    std::unique_ptr<fleet::MqttClient> client;
};

}  // namespace

TEST_CASE("the client connects as a persistent session with the device id, keepalive and will") {
    fleet::MqttConfig c;
    Rig rig([&](fleet::MqttConfig &cfg) {
        cfg.will_topic = "berth/f/devices/dev-1/status";
        cfg.will_payload = R"({"device":"dev-1","online":false})";
        c = cfg;
    });
    REQUIRE(rig.up());
    CHECK(rig.client->connected());
    const Packet *p = rig.broker.last(1);
    REQUIRE(p);
    size_t pos = 0;
    CHECK(mqtt_string(p->body, pos) == "MQTT");
    CHECK(p->body[pos] == 4);  // 3.1.1
    uint8_t flags = uint8_t(p->body[pos + 1]);
    int keepalive = (uint8_t(p->body[pos + 2]) << 8) | uint8_t(p->body[pos + 3]);
    pos += 4;
    CHECK((flags & 0x02) == 0);     // clean session off: persistent
    CHECK((flags & 0x04) != 0);     // a will
    CHECK(((flags >> 3) & 3) == 1); // at QoS 1
    CHECK((flags & 0x20) != 0);     // retained
    CHECK(keepalive == 300);
    CHECK(mqtt_string(p->body, pos) == "dev-1");
    CHECK(mqtt_string(p->body, pos) == c.will_topic);
    CHECK(mqtt_string(p->body, pos) == c.will_payload);
}

TEST_CASE("an empty client id connects as a clean session") {
    Rig rig([](fleet::MqttConfig &c) { c.client_id.clear(); });
    REQUIRE(rig.up());
    const Packet *p = rig.broker.last(1);
    REQUIRE(p);
    CHECK((uint8_t(p->body[7]) & 0x02) != 0);
}

TEST_CASE("subscriptions are renewed on every reconnect") {
    Rig rig([](fleet::MqttConfig &c) {
        c.reconnect_base_ms = 20;
        c.reconnect_max_ms = 50;
    });
    REQUIRE(rig.client->subscribe("berth/f/timestamp", 1).ok());  // before the connection: sent on connect
    REQUIRE(rig.until([&] { return rig.broker.count(8) == 1; }));
    rig.broker.drop();  // the broker goes away
    REQUIRE(rig.until([&] { return rig.ev.downs == 1; }));
    CHECK_FALSE(rig.client->connected());
    REQUIRE(rig.until([&] { return rig.ev.ups == 2 && rig.broker.count(8) == 2; }));
    size_t pos = 2;  // after the packet id
    CHECK(mqtt_string(rig.broker.last(8)->body, pos) == "berth/f/timestamp");
    CHECK(rig.broker.last(8)->body[pos] == 1);  // QoS 1
}

TEST_CASE("a broker that hangs up is retried with full-jitter backoff up to the cap") {
    Rig rig([](fleet::MqttConfig &c) {
        c.reconnect_base_ms = 10;
        c.reconnect_max_ms = 80;
    });
    rig.broker.hang_up_at_once = true;
    REQUIRE(rig.until([&] { return rig.broker.accept_times.size() >= 12; }));
    CHECK(rig.ev.ups == 0);
    CHECK(rig.ev.downs >= 11);
    const auto &t = rig.broker.accept_times;
    // Within the cap (plus slack for a loaded machine); uncapped doubling
    // would have reached 10 ms * 2^11 = 20 s.
    for (size_t i = 1; i < t.size(); i++) CHECK(t[i] - t[i - 1] <= 80 + 400);
}

TEST_CASE("a refused connect is reported with its reason and retried") {
    auto loop = EventLoop::create().value();
    int port;
    {
        FakeBroker gone(*loop);  // a port that was free a moment ago
        port = gone.port;
    }
    Events ev;
    auto c = plain(port);
    c.reconnect_base_ms = 10;
    c.reconnect_max_ms = 20;
    auto client = fleet::MqttClient::open(c, *loop, ev.handlers()).value();
    REQUIRE(run_until(*loop, [&] { return ev.downs >= 3; }));
    CHECK(ev.why[0] == "Connection refused");
}

TEST_CASE("a connection the broker refuses is reported with the CONNACK's reason") {
    Rig rig([](fleet::MqttConfig &c) { c.reconnect_base_ms = c.reconnect_max_ms = 10; });
    rig.broker.connack_code = 5;
    REQUIRE(rig.until([&] { return rig.ev.downs >= 2; }));
    CHECK(rig.ev.ups == 0);
    CHECK(rig.ev.why[0].find("not authorised") != std::string::npos);
}

TEST_CASE("full-jitter backoff stays within the doubling window and spreads") {
    std::vector<int64_t> waits;
    for (int i = 0; i < 200; i++) {
        int64_t w = fleet::full_jitter_backoff_ms(3, 1000, 300000);
        CHECK(w >= 0);
        CHECK(w <= 8000);
        waits.push_back(w);
    }
    std::sort(waits.begin(), waits.end());
    CHECK(waits.front() < 2000);
    CHECK(waits.back() > 6000);
    CHECK(fleet::full_jitter_backoff_ms(40, 1000, 300000) <= 300000);
    CHECK(fleet::full_jitter_backoff_ms(0, 1000, 300000) <= 1000);
}

TEST_CASE("a message from the broker reaches on_message with its exact bytes and retain flag") {
    Rig rig;
    REQUIRE(rig.up());
    std::string payload("{\"signed\":\0\xff}", 14);
    rig.broker.send(encode(0x31, with_length("berth/f/timestamp") + payload));  // QoS 0, retained
    REQUIRE(rig.until([&] { return rig.ev.messages.size() == 1; }));
    CHECK(std::get<0>(rig.ev.messages[0]) == "berth/f/timestamp");
    CHECK(std::get<1>(rig.ev.messages[0]) == payload);
    CHECK(std::get<2>(rig.ev.messages[0]));
}

TEST_CASE("a QoS 1 publish is acknowledged through on_acked, retained as asked") {
    Rig rig;
    REQUIRE(rig.up());
    REQUIRE(rig.client->publish("berth/f/devices/dev-1/status", R"({"online":true})", 1, true).ok());
    REQUIRE(rig.until([&] { return rig.ev.acked.size() == 1; }));
    CHECK(rig.ev.acked[0] == "berth/f/devices/dev-1/status");
    const Packet *p = rig.broker.last(3);
    REQUIRE(p);
    CHECK((p->type & 0x01) == 1);      // retain
    CHECK(((p->type >> 1) & 3) == 1);  // QoS 1
}

TEST_CASE("a QoS 1 publish made before the connection is up is sent once it is") {
    Rig rig;
    REQUIRE(rig.client->publish("berth/f/devices/dev-1/status", "early", 1, true).ok());
    REQUIRE(rig.until([&] { return rig.ev.acked.size() == 1; }));
    CHECK(rig.broker.last(3)->body.substr(2 + 28 + 2) == "early");
}

TEST_CASE("the keepalive timer does not report a lost connection again while waiting to retry") {
    Rig rig([](fleet::MqttConfig &c) {
        c.keepalive_s = 5;  // loop_misc every 1.25 s
        c.reconnect_base_ms = c.reconnect_max_ms = 60000;
    });
    REQUIRE(rig.up());
    rig.broker.drop();
    REQUIRE(rig.until([&] { return rig.ev.downs == 1; }));
    REQUIRE(run_until(*rig.loop, [] { return false; }, 1600) == false);
    CHECK(rig.ev.downs == 1);
}

TEST_CASE("a big publish is written out through the loop when the socket is full") {
    Rig rig;
    REQUIRE(rig.up());
    std::string big(8 << 20, 'x');  // more than the socket buffers hold
    REQUIRE(rig.client->publish("berth/f/big", big, 1, false).ok());
    REQUIRE(rig.until([&] { return rig.ev.acked.size() == 1; }, 20000));
    CHECK(rig.broker.last(3)->body.size() == 2 + 11 + 2 + big.size());
}

TEST_CASE("an idle connection does not wake the loop") {
    Rig rig;
    REQUIRE(rig.up());
    int wakeups = 0;
    int64_t end = util::monotonic_ms() + 300;
    while (util::monotonic_ms() < end) {
        REQUIRE(rig.loop->run_once(int(end - util::monotonic_ms())).ok());
        wakeups++;
    }
    CHECK(wakeups <= 2);  // no busy write watch, no per-second timer at keepalive 300 s
}

TEST_CASE("an idle connection pings the broker within its keepalive") {
    Rig rig([](fleet::MqttConfig &c) { c.keepalive_s = 5; });  // the least libmosquitto takes
    REQUIRE(rig.up());
    int64_t t0 = util::monotonic_ms();
    REQUIRE(rig.until([&] { return rig.broker.count(12) == 1; }, 8000));
    int64_t took = util::monotonic_ms() - t0;
    CHECK(took >= 4000);
    CHECK(took <= 5000 + 1250 + 1000);  // a misc timer every keepalive/4, second-granular clock
    CHECK(rig.client->connected());
}

TEST_CASE("close sends DISCONNECT and stops reconnecting") {
    Rig rig([](fleet::MqttConfig &c) {
        c.reconnect_base_ms = 10;
        c.reconnect_max_ms = 10;
    });
    REQUIRE(rig.up());
    rig.client->close();
    CHECK_FALSE(rig.client->connected());
    REQUIRE(rig.until([&] { return rig.broker.count(14) == 1; }));
    REQUIRE(rig.loop->run_once(100).ok());
    CHECK(rig.broker.accept_times.size() == 1);
    CHECK(rig.ev.downs == 0);
    CHECK_FALSE(rig.client->publish("berth/f/x", "y", 1, false).ok());
}

TEST_CASE("close from a handler is finished once the library returns") {
    fleet::MqttClient *self = nullptr;
    int ups = 0;
    Rig rig({}, [&](fleet::MqttHandlers &h) {
        h.on_connection = [&](bool up, std::string_view) {
            ups += up;
            if (up && self) self->close();
        };
    });
    self = rig.client.get();
    REQUIRE(rig.until([&] { return rig.broker.count(14) == 1; }));
    CHECK(ups == 1);
}

TEST_CASE("topics, topic levels and the broker's name in errors") {
    CHECK(fleet::timestamp_topic("f1") == "berth/f1/timestamp");
    CHECK(fleet::status_topic("f1", "dev-1") == "berth/f1/devices/dev-1/status");
    CHECK(fleet::valid_topic_level("gw-01.site_3"));
    for (const char *bad : {"", ".", "..", "a/b", "+", "#", "a b", "dev\n"}) CHECK_FALSE(fleet::valid_topic_level(bad));
    CHECK_FALSE(fleet::valid_topic_level(std::string(65, 'a')));
    fleet::MqttConfig c;
    CHECK(fleet::broker_name(c) == "mqtt 127.0.0.1:8883");
    c.host = "::1";
    CHECK(fleet::broker_name(c) == "mqtt [::1]:8883");
}

TEST_CASE("a bad configuration fails in open") {
    auto loop = EventLoop::create().value();
    Events ev;
    auto c = plain(1883);
    c.ca_file = "/nonexistent/ca.crt";
    auto r = fleet::MqttClient::open(c, *loop, ev.handlers());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("/nonexistent/ca.crt") != std::string::npos);
    c = plain(1883, "a/b");
    CHECK_FALSE(fleet::MqttClient::open(c, *loop, ev.handlers()).ok());
    c = plain(1883);
    c.keepalive_s = 1;
    CHECK_FALSE(fleet::MqttClient::open(c, *loop, ev.handlers()).ok());
}
