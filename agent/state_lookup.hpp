#pragma once

// Reading an agent's /state (agent/http.hpp) from outside: where a task's sandbox is.

#include <string>

#include <nlohmann/json.hpp>

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

}  // namespace agora::agent
