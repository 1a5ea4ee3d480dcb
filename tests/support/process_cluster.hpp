#pragma once

// ProcessCluster: a real master and real agents, each an `agora` process on loopback with
// ephemeral ports and a temporary directory, for end-to-end and fault tests. Everything it
// starts is stopped when it goes away (and dies with the test process if that crashes).

#include <sys/types.h>

#include <csignal>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "common/time.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::testing {

// Polls `condition` until it holds or `timeout` passes; true if it held.
bool waitUntil(const std::function<bool()>& condition, Duration timeout);

// Starts a child that gets `deathSignal` when the test process dies; stdout and stderr go to
// `log`. Agents take SIGUSR1 (stop every container too), since SIGTERM leaves their
// containers running for the next agent.
Result<pid_t> spawnChild(const std::vector<std::string>& argv, const std::string& log,
                         const std::map<std::string, std::string>& extraEnv = {},
                         int deathSignal = SIGTERM);

// `signal`, then SIGKILL after `patience`; reaps it.
void stopChild(pid_t pid, Duration patience = seconds(15), int signal = SIGTERM);

struct CommandResult {
  int exitCode = -1;  // -1: it did not finish in time (and was killed)
  std::string output;  // stdout and stderr together
};

// Runs a command to the end (killed after `timeout`).
CommandResult runCommand(const std::vector<std::string>& argv, Duration timeout,
                         const std::map<std::string, std::string>& extraEnv = {});

struct ProcessClusterOptions {
  int agents = 2;
  std::string agentResources = "cpus:4;mem:4096;disk:1024";
  std::vector<std::string> masterFlags;
  std::vector<std::string> agentFlags;
};

class ProcessCluster {
 public:
  explicit ProcessCluster(ProcessClusterOptions options = {});
  ~ProcessCluster();
  ProcessCluster(const ProcessCluster&) = delete;
  ProcessCluster& operator=(const ProcessCluster&) = delete;

  // Starts the master and the agents and waits until every agent has registered.
  Status start();
  void stop();
  // Kills the master (SIGKILL) and starts a new one on the same ports.
  Status restartMaster();
  // Kills agent `i` (SIGKILL: as in a crash) and waits for it to end. Its executors are left
  // running, as they are after SIGTERM.
  void killAgent(size_t i, int signal = SIGKILL);
  // Starts agent `i` again on its work directory (after killAgent) and waits until the master
  // lists it at its new address.
  Status restartAgent(size_t i);
  std::string agentWorkDir(size_t i) const { return dir_.path() + "/agent-" + std::to_string(i); }
  std::string agentLog(size_t i) const { return agentWorkDir(i) + ".log"; }

  const std::string& masterHttp() const { return masterHttp_; }
  const std::string& masterEndpoint() const { return masterEndpoint_; }
  pid_t masterPid() const { return masterPid_; }
  pid_t agentPid(size_t i) const { return agentPids_.at(i); }
  const std::string& dir() const { return dir_.path(); }
  std::string masterLog() const { return dir_.path() + "/master.log"; }

  // The leading master's /state (an error until it leads and has recovered).
  Result<nlohmann::json> masterState() const;
  // Polls the master's /state until `condition` holds (false after `timeout`).
  bool waitForState(const std::function<bool(const nlohmann::json&)>& condition,
                    Duration timeout = seconds(30)) const;

 private:
  Status startMaster(const std::vector<std::string>& portFlags);

  ProcessClusterOptions options_;
  TempDir dir_;
  pid_t masterPid_ = -1;
  std::vector<pid_t> agentPids_;
  std::vector<std::vector<std::string>> agentArgs_;
  std::string masterHttp_;
  std::string masterEndpoint_;
};

}  // namespace agora::testing
