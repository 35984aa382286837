// The fleet agent's seams (agent.hpp), for unit tests: how a refresh runs
// (a fake instead of the child process), the random seed of the poll
// schedule, the wall clock of the reports, and how the MQTT client opens
// (a fake broker connection).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "fleet/agent.hpp"
#include "fleet/mqtt.hpp"
#include "fleet/refresh.hpp"

namespace fleet {

using MqttOpen = std::function<util::Result<std::unique_ptr<MqttClient>>(const MqttConfig &, util::EventLoop &,
                                                                         MqttHandlers)>;

struct AgentSeams {
    std::unique_ptr<Refresher> refresher;       ///< null: child_refresher()
    std::optional<uint64_t> seed;               ///< null: from getrandom(2)
    std::function<int64_t()> wall_clock;        ///< unix seconds; null: time(2)
    MqttOpen mqtt_open;                         ///< null: MqttClient::open
    std::function<void(int64_t wait_ms)> on_schedule;  ///< sees each wait until the next poll
};

util::Result<std::unique_ptr<Agent>> start_agent(AgentConfig config, const util::DeviceRoot &root,
                                                 util::EventLoop &loop, AgentHooks hooks, AgentSeams seams);

/// <root>/fleet: agent.json, metadata/, targets/, outbox, state.json.
std::string fleet_dir(const util::DeviceRoot &root);

}  // namespace fleet
