// Framework lifecycle: subscription bookkeeping, liveness, failover and removal.

#include <glog/logging.h>

#include "master/master.hpp"

namespace agora::master {

Master::FrameworkEntry& Master::addFramework(const std::string& id, const FrameworkInfo& info,
                                             const std::string& connection) {
  FrameworkEntry& framework = frameworks_[id];
  framework.info = info;
  framework.info.set_id(id);
  framework.connection = connection;
  framework.active = !connection.empty();
  framework.lastSeen = loop_.now();
  framework.registeredTime = loop_.wallTime();
  for (int c : info.capabilities()) {
    framework.partitionAware |= c == FrameworkInfo::PARTITION_AWARE;
    framework.killingState |= c == FrameworkInfo::TASK_KILLING_STATE;
  }
  if (!connection.empty()) {
    frameworkByConnection_[connection] = id;
  }
  allocator_->addFramework(id, framework.info, framework.active);
  return framework;
}

void Master::sendToFramework(const FrameworkEntry& framework, const SchedulerEvent& event) {
  if (framework.connection.empty()) {
    return;
  }
  Envelope envelope;
  *envelope.mutable_scheduler_event() = event;
  if (!transport_.send(framework.connection, envelope)) {
    ++metrics_.dropped["send_failed"];
  }
}

void Master::sendSchedulerError(const std::string& to, ErrorCode code,
                                const std::string& message) {
  Envelope envelope;
  auto* error = envelope.mutable_scheduler_event()->mutable_error();
  error->set_code(code);
  error->set_message(message);
  transport_.send(to, envelope);
}

void Master::checkFrameworkLiveness() {
  Duration silence = options_.frameworkHeartbeatInterval * options_.maxFrameworkHeartbeatMisses;
  SchedulerEvent heartbeat;
  heartbeat.mutable_heartbeat();
  std::vector<std::string> silent;
  for (auto& [id, framework] : frameworks_) {
    if (framework.connection.empty()) {
      continue;
    }
    if (loop_.now() - framework.lastSeen > silence) {
      silent.push_back(id);
      continue;
    }
    sendToFramework(framework, heartbeat);
  }
  for (const std::string& id : silent) {
    disconnectFramework(frameworks_.at(id), "no heartbeat for " + formatDuration(silence));
  }
}

void Master::disconnectFramework(FrameworkEntry& framework, const std::string& why,
                                 std::optional<Duration> failoverOverride) {
  const std::string id = framework.info.id();
  LOG(INFO) << "Framework " << id << " (" << framework.info.name() << ") disconnected: " << why;
  frameworkByConnection_.erase(framework.connection);
  framework.connection.clear();
  framework.unregisteredTime = loop_.wallTime();
  if (framework.active) {
    framework.active = false;
    allocator_->deactivateFramework(id);
  }
  rescindOffersOf(framework);

  Duration failover = failoverOverride.value_or(fromSeconds(framework.info.failover_timeout()));
  if (failover <= Duration::zero()) {
    removeFramework(id, "disconnected with no failover timeout");
    return;
  }
  loop_.cancel(framework.failoverTimer);
  framework.failoverTimer = loop_.after(failover, [this, id, failover] {
    FrameworkEntry* f = findFramework(id);
    if (f != nullptr && f->connection.empty()) {
      f->failoverTimer = 0;
      removeFramework(id, "did not resubscribe within its failover timeout of " +
                              formatDuration(failover));
    }
  });
}

void Master::removeFramework(const std::string& frameworkId, const std::string& why) {
  auto it = frameworks_.find(frameworkId);
  if (it == frameworks_.end()) {
    return;
  }
  FrameworkEntry& framework = it->second;
  LOG(INFO) << "Removing framework " << frameworkId << " (" << framework.info.name()
            << "): " << why;
  registry::Operation forget;
  forget.set_remove_framework(frameworkId);
  persist(std::move(forget), [] {});
  loop_.cancel(framework.failoverTimer);
  rescindOffersOf(framework);

  // Agents stop the framework's executors; its tasks end with it.
  std::set<std::string> agentIds;
  for (auto& [taskId, task] : framework.tasks) {
    agentIds.insert(task.agent_id());
    if (AgentEntry* agent = findAgent(task.agent_id())) {
      if (!isTerminalState(task.state())) {
        agent->used -= Resources(task.resources());
      }
      auto byFramework = agent->tasks.find(frameworkId);
      if (byFramework != agent->tasks.end()) {
        byFramework->second.erase(taskId);
        if (byFramework->second.empty()) {
          agent->tasks.erase(byFramework);
        }
      }
    }
  }
  for (const std::string& agentId : agentIds) {
    if (AgentEntry* agent = findAgent(agentId)) {
      AgentEvent event;
      event.mutable_shutdown_framework()->set_framework_id(frameworkId);
      sendToAgent(*agent, event);
    }
  }
  allocator_->removeFramework(frameworkId);
  if (!framework.connection.empty()) {
    frameworkByConnection_.erase(framework.connection);
  }
  framework.unregisteredTime = loop_.wallTime();
  ++metrics_.frameworksRemoved;

  removedFrameworkIds_.insert(frameworkId);
  // What was still running ends with the framework; keep it in view as killed.
  for (auto& [taskId, task] : framework.tasks) {
    if (!isTerminalState(task.state())) {
      *task.mutable_status() = masterStatus(taskId, task.agent_id(), TASK_KILLED,
                                            TaskStatus::REASON_FRAMEWORK_REMOVED, why);
      task.set_state(TASK_KILLED);
    }
    framework.completedTasks.push_back(std::move(task));
  }
  while (framework.completedTasks.size() > options_.maxCompletedTasksPerFramework) {
    framework.completedTasks.pop_front();
  }
  framework.tasks.clear();
  framework.offers.clear();
  completedFrameworks_.emplace_back(frameworkId, std::move(framework));
  frameworks_.erase(it);
  while (completedFrameworks_.size() > options_.maxCompletedFrameworks) {
    completedFrameworks_.pop_front();
  }
  requestAllocation();
}

}  // namespace agora::master
