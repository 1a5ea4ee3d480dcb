#pragma once

// The built-in executor, run by the agent as `agora executor`: it runs each task's command as a
// child process (a process group of its own) in the sandbox, reports STARTING, RUNNING and how
// the command ended, kills with SIGTERM and then SIGKILL after the grace period, and exits when
// its tasks are done and their updates recorded. One task for the command executor; all the
// tasks of a group for the default executor (where one failing task kills the rest).

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "agent/executor/health_checker.hpp"
#include "agora/executor.hpp"
#include "common/time.hpp"

namespace agora::agent {

class CommandExecutor final : public Executor {
 public:
  CommandExecutor() = default;

  void subscribed(ExecutorDriver* driver, const ExecutorInfo& executor,
                  const FrameworkInfo& framework, const AgentInfo& agent) override;
  void launch(ExecutorDriver* driver, const TaskInfo& task) override;
  void launchGroup(ExecutorDriver* driver, const TaskGroupInfo& group) override;
  void kill(ExecutorDriver* driver, const std::string& taskId,
            std::optional<double> gracePeriodSeconds) override;
  void shutdown(ExecutorDriver* driver, double gracePeriodSeconds) override;

  // Reaps exited children; call when SIGCHLD arrives.
  void reap(ExecutorDriver* driver);

 private:
  struct Running {
    TaskInfo info;
    pid_t pid = -1;
    bool killing = false;
    bool ended = false;
    uint64_t escalation = 0;
    std::unique_ptr<HealthChecker> checker;
    std::optional<bool> healthy;  // what its health check last said
    std::string unhealthy;        // why it was killed for failing its health check
  };
  struct Helper {
    HealthChecker::HelperDone done;
    uint64_t timer = 0;
    bool timedOut = false;
  };

  void send(ExecutorDriver* driver, const std::string& taskId, TaskState state,
            const std::string& message, TaskStatus::Reason reason = TaskStatus::REASON_NONE,
            std::optional<bool> healthy = std::nullopt);
  // Starts the task's health check, if it has one.
  void startHealthCheck(ExecutorDriver* driver, Running& task);
  // Runs a helper process (a health check) in the task's sandbox; `done` when it ends.
  Status runHelper(ExecutorDriver* driver, const TaskInfo& task,
                   const std::vector<std::string>& argv, bool asTaskUser,
                   const std::string& output, Duration timeout,
                   HealthChecker::HelperDone done);
  void startKill(ExecutorDriver* driver, Running& task, double graceSeconds);
  // Runs argv as the framework's user (setpriv) when the agent asks for one.
  static std::vector<std::string> asTaskUser(std::vector<std::string> argv);
  void exitWhenDone(ExecutorDriver* driver);
  void stopWhenRecorded(ExecutorDriver* driver, TimePoint deadline);

  std::map<std::string, Running> tasks_;
  std::map<pid_t, std::string> byPid_;
  std::map<pid_t, Helper> helpers_;
  bool killingState_ = false;
  bool group_ = false;
  bool shuttingDown_ = false;
  bool exiting_ = false;
};

// The `agora executor` command: runs the CommandExecutor under an ExecutorDriver.
// With `agora executor probe ...` arguments, one health probe instead (see health_checker.hpp).
int runCommandExecutor(const std::vector<std::string>& args = {});

}  // namespace agora::agent
