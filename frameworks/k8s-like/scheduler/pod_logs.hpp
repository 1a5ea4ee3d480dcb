#pragma once

// `kubectl logs`: the pods/log subresource. A container's output is its task's `stdout` in its
// sandbox on its agent (stderr merged into it as written, CommandInfo.merge_output), read
// through the agent's /files/read; the container's previous run (--previous) is what the
// executor set aside when it restarted it. Following polls the file (a new run's from its
// start) until the client leaves or the container's executor is gone.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "frameworks/k8s-like/apiserver/http_server.hpp"

namespace agora::kube {

struct LogRequest {
  std::string agentAddress;  // the pod's agent, host:port
  std::string taskId;        // the container's task
  std::string container;
  bool follow = false;
  bool previous = false;
  std::optional<int64_t> tailLines;
  std::optional<int64_t> limitBytes;
};

// Checks the query (container, follow, previous, tailLines, limitBytes) against the pod; the
// error is for a 400.
Result<LogRequest> logRequest(const nlohmann::json& pod,
                              const std::map<std::string, std::string>& query,
                              const std::string& agentAddress);

// The last `lines` lines of `text` (a last line without its newline counts).
std::string lastLines(const std::string& text, int64_t lines);

// Answers on a thread of its own (it waits on the agent), streaming when following.
void serveLogs(LogRequest request, std::shared_ptr<Exchange> exchange);

}  // namespace agora::kube
