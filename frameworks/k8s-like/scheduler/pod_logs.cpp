#include "frameworks/k8s-like/scheduler/pod_logs.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "agent/state_lookup.hpp"
#include "common/http.hpp"
#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/status.hpp"
#include "frameworks/k8s-like/scheduler/pod_exec.hpp"
#include "frameworks/k8s-like/scheduler/pod_scheduler.hpp"

namespace agora::kube {

using json = nlohmann::json;

namespace {

constexpr auto kPoll = std::chrono::milliseconds(250);
constexpr auto kStateEvery = std::chrono::seconds(2);

Result<std::optional<int64_t>> optionalCount(const std::map<std::string, std::string>& query,
                                             const std::string& name) {
  auto it = query.find(name);
  if (it == query.end() || it->second.empty()) return std::optional<int64_t>();
  char* end = nullptr;
  long long value = std::strtoll(it->second.c_str(), &end, 10);
  if (*end != '\0' || value < 0) {
    return Error(name + " must be a whole number of at least 0, not '" + it->second + "'");
  }
  return std::optional<int64_t>(value);
}

bool flag(const std::map<std::string, std::string>& query, const std::string& name) {
  auto it = query.find(name);
  return it != query.end() && (it->second == "true" || it->second == "1");
}

// One of the container's two files, read on from where the last read ended.
struct LogFile {
  std::string path;
  int64_t offset = 0;
  bool seen = false;  // the agent has it
};

void readNew(const std::string& agent, LogFile& file, std::string* out) {
  file.seen = agent::readSandboxFile(agent, file.path, &file.offset, out) || file.seen;
}

agent::TaskSandbox sandboxOf(const std::string& agent, const std::string& taskId) {
  auto response = httpGet(agent, "/state", seconds(5));
  if (!response || response->status != 200) return {};
  return agent::findTaskSandbox(json::parse(response->body, nullptr, false), taskId);
}

HttpResponse refusal(const std::string& message) {
  return toResponse(ApiOutcome::failure(badRequest(message)));
}

}  // namespace

Result<LogRequest> logRequest(const json& pod, const std::map<std::string, std::string>& query,
                              const std::string& agentAddress) {
  const json meta = pod.value("metadata", json::object());
  std::string name = stringField(meta, "name");
  LogRequest request;
  auto container = podContainer(pod, query);
  if (!container) return Error(container.error());
  request.container = *container;
  if (stringField(pod.value("spec", json::object()), "nodeName").empty()) {
    return Error("container \"" + request.container + "\" in pod \"" + name +
                 "\" is waiting to start: the pod is not on a node yet");
  }
  if (agentAddress.empty()) return Error("the node of pod " + name + " is not known (yet)");
  auto tail = optionalCount(query, "tailLines");
  if (!tail) return Error(tail.error());
  auto limit = optionalCount(query, "limitBytes");
  if (!limit) return Error(limit.error());
  request.agentAddress = agentAddress;
  request.taskId = PodScheduler::taskId(stringField(meta, "uid"), request.container);
  request.follow = flag(query, "follow");
  request.previous = flag(query, "previous");
  request.tailLines = *tail;
  request.limitBytes = *limit;
  return request;
}

std::string lastLines(const std::string& text, int64_t lines) {
  if (lines <= 0) return "";
  size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n') --end;  // the last line's own newline
  size_t at = end;
  for (int64_t n = 0; n < lines; ++n) {
    size_t newline = at == 0 ? std::string::npos : text.rfind('\n', at - 1);
    if (newline == std::string::npos) return text;
    at = newline;
    if (n + 1 == lines) return text.substr(newline + 1);
  }
  return text;
}

void serveLogs(LogRequest request, std::shared_ptr<Exchange> exchange) {
  std::thread([request = std::move(request), exchange = std::move(exchange)] {
    auto closed = std::make_shared<std::atomic<bool>>(false);
    exchange->onClose([closed] { *closed = true; });
    agent::TaskSandbox sandbox = sandboxOf(request.agentAddress, request.taskId);
    if (sandbox.directory.empty()) {
      exchange->respond(refusal("container \"" + request.container +
                                   "\" has not started on its node yet"));
      return;
    }
    // A task of a group (every pod's) has a sandbox of its own in its executor's.
    std::string dir = sandbox.directory + "/tasks/" + request.taskId;
    std::string suffix = request.previous ? ".previous" : "";
    std::vector<LogFile> files = {{dir + "/stdout" + suffix}, {dir + "/stderr" + suffix}};
    std::string text;
    for (LogFile& file : files) readNew(request.agentAddress, file, &text);
    if (request.previous && !files[0].seen && !files[1].seen) {
      exchange->respond(refusal("previous terminated container \"" + request.container +
                                   "\" not found"));
      return;
    }
    if (request.tailLines) text = lastLines(text, *request.tailLines);
    int64_t left = request.limitBytes.value_or(-1);
    auto within = [&](std::string& chunk) {
      if (left < 0) return true;
      if (static_cast<int64_t>(chunk.size()) > left) chunk.resize(static_cast<size_t>(left));
      left -= static_cast<int64_t>(chunk.size());
      return left > 0;
    };
    bool more = within(text);
    if (!request.follow || request.previous) {
      HttpResponse response = HttpResponse::text(text);
      response.contentType = "text/plain";
      exchange->respond(std::move(response));
      return;
    }
    exchange->startStream(200, "text/plain");
    if (!text.empty()) exchange->send(text);
    auto checked = std::chrono::steady_clock::now();
    while (more && !*closed) {
      std::this_thread::sleep_for(kPoll);
      std::string chunk;
      for (LogFile& file : files) readNew(request.agentAddress, file, &chunk);
      more = within(chunk);
      if (!chunk.empty()) exchange->send(std::move(chunk));
      if (std::chrono::steady_clock::now() - checked >= kStateEvery) {
        checked = std::chrono::steady_clock::now();
        if (!sandboxOf(request.agentAddress, request.taskId).live) break;  // the pod is gone
      }
    }
    exchange->finish();
  }).detach();
}

}  // namespace agora::kube
