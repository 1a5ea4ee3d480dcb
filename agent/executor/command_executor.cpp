#include "agent/executor/command_executor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <glog/logging.h>

#include "agent/executor/rootfs.hpp"
#include "common/fs.hpp"
#include "common/task_files.hpp"
#include "common/logging.hpp"
#include "common/process.hpp"
#include "common/time.hpp"
#include "isolators/confine.hpp"

namespace agora::agent {

namespace {

constexpr double kDefaultKillGraceSeconds = 3.0;

// What the task sees: the executor's environment without the agent's private variables.
std::map<std::string, std::string> taskEnvironment(const ExecutorDriver& driver,
                                                   const TaskInfo& task,
                                                   const std::string& directory, bool group) {
  std::map<std::string, std::string> env = currentEnvironment();
  for (const char* name : {"AGORA_AGENT_ENDPOINT", "AGORA_CONTAINER_ID", "AGORA_RECOVERY_TIMEOUT",
                           "AGORA_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "AGORA_TASK_CGROUPS",
                           "AGORA_AGENT_CURVE_KEY", "AGORA_EXECUTOR_CURVE_PUBLIC_KEY",
                           "AGORA_EXECUTOR_CURVE_SECRET_KEY"}) {
    env.erase(name);
  }
  env["AGORA_TASK_ID"] = task.task_id();
  env["AGORA_TASK_NAME"] = task.name();
  env["AGORA_SANDBOX"] = directory;
  if (group) {
    env["AGORA_SHARED_DIR"] = driver.sandbox() + "/shared";
  }
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

// Makes a directory the task's user owns (the sandbox is theirs already).
Status makeTaskDirectory(const std::string& path) {
  if (Status made = makeDirectories(path); !made) {
    return made;
  }
  const char* uid = std::getenv("AGORA_TASK_UID");
  const char* gid = std::getenv("AGORA_TASK_GID");
  if (uid != nullptr && gid != nullptr && *uid != '\0' &&
      ::chown(path.c_str(), static_cast<uid_t>(std::atol(uid)),
              static_cast<gid_t>(std::atol(gid))) != 0) {
    return Error("cannot give " + path + " to its user: " + std::strerror(errno));
  }
  return ok();
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
  if (auto it = tasks_.find(taskId); it != tasks_.end()) {
    status.set_restart_count(it->second.restarts);
    if (it->second.info.has_readiness_check()) {
      status.set_ready(state == TASK_RUNNING && it->second.ready.value_or(false) &&
                       it->second.pid > 0);
    }
  }
  driver->update(status);
}

// The task files directories this executor wrote (common/task_files.hpp), removed when it
// ends.
static std::set<std::string>& filesDirectories() {
  static std::set<std::string> directories;
  return directories;
}

// The framework's files for `task` (ContainerInfo.files), written into its directory of
// files, as the --mount= arguments that put each where it belongs.
static std::vector<std::string> writeFiles(const TaskInfo& task) {
  std::vector<std::string> mounts;
  for (int i = 0; i < task.container().files_size(); ++i) {
    const auto& file = task.container().files(i);
    if (file.path().empty() || file.path().front() != '/' ||
        file.path().find("..") != std::string::npos ||
        file.path().find(':') != std::string::npos) {
      LOG(WARNING) << "Task " << task.task_id() << ": ignoring file '" << file.path()
                   << "' (not an absolute path)";
      continue;
    }
    std::string dir = taskFilesDirectory(task.task_id());
    std::string source = taskFilePath(task.task_id(), file.path());
    filesDirectories().insert(dir);
    if (!makeDirectories(dir) || ::chmod(dir.c_str(), 0700) != 0 ||
        !writeFileAtomic(source, file.data())) {
      LOG(WARNING) << "Task " << task.task_id() << ": cannot write " << source;
      continue;
    }
    ::chmod(source.c_str(), file.mode() != 0 ? file.mode() & 07777 : 0644);
    // The file is the task's: its user owns it (a Secret's 0400 is then readable by it alone).
    // In an image the user is known inside it: enter-rootfs gives it the --file= mounts.
    const char* uid = std::getenv("AGORA_TASK_UID");
    const char* gid = std::getenv("AGORA_TASK_GID");
    if (task.container().rootfs_layers_size() == 0 && uid != nullptr && gid != nullptr &&
        ::chown(source.c_str(), static_cast<uid_t>(std::atoi(uid)),
                static_cast<gid_t>(std::atoi(gid))) != 0) {
      LOG(WARNING) << "Task " << task.task_id() << ": cannot give " << source
                   << " to its user: " << std::strerror(errno);
    }
    mounts.push_back("--file=" + source + ":" + file.path());
  }
  return mounts;
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

Status CommandExecutor::runHelper(ExecutorDriver* driver, const Running& task,
                                  const std::vector<std::string>& argv, bool taskUser,
                                  const std::string& output, Duration timeout,
                                  HealthChecker::HelperDone done) {
  SpawnOptions spawn;
  spawn.argv = taskUser ? asTaskUser(argv) : argv;
  spawn.env = taskEnvironment(*driver, task.info, task.directory, group_);
  spawn.cwd = task.directory;
  if (taskUser && task.info.container().rootfs_layers_size() > 0) {
    // A check of a task in an image runs in the image, as the task runs there: in its mount
    // namespace and root, as its user.
    struct stat hostRoot;
    struct stat taskRoot;
    if (task.pid <= 0 ||
        ::stat(("/proc/" + std::to_string(task.pid) + "/root/").c_str(), &taskRoot) != 0) {
      return Error("the task is not running");
    }
    if (::stat("/", &hostRoot) == 0 && hostRoot.st_dev == taskRoot.st_dev &&
        hostRoot.st_ino == taskRoot.st_ino) {
      return Error(std::string(HealthChecker::kNotYet) + "the task has not entered its image");
    }
    auto [uid, gid] = processUser(task.pid);
    std::vector<std::string> enter = {"/usr/bin/nsenter", "--target", std::to_string(task.pid),
                                      "--mount", "--root", "--wd", "--setuid",
                                      std::to_string(uid), "--setgid", std::to_string(gid), "--"};
    enter.insert(enter.end(), argv.begin(), argv.end());
    spawn.argv = std::move(enter);
    spawn.env["AGORA_SANDBOX"] = kRootfsSandbox;
  }
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

HealthChecker::RunHelper CommandExecutor::helperRunner(ExecutorDriver* driver,
                                                       const std::string& taskId) {
  return [this, driver, taskId](const std::vector<std::string>& argv, bool taskUser,
                                const std::string& output, Duration timeout,
                                HealthChecker::HelperDone done) -> Status {
    auto it = tasks_.find(taskId);
    if (it == tasks_.end()) {
      return Error("the task is gone");
    }
    return runHelper(driver, it->second, argv, taskUser, output, timeout, std::move(done));
  };
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
  std::string output = driver->sandbox() + "/.health-" + taskId;
  task.checker = std::make_unique<HealthChecker>(driver, task.info.health_check(),
                                                 selfExecutable(), output,
                                                 helperRunner(driver, taskId), changed, failed);
  task.checker->start();
}

void CommandExecutor::launch(ExecutorDriver* driver, const TaskInfo& task) {
  if (shuttingDown_ || tasks_.count(task.task_id()) > 0) {
    return;
  }
  Running& running = tasks_[task.task_id()];
  running.info = task;
  running.directory = driver->sandbox();
  send(driver, task.task_id(), TASK_STARTING, "");
  if (group_) {
    // A sandbox of its own, and the group's scratch directory.
    running.directory = driver->sandbox() + "/tasks/" + task.task_id();
    Status made = makeTaskDirectory(running.directory);
    if (made) {
      made = makeTaskDirectory(driver->sandbox() + "/shared");
    }
    if (!made) {
      running.ended = true;
      send(driver, task.task_id(), TASK_FAILED, "cannot make its sandbox: " + made.error(),
           TaskStatus::REASON_COMMAND_EXECUTOR_FAILED);
      exitWhenDone(driver);
      return;
    }
    if (taskCgroups_ == nullptr && std::getenv("AGORA_TASK_CGROUPS") != nullptr) {
      auto layout = cgroups::detectLayout();
      if (!layout) {
        LOG(WARNING) << "Tasks share the group's cgroups: " << layout.error();
      } else {
        isolators::CgroupsOptions options;
        options.layout = *layout;
        options.root = "containers";  // not "tasks": a file of that name is in every v1 cgroup
        options.cpuHardLimit = std::string(std::getenv("AGORA_TASK_CGROUPS")) == "cfs";
        options.pids = false;  // the group's limit holds them all
        options.executorMemoryOverhead = 0;
        taskCgroups_ = std::make_unique<isolators::CgroupsIsolator>(options);
      }
    }
  }
  start(driver, running);
}

void CommandExecutor::start(ExecutorDriver* driver, Running& running) {
  const TaskInfo& task = running.info;
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
  spawn.env = taskEnvironment(*driver, task, running.directory, group_);
  if (task.container().rootfs_layers_size() > 0) {
    // Inside its image: the helper mounts the image and becomes the image's (or the task's)
    // user there.
    std::string layers;
    for (const std::string& layer : task.container().rootfs_layers()) {
      layers += (layers.empty() ? "" : ":") + layer;
    }
    std::vector<std::string> enter = {selfExecutable(), "executor", "enter-rootfs",
                                      "--layers=" + layers, "--sandbox=" + running.directory,
                                      "--workdir=" + task.container().working_dir(),
                                      "--user=" + task.container().user()};
    for (const auto& mount : task.container().mounts()) {
      enter.push_back("--mount=" + mount.source() + ":" + mount.target());
    }
    for (const std::string& mount : writeFiles(task)) {
      enter.push_back(mount);
    }
    if (group_) {
      enter.push_back("--shared=" + driver->sandbox() + "/shared");
      spawn.env["AGORA_SHARED_DIR"] = kRootfsShared;
    }
    enter.push_back("--");
    enter.insert(enter.end(), spawn.argv.begin(), spawn.argv.end());
    spawn.argv = std::move(enter);
    spawn.env["AGORA_SANDBOX"] = kRootfsSandbox;
  } else {
    // The task runs confined (isolators/confine.hpp), as its framework's user; the executor
    // stays the agent's. The framework's files go over the host's in a mount namespace of the
    // task's own (as root, before it becomes its user): enter-mounts then confines it too, or
    // the confine helper alone does.
    spawn.argv = asTaskUser(std::move(spawn.argv));
    std::vector<std::string> mounts = writeFiles(task);
    if (!mounts.empty() && ::geteuid() != 0) {
      LOG(WARNING) << "Task " << task.task_id() << ": its files need root; it sees the host's";
      mounts.clear();
    }
    std::vector<std::string> enter = {selfExecutable(), "executor",
                                      mounts.empty() ? "confine" : "enter-mounts"};
    enter.insert(enter.end(), mounts.begin(), mounts.end());
    enter.push_back("--");
    enter.insert(enter.end(), spawn.argv.begin(), spawn.argv.end());
    spawn.argv = std::move(enter);
  }
  if (taskCgroups_ != nullptr) {
    // Its own cgroups, entered before anything of it runs.
    isolators::ContainerSpec spec{task.task_id(), task.task_id(), running.directory,
                                  Resources(task.resources()), {}};
    isolators::Launch wrap;
    if (Status isolated = taskCgroups_->prepare(spec, &wrap); !isolated) {
      LOG(WARNING) << "Task " << task.task_id() << " shares the group's cgroups: "
                   << isolated.error();
    } else {
      wrap.wrapper.insert(wrap.wrapper.end(), spawn.argv.begin(), spawn.argv.end());
      spawn.argv = std::move(wrap.wrapper);
      for (auto& [name, value] : wrap.env) {
        spawn.env[name] = value;
      }
    }
  }
  spawn.cwd = running.directory;
  // A task that asked for stdin reads it from a pipe in its sandbox, open for reading and
  // writing in the task itself so that it stays open between writers.
  // With stdin=once the task reads a plain read end, and this executor holds a write end
  // until the first attach has the pipe: the task reads its end when that attach leaves.
  int stdinPipe = -1;
  for (const Label& label : task.labels()) {
    bool once = label.value() == "once";
    if (label.key() != kStdinLabel || (label.value() != "true" && !once)) continue;
    std::string fifo = running.directory + "/stdin";
    (void)removeAll(running.directory + "/" + kStdinAttached);
    if (::mkfifo(fifo.c_str(), 0600) != 0 && errno != EEXIST) {
      LOG(WARNING) << "Task " << task.task_id() << " gets no stdin: " << std::strerror(errno);
      break;
    }
    if (once) {
      stdinPipe = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (running.stdinHold < 0) running.stdinHold = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
      if (stdinPipe >= 0) ::fcntl(stdinPipe, F_SETFL, 0);
    } else {
      stdinPipe = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
    }
    if (stdinPipe >= 0) spawn.passFds.push_back({stdinPipe, STDIN_FILENO});
  }
  spawn.stdoutPath = running.directory + "/stdout";
  spawn.stderrPath = running.directory + (task.command().merge_output() ? "/stdout" : "/stderr");
  spawn.newProcessGroup = true;
  auto pid = spawnProcess(spawn);
  if (stdinPipe >= 0) ::close(stdinPipe);
  if (!pid) {
    running.ended = true;
    if (taskCgroups_ != nullptr) {
      (void)taskCgroups_->cleanup(task.task_id());
    }
    send(driver, task.task_id(), TASK_FAILED, "cannot start the command: " + pid.error(),
         TaskStatus::REASON_COMMAND_EXECUTOR_FAILED);
    exitWhenDone(driver);
    return;
  }
  running.pid = *pid;
  byPid_[*pid] = task.task_id();
  running.loggedSize = -1;
  recordOutputTimes(driver, task.task_id());
  LOG(INFO) << "Task " << task.task_id() << " started as pid " << *pid
            << (running.restarts > 0 ? " (restart " + std::to_string(running.restarts) + ")"
                                     : "")
            << ": " << command.value();
  send(driver, task.task_id(), TASK_RUNNING,
       running.restarts > 0 ? "restarted (" + std::to_string(running.restarts) + ")" : "");
  running.startedAt = std::chrono::steady_clock::now();
  running.checker.reset();
  running.readiness.reset();
  running.ready.reset();
  running.unhealthy.clear();
  startHealthCheck(driver, running);
  startReadinessCheck(driver, running);
}

void CommandExecutor::noteOutputTime(Running& task) {
  struct stat output {};
  if (::stat((task.directory + "/stdout").c_str(), &output) != 0 ||
      output.st_size == task.loggedSize) {
    return;
  }
  task.loggedSize = output.st_size;
  double now = std::chrono::duration<double>(
                   std::chrono::system_clock::now().time_since_epoch()).count();
  char line[64];
  std::snprintf(line, sizeof(line), "%.3f %lld\n", now, static_cast<long long>(output.st_size));
  std::ofstream(task.directory + "/stdout.times", std::ios::app) << line;
}

void CommandExecutor::recordOutputTimes(ExecutorDriver* driver, const std::string& taskId) {
  auto it = tasks_.find(taskId);
  if (it == tasks_.end() || it->second.pid < 0) {
    if (it != tasks_.end() && it->second.stdinHold >= 0 && it->second.ended) {
      ::close(it->second.stdinHold);
      it->second.stdinHold = -1;
    }
    return;  // ended, or waiting to restart (its end noted it)
  }
  noteOutputTime(it->second);
  Running& task = it->second;
  if (task.stdinHold >= 0 && pathExists(task.directory + "/" + kStdinAttached)) {
    ::close(task.stdinHold);  // the attach that announced itself holds the pipe now
    task.stdinHold = -1;
  }
  driver->after(seconds(1), [this, driver, taskId] { recordOutputTimes(driver, taskId); });
}

void CommandExecutor::startReadinessCheck(ExecutorDriver* driver, Running& task) {
  if (!task.info.has_readiness_check()) {
    return;
  }
  const std::string taskId = task.info.task_id();
  if (Status valid = HealthChecker::validate(task.info.readiness_check()); !valid) {
    LOG(WARNING) << "Task " << taskId << ": its readiness check cannot run: " << valid.error();
    return;
  }
  auto changed = [this, driver, taskId](bool ready, const std::string& message) {
    auto it = tasks_.find(taskId);
    if (it == tasks_.end() || it->second.ended || it->second.killing || it->second.pid < 0) {
      return;
    }
    it->second.ready = ready;
    LOG(INFO) << "Task " << taskId << (ready ? " is ready" : " is not ready: " + message);
    send(driver, taskId, TASK_RUNNING, ready ? "ready" : "not ready: " + message,
         TaskStatus::REASON_TASK_CHECK_STATUS_UPDATED, it->second.healthy);
  };
  std::string output = driver->sandbox() + "/.readiness-" + taskId;
  task.readiness = std::make_unique<HealthChecker>(driver, task.info.readiness_check(),
                                                   selfExecutable(), output,
                                                   helperRunner(driver, taskId), changed,
                                                   [](const std::string&) {});
  task.readiness->reportOnly();
  task.readiness->start();
}

bool CommandExecutor::restarts(const Running& task, bool failed) const {
  const RestartPolicy& policy = task.info.restart_policy();
  if (shuttingDown_ || (task.killing && task.unhealthy.empty())) {
    return false;  // killed on request: it stays killed
  }
  if (policy.max_restarts() > 0 && task.restarts >= policy.max_restarts()) {
    return false;
  }
  return policy.mode() == RestartPolicy::ALWAYS ||
         (policy.mode() == RestartPolicy::ON_FAILURE && failed);
}

void CommandExecutor::commandEnded(ExecutorDriver* driver, Running& task, int status) {
  const std::string taskId = task.info.task_id();
  task.pid = -1;
  noteOutputTime(task);
  driver->cancel(task.escalation);
  task.escalation = 0;
  if (task.checker) {
    task.checker->stop();
  }
  if (task.readiness) {
    task.readiness->stop();
  }
  task.ready.reset();
  std::optional<isolators::Limitation> limit;
  if (taskCgroups_ != nullptr) {
    limit = taskCgroups_->limitation(taskId);
    (void)taskCgroups_->cleanup(taskId);
  }
  TaskState state;
  std::string message;
  TaskStatus::Reason reason = TaskStatus::REASON_NONE;
  if (!task.unhealthy.empty()) {
    state = TASK_KILLED;
    message = "Killed: it " + task.unhealthy;
    reason = TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED;
  } else if (limit) {
    state = TASK_FAILED;
    message = "Command " + describeWaitStatus(status) + ": " + limit->message;
    reason = limit->reason;
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
  if (restarts(task, state != TASK_FINISHED)) {
    const RestartPolicy& policy = task.info.restart_policy();
    Duration first = policy.backoff_seconds() > 0 ? fromSeconds(policy.backoff_seconds())
                                                  : seconds(1);
    Duration most = policy.max_backoff_seconds() > 0 ? fromSeconds(policy.max_backoff_seconds())
                                                     : seconds(60);
    // A command that ran well for ten minutes starts its back-off afresh (as the kubelet does).
    if (std::chrono::steady_clock::now() - task.startedAt >= std::chrono::minutes(10)) {
      task.backoff = Duration::zero();
    }
    task.backoff = task.backoff == Duration::zero() ? first : std::min(task.backoff * 2, most);
    ++task.restarts;
    task.killing = false;
    // The run that ended keeps its output beside the next one's (kubectl logs --previous).
    for (const char* name : {"stdout", "stderr", "stdout.times"}) {
      std::string file = task.directory + "/" + name;
      std::rename(file.c_str(), (file + ".previous").c_str());
    }
    LOG(INFO) << "Task " << taskId << ": " << message << "; restarting it in "
              << formatDuration(task.backoff);
    send(driver, taskId, TASK_RUNNING,
         message + "; restarting in " + formatDuration(task.backoff), reason, task.healthy);
    task.restartTimer = driver->after(task.backoff, [this, driver, taskId] {
      auto it = tasks_.find(taskId);
      if (it != tasks_.end() && !it->second.ended && it->second.pid < 0) {
        it->second.restartTimer = 0;
        start(driver, it->second);
      }
    });
    return;
  }
  task.ended = true;
  LOG(INFO) << "Task " << taskId << ": " << message;
  send(driver, taskId, state, message, reason, task.healthy);
  if (group_ && state == TASK_FAILED) {
    // In a group, one failing task takes the others down.
    for (auto& [id, other] : tasks_) {
      startKill(driver, other, kDefaultKillGraceSeconds);
    }
  }
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
  if (task.pid < 0) {
    // Waiting to restart: nothing runs, so it ends now.
    driver->cancel(task.restartTimer);
    task.ended = true;
    send(driver, task.info.task_id(), TASK_KILLED, "Killed while waiting to restart",
         TaskStatus::REASON_NONE, task.healthy);
    return;
  }
  task.killing = true;
  if (task.checker) {
    task.checker->stop();
  }
  if (task.readiness) {
    task.readiness->stop();
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
    // Whatever the command left running in its process group ends with it.
    ::kill(-pid, SIGKILL);
    commandEnded(driver, tasks_.at(taskId), status);
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
  if (!args.empty() && args[0] == "enter-rootfs") {
    return runInRootfs(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (!args.empty() && args[0] == "enter-mounts") {
    return runWithMounts(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (!args.empty() && args[0] == "confine") {
    return isolators::runConfined(std::vector<std::string>(args.begin() + 1, args.end()));
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
  for (const std::string& dir : filesDirectories()) {
    (void)removeAll(dir);
  }
  return status == DriverStatus::kStopped ? 0 : 1;
}

}  // namespace agora::agent
