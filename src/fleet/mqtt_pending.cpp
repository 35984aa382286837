// Stand-ins for the MQTT client's functions until it is implemented
// (mqtt.hpp; its own branch): the topics as docs/fleet.md names them, and an
// open() that says the client is missing, so the agent polls only.
#include "fleet/mqtt.hpp"

#include "util/strings.hpp"

namespace fleet {

std::string timestamp_topic(std::string_view fleet) { return util::cat("berth/", fleet, "/timestamp"); }

std::string status_topic(std::string_view fleet, std::string_view device_id) {
    return util::cat("berth/", fleet, "/devices/", device_id, "/status");
}

util::Result<std::unique_ptr<MqttClient>> MqttClient::open(const MqttConfig &, util::EventLoop &, MqttHandlers) {
    return util::Error::msg("mqtt: this build has no MQTT client yet");
}

}  // namespace fleet
