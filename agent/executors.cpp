// The agent's side towards executors: launching them, handing them tasks, relaying what they
// report, and cleaning up after them.

#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include <glog/logging.h>

#include "agent/agent.hpp"
#include "agent/checkpoint.hpp"
#include "common/curve.hpp"
#include "common/fs.hpp"
#include "common/ids.hpp"
#include "common/process.hpp"

namespace agora::agent {

namespace {

Task taskFromInfo(const TaskInfo& info, const std::string& frameworkId,
                  const std::string& executorId, const std::string& agentId) {
  Task task;
  task.set_name(info.name());
  task.set_task_id(info.task_id());
  task.set_framework_id(frameworkId);
  task.set_executor_id(executorId);
  task.set_agent_id(agentId);
  task.set_state(TASK_STAGING);
  *task.mutable_resources() = info.resources();
  *task.mutable_labels() = info.labels();
  return task;
}

}  // namespace

Agent::Executor* Agent::findExecutor(const std::string& frameworkId,
                                     const std::string& executorId) {
  auto f = frameworks_.find(frameworkId);
  if (f == frameworks_.end()) {
    return nullptr;
  }
  auto e = f->second.executors.find(executorId);
  return e == f->second.executors.end() ? nullptr : &e->second;
}

Agent::Executor* Agent::findExecutorOfTask(const std::string& frameworkId,
                                           const std::string& taskId) {
  auto f = frameworks_.find(frameworkId);
  if (f == frameworks_.end()) {
    return nullptr;
  }
  for (auto& [eid, executor] : f->second.executors) {
    if (executor.tasks.count(taskId) > 0) {
      return &executor;
    }
  }
  return nullptr;
}

void Agent::sendToExecutor(Executor& executor, const ExecutorEvent& event) {
  if (executor.reconnecting && !event.has_reconnect() && !event.has_heartbeat()) {
    executor.held.push_back(event);
    return;
  }
  Envelope envelope;
  *envelope.mutable_executor_event() = event;
  executors_.send(executor.containerId, envelope);
}

void Agent::agentUpdate(const std::string& frameworkId, const std::string& executorId,
                        const std::string& taskId, TaskState state, TaskStatus::Reason reason,
                        const std::string& message) {
  TaskStatus status;
  status.set_task_id(taskId);
  status.set_state(state);
  status.set_reason(reason);
  status.set_message(message);
  status.set_source(TaskStatus::SOURCE_AGENT);
  status.set_uuid(uuidBytes());
  status.set_timestamp(loop_.wallTime());
  status.set_agent_id(agentId_);
  status.set_executor_id(executorId);
  if (Executor* executor = findExecutor(frameworkId, executorId)) {
    auto task = executor->tasks.find(taskId);
    if (task != executor->tasks.end()) {
      if (!terminal(task->second.state())) {
        task->second.set_state(state);
      }
      *task->second.mutable_status() = status;
      if (terminal(state)) {
        releaseGpus(*executor, false);
      }
      checkpointExecutor(*executor);
    }
  }
  auto framework = frameworks_.find(frameworkId);
  if (framework != frameworks_.end() && framework->second.removed) {
    return;  // nobody is left to tell
  }
  statusUpdates_.update(frameworkId, status);
}

Agent::Executor* Agent::getOrLaunchExecutor(const FrameworkInfo& frameworkInfo,
                                            const ExecutorInfo& info) {
  const std::string& frameworkId = frameworkInfo.id();
  Framework& framework = frameworks_[frameworkId];
  framework.info = frameworkInfo;
  auto existing = framework.executors.find(info.executor_id());
  if (existing != framework.executors.end()) {
    if (existing->second.phase == Executor::Phase::kTerminating) {
      return nullptr;
    }
    return &existing->second;
  }

  Executor& executor = framework.executors[info.executor_id()];
  executor.id = info.executor_id();
  executor.frameworkId = frameworkId;
  executor.containerId = uuidString();
  executor.info = info;
  executor.info.set_framework_id(frameworkId);
  executor.startTime = loop_.wallTime();
  executor.directory = options_.workDir + "/frameworks/" + frameworkId + "/executors/" +
                       executor.id + "/runs/" + executor.containerId;
  byContainer_[executor.containerId] = {frameworkId, executor.id};

  ContainerConfig config;
  config.containerId = executor.containerId;
  config.frameworkId = frameworkId;
  config.executorId = executor.id;
  config.executorInfo = executor.info;
  config.directory = executor.directory;
  config.workDir = options_.workDir;
  config.imageStore = options_.imageStore;
  config.resources = Resources(info.resources());
  for (const char* name : {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "TMPDIR"}) {
    if (const char* value = std::getenv(name)) {
      config.env[name] = value;
    }
  }
  if (config.env.count("PATH") == 0) {
    config.env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  }
  if (info.type() == ExecutorInfo::CUSTOM) {
    const CommandInfo& command = info.command();
    config.shell = !command.has_shell() || command.shell();
    if (config.shell) {
      config.argv = {command.value()};
    } else {
      config.argv.assign(command.arguments().begin(), command.arguments().end());
      if (config.argv.empty()) {
        config.argv = {command.value()};
      } else {
        config.argv[0] = command.value();
      }
    }
    for (const auto& var : command.environment()) {
      config.env[var.name()] = var.value();
    }
    // A framework's own executor is confined as the built-in executors' tasks are.
    config.confine = {options_.executorBinary, "executor", "confine", "--"};
  } else {
    config.argv = {options_.executorBinary, "executor"};
  }
  config.env["AGORA_AGENT_ENDPOINT"] = options_.executorEndpoint;
  if (!options_.executorCurveKey.empty()) {
    // A key pair of its own, admitted as this container alone: no other process on the
    // machine can pose as this executor, or as any.
    CurveKeyPair keys = generateCurveKeyPair();
    executor.curveKey = keys.publicKey;
    options_.admitExecutorKey(keys.publicKey, executor.containerId);
    config.env["AGORA_AGENT_CURVE_KEY"] = options_.executorCurveKey;
    config.env["AGORA_EXECUTOR_CURVE_PUBLIC_KEY"] = keys.publicKey;
    config.env["AGORA_EXECUTOR_CURVE_SECRET_KEY"] = keys.secretKey;
  }
  config.env["AGORA_AGENT_ID"] = agentId_;
  config.env["AGORA_FRAMEWORK_ID"] = frameworkId;
  config.env["AGORA_EXECUTOR_ID"] = executor.id;
  config.env["AGORA_CONTAINER_ID"] = executor.containerId;
  config.env["AGORA_SANDBOX"] = executor.directory;
  config.env["AGORA_RECOVERY_TIMEOUT"] = formatDuration(options_.recoveryTimeout);
  config.env["AGORA_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] =
      formatDuration(options_.executorShutdownGracePeriod);

  Status made = prepareUser(frameworkInfo.user(), &config);
  if (made) {
    made = containerizer_.launch(config);
  }
  ++counters_.executorsLaunched;
  if (!made) {
    LOG(ERROR) << "Could not launch executor " << executor.id << " of framework " << frameworkId
               << ": " << made.error();
    // The caller queues its tasks first; they fail with the reason.
    executor.phase = Executor::Phase::kTerminating;
    loop_.post([this, frameworkId, id = executor.id, why = made.error()] {
      Executor* e = findExecutor(frameworkId, id);
      if (e == nullptr) {
        return;
      }
      failQueuedTasks(*e, TASK_FAILED, TaskStatus::REASON_CONTAINER_LAUNCH_FAILED,
                      "could not start the executor: " + why);
      executorExited(e->containerId, W_EXITCODE(127, 0));
    });
    return &executor;
  }
  VLOG(1) << "Launched executor " << executor.id << " of framework " << frameworkId << " in "
          << executor.directory;
  executor.registrationTimer = loop_.after(options_.executorRegistrationTimeout, [this,
                                                                                  frameworkId,
                                                                                  id = executor.id] {
    Executor* e = findExecutor(frameworkId, id);
    if (e == nullptr || e->phase != Executor::Phase::kLaunching) {
      return;
    }
    LOG(WARNING) << "Executor " << id << " did not subscribe within "
                 << formatDuration(options_.executorRegistrationTimeout) << "; destroying it";
    e->registrationTimer = 0;
    failQueuedTasks(*e, TASK_FAILED, TaskStatus::REASON_EXECUTOR_REGISTRATION_TIMEOUT,
                    "the executor did not start in time");
    e->phase = Executor::Phase::kTerminating;
    containerizer_.destroy(e->containerId);
  });
  return &executor;
}

void Agent::runTask(const FrameworkInfo& framework, const TaskInfo& task) {
  ++counters_.tasksLaunched;
  if (state_ == State::kShuttingDown || findExecutorOfTask(framework.id(), task.task_id())) {
    return;  // a duplicate launch, or too late
  }
  ExecutorInfo info;
  if (task.has_executor()) {
    info = task.executor();
    info.set_type(ExecutorInfo::CUSTOM);
  } else {
    info.set_type(ExecutorInfo::COMMAND);
    info.set_executor_id(task.task_id());
    info.set_name("Command Executor (Task: " + task.task_id() + ")");
  }
  info.set_framework_id(framework.id());
  TaskInfo launched = task;
  if (Status image = prepareImage(launched); !image) {
    agentUpdate(framework.id(), info.executor_id(), task.task_id(), TASK_FAILED,
                TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, image.error());
    return;
  }
  if (Status gpus = enoughGpus(task.resources()); !gpus) {
    agentUpdate(framework.id(), info.executor_id(), task.task_id(), TASK_FAILED,
                TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, gpus.error());
    return;
  }
  Executor* executor = getOrLaunchExecutor(framework, info);
  if (executor == nullptr) {
    agentUpdate(framework.id(), info.executor_id(), task.task_id(), TASK_DROPPED,
                TaskStatus::REASON_EXECUTOR_SHUTDOWN, "its executor is shutting down");
    return;
  }
  assignGpus(*executor, launched);
  linkVolumes(*executor, launched);
  executor->tasks[task.task_id()] = taskFromInfo(task, framework.id(), executor->id, agentId_);
  updateContainer(*executor);
  checkpointExecutor(*executor);
  if (executor->phase == Executor::Phase::kRunning) {
    ExecutorEvent event;
    *event.mutable_launch()->mutable_task() = launched;
    sendToExecutor(*executor, event);
  } else {
    executor->queuedTasks.push_back(launched);
  }
}

void Agent::runTaskGroup(const FrameworkInfo& framework, const ExecutorInfo& executorInfo,
                         const TaskGroupInfo& group) {
  counters_.tasksLaunched += group.tasks_size();
  if (state_ == State::kShuttingDown) {
    return;
  }
  ExecutorInfo info = executorInfo;
  if (info.type() != ExecutorInfo::CUSTOM) {
    info.set_type(ExecutorInfo::DEFAULT);
  }
  info.set_framework_id(framework.id());
  TaskGroupInfo launched = group;
  for (TaskInfo& t : *launched.mutable_tasks()) {
    if (Status image = prepareImage(t); !image) {
      // All or none: the group does not start.
      for (const TaskInfo& each : group.tasks()) {
        agentUpdate(framework.id(), info.executor_id(), each.task_id(), TASK_FAILED,
                    TaskStatus::REASON_CONTAINER_LAUNCH_FAILED,
                    each.task_id() == t.task_id() ? image.error()
                                                  : "another task of its group cannot start: " +
                                                        image.error());
      }
      return;
    }
  }
  Resources groupResources;
  for (const TaskInfo& t : group.tasks()) {
    groupResources += Resources(t.resources());
  }
  if (Status gpus = enoughGpus(groupResources.toProto()); !gpus) {
    for (const TaskInfo& t : group.tasks()) {
      agentUpdate(framework.id(), info.executor_id(), t.task_id(), TASK_FAILED,
                  TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, gpus.error());
    }
    return;
  }
  Executor* executor = getOrLaunchExecutor(framework, info);
  if (executor == nullptr) {
    for (const TaskInfo& t : group.tasks()) {
      agentUpdate(framework.id(), info.executor_id(), t.task_id(), TASK_DROPPED,
                  TaskStatus::REASON_EXECUTOR_SHUTDOWN, "its executor is shutting down");
    }
    return;
  }
  for (TaskInfo& t : *launched.mutable_tasks()) {
    assignGpus(*executor, t);
    linkVolumes(*executor, t);
    executor->tasks[t.task_id()] = taskFromInfo(t, framework.id(), executor->id, agentId_);
  }
  updateContainer(*executor);
  checkpointExecutor(*executor);
  if (executor->phase == Executor::Phase::kRunning) {
    ExecutorEvent event;
    *event.mutable_launch_group()->mutable_task_group() = launched;
    sendToExecutor(*executor, event);
  } else {
    executor->queuedGroups.push_back(launched);
  }
}

void Agent::failQueuedTasks(Executor& executor, TaskState state, TaskStatus::Reason reason,
                            const std::string& message) {
  std::vector<std::string> ids;
  for (const TaskInfo& t : executor.queuedTasks) {
    ids.push_back(t.task_id());
  }
  for (const TaskGroupInfo& g : executor.queuedGroups) {
    for (const TaskInfo& t : g.tasks()) {
      ids.push_back(t.task_id());
    }
  }
  executor.queuedTasks.clear();
  executor.queuedGroups.clear();
  for (const std::string& id : ids) {
    agentUpdate(executor.frameworkId, executor.id, id, state, reason, message);
  }
}

void Agent::killTask(const AgentEvent::KillTask& kill) {
  Executor* executor = findExecutorOfTask(kill.framework_id(), kill.task_id());
  if (executor == nullptr) {
    if (!statusUpdates_.hasStream(kill.framework_id(), kill.task_id())) {
      agentUpdate(kill.framework_id(), "", kill.task_id(), TASK_LOST,
                  TaskStatus::REASON_TASK_UNKNOWN, "the agent does not know this task");
    }
    return;
  }
  auto& task = executor->tasks.at(kill.task_id());
  if (terminal(task.state())) {
    return;
  }
  bool queued = false;
  std::erase_if(executor->queuedTasks, [&](const TaskInfo& t) {
    queued |= t.task_id() == kill.task_id();
    return t.task_id() == kill.task_id();
  });
  for (TaskGroupInfo& g : executor->queuedGroups) {
    for (const TaskInfo& t : g.tasks()) {
      queued |= t.task_id() == kill.task_id();
    }
  }
  if (queued || executor->phase != Executor::Phase::kRunning) {
    // Not started yet: it is killed before it runs. A group is killed whole.
    std::vector<std::string> ids = {kill.task_id()};
    for (auto it = executor->queuedGroups.begin(); it != executor->queuedGroups.end();) {
      bool hit = false;
      for (const TaskInfo& t : it->tasks()) {
        hit |= t.task_id() == kill.task_id();
      }
      if (hit) {
        for (const TaskInfo& t : it->tasks()) {
          if (t.task_id() != kill.task_id()) {
            ids.push_back(t.task_id());
          }
        }
        it = executor->queuedGroups.erase(it);
      } else {
        ++it;
      }
    }
    for (const std::string& id : ids) {
      agentUpdate(executor->frameworkId, executor->id, id, TASK_KILLED,
                  TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH, "killed before it started");
    }
    bool anyLeft = false;
    for (const auto& [id, t] : executor->tasks) {
      anyLeft |= !terminal(t.state());
    }
    if (!anyLeft && executor->phase == Executor::Phase::kLaunching) {
      executor->killedOnRequest = true;
      executor->phase = Executor::Phase::kTerminating;
      containerizer_.destroy(executor->containerId);
    }
    return;
  }
  ExecutorEvent event;
  event.mutable_kill()->set_task_id(kill.task_id());
  if (kill.has_grace_period_seconds()) {
    event.mutable_kill()->set_grace_period_seconds(kill.grace_period_seconds());
  }
  sendToExecutor(*executor, event);
}

void Agent::shutdownExecutor(Executor& executor) {
  if (executor.shutdownTimer != 0) {
    return;
  }
  executor.killedOnRequest = true;
  bool wasRunning = executor.phase == Executor::Phase::kRunning;
  executor.phase = Executor::Phase::kTerminating;
  failQueuedTasks(executor, TASK_KILLED, TaskStatus::REASON_EXECUTOR_SHUTDOWN,
                  "its executor was shut down");
  if (wasRunning) {
    ExecutorEvent event;
    event.mutable_shutdown()->set_grace_period_seconds(
        toSeconds(options_.executorShutdownGracePeriod));
    sendToExecutor(executor, event);
  }
  std::string containerId = executor.containerId;
  Duration grace = wasRunning ? options_.executorShutdownGracePeriod + seconds(1)
                              : Duration::zero();
  executor.shutdownTimer = loop_.after(grace, [this, containerId] {
    auto it = byContainer_.find(containerId);
    if (it == byContainer_.end()) {
      return;
    }
    if (Executor* e = findExecutor(it->second.first, it->second.second)) {
      e->shutdownTimer = 0;
    }
    containerizer_.destroy(containerId);
  });
}

void Agent::shutdownFramework(const std::string& frameworkId) {
  statusUpdates_.cleanupFramework(frameworkId);
  auto f = frameworks_.find(frameworkId);
  if (f == frameworks_.end()) {
    return;
  }
  LOG(INFO) << "Shutting down framework " << frameworkId;
  f->second.removed = true;
  for (auto& [eid, executor] : f->second.executors) {
    shutdownExecutor(executor);
  }
}

void Agent::receiveFromExecutor(const std::string& from, Envelope&& envelope) {
  auto owner = byContainer_.find(from);
  Executor* executor = owner == byContainer_.end()
                           ? nullptr
                           : findExecutor(owner->second.first, owner->second.second);
  if (executor == nullptr || !envelope.has_executor_call()) {
    ++counters_.invalidMessages;
    // A stray executor (its container is gone): tell it to stop.
    ExecutorEvent event;
    event.mutable_shutdown()->set_grace_period_seconds(0);
    Envelope out;
    *out.mutable_executor_event() = event;
    executors_.send(from, out);
    return;
  }
  const ExecutorCall& call = envelope.executor_call();
  if (call.framework_id() != executor->frameworkId || call.executor_id() != executor->id) {
    ++counters_.invalidMessages;
    return;
  }
  if (!options_.executorCurveKey.empty() && envelope.authenticated_principal() != from) {
    // Another connection took this container's routing id: only its own key speaks for it.
    ++counters_.invalidMessages;
    LOG_EVERY_N(WARNING, 100) << "Dropped a message for executor " << executor->id
                              << " from a connection authenticated as '"
                              << envelope.authenticated_principal() << "'";
    return;
  }
  if (executor->reconnecting && !call.has_subscribe()) {
    // It is connected again (this came through): it may subscribe now.
    ExecutorEvent reconnect;
    reconnect.mutable_reconnect();
    sendToExecutor(*executor, reconnect);
  }
  switch (call.call_case()) {
    case ExecutorCall::kSubscribe:
      executorSubscribed(from, *executor, call.subscribe());
      return;
    case ExecutorCall::kUpdate:
      executorUpdate(*executor, call.update().status());
      return;
    case ExecutorCall::kMessage: {
      AgentCall out;
      out.mutable_message()->set_framework_id(executor->frameworkId);
      out.mutable_message()->set_executor_id(executor->id);
      out.mutable_message()->set_data(call.message().data());
      sendToMaster(std::move(out));
      return;
    }
    case ExecutorCall::kHeartbeat:
      return;
    case ExecutorCall::CALL_NOT_SET:
      break;
  }
  ++counters_.invalidMessages;
}

void Agent::executorSubscribed(const std::string& from, Executor& executor,
                               const ExecutorCall::Subscribe& subscribe) {
  loop_.cancel(executor.registrationTimer);
  executor.registrationTimer = 0;
  if (executor.reconnecting) {
    executor.reconnecting = false;
    VLOG(1) << "Executor " << executor.id << " reconnected after the agent's restart";
  }
  if (executor.phase == Executor::Phase::kTerminating) {
    ExecutorEvent event;
    event.mutable_shutdown()->set_grace_period_seconds(0);
    sendToExecutor(executor, event);
    return;
  }
  bool first = executor.phase == Executor::Phase::kLaunching;
  executor.phase = Executor::Phase::kRunning;
  if (!executor.subscribedOnce) {
    executor.subscribedOnce = true;
    checkpointExecutor(executor);
  }

  ExecutorEvent subscribed;
  auto* s = subscribed.mutable_subscribed();
  *s->mutable_executor_info() = executor.info;
  *s->mutable_framework_info() = frameworks_.at(executor.frameworkId).info;
  *s->mutable_agent_info() = options_.info;
  s->set_container_id(executor.containerId);
  sendToExecutor(executor, subscribed);

  for (const TaskStatus& status : subscribe.unacknowledged_updates()) {
    executorUpdate(executor, status);
  }
  std::vector<ExecutorEvent> held = std::move(executor.held);
  executor.held.clear();
  for (const ExecutorEvent& event : held) {
    sendToExecutor(executor, event);
  }
  if (!first) {
    return;
  }
  for (const TaskInfo& task : executor.queuedTasks) {
    ExecutorEvent event;
    *event.mutable_launch()->mutable_task() = task;
    sendToExecutor(executor, event);
  }
  for (const TaskGroupInfo& group : executor.queuedGroups) {
    ExecutorEvent event;
    *event.mutable_launch_group()->mutable_task_group() = group;
    sendToExecutor(executor, event);
  }
  executor.queuedTasks.clear();
  executor.queuedGroups.clear();
}

void Agent::executorUpdate(Executor& executor, const TaskStatus& incoming) {
  auto task = executor.tasks.find(incoming.task_id());
  if (task == executor.tasks.end() || incoming.uuid().size() != 16 ||
      !TaskState_IsValid(incoming.state())) {
    ++counters_.invalidMessages;
    LOG_EVERY_N(WARNING, 100) << "Executor " << executor.id
                              << " sent an update for an unknown task or without a uuid";
    return;
  }
  TaskStatus status = incoming;
  status.set_source(TaskStatus::SOURCE_EXECUTOR);
  status.set_agent_id(agentId_);
  status.set_executor_id(executor.id);
  if (status.timestamp() == 0) {
    status.set_timestamp(loop_.wallTime());
  }
  if (status.state() == TASK_FAILED) {
    // A task the kernel killed for its container's limit failed because of the limit.
    if (auto limit = limitationOf(executor)) {
      status.set_reason(limit->reason);
      status.set_message(limit->message);
      status.set_source(TaskStatus::SOURCE_AGENT);
    }
  }
  bool fresh = frameworks_.at(executor.frameworkId).removed ||
               statusUpdates_.update(executor.frameworkId, status);
  if (fresh) {
    if (!terminal(task->second.state())) {
      task->second.set_state(status.state());
    }
    *task->second.mutable_status() = status;
    if (terminal(status.state())) {
      releaseGpus(executor, false);
    }
    checkpointExecutor(executor);
  }
  // Recorded: the executor may forget it.
  ExecutorEvent ack;
  ack.mutable_acknowledged()->set_task_id(status.task_id());
  ack.mutable_acknowledged()->set_uuid(status.uuid());
  sendToExecutor(executor, ack);
}

void Agent::executorExited(const std::string& containerId, int waitStatus) {
  auto owner = byContainer_.find(containerId);
  if (owner == byContainer_.end()) {
    return;
  }
  auto [frameworkId, executorId] = owner->second;
  Executor* executor = findExecutor(frameworkId, executorId);
  if (executor == nullptr) {
    byContainer_.erase(owner);
    return;
  }
  ++counters_.executorsExited;
  std::string how = describeWaitStatus(waitStatus);
  VLOG(1) << "Executor " << executorId << " of framework " << frameworkId << " " << how;
  loop_.cancel(executor->registrationTimer);
  loop_.cancel(executor->shutdownTimer);

  TaskStatus::Reason reason = TaskStatus::REASON_EXECUTOR_TERMINATED;
  std::string message = "executor " + how;
  if (auto limit = limitationOf(*executor)) {
    reason = limit->reason;
    message = limit->message;
  }
  failQueuedTasks(*executor, executor->killedOnRequest ? TASK_KILLED : TASK_FAILED, reason,
                  message);
  std::vector<std::string> unfinished;
  for (const auto& [id, task] : executor->tasks) {
    if (!terminal(task.state())) {
      unfinished.push_back(id);
    }
  }
  for (const std::string& id : unfinished) {
    agentUpdate(frameworkId, executorId, id,
                executor->killedOnRequest ? TASK_KILLED : TASK_FAILED, reason, message);
  }

  if (state_ == State::kRegistered) {
    AgentCall call;
    call.mutable_executor_exited()->set_framework_id(frameworkId);
    call.mutable_executor_exited()->set_executor_id(executorId);
    call.mutable_executor_exited()->set_status(waitStatus);
    sendToMaster(std::move(call));
  }

  CompletedExecutor completed;
  completed.id = executorId;
  completed.frameworkId = frameworkId;
  completed.containerId = containerId;
  completed.directory = executor->directory;
  completed.exit = how;
  completed.tasks.assign(executor->completedTasks.begin(), executor->completedTasks.end());
  for (const auto& [id, task] : executor->tasks) {
    completed.tasks.emplace_back(id, task.state());
  }
  completedExecutors_.push_back(std::move(completed));
  while (completedExecutors_.size() > options_.maxCompletedExecutors) {
    completedExecutors_.pop_front();
  }

  releaseGpus(*executor, true);
  byContainer_.erase(containerId);
  if (!executor->curveKey.empty() && options_.forgetExecutorKey) {
    options_.forgetExecutorKey(executor->curveKey);
  }
  if (options_.checkpoint) {
    if (Status removed = checkpoint::removeExecutor(metaDir(), containerId); !removed) {
      LOG(WARNING) << removed.error();
    }
  }
  Framework& framework = frameworks_.at(frameworkId);
  framework.executors.erase(executorId);
  if (framework.executors.empty()) {
    frameworks_.erase(frameworkId);
  }

  if (state_ == State::kShuttingDown && shutdownDone_) {
    bool any = false;
    for (const auto& [fid, f] : frameworks_) {
      any |= !f.executors.empty();
    }
    if (!any) {
      auto done = std::move(shutdownDone_);
      shutdownDone_ = nullptr;
      done();
    }
  }
}

void Agent::forgetAcknowledgedTask(Executor& executor, const std::string& taskId) {
  // A long-lived executor runs many tasks over time: once a task's terminal update is
  // acknowledged it moves to the executor's short list of completed tasks.
  auto it = executor.tasks.find(taskId);
  if (it == executor.tasks.end() || !terminal(it->second.state()) ||
      executor.phase != Executor::Phase::kRunning) {
    return;
  }
  executor.completedTasks.emplace_back(taskId, it->second.state());
  if (executor.completedTasks.size() > 1000) {
    executor.completedTasks.pop_front();
  }
  executor.tasks.erase(it);
  checkpointExecutor(executor);
}

void Agent::heartbeatExecutors() {
  ExecutorEvent heartbeat;
  heartbeat.mutable_heartbeat();
  for (auto& [fid, framework] : frameworks_) {
    for (auto& [eid, executor] : framework.executors) {
      if (executor.phase == Executor::Phase::kRunning) {
        sendToExecutor(executor, heartbeat);
      }
    }
  }
  heartbeatTimer_ = loop_.after(options_.executorHeartbeatInterval, [this] { heartbeatExecutors(); });
}

}  // namespace agora::agent
