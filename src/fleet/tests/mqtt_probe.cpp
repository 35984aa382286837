// A test-only device: one fleet::MqttClient on an event loop, driven by
// the fleet system tests (src/tests/fleet_mqtt_test.py) against a real
// mosquitto. It prints what happens, one line each, flushed:
//
//   connected | disconnected WHY | message TOPIC HEX-PAYLOAD RETAINED(0|1) | acked TOPIC
//
// and reads commands on stdin: `sub TOPIC`, `pub TOPIC PAYLOAD` (QoS 1,
// retained), `lag` (prints `lag MS`: the worst lateness of a 50 ms timer,
// i.e. the longest the client held the loop), `close` (DISCONNECT, exit). EOF on stdin exits without
// DISCONNECT, as a crash would (the broker then publishes the will).
//
//   mqtt_probe [--max-packet BYTES] HOST PORT CAFILE CERT KEY CLIENT_ID [WILL_TOPIC WILL_PAYLOAD]
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>

#include "fleet/mqtt.hpp"
#include "util/strings.hpp"

namespace {

void say(const std::string &line) {
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char **argv) {
    fleet::MqttConfig c;
    if (argc > 2 && std::string(argv[1]) == "--max-packet") {
        c.max_packet_bytes = uint32_t(std::atol(argv[2]));
        argv += 2;
        argc -= 2;
    }
    if (argc != 7 && argc != 9) {
        std::fprintf(stderr, "usage: mqtt_probe [--max-packet BYTES] HOST PORT CAFILE CERT KEY CLIENT_ID [WILL_TOPIC WILL_PAYLOAD]\n");
        return 2;
    }
    c.host = argv[1];
    c.port = std::atoi(argv[2]);
    c.ca_file = argv[3];
    c.cert_file = argv[4];
    c.key_file = argv[5];
    c.client_id = argv[6];
    c.reconnect_base_ms = 200;
    c.reconnect_max_ms = 1000;
    if (argc == 9) {
        c.will_topic = argv[7];
        c.will_payload = argv[8];
    }
    auto loop = util::EventLoop::create();
    if (!loop) return 1;
    fleet::MqttHandlers h;
    h.on_connection = [](bool up, std::string_view why) { say(up ? "connected" : util::cat("disconnected ", why)); };
    h.on_message = [](std::string_view topic, std::string_view payload, bool retained) {
        say(util::cat("message ", topic, " ",
                      util::hex_encode(reinterpret_cast<const unsigned char *>(payload.data()), payload.size()), " ",
                      retained ? 1 : 0));
    };
    h.on_acked = [](std::string_view topic, int) { say(util::cat("acked ", topic)); };
    auto &l = **loop;
    // How late a 50 ms timer ran at worst: whether the client ever holds
    // the loop (`lag` prints it), from before open(), which starts connecting.
    int64_t max_lag = 0;
    int64_t opened = util::monotonic_ms();
    std::function<void(int64_t)> tick = [&](int64_t due) {
        max_lag = std::max(max_lag, util::monotonic_ms() - due);
        l.after(50, [&, next = util::monotonic_ms() + 50] { tick(next); });
    };
    l.after(50, [&] { tick(opened + 50); });
    auto client = fleet::MqttClient::open(c, **loop, h);
    if (!client) {
        std::fprintf(stderr, "mqtt_probe: %s\n", client.error().message().c_str());
        return 1;
    }
    std::string input;
    auto &mq = **client;
    (void)l.watch(0, EPOLLIN, [&](uint32_t) {
        char buf[4096];
        ssize_t n = ::read(0, buf, sizeof buf);
        if (n <= 0) {
            ::_exit(0);  // no DISCONNECT: the will goes out
        }
        input.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = input.find('\n')) != std::string::npos) {
            std::string line = input.substr(0, nl);
            input.erase(0, nl + 1);
            auto parts = util::split(line, ' ');
            util::Status r;
            if (parts.size() == 2 && parts[0] == "sub") {
                r = mq.subscribe(parts[1], 1);
            } else if (parts.size() >= 3 && parts[0] == "pub") {
                if (auto mid = mq.publish(parts[1], line.substr(5 + parts[1].size()), 1, true); !mid) r = std::move(mid).error();
            } else if (line == "lag") {
                say(util::cat("lag ", max_lag));
            } else if (line == "close") {
                mq.close();
                l.stop();
            } else {
                say("error unknown command");
            }
            if (!r) say(util::cat("error ", r.error().message()));
        }
    });
    while (!l.stopped())
        if (!l.run_once()) return 1;
    say("closed");
    return 0;
}
