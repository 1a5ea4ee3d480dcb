#pragma once

// Reading an agent's HTTP API (agent/http.hpp) from outside: where a task's sandbox is (from
// /state), and what a sandbox file holds past what was read of it (/files/read).

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/http.hpp"

namespace agora::agent {

struct TaskSandbox {
  std::string directory;  // the executor's sandbox; "" when the agent does not know the task
  bool live = false;      // its executor still runs (the task may have ended within it)
};

// The sandbox of the executor that runs `taskId`, else of the last one that ran it.
inline TaskSandbox findTaskSandbox(const nlohmann::json& state, const std::string& taskId) {
  static const nlohmann::json kNone = nlohmann::json::array();
  auto listOf = [](const nlohmann::json& object, const char* key) -> const nlohmann::json& {
    auto it = object.find(key);
    return it != object.end() && it->is_array() ? *it : kNone;
  };
  auto holds = [&](const nlohmann::json& executor) {
    for (const char* list : {"tasks", "completed_tasks"}) {
      for (const nlohmann::json& t : listOf(executor, list)) {
        if (t.is_object() && t.value("id", "") == taskId) return true;
      }
    }
    return false;
  };
  if (!state.is_object()) return {};
  for (const nlohmann::json& f : listOf(state, "frameworks")) {
    if (!f.is_object()) continue;
    for (const nlohmann::json& e : listOf(f, "executors")) {
      if (e.is_object() && holds(e)) return {e.value("directory", ""), true};
    }
  }
  const nlohmann::json& completed = listOf(state, "completed_executors");
  for (auto it = completed.rbegin(); it != completed.rend(); ++it) {
    if (it->is_object() && holds(*it)) return {it->value("directory", ""), false};
  }
  return {};
}

// Appends to `out` what the file at `path` on the agent at `address` holds past `*offset`, and
// moves `*offset` on. A file shorter than `*offset` was replaced (a restarted task's new
// output): it is read from its start. False when the agent has no such file (or no answer).
// With `agentId`, `address` is the leading master's, which relays the read to that agent
// (/agent/files/read): agents serve sandboxes only to the master and kube.
inline bool readSandboxFile(const std::string& address, const std::string& path, int64_t* offset,
                            std::string* out, const std::string& agentId = "") {
  bool found = false;
  std::string endpoint =
      agentId.empty() ? "/files/read?" : "/agent/files/read?agent_id=" + urlEncode(agentId) + "&";
  for (int i = 0; i < 64; ++i) {  // at most 256 MB in one go
    auto response = httpGet(address,
                            endpoint + "path=" + urlEncode(path) +
                                "&offset=" + std::to_string(*offset),
                            seconds(5));
    if (!response || response->status != 200) return found;
    nlohmann::json j = nlohmann::json::parse(response->body, nullptr, false);
    if (!j.is_object()) return found;
    found = true;
    if (j.value("offset", int64_t{0}) < *offset) {
      *offset = 0;
      continue;
    }
    std::string data = j.value("data", "");
    if (data.empty()) return found;
    *offset += static_cast<int64_t>(data.size());
    out->append(data);
  }
  return found;
}

}  // namespace agora::agent
