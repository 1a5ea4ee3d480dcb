#pragma once

#include "agora/agora.pb.h"
#include "common/result.hpp"

namespace agora {

// Whether a task's health check can run: a type (COMMAND, HTTP or TCP), a command or a port,
// sane timings. The master refuses a launch with a check that cannot (TASK_ERROR).
Status validateHealthCheck(const HealthCheck& check);

}  // namespace agora
