#pragma once

#include "common/http.hpp"
#include "common/loop.hpp"
#include "master/master.hpp"

namespace agora::master {

// The master's HTTP API: /master/info, /state, /metrics, /health. Each handler reads the
// master's state on the master's loop.
void addMasterRoutes(HttpServer& server, Loop& loop, Master& master);

}  // namespace agora::master
