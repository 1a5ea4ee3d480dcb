#pragma once

// `kubectl logs`: the pods/log subresource. A container's output is its task's `stdout` in its
// sandbox on its agent (stderr merged into it as written, CommandInfo.merge_output), read
// through the agent's /files/read; the container's previous run (--previous) is what the
// executor set aside when it restarted it. Following polls the file (a new run's from its
// start) until the client leaves or the container's executor is gone. When each line was
// written (--since, --since-time, --timestamps) comes from `stdout.times` beside it: the
// executor notes the file's size with the time, each second it grew, so a line's time is
// known to within a second.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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
  std::optional<double> since;  // only lines written from then on (seconds since the epoch)
  bool timestamps = false;       // each line after the time it was written
};

// stdout.times: when the output reached each size.
struct OutputTime {
  double time = 0;
  int64_t size = 0;
};
std::vector<OutputTime> parseOutputTimes(const std::string& text);

// The offset in `text` (the file from its start) of its first line written at `cutoff` or
// later.
size_t sinceOffset(const std::string& text, const std::vector<OutputTime>& times, double cutoff);

// `text` (the file from `base` on, whole lines) with each line after the time it was written,
// as RFC 3339 with nanoseconds and a space; lines past the last note get `now`.
std::string withTimestamps(const std::string& text, int64_t base,
                           const std::vector<OutputTime>& times, double now);

// Checks the query (container, follow, previous, tailLines, limitBytes, sinceSeconds,
// sinceTime, timestamps) against the pod; `now` for sinceSeconds. The error is for a 400.
Result<LogRequest> logRequest(const nlohmann::json& pod,
                              const std::map<std::string, std::string>& query,
                              const std::string& agentAddress, double now = 0);

// The last `lines` lines of `text` (a last line without its newline counts).
std::string lastLines(const std::string& text, int64_t lines);

// Answers on a thread of its own (it waits on the agent), streaming when following.
void serveLogs(LogRequest request, std::shared_ptr<Exchange> exchange);

}  // namespace agora::kube
