#pragma once

// The built-in executor, run by the agent as `agora executor`: it runs each task's command as a
// child process (a process group of its own), reports STARTING, RUNNING and how the command
// ended, kills with SIGTERM and then SIGKILL after the grace period, and exits when its tasks
// are done and their updates recorded. One task for the command executor; all the tasks of a
// group for the default executor, like a Kubernetes pod:
//   - each task has a sandbox of its own (<sandbox>/tasks/<task id>, with its stdout and
//     stderr) and they share a scratch directory (<sandbox>/shared, AGORA_SHARED_DIR), their
//     network, IPC and /tmp;
//   - when the agent isolates with cgroups, each task also has cgroups of its own below the
//     group's, limited to its own cpus and memory;
//   - a task whose command ends is started again as its restart policy says; one that fails
//     for good takes the others down.
// Health checks (health_checker.hpp) run for the tasks that have them.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/executor/health_checker.hpp"
#include "agora/executor.hpp"
#include "common/time.hpp"
#include "isolators/cgroups_isolator.hpp"

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
    std::string directory;        // its sandbox: the executor's, or its own in a group
    pid_t pid = -1;               // -1 while waiting to restart
    bool killing = false;
    bool ended = false;
    uint64_t escalation = 0;
    uint32_t restarts = 0;
    Duration backoff = Duration::zero();
    uint64_t restartTimer = 0;
    std::unique_ptr<HealthChecker> checker;
    std::unique_ptr<HealthChecker> readiness;
    std::optional<bool> healthy;  // what its health check last said
    std::optional<bool> ready;    // what its readiness check last said
    std::chrono::steady_clock::time_point startedAt;
    std::string unhealthy;        // why it was killed for failing its health check
    int64_t loggedSize = -1;      // stdout's size at the last line of stdout.times
    int stdinHold = -1;           // stdin=once: the write end held until the first attach
  };
  struct Helper {
    HealthChecker::HelperDone done;
    uint64_t timer = 0;
    bool timedOut = false;
  };

  void send(ExecutorDriver* driver, const std::string& taskId, TaskState state,
            const std::string& message, TaskStatus::Reason reason = TaskStatus::REASON_NONE,
            std::optional<bool> healthy = std::nullopt);
  // Starts (or starts again) the task's command.
  void start(ExecutorDriver* driver, Running& task);
  // The task's command has ended with `status`: restart it, or end the task.
  void commandEnded(ExecutorDriver* driver, Running& task, int status);
  // Whether the task's restart policy starts it again after it ended so.
  bool restarts(const Running& task, bool failed) const;
  // Starts the task's health check, if it has one.
  void startHealthCheck(ExecutorDriver* driver, Running& task);
  void startReadinessCheck(ExecutorDriver* driver, Running& task);
  // What a health or readiness check of the task runs its helper processes through.
  HealthChecker::RunHelper helperRunner(ExecutorDriver* driver, const std::string& taskId);
  // Runs a helper process (a health check) in the task's sandbox; `done` when it ends.
  Status runHelper(ExecutorDriver* driver, const Running& task,
                   const std::vector<std::string>& argv, bool asTaskUser,
                   const std::string& output, Duration timeout,
                   HealthChecker::HelperDone done);
  void startKill(ExecutorDriver* driver, Running& task, double graceSeconds);
  // Notes, every second while the command runs and once when it ends, when its stdout grew:
  // "SECONDS SIZE" lines in stdout.times beside it (kubectl logs --since and --timestamps).
  void recordOutputTimes(ExecutorDriver* driver, const std::string& taskId);
  static void noteOutputTime(Running& task);
  // Runs argv as the framework's user (setpriv) when the agent asks for one.
  static std::vector<std::string> asTaskUser(std::vector<std::string> argv);
  void exitWhenDone(ExecutorDriver* driver);
  void stopWhenRecorded(ExecutorDriver* driver, TimePoint deadline);

  std::map<std::string, Running> tasks_;
  std::map<pid_t, std::string> byPid_;
  std::map<pid_t, Helper> helpers_;
  // A group's tasks' own cgroups, below the group's (when the agent isolates with cgroups).
  std::unique_ptr<isolators::CgroupsIsolator> taskCgroups_;
  bool killingState_ = false;
  bool group_ = false;
  bool shuttingDown_ = false;
  bool exiting_ = false;
};

// The `agora executor` command: runs the CommandExecutor under an ExecutorDriver. With
// `agora executor probe ...` arguments, one health probe instead (see health_checker.hpp).
int runCommandExecutor(const std::vector<std::string>& args = {});

}  // namespace agora::agent
