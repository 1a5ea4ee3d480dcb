#pragma once

#include <nlohmann/json.hpp>

#include "common/resources.hpp"

namespace agora {

// {"cpus": 4, "mem": 1024, "disk": 0, "gpus": 0, "ports": "[31000-32000]"}: totals across
// roles, the shape operators and the CLI read; reserved amounts are under "reserved" by role.
nlohmann::json resourcesJson(const Resources& resources);

// A container's usage, with the field names Mesos uses ("cpus_user_time_secs", ...).
nlohmann::json statisticsJson(const ResourceStatistics& statistics);

}  // namespace agora
