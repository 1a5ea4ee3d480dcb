#include "frameworks/k8s-like/scheduler/pod_logs.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <sstream>
#include <thread>
#include <vector>

#include "agent/state_lookup.hpp"
#include "common/http.hpp"
#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/status.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"
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

std::vector<OutputTime> parseOutputTimes(const std::string& text) {
  std::vector<OutputTime> out;
  std::istringstream lines(text);
  OutputTime t;
  while (lines >> t.time >> t.size) {
    if (out.empty() || t.size >= out.back().size) out.push_back(t);
  }
  return out;
}

size_t sinceOffset(const std::string& text, const std::vector<OutputTime>& times, double cutoff) {
  // What was there at the last note before the cutoff was written before it.
  int64_t before = 0;
  for (const OutputTime& t : times) {
    if (t.time < cutoff) before = t.size;
  }
  size_t at = std::min(static_cast<size_t>(std::max<int64_t>(before, 0)), text.size());
  if (at > 0 && at < text.size() && text[at - 1] != '\n') {
    size_t newline = text.find('\n', at);
    at = newline == std::string::npos ? text.size() : newline + 1;  // the next whole line
  }
  return at;
}

std::string withTimestamps(const std::string& text, int64_t base,
                           const std::vector<OutputTime>& times, double now) {
  std::string out;
  size_t start = 0;
  size_t next = 0;  // the first note that may have seen the line
  while (start < text.size()) {
    size_t newline = text.find('\n', start);
    size_t end = newline == std::string::npos ? text.size() : newline + 1;
    int64_t endOffset = base + static_cast<int64_t>(end);
    while (next < times.size() && times[next].size < endOffset) ++next;
    double when = next < times.size() ? times[next].time : now;
    char stamp[48];
    time_t seconds = static_cast<time_t>(when);
    struct tm tm {};
    gmtime_r(&seconds, &tm);
    size_t n = std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(stamp + n, sizeof(stamp) - n, ".%09ldZ ",
                  static_cast<long>((when - static_cast<double>(seconds)) * 1e9));
    out += stamp;
    out.append(text, start, end - start);
    start = end;
  }
  return out;
}

Result<LogRequest> logRequest(const json& pod, const std::map<std::string, std::string>& query,
                              const std::string& agentAddress, double now) {
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
  auto sinceSeconds = optionalCount(query, "sinceSeconds");
  if (!sinceSeconds) return Error(sinceSeconds.error());
  if (*sinceSeconds) request.since = now - static_cast<double>(**sinceSeconds);
  if (auto it = query.find("sinceTime"); it != query.end() && !it->second.empty()) {
    double at = parseRfc3339(it->second);
    if (at < 0) return Error("sinceTime must be an RFC 3339 time, not '" + it->second + "'");
    if (request.since) return Error("at most one of sinceTime or sinceSeconds may be specified");
    request.since = at;
  }
  request.timestamps = flag(query, "timestamps");
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
    auto wallNow = [] {
      return std::chrono::duration<double>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
    };
    if (request.since || request.timestamps) {
      LogFile timesFile{dir + "/stdout.times" + suffix};
      std::string timesText;
      readNew(request.agentAddress, timesFile, &timesText);
      std::vector<OutputTime> times = parseOutputTimes(timesText);
      size_t from = request.since ? sinceOffset(text, times, *request.since) : 0;
      std::string kept = text.substr(from);
      text = request.timestamps ? withTimestamps(kept, static_cast<int64_t>(from), times, wallNow())
                                : kept;
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
    std::string pending;  // with timestamps: a line not yet whole
    auto checked = std::chrono::steady_clock::now();
    while (more && !*closed) {
      std::this_thread::sleep_for(kPoll);
      std::string chunk;
      for (LogFile& file : files) readNew(request.agentAddress, file, &chunk);
      if (request.timestamps && !chunk.empty()) {
        // New output, stamped as it is read (within a poll of when it was written); a line
        // cut short waits for its end.
        pending += chunk;
        size_t whole = pending.rfind('\n');
        if (whole == std::string::npos) continue;
        chunk = withTimestamps(pending.substr(0, whole + 1), 0, {}, wallNow());
        pending.erase(0, whole + 1);
      }
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
