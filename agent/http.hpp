#pragma once

#include <string>

#include "agent/agent.hpp"
#include "common/http.hpp"
#include "common/loop.hpp"

namespace agora::agent {

// The agent's HTTP API: /state, /metrics, /health, /containers, remote commands (a WebSocket
// upgrade: /containers/exec?task=ID&command=... for a task's container, /host/exec for the
// machine; see remote_command.hpp), and sandbox files:
//   /files/read?path=ABS&offset=N&length=N   (offset -1: only the file's size)
//   /files/browse?path=ABS
// Paths must lie inside the agent's work directory.
// /host/exec answers 403 unless `allowHostExec` (--allow_host_exec).
void addAgentRoutes(HttpServer& server, Loop& loop, Agent& agent, const std::string& workDir,
                    bool allowHostExec = false);

}  // namespace agora::agent
