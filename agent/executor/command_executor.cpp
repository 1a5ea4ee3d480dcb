#include "agent/executor/command_executor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <glog/logging.h>

#include "common/fs.hpp"
#include "common/logging.hpp"
#include "common/process.hpp"
#include "common/time.hpp"

namespace agora::agent {

namespace {

constexpr double kDefaultKillGraceSeconds = 3.0;

// What the task sees: the executor's environment without the agent's private variables.
std::map<std::string, std::string> taskEnvironment(const ExecutorDriver& driver,
                                                   const TaskInfo& task) {
  std::map<std::string, std::string> env = currentEnvironment();
  for (const char* name : {"AGORA_AGENT_ENDPOINT", "AGORA_CONTAINER_ID", "AGORA_RECOVERY_TIMEOUT",
                           "AGORA_EXECUTOR_SHUTDOWN_GRACE_PERIOD"}) {
    env.erase(name);
  }
  env["AGORA_TASK_ID"] = task.task_id();
  env["AGORA_TASK_NAME"] = task.name();
  env["AGORA_SANDBOX"] = driver.sandbox();
  env["AGORA_AGENT_ID"] = driver.agentId();
  if (const char* user = std::getenv("AGORA_TASK_USER"); user != nullptr && *user != '\0') {
    env["USER"] = user;
    env["LOGNAME"] = user;
  }
  for (const auto& var : task.command().environment()) {
    env[var.name()] = var.value();
  }
  return env;
}

}  // namespace

void CommandExecutor::subscribed(ExecutorDriver* driver, const ExecutorInfo& executor,
                                 const FrameworkInfo& framework, const AgentInfo& agent) {
  for (int c : framework.capabilities()) {
    killingState_ |= c == FrameworkInfo::TASK_KILLING_STATE;
  }
  group_ = executor.type() == ExecutorInfo::DEFAULT;
  LOG(INFO) << "Executor " << executor.executor_id() << " subscribed to agent " << agent.id();
}

void CommandExecutor::send(ExecutorDriver* driver, const std::string& taskId, TaskState state,
                           const std::string& message, TaskStatus::Reason reason,
                           std::optional<bool> healthy) {
  TaskStatus status;
  status.set_task_id(taskId);
  status.set_state(state);
  status.set_message(message);
  status.set_reason(reason);
  if (healthy) {
    status.set_healthy(*healthy);
  }
  driver->update(status);
}

std::vector<std::string> CommandExecutor::asTaskUser(std::vector<std::string> argv) {
  const char* user = std::getenv("AGORA_TASK_USER");
  const char* uid = std::getenv("AGORA_TASK_UID");
  const char* gid = std::getenv("AGORA_TASK_GID");
  if (user == nullptr || uid == nullptr || gid == nullptr || *user == '\0') {
    return argv;
  }
  std::vector<std::string> wrapped = {"/usr/bin/setpriv", std::string("--reuid=") + uid,
                                      std::string("--regid=") + gid, "--init-groups", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

Status CommandExecutor::runHelper(ExecutorDriver* driver, const TaskInfo& task,
                                  const std::vector<std::string>& argv, bool taskUser,
                                  const std::string& output, Duration timeout,
                                  HealthChecker::HelperDone done) {
  SpawnOptions spawn;
  spawn.argv = taskUser ? asTaskUser(argv) : argv;
  spawn.env = taskEnvironment(*driver, task);
  spawn.cwd = driver->sandbox();
  // Each check's output replaces the last one's.
  if (Status cleared = writeFileAtomic(output, ""); !cleared) {
    return cleared;
  }
  spawn.stdoutPath = output;
  spawn.stderrPath = output;
  spawn.newProcessGroup = true;
  auto pid = spawnProcess(spawn);
  if (!pid) {
    return Error(pid.error());
  }
  Helper& helper = helpers_[*pid];
  helper.done = std::move(done);
  helper.timer = driver->after(timeout, [this, pid = *pid] {
    auto it = helpers_.find(pid);
    if (it != helpers_.end()) {
      it->second.timedOut = true;
      it->second.timer = 0;
      ::kill(-pid, SIGKILL);
    }
  });
  return ok();
}

void CommandExecutor::startHealthCheck(ExecutorDriver* driver, Running& task) {
  if (!task.info.has_health_check()) {
    return;
  }
  const std::string taskId = task.info.task_id();
  if (Status valid = HealthChecker::validate(task.info.health_check()); !valid) {
    LOG(WARNING) << "Task " << taskId << ": no health checks: " << valid.error();
    send(driver, taskId, TASK_RUNNING, "its health check cannot run: " + valid.error(),
         TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, false);
    return;
  }
  auto changed = [this, driver, taskId](bool healthy, const std::string& message) {
    auto it = tasks_.find(taskId);
    if (it == tasks_.end() || it->second.ended || it->second.killing) {
      return;
    }
    it->second.healthy = healthy;
    LOG(INFO) << "Task " << taskId << ": " << message;
    send(driver, taskId, TASK_RUNNING, message,
         TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, healthy);
  };
  auto failed = [this, driver, taskId](const std::string& message) {
    auto it = tasks_.find(taskId);
    if (it == tasks_.end() || it->second.ended) {
      return;
    }
    LOG(WARNING) << "Task " << taskId << " " << message << "; killing it";
    it->second.unhealthy = message;
    it->second.healthy = false;
    startKill(driver, it->second, it->second.info.has_kill_grace_period_seconds()
                                      ? it->second.info.kill_grace_period_seconds()
                                      : kDefaultKillGraceSeconds);
  };
  auto run = [this, driver, taskId](const std::vector<std::string>& argv, bool taskUser,
                                    const std::string& output, Duration timeout,
                                    HealthChecker::HelperDone done) -> Status {
    auto it = tasks_.find(taskId);
    if (it == tasks_.end()) {
      return Error("the task is gone");
    }
    return runHelper(driver, it->second.info, argv, taskUser, output, timeout, std::move(done));
  };
  std::string output = driver->sandbox() + "/.health-" + taskId;
  task.checker = std::make_unique<HealthChecker>(driver, task.info.health_check(),
                                                 selfExecutable(), output, run, changed, failed);
  task.checker->start();
}

void CommandExecutor::launch(ExecutorDriver* driver, const TaskInfo& task) {
  if (shuttingDown_ || tasks_.count(task.task_id()) > 0) {
    return;
  }
  Running& running = tasks_[task.task_id()];
  running.info = task;
  send(driver, task.task_id(), TASK_STARTING, "");

  const CommandInfo& command = task.command();
  SpawnOptions spawn;
  if (!command.has_shell() || command.shell()) {
    spawn.argv = {"/bin/sh", "-c", command.value()};
  } else {
    spawn.argv.assign(command.arguments().begin(), command.arguments().end());
    if (spawn.argv.empty()) {
      spawn.argv.push_back(command.value());
    }
    // The program to run is `value`; arguments carry argv, argv[0] included.
    spawn.argv[0] = command.value();
  }
  spawn.env = taskEnvironment(*driver, task);
  // The task runs as its framework's user; the executor stays the agent's.
  spawn.argv = asTaskUser(std::move(spawn.argv));
  spawn.cwd = driver->sandbox();
  spawn.stdoutPath = driver->sandbox() + "/stdout";
  spawn.stderrPath = driver->sandbox() + "/stderr";
  spawn.newProcessGroup = true;
  auto pid = spawnProcess(spawn);
  if (!pid) {
    running.ended = true;
    send(driver, task.task_id(), TASK_FAILED, "cannot start the command: " + pid.error(),
         TaskStatus::REASON_COMMAND_EXECUTOR_FAILED);
    exitWhenDone(driver);
    return;
  }
  running.pid = *pid;
  byPid_[*pid] = task.task_id();
  LOG(INFO) << "Task " << task.task_id() << " started as pid " << *pid << ": "
            << command.value();
  send(driver, task.task_id(), TASK_RUNNING, "");
  startHealthCheck(driver, running);
}

void CommandExecutor::launchGroup(ExecutorDriver* driver, const TaskGroupInfo& group) {
  group_ = true;
  for (const TaskInfo& task : group.tasks()) {
    launch(driver, task);
  }
}

void CommandExecutor::startKill(ExecutorDriver* driver, Running& task, double graceSeconds) {
  if (task.ended || task.killing) {
    return;
  }
  task.killing = true;
  if (task.checker) {
    task.checker->stop();
  }
  if (killingState_) {
    send(driver, task.info.task_id(), TASK_KILLING, "");
  }
  pid_t pgid = task.pid;
  ::kill(-pgid, SIGTERM);
  std::string taskId = task.info.task_id();
  task.escalation = driver->after(fromSeconds(graceSeconds), [this, taskId, pgid] {
    auto it = tasks_.find(taskId);
    if (it != tasks_.end() && !it->second.ended) {
      LOG(INFO) << "Task " << taskId << " outlived its grace period; sending SIGKILL";
      ::kill(-pgid, SIGKILL);
    }
  });
}

void CommandExecutor::kill(ExecutorDriver* driver, const std::string& taskId,
                           std::optional<double> gracePeriodSeconds) {
  auto it = tasks_.find(taskId);
  if (it == tasks_.end()) {
    return;
  }
  double grace = gracePeriodSeconds.value_or(it->second.info.has_kill_grace_period_seconds()
                                                 ? it->second.info.kill_grace_period_seconds()
                                                 : kDefaultKillGraceSeconds);
  startKill(driver, it->second, grace);
}

void CommandExecutor::shutdown(ExecutorDriver* driver, double gracePeriodSeconds) {
  shuttingDown_ = true;
  for (auto& [id, task] : tasks_) {
    startKill(driver, task, std::max(0.0, gracePeriodSeconds - 0.5));
  }
  exitWhenDone(driver);
}

void CommandExecutor::reap(ExecutorDriver* driver) {
  while (true) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      break;
    }
    if (auto helper = helpers_.find(pid); helper != helpers_.end()) {
      Helper done = std::move(helper->second);
      helpers_.erase(helper);
      driver->cancel(done.timer);
      ::kill(-pid, SIGKILL);  // anything the check left behind
      done.done(status, done.timedOut);
      continue;
    }
    auto owner = byPid_.find(pid);
    if (owner == byPid_.end()) {
      continue;
    }
    std::string taskId = owner->second;
    byPid_.erase(owner);
    Running& task = tasks_.at(taskId);
    task.ended = true;
    driver->cancel(task.escalation);
    // Whatever the command left running in its process group ends with it.
    ::kill(-pid, SIGKILL);

    if (task.checker) {
      task.checker->stop();
    }
    TaskState state;
    std::string message;
    TaskStatus::Reason reason = TaskStatus::REASON_NONE;
    if (!task.unhealthy.empty()) {
      state = TASK_KILLED;
      message = "Killed: it " + task.unhealthy;
      reason = TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      state = TASK_FINISHED;
      message = "Command exited with status 0";
    } else if (task.killing) {
      state = TASK_KILLED;
      message = "Command " + describeWaitStatus(status) + " after a kill";
    } else {
      state = TASK_FAILED;
      message = "Command " + describeWaitStatus(status);
    }
    LOG(INFO) << "Task " << taskId << ": " << message;
    send(driver, taskId, state, message, reason, task.healthy);

    if (group_ && state == TASK_FAILED) {
      // In a group, one failing task takes the others down.
      for (auto& [id, other] : tasks_) {
        startKill(driver, other, kDefaultKillGraceSeconds);
      }
    }
  }
  exitWhenDone(driver);
}

void CommandExecutor::exitWhenDone(ExecutorDriver* driver) {
  if (exiting_ || (tasks_.empty() && !shuttingDown_)) {
    return;
  }
  for (const auto& [id, task] : tasks_) {
    if (!task.ended) {
      return;
    }
  }
  exiting_ = true;
  // As long as the executor would wait for a restarting agent anyway.
  Duration patience = minutes(15);
  if (const char* timeout = std::getenv("AGORA_RECOVERY_TIMEOUT")) {
    if (auto parsed = parseDuration(timeout)) {
      patience = *parsed;
    }
  }
  stopWhenRecorded(driver, std::chrono::steady_clock::now() + patience);
}

void CommandExecutor::stopWhenRecorded(ExecutorDriver* driver, TimePoint deadline) {
  // The final updates must reach the agent before the executor goes, or the agent would
  // report the tasks as failed with their executor.
  if (driver->unacknowledged() == 0 || std::chrono::steady_clock::now() > deadline) {
    driver->stop();
    return;
  }
  driver->after(milliseconds(20), [this, driver, deadline] { stopWhenRecorded(driver, deadline); });
}

int runCommandExecutor(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "probe") {
    return runHealthProbe(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  // The task owns the sandbox's stdout and stderr; the executor's own log goes beside them.
  const char* sandbox = std::getenv("AGORA_SANDBOX");
  if (sandbox != nullptr) {
    std::string log = std::string(sandbox) + "/executor.log";
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
  }
  initLogging("agora-executor", "", 0);
  int sigchld = blockSignalsToFd({SIGCHLD});
  CommandExecutor executor;
  ExecutorDriver driver(&executor);
  driver.watchFd(sigchld, [&] {
    signalfd_siginfo info;
    while (::read(sigchld, &info, sizeof(info)) > 0) {
    }
    executor.reap(&driver);
  });
  DriverStatus status = driver.run();
  return status == DriverStatus::kStopped ? 0 : 1;
}

}  // namespace agora::agent
