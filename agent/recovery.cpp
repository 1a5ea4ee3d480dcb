// The agent's checkpoint and its recovery after a restart: what is written under
// <work_dir>/meta as executors and tasks come and go, and how a new agent process takes it
// all back.

#include <glog/logging.h>

#include "agent/agent.hpp"
#include "agent/checkpoint.hpp"
#include "common/process.hpp"

namespace agora::agent {

void Agent::checkpointAgent() {
  if (!options_.checkpoint) {
    return;
  }
  checkpoint::AgentRecord record;
  *record.mutable_info() = options_.info;
  record.set_boot_id(checkpoint::bootId());
  if (Status written = checkpoint::writeAgent(metaDir(), record); !written) {
    LOG(ERROR) << "Cannot checkpoint the agent (a restart would not take its executors back): "
               << written.error();
  }
}

void Agent::checkpointExecutor(const Executor& executor) {
  if (!options_.checkpoint) {
    return;
  }
  auto process = containerizer_.process(executor.containerId);
  if (!process) {
    return;  // not running (yet, or any more)
  }
  checkpoint::ExecutorRecord record;
  auto framework = frameworks_.find(executor.frameworkId);
  if (framework != frameworks_.end()) {
    *record.mutable_framework() = framework->second.info;
  }
  *record.mutable_info() = executor.info;
  record.set_container_id(executor.containerId);
  record.set_directory(executor.directory);
  record.set_pid(process->pid);
  record.set_pid_start_ticks(process->startTicks);
  record.set_start_time(executor.startTime);
  record.set_subscribed(executor.subscribedOnce);
  record.set_curve_key(executor.curveKey);
  for (const auto& [id, task] : executor.tasks) {
    *record.add_tasks() = task;
  }
  for (const auto& [taskId, positions] : executor.gpus) {
    auto* gpus = record.add_gpus();
    gpus->set_task_id(taskId);
    for (size_t p : positions) {
      gpus->add_gpus(options_.gpus[p].index);
    }
  }
  if (Status written = checkpoint::writeExecutor(metaDir(), record); !written) {
    LOG(ERROR) << "Cannot checkpoint executor " << executor.id << ": " << written.error();
  }
}

Status Agent::recover() {
  if (!options_.checkpoint) {
    return ok();
  }
  const std::string meta = metaDir();
  auto record = checkpoint::readAgent(meta);
  if (!record) {
    return Error("cannot recover: " + record.error() + " (remove " + meta +
                 " to start this agent afresh, as a new agent)");
  }
  // The status update streams first: they hold the latest state of every task.
  for (const std::string& error : statusUpdates_.recover()) {
    LOG(ERROR) << "Set aside an unreadable status update stream: " << error;
  }
  if (!record->has_value()) {
    return ok();  // the first run on this work directory
  }
  const checkpoint::AgentRecord& agent = **record;
  agentId_ = agent.info().id();
  options_.info.set_id(agentId_);
  if (agent.info().hostname() != options_.info.hostname()) {
    LOG(WARNING) << "This agent ran as " << agent.info().hostname() << " before and as "
                 << options_.info.hostname() << " now";
  }
  if (Resources(agent.info().resources()) != Resources(options_.info.resources())) {
    LOG(WARNING) << "This agent's resources changed from " << Resources(agent.info().resources())
                 << " to " << Resources(options_.info.resources())
                 << "; it re-registers with the new ones";
  }
  bool rebooted = !agent.boot_id().empty() && agent.boot_id() != checkpoint::bootId();
  if (rebooted) {
    LOG(WARNING) << "The machine rebooted since the agent last ran: none of its executors "
                    "survived";
  }
  auto executors = checkpoint::readExecutors(meta);
  for (const std::string& error : executors.errors) {
    LOG(ERROR) << "Cannot take back an executor: " << error;
  }
  for (const checkpoint::ExecutorRecord& executor : executors.records) {
    recoverExecutor(executor, rebooted);
  }
  // Tasks ended while the agent was away but not yet acknowledged only have their streams.
  size_t running = 0;
  for (const auto& [fid, framework] : frameworks_) {
    for (const auto& [eid, executor] : framework.executors) {
      running += executor.reconnecting ? 1 : 0;
    }
  }
  LOG(INFO) << "Recovered agent " << agentId_ << ": " << running << " executors to reconnect, "
            << statusUpdates_.pending() << " status updates to deliver";
  if (running > 0) {
    TimePoint deadline = loop_.now() + options_.executorReregistrationTimeout;
    loop_.post([this, deadline] { reconnectExecutors(deadline); });
  }
  return ok();
}

void Agent::recoverExecutor(const checkpoint::ExecutorRecord& record, bool rebooted) {
  const std::string& frameworkId = record.info().framework_id();
  const std::string& containerId = record.container_id();
  Framework& framework = frameworks_[frameworkId];
  if (framework.info.id().empty()) {
    framework.info = record.framework();
  }
  if (framework.executors.count(record.info().executor_id()) > 0) {
    // Two runs of one executor: only one can have been current. The other goes.
    LOG(WARNING) << "Two checkpointed runs of executor " << record.info().executor_id()
                 << "; destroying run " << containerId;
    if (containerizer_.recover(containerId, {record.pid(), record.pid_start_ticks()})) {
      containerizer_.destroy(containerId);
    }
    (void)checkpoint::removeExecutor(metaDir(), containerId);
    return;
  }
  Executor& executor = framework.executors[record.info().executor_id()];
  executor.id = record.info().executor_id();
  executor.frameworkId = frameworkId;
  executor.containerId = containerId;
  executor.directory = record.directory();
  executor.info = record.info();
  executor.startTime = record.start_time();
  executor.subscribedOnce = record.subscribed();
  for (const Task& task : record.tasks()) {
    Task& mine = executor.tasks[task.task_id()] = task;
    // The stream may be ahead of the record (the agent stopped between writing the two).
    auto latest = statusUpdates_.latest(frameworkId, task.task_id());
    if (latest && !terminal(mine.state())) {
      mine.set_state(*latest);
    }
  }
  byContainer_[containerId] = {frameworkId, executor.id};
  executor.curveKey = record.curve_key();
  if (!executor.curveKey.empty() && options_.admitExecutorKey) {
    options_.admitExecutorKey(executor.curveKey, containerId);  // so that it can reconnect
  }
  gpuUsed_.resize(options_.gpus.size(), false);
  for (const auto& given : record.gpus()) {
    for (uint32_t index : given.gpus()) {
      size_t p = 0;
      while (p < options_.gpus.size() && options_.gpus[p].index != index) {
        ++p;
      }
      if (p == options_.gpus.size()) {
        LOG(WARNING) << "Task " << given.task_id() << " had GPU " << index
                     << ", which this agent no longer has";
        continue;
      }
      gpuUsed_[p] = true;
      executor.gpus[given.task_id()].push_back(p);
    }
  }

  bool alive =
      !rebooted && containerizer_.recover(containerId, {record.pid(), record.pid_start_ticks()});
  if (!alive) {
    LOG(WARNING) << "Executor " << executor.id << " of framework " << frameworkId
                 << " exited while the agent was away";
    executor.phase = Executor::Phase::kTerminating;
    executor.limitation = Limitation{TaskStatus::REASON_EXECUTOR_TERMINATED,
                                     "its executor exited while the agent was away"};
    loop_.post([this, containerId] { executorExited(containerId, kUnknownWaitStatus); });
    return;
  }
  if (!record.subscribed()) {
    // Its tasks were never handed to it: start again is the framework's call.
    LOG(WARNING) << "Executor " << executor.id
                 << " had not started before the agent "
                    "stopped; destroying it";
    executor.phase = Executor::Phase::kTerminating;
    executor.limitation = Limitation{TaskStatus::REASON_AGENT_RESTARTED,
                                     "the agent restarted before the task's executor had started"};
    containerizer_.destroy(containerId);
    return;
  }
  executor.phase = Executor::Phase::kRunning;
  executor.reconnecting = true;
  updateContainer(executor);  // the containerizer learns its limits and devices again
  VLOG(1) << "Took back executor " << executor.id << " of framework " << frameworkId << " with "
          << executor.tasks.size() << " tasks";
}

void Agent::reconnectExecutors(TimePoint deadline) {
  bool waiting = false;
  ExecutorEvent reconnect;
  reconnect.mutable_reconnect();
  std::vector<Executor*> late;
  for (auto& [fid, framework] : frameworks_) {
    for (auto& [eid, executor] : framework.executors) {
      if (!executor.reconnecting) {
        continue;
      }
      if (loop_.now() >= deadline) {
        late.push_back(&executor);
      } else {
        waiting = true;
        sendToExecutor(executor, reconnect);
      }
    }
  }
  for (Executor* executor : late) {
    LOG(WARNING) << "Executor " << executor->id << " did not reconnect within "
                 << formatDuration(options_.executorReregistrationTimeout)
                 << " of the agent's restart; destroying it";
    executor->reconnecting = false;
    executor->phase = Executor::Phase::kTerminating;
    executor->limitation = Limitation{TaskStatus::REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
                                      "its executor did not reconnect after the agent restarted"};
    containerizer_.destroy(executor->containerId);
  }
  if (waiting) {
    // The executors' sockets reconnect on their own (ZeroMQ retries every 100ms); until then a
    // message to them is dropped, so ask again.
    loop_.after(milliseconds(50), [this, deadline] { reconnectExecutors(deadline); });
  }
}

}  // namespace agora::agent
