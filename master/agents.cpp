// Agents: registration, re-registration, liveness, removal, and what they report.

#include <glog/logging.h>

#include "common/ids.hpp"
#include "master/master.hpp"

namespace agora::master {

namespace {

Status validateAgentInfo(const AgentInfo& info) {
  if (info.hostname().empty()) {
    return Error("AgentInfo.hostname is required");
  }
  Status s = Resources::validate(info.resources());
  if (!s) {
    return Error("invalid agent resources: " + s.error());
  }
  for (const Resource& r : info.resources()) {
    if (!r.disk().persistence_id().empty()) {
      return Error("an agent cannot bring persistent volumes in its total resources");
    }
  }
  return ok();
}

}  // namespace

void Master::handleAgentCall(const std::string& from, const std::string& principal,
                             AgentCall& call) {
  if (call.has_register_()) {
    registerAgent(from, principal, call.register_());
    return;
  }
  if (call.has_reregister()) {
    reregisterAgent(from, principal, call.agent_id(), *call.mutable_reregister());
    return;
  }
  AgentEntry* agent = findAgent(call.agent_id());
  // A peer with other credentials that took the agent's routing id over is not the agent.
  if (agent == nullptr || agent->connection != from || agent->principal != principal) {
    ++metrics_.dropped["unknown_agent"];
    sendAgentError(from, ERROR_UNKNOWN_AGENT,
                   "agent '" + call.agent_id() + "' is not registered with master " +
                       options_.info.id() + "; re-register");
    return;
  }
  switch (call.call_case()) {
    case AgentCall::kPong:
      if (call.pong().master_id() == options_.info.id()) {
        agent->pongPending = false;
        agent->missedPings = 0;
      }
      return;
    case AgentCall::kStatusUpdate:
      statusUpdate(*agent, call.status_update());
      return;
    case AgentCall::kExecutorExited:
      executorExited(*agent, call.executor_exited());
      return;
    case AgentCall::kUsage:
      // Only for tasks this master knows the agent runs: nothing else is kept.
      for (const auto& container : call.usage().containers()) {
        auto tasks = agent->tasks.find(container.framework_id());
        if (tasks == agent->tasks.end()) {
          continue;
        }
        for (const std::string& taskId : container.task_ids()) {
          if (tasks->second.count(taskId) > 0) {
            agent->usage[container.framework_id() + "/" + taskId] = container.statistics();
          }
        }
      }
      return;
    case AgentCall::kMessage: {
      FrameworkEntry* framework = findFramework(call.message().framework_id());
      if (framework == nullptr) {
        ++metrics_.dropped["unknown_framework"];
        return;
      }
      SchedulerEvent event;
      auto* m = event.mutable_message();
      m->set_agent_id(agent->info.id());
      m->set_executor_id(call.message().executor_id());
      m->set_data(call.message().data());
      sendToFramework(*framework, event);
      return;
    }
    default:
      ++metrics_.dropped["malformed"];
      return;
  }
}

void Master::sendToAgent(const AgentEntry& agent, const AgentEvent& event) {
  Envelope envelope;
  *envelope.mutable_agent_event() = event;
  if (!transport_.send(agent.connection, envelope)) {
    ++metrics_.dropped["send_failed"];
  }
}

void Master::sendAgentError(const std::string& to, ErrorCode code, const std::string& message) {
  Envelope envelope;
  auto* error = envelope.mutable_agent_event()->mutable_error();
  error->set_code(code);
  error->set_message(message);
  transport_.send(to, envelope);
}

void Master::registerAgent(const std::string& from, const std::string& principal,
                           const AgentCall::Register& reg) {
  auto known = agentByConnection_.find(from);
  if (known != agentByConnection_.end()) {
    if (AgentEntry* agent = findAgent(known->second)) {
      sendToAgent(*agent, registered(agent->info.id()));  // a retry gets the same answer
    }
    return;
  }
  if (pendingRegistrations_.count(from) > 0) {
    return;  // being admitted: the answer follows
  }
  Status valid = validateAgentInfo(reg.agent_info());
  if (!valid) {
    ++metrics_.invalidCalls;
    sendAgentError(from, ERROR_INVALID, "registration refused: " + valid.error());
    return;
  }
  if (options_.acls.enabled() &&
      !authorized(AclAction::kRegisterAgents, principal, "",
                  "agent at " + reg.agent_info().hostname())) {
    sendAgentError(from, ERROR_UNAUTHORIZED,
                   "registration refused: the ACLs do not let " +
                       (principal.empty() ? std::string("an anonymous agent")
                                          : "principal '" + principal + "'") +
                       " register agents (register_agents)");
    return;
  }
  std::string id = options_.info.id() + "-S" + std::to_string(nextAgentNumber_++);
  AgentInfo info = reg.agent_info();
  info.set_id(id);
  pendingRegistrations_[from] = id;
  registry::Operation admit;
  *admit.mutable_admit_agent() = info;
  // Admitted in the registry before the agent hears it is registered.
  persist(std::move(admit), [this, from, principal, info] {
    pendingRegistrations_.erase(from);
    const std::string& id = info.id();
    AgentEntry& agent = agents_[id];
    agent.info = info;
    agent.connection = from;
    agent.principal = principal;
    setAgentTotal(agent, Resources(agent.info.resources()));
    agent.registeredTime = loop_.wallTime();
    agentByConnection_[from] = id;
    allocator_->addAgent(id, agent.info, agent.total);
    ++metrics_.agentsRegistered;
    LOG(INFO) << "Registered agent " << id << " at " << agent.info.hostname() << " ("
              << agent.info.address() << ") with " << agent.total;
    sendToAgent(agent, registered(id));
    if (maintenance_.count(agent.info.hostname()) > 0) {
      evaluateMaintenance();  // a machine under maintenance is not offered
    }
    requestAllocation(id);
  });
}

void Master::setAgentTotal(AgentEntry& agent, const Resources& reported) {
  agent.checkpointed = Resources();
  auto known = checkpointed_.find(agent.info.id());
  if (known != checkpointed_.end()) {
    auto total = applyCheckpointed(reported, known->second);
    if (total) {
      agent.total = *total;
      agent.checkpointed = known->second;
      agent.planned = known->second;
      return;
    }
    LOG(WARNING) << "Agent " << agent.info.id() << " at " << agent.info.hostname()
                 << ": its recorded reservations and volumes do not fit what it reports, so "
                    "they are not offered: "
                 << total.error();
  }
  agent.total = reported;
  agent.planned = agent.checkpointed;
}

void Master::sendCheckpointed(AgentEntry& agent, const Resources& destroyedVolumes) {
  AgentEvent event;
  agent.checkpointed.copyTo(event.mutable_update_resources()->mutable_checkpointed());
  destroyedVolumes.copyTo(event.mutable_update_resources()->mutable_destroyed_volumes());
  sendToAgent(agent, event);
}

AgentEvent Master::registered(const std::string& agentId) const {
  AgentEvent event;
  event.mutable_registered()->set_agent_id(agentId);
  *event.mutable_registered()->mutable_master_info() = options_.info;
  event.mutable_registered()->set_ping_timeout_seconds(
      toSeconds(options_.agentPingTimeout * (options_.maxAgentPingTimeouts + 1)));
  return event;
}

void Master::reregisterAgent(const std::string& from, const std::string& principal,
                             const std::string& agentId, AgentCall::Reregister& reg) {
  Status valid = validateId(agentId, "agent id");
  if (valid) {
    valid = validateAgentInfo(reg.agent_info());
  }
  if (valid) {
    for (const Task& task : reg.tasks()) {
      valid = validateId(task.task_id(), "task id");
      if (valid) {
        valid = validateId(task.framework_id(), "framework id");
      }
      if (valid) {
        valid = Resources::validate(task.resources());
      }
      if (!valid) {
        break;
      }
    }
  }
  if (!valid) {
    ++metrics_.invalidCalls;
    sendAgentError(from, ERROR_INVALID, "re-registration refused: " + valid.error());
    return;
  }
  if (options_.acls.enabled() &&
      !authorized(AclAction::kRegisterAgents, principal, "",
                  "agent " + agentId + " at " + reg.agent_info().hostname())) {
    sendAgentError(from, ERROR_UNAUTHORIZED,
                   "re-registration refused: the ACLs do not let " +
                       (principal.empty() ? std::string("an anonymous agent")
                                          : "principal '" + principal + "'") +
                       " register agents (register_agents)");
    return;
  }

  if (AgentEntry* agent = findAgent(agentId)) {
    // Known and connected to this master: a new connection, or a retry.
    VLOG(1) << "Agent " << agentId << " re-registers from " << from << " (was "
            << agent->connection << ")";
    if (agent->connection != from) {
      agentByConnection_.erase(agent->connection);
      agent->connection = from;
      agentByConnection_[from] = agentId;
    }
    agent->principal = principal;
    agent->missedPings = 0;
    agent->pongPending = false;
    if (agent->info.address() != reg.agent_info().address()) {
      // A restarted agent process listens somewhere new.
      LOG(INFO) << "Agent " << agentId << " is at " << reg.agent_info().address() << " now";
      agent->info.set_address(reg.agent_info().address());
    }
    dropTasksTheAgentLacks(*agent, reg);
    agent->reregisteredTime = loop_.wallTime();
    ++metrics_.agentsReregistered;
    sendToAgent(*agent, registered(agentId));
    return;
  }
  if (pendingAdmissions_.count(agentId) > 0) {
    return;  // being admitted: the answer follows
  }
  if (recoveredAgents_.erase(agentId) > 0) {
    // Admitted in the registry before the failover: nothing to write.
    admitReregisteredAgent(from, agentId, reg, false);
    if (AgentEntry* agent = findAgent(agentId)) agent->principal = principal;
    noteAgentRecovered();
    return;
  }
  // Unknown to the registry, or marked unreachable there: admit it (again) first.
  bool wasUnreachable = unreachableAgents_.count(agentId) > 0;
  AgentInfo info = reg.agent_info();
  info.set_id(agentId);
  registry::Operation admit;
  *admit.mutable_admit_agent() = info;
  pendingAdmissions_.insert(agentId);
  persist(std::move(admit), [this, from, principal, agentId, reg, wasUnreachable]() mutable {
    pendingAdmissions_.erase(agentId);
    admitReregisteredAgent(from, agentId, reg, wasUnreachable);
    if (AgentEntry* agent = findAgent(agentId)) agent->principal = principal;
  });
}

void Master::admitReregisteredAgent(const std::string& from, const std::string& agentId,
                                    AgentCall::Reregister& reg, bool wasUnreachable) {
  bool wasRemoved = wasUnreachable;
  const bool recovering = agentsRecoveredTime_ == 0 && !recoveredAgents_.empty();
  std::vector<AgentEvent> afterwards;  // sent once the agent knows it is registered
  AgentEntry* agent = &agents_[agentId];
  {
    agent->info = reg.agent_info();
    agent->info.set_id(agentId);
    agent->connection = from;
    setAgentTotal(*agent, Resources(agent->info.resources()));
    agent->registeredTime = loop_.wallTime();
    agentByConnection_[from] = agentId;
    allocator_->addAgent(agentId, agent->info, agent->total);
    std::map<std::string, const FrameworkInfo*> frameworkInfos;
    for (const FrameworkInfo& info : reg.frameworks()) {
      frameworkInfos[info.id()] = &info;
    }
    std::map<std::pair<std::string, std::string>, Resources> used;  // by (framework, role)
    for (Task& reported : *reg.mutable_tasks()) {
      if (isTerminalState(reported.state())) {
        continue;  // its terminal update is still on its way and will be forwarded
      }
      FrameworkEntry* framework = findFramework(reported.framework_id());
      if (framework == nullptr) {
        if (removedFrameworkIds_.count(reported.framework_id()) > 0) {
          AgentEvent shutdown;
          shutdown.mutable_shutdown_framework()->set_framework_id(reported.framework_id());
          afterwards.push_back(shutdown);
          continue;
        }
        // A framework known to an earlier master: keep it, disconnected, until it resubscribes
        // or its failover timeout (at least the time a live scheduler needs to notice) passes.
        FrameworkInfo info;
        auto known = frameworkInfos.find(reported.framework_id());
        if (known != frameworkInfos.end()) {
          info = *known->second;
        } else {
          info.set_name("(recovered)");
        }
        info.set_id(reported.framework_id());
        framework = &addFramework(reported.framework_id(), info, "");
        disconnectFramework(*framework, "recovered from agent " + agentId,
                            std::max(fromSeconds(info.failover_timeout()), recoveryGrace()));
      }
      if (recovering && agentsBack_ >= 100) {
        // Thousands of agents are coming back: size the framework's task table for what the
        // agents back so far suggest the rest will bring, rather than rehash it as it grows.
        size_t expected = framework->tasks.size() *
                          (static_cast<size_t>(agentsBack_) + recoveredAgents_.size() + 1) /
                          static_cast<size_t>(agentsBack_);
        if (framework->tasks.bucket_count() < expected) {
          framework->tasks.reserve(expected + expected / 2);
        }
      }
      auto [slot, added] = framework->tasks.try_emplace(reported.task_id());
      if (!added) {
        continue;
      }
      Task& task = slot->second;
      task = std::move(reported);  // `reported` is left empty
      task.set_agent_id(agentId);
      Resources resources(task.resources());
      agent->used += resources;
      agent->tasks[framework->info.id()].insert(task.task_id());
      used[{framework->info.id(), task.role()}] += resources;  // told to the allocator below

      if (wasRemoved) {
        if (framework->partitionAware) {
          SchedulerEvent event;
          TaskStatus status = masterStatus(task.task_id(), agentId, task.state(),
                                           TaskStatus::REASON_AGENT_REREGISTERED,
                                           "agent " + agentId + " re-registered");
          *event.mutable_update()->mutable_status() = status;
          sendToFramework(*framework, event);
        } else {
          // The framework was told the task was lost; it must not come back to life.
          AgentEvent killEvent;
          killEvent.mutable_kill_task()->set_framework_id(framework->info.id());
          killEvent.mutable_kill_task()->set_task_id(task.task_id());
          afterwards.push_back(killEvent);
        }
      }
    }
    for (const auto& [key, resources] : used) {
      allocator_->addUsed(key.first, agentId, key.second, resources);
    }
    unreachableAgents_.erase(agentId);
  }
  agent->reregisteredTime = loop_.wallTime();
  ++metrics_.agentsReregistered;
  if (recovering) {
    // After a failover thousands come back at once: a line each would cost the master more than
    // admitting them. Progress is logged every 1,000, and the whole in noteAgentRecovered().
    ++agentsBack_;
    tasksBack_ += reg.tasks_size();
    VLOG(1) << "Re-registered agent " << agentId << " with " << reg.tasks_size() << " tasks";
    LOG_IF(INFO, agentsBack_ % 1000 == 0)
        << agentsBack_ << " agents re-registered, " << recoveredAgents_.size() << " to come";
  } else {
    LOG(INFO) << "Re-registered agent " << agentId << " at " << agent->info.hostname()
              << " with " << reg.tasks_size() << " tasks";
  }

  sendToAgent(*agent, registered(agentId));
  if (!agent->checkpointed.empty()) {
    sendCheckpointed(*agent);
  }
  for (const AgentEvent& e : afterwards) {
    sendToAgent(*agent, e);
  }
  if (maintenance_.count(agent->info.hostname()) > 0) {
    evaluateMaintenance();
  }
  requestAllocation(agentId);
}

void Master::dropTasksTheAgentLacks(AgentEntry& agent, const AgentCall::Reregister& reg) {
  // A task the master sent that the agent does not know never reached it (the message was lost
  // with a dropped connection): it will not run.
  std::set<std::pair<std::string, std::string>> reported;
  for (const Task& task : reg.tasks()) {
    reported.emplace(task.framework_id(), task.task_id());
  }
  std::vector<std::pair<std::string, std::string>> missing;
  for (const auto& [frameworkId, taskIds] : agent.tasks) {
    for (const std::string& taskId : taskIds) {
      if (reported.count({frameworkId, taskId}) == 0) {
        missing.emplace_back(frameworkId, taskId);
      }
    }
  }
  for (const auto& [frameworkId, taskId] : missing) {
    FrameworkEntry* framework = findFramework(frameworkId);
    if (framework == nullptr) {
      continue;
    }
    auto task = framework->tasks.find(taskId);
    if (task == framework->tasks.end() || isTerminalState(task->second.state())) {
      continue;
    }
    TaskStatus status = masterStatus(
        taskId, agent.info.id(), framework->partitionAware ? TASK_DROPPED : TASK_LOST,
        TaskStatus::REASON_RECONCILIATION, "the agent re-registered without this task");
    updateTaskState(&agent, task->second, status);
    SchedulerEvent event;
    *event.mutable_update()->mutable_status() = status;
    sendToFramework(*framework, event);
    completeTask(*framework, taskId);  // nothing to acknowledge
  }
}

void Master::statusUpdate(AgentEntry& agent, const AgentCall::StatusUpdate& update) {
  const TaskStatus& status = update.status();
  Status valid = validateId(status.task_id(), "task id");
  if (valid && !TaskState_IsValid(status.state())) {
    valid = Error("unknown task state");
  }
  if (valid && status.uuid().size() != 16) {
    valid = Error("status update without a uuid");
  }
  if (!valid) {
    ++metrics_.dropped["malformed"];
    LOG_EVERY_N(WARNING, 100) << "Dropped a status update from agent " << agent.info.id() << ": "
                              << valid.error();
    return;
  }
  FrameworkEntry* framework = findFramework(update.framework_id());
  if (framework == nullptr) {
    // A framework that is gone: its executors on that agent should be too.
    ++metrics_.statusUpdatesDropped;
    AgentEvent shutdown;
    shutdown.mutable_shutdown_framework()->set_framework_id(update.framework_id());
    sendToAgent(agent, shutdown);
    return;
  }
  TaskStatus forwarded = status;
  forwarded.set_agent_id(agent.info.id());
  auto it = framework->tasks.find(status.task_id());
  if (it != framework->tasks.end() && it->second.agent_id() != agent.info.id()) {
    // An agent speaks only for its own tasks.
    ++metrics_.dropped["wrong_agent"];
    return;
  }
  if (it != framework->tasks.end()) {
    TaskStatus latest = forwarded;
    if (TaskState_IsValid(update.latest_state()) && update.latest_state() != TASK_UNKNOWN) {
      latest.set_state(update.latest_state());
    }
    updateTaskState(&agent, it->second, latest);
    it->second.mutable_status()->CopyFrom(forwarded);
  }
  if (framework->connection.empty()) {
    ++metrics_.statusUpdatesDropped;  // the agent retries until the framework is back
    return;
  }
  SchedulerEvent event;
  *event.mutable_update()->mutable_status() = std::move(forwarded);
  sendToFramework(*framework, event);
  ++metrics_.statusUpdatesForwarded;
}

void Master::updateTaskState(AgentEntry* agent, Task& task, const TaskStatus& status) {
  bool wasTerminal = isTerminalState(task.state());
  if (!wasTerminal) {
    task.set_state(status.state());
  }
  *task.mutable_status() = status;
  if (!wasTerminal && isTerminalState(task.state())) {
    ++metrics_.tasksTerminal[task.state()];
    Resources resources(task.resources());
    if (agent != nullptr) {
      agent->used -= resources;
      allocator_->recoverResources(task.framework_id(), agent->info.id(), task.role(),
                                   resources, std::nullopt);
      requestAllocation(agent->info.id());
    }
  }
}

void Master::executorExited(AgentEntry& agent, const AgentCall::ExecutorExited& exited) {
  FrameworkEntry* framework = findFramework(exited.framework_id());
  if (framework == nullptr) {
    return;
  }
  SchedulerEvent event;
  auto* failure = event.mutable_failure();
  failure->set_agent_id(agent.info.id());
  failure->set_executor_id(exited.executor_id());
  failure->set_status(exited.status());
  sendToFramework(*framework, event);
}

void Master::pingAgents() {
  std::vector<std::string> silent;
  AgentEvent ping;
  ping.mutable_ping()->set_master_id(options_.info.id());
  for (auto& [id, agent] : agents_) {
    if (agent.removing) {
      continue;
    }
    if (agent.pongPending && ++agent.missedPings >= options_.maxAgentPingTimeouts) {
      silent.push_back(id);
      continue;
    }
    agent.pongPending = true;
    sendToAgent(agent, ping);
  }
  for (const std::string& id : silent) {
    markUnreachable(id, "no pong for " + std::to_string(options_.maxAgentPingTimeouts) +
                            " pings");
  }
}

void Master::markUnreachable(const std::string& agentId, const std::string& why) {
  AgentEntry* agent = findAgent(agentId);
  if (agent == nullptr || agent->removing) {
    return;
  }
  agent->removing = true;
  registry::Operation op;
  op.mutable_mark_unreachable()->set_agent_id(agentId);
  // Stored first: a master that takes over must not let the agent back as if nothing happened
  // after frameworks were told its tasks are lost.
  persist(std::move(op), [this, agentId, why] { removeAgent(agentId, why); });
}

void Master::noteAgentRecovered() {
  if (!recoveredAgents_.empty() || agentsRecoveredTime_ != 0) {
    return;
  }
  agentsRecoveredTime_ = loop_.wallTime();
  loop_.cancel(reregisterTimer_);
  LOG(INFO) << "Every agent in the registry is back or given up on, "
            << formatDuration(fromSeconds(agentsRecoveredTime_ - options_.electedTime))
            << " after this master was elected: " << agentsBack_ << " agents re-registered with "
            << tasksBack_ << " tasks";
}

void Master::expireRecoveredAgents() {
  std::vector<std::string> late;
  for (const auto& [id, record] : recoveredAgents_) {
    late.push_back(id);
  }
  for (const std::string& id : late) {
    registry::Operation op;
    op.mutable_mark_unreachable()->set_agent_id(id);
    persist(std::move(op), [this, id] {
      auto it = recoveredAgents_.find(id);
      if (it == recoveredAgents_.end()) {
        return;  // it came back meanwhile
      }
      LOG(WARNING) << "Agent " << id << " did not re-register within "
                   << formatDuration(options_.agentReregisterTimeout) << "; marked unreachable";
      unreachableAgents_[id] = UnreachableAgent{it->second.info(), loop_.wallTime(),
                                                "did not re-register after a master failover"};
      recoveredAgents_.erase(it);
      noteAgentRecovered();
      ++metrics_.agentsRemoved;
      SchedulerEvent lost;
      lost.mutable_failure()->set_agent_id(id);
      for (auto& [fid, framework] : frameworks_) {
        sendToFramework(framework, lost);
      }
    });
  }
}

void Master::removeAgent(const std::string& agentId, const std::string& why) {
  auto it = agents_.find(agentId);
  if (it == agents_.end()) {
    return;
  }
  AgentEntry& agent = it->second;
  LOG(WARNING) << "Removing agent " << agentId << " at " << agent.info.hostname() << ": " << why;
  rescindOffersOn(agent);

  for (auto& [frameworkId, taskIds] : agent.tasks) {
    FrameworkEntry* framework = findFramework(frameworkId);
    if (framework == nullptr) {
      continue;
    }
    for (const std::string& taskId : taskIds) {
      auto task = framework->tasks.find(taskId);
      if (task == framework->tasks.end()) {
        continue;
      }
      if (!isTerminalState(task->second.state())) {
        TaskState state = lostState(*framework);
        TaskStatus status = masterStatus(
            taskId, agentId, state,
            framework->partitionAware ? TaskStatus::REASON_AGENT_UNREACHABLE
                                      : TaskStatus::REASON_AGENT_REMOVED,
            "agent " + agentId + " was removed: " + why);
        task->second.set_state(state);
        *task->second.mutable_status() = status;
        ++metrics_.tasksTerminal[state];
        SchedulerEvent event;
        *event.mutable_update()->mutable_status() = status;
        sendToFramework(*framework, event);
      }
      framework->completedTasks.push_back(std::move(task->second));
      framework->tasks.erase(task);
      while (framework->completedTasks.size() > options_.maxCompletedTasksPerFramework) {
        framework->completedTasks.pop_front();
      }
    }
  }
  SchedulerEvent lost;
  lost.mutable_failure()->set_agent_id(agentId);
  for (auto& [id, framework] : frameworks_) {
    sendToFramework(framework, lost);
  }

  allocator_->removeAgent(agentId);
  agentByConnection_.erase(agent.connection);
  unreachableAgents_[agentId] = UnreachableAgent{agent.info, loop_.wallTime(), why};
  agents_.erase(it);
  ++metrics_.agentsRemoved;
}

}  // namespace agora::master
