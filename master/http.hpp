#pragma once

#include <functional>
#include <optional>

#include "common/http.hpp"
#include "common/loop.hpp"
#include "master/master.hpp"

namespace agora::master {

// What the HTTP API needs to know about this master process: the master state machine while it
// leads (nullptr while it does not), who leads otherwise, and who it is.
struct MasterHttpContext {
  std::function<Master*()> leading;
  std::function<std::optional<MasterInfo>()> leader;
  MasterInfo self;
};

// The master's HTTP API: /master/info, /state, /metrics, /health, /redirect. On the leader each
// handler reads the master's state on the master's loop. A follower answers /state with who
// leads, /master/info with the leader's info (so that agents and schedulers given any master's
// address find the leader), and /redirect with a redirect to the leader.
void addMasterRoutes(HttpServer& server, Loop& loop, MasterHttpContext context);

// Convenience for a master that always leads (tests, benchmarks).
void addMasterRoutes(HttpServer& server, Loop& loop, Master& master);

}  // namespace agora::master
