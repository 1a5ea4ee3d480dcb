#pragma once

// An executor's sandbox, as its agent's /state says, for tests that look at what a task left.

#include <string>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/http.hpp"
#include "tests/support/process_cluster.hpp"

namespace agora::testing {

// The sandbox of an executor, from its agent's /state ("" while unknown).
inline std::string sandboxOf(const std::string& agent, const std::string& executorId) {
  auto r = httpGet(agent, "/state");
  if (!r) {
    return "";
  }
  nlohmann::json s = nlohmann::json::parse(r->body, nullptr, false);
  if (!s.is_object()) {
    return "";
  }
  for (const char* list : {"frameworks", "completed_executors"}) {
    for (const nlohmann::json& entry : s.value(list, nlohmann::json::array())) {
      for (const nlohmann::json& e :
           entry.contains("executors") ? entry["executors"] : nlohmann::json::array({entry})) {
        if (e.value("id", "") == executorId) {
          return e.value("directory", "");
        }
      }
    }
  }
  return "";
}

// Waits until the file `name` in the executor's sandbox has content; returns it.
inline std::string waitForSandboxFile(const std::string& agent, const std::string& executorId,
                               const std::string& name) {
  std::string content;
  waitUntil(
      [&] {
        std::string sandbox = sandboxOf(agent, executorId);
        auto text = sandbox.empty() ? Result<std::string>(Error("")) : readFile(sandbox + "/" + name);
        content = text ? *text : "";
        return !content.empty() && content.back() == '\n';
      },
      seconds(20));
  return content;
}

// What an executor's runs wrote to stdout, from the agent's work directory (even once the
// agent has forgotten them).
inline std::string executorStdout(const std::string& agentWorkDir,
                                  const std::string& executorId) {
  return runCommand({"/bin/sh", "-c",
                     "cat " + agentWorkDir + "/frameworks/*/executors/" + executorId +
                         "/runs/*/stdout"},
                    seconds(5))
      .output;
}

}  // namespace agora::testing
