#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

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
  std::string scheme;  // of redirects to the leader; addMasterRoutes sets it from the server
};

// The master's HTTP API: /master/info, /state, /metrics, /health, /redirect. On the leader each
// handler reads the master's state on the master's loop. A follower answers /state with who
// leads, /master/info with the leader's info (so that agents and schedulers given any master's
// address find the leader), and /redirect with a redirect to the leader.
void addMasterRoutes(HttpServer& server, Loop& loop, MasterHttpContext context);

// The paths under which the master relays commands to an agent (/agent/host/exec,
// /agent/containers/exec, ...): the HTTP server restricts them to the principals that may.
// Reads go through /agent/state, /agent/files/read and /agent/files/browse, each with
// agent_id=ID; the master forwards with its own token (the process's default).
std::vector<std::string> agentCommandProxyPaths();

// Convenience for a master that always leads (tests, benchmarks).
void addMasterRoutes(HttpServer& server, Loop& loop, Master& master);

}  // namespace agora::master
