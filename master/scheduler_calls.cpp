// Calls from schedulers: subscribe, accept, decline, kill, acknowledge, reconcile, ...

#include <cmath>

#include <glog/logging.h>

#include "common/ids.hpp"
#include "master/master.hpp"

namespace agora::master {

namespace {

Status validateFrameworkInfo(const FrameworkInfo& info) {
  if (info.name().empty()) {
    return Error("FrameworkInfo.name is required");
  }
  if (!std::isfinite(info.failover_timeout()) || info.failover_timeout() < 0) {
    return Error("FrameworkInfo.failover_timeout must be a non-negative number of seconds");
  }
  for (const std::string& role : info.roles()) {
    Status s = validateRole(role);
    if (!s) {
      return s;
    }
  }
  return ok();
}

std::vector<std::string> toVector(const google::protobuf::RepeatedPtrField<std::string>& v) {
  return {v.begin(), v.end()};
}

}  // namespace

void Master::handleSchedulerCall(const std::string& from, const std::string& principal,
                                 const SchedulerCall& call) {
  if (call.has_subscribe()) {
    subscribe(from, principal, call.subscribe());
    return;
  }
  // Every other call must come from the connection that subscribed the framework it names
  // (and, with CURVE, from its principal: not from a peer that took its routing id over).
  FrameworkEntry* framework = findFramework(call.framework_id());
  if (framework == nullptr || framework->connection != from ||
      (options_.authenticated && framework->info.principal() != principal)) {
    ++metrics_.dropped["not_subscribed"];
    if (removedFrameworkIds_.count(call.framework_id()) > 0) {
      sendSchedulerError(from, ERROR_FRAMEWORK_REMOVED,
                         "framework " + call.framework_id() + " has been removed");
    } else {
      sendSchedulerError(from, ERROR_NOT_SUBSCRIBED,
                         "framework '" + call.framework_id() +
                             "' is not subscribed on this connection; subscribe first");
    }
    return;
  }
  framework->lastSeen = loop_.now();

  switch (call.call_case()) {
    case SchedulerCall::kTeardown:
      LOG(INFO) << "Framework " << framework->info.id() << " (" << framework->info.name()
                << ") asked to be torn down";
      removeFramework(framework->info.id(), "torn down by the framework");
      return;
    case SchedulerCall::kAccept:
      accept(*framework, call.accept());
      return;
    case SchedulerCall::kDecline:
      decline(*framework, call.decline());
      return;
    case SchedulerCall::kRevive:
      allocator_->revive(framework->info.id(), toVector(call.revive().roles()));
      requestAllocation();
      return;
    case SchedulerCall::kSuppress:
      allocator_->suppress(framework->info.id(), toVector(call.suppress().roles()));
      return;
    case SchedulerCall::kKill:
      kill(*framework, call.kill());
      return;
    case SchedulerCall::kAcknowledge:
      acknowledge(*framework, call.acknowledge());
      return;
    case SchedulerCall::kReconcile:
      reconcile(*framework, call.reconcile());
      return;
    case SchedulerCall::kMessage:
      frameworkMessage(*framework, call.message());
      return;
    case SchedulerCall::kRespondInverseOffers:
      respondInverseOffers(*framework, call.respond_inverse_offers());
      return;
    case SchedulerCall::kHeartbeat:
      return;
    case SchedulerCall::kSubscribe:
    case SchedulerCall::CALL_NOT_SET:
      break;
  }
  ++metrics_.dropped["malformed"];
}

void Master::subscribe(const std::string& from, const std::string& principal,
                       const SchedulerCall::Subscribe& subscribe) {
  FrameworkInfo info = subscribe.framework_info();
  Status valid = validateFrameworkInfo(info);
  if (!valid) {
    ++metrics_.invalidCalls;
    sendSchedulerError(from, ERROR_INVALID, "invalid subscription: " + valid.error());
    return;
  }
  if (options_.authenticated) {
    // The principal is what the framework's key proves; a claim must agree with it.
    if (!info.principal().empty() && info.principal() != principal) {
      ++metrics_.unauthorized["register_frameworks"];
      sendSchedulerError(from, ERROR_UNAUTHORIZED,
                         "subscription refused: the framework says it is principal '" +
                             info.principal() + "' but its credentials are principal '" +
                             principal + "'");
      return;
    }
    info.set_principal(principal);
  }
  if (const FrameworkEntry* known = findFramework(info.id());
      known != nullptr && options_.authenticated && known->info.principal() != principal) {
    ++metrics_.unauthorized["register_frameworks"];
    sendSchedulerError(from, ERROR_UNAUTHORIZED,
                       "subscription refused: framework " + info.id() +
                           " belongs to principal '" + known->info.principal() + "'");
    return;
  }
  std::vector<std::string> roles(info.roles().begin(), info.roles().end());
  if (roles.empty()) {
    roles.push_back("*");
  }
  for (const std::string& role : roles) {
    if (!authorized(AclAction::kRegisterFrameworks, info.principal(), role,
                    "framework '" + info.name() + "'")) {
      sendSchedulerError(from, ERROR_UNAUTHORIZED,
                         "subscription refused: the ACLs do not let " +
                             (info.principal().empty()
                                  ? std::string("a framework without a principal")
                                  : "principal '" + info.principal() + "'") +
                             " register frameworks in role '" + role +
                             "' (register_frameworks)");
      return;
    }
  }
  std::string id = info.id();
  if (!id.empty() && removedFrameworkIds_.count(id) > 0) {
    sendSchedulerError(from, ERROR_FRAMEWORK_REMOVED, "framework " + id + " has been removed");
    return;
  }
  if (!id.empty()) {
    Status s = validateId(id, "framework id");
    if (!s) {
      sendSchedulerError(from, ERROR_INVALID, s.error());
      return;
    }
  }
  if (pendingSubscriptions_.count(from) > 0) {
    return;  // being recorded: the answer follows
  }
  if (id.empty()) {
    char number[16];
    snprintf(number, sizeof(number), "%04llu",
             static_cast<unsigned long long>(nextFrameworkNumber_++));
    id = options_.info.id() + "-" + number;
    info.set_id(id);
  }
  // Recorded (with its failover timeout) before the scheduler hears it is subscribed.
  pendingSubscriptions_.insert(from);
  registry::Operation op;
  *op.mutable_add_framework() = info;
  persist(std::move(op), [this, from, info, subscribe] {
    pendingSubscriptions_.erase(from);
    if (removedFrameworkIds_.count(info.id()) > 0) {
      sendSchedulerError(from, ERROR_FRAMEWORK_REMOVED,
                         "framework " + info.id() + " has been removed");
      return;
    }
    completeSubscription(from, info, subscribe);
  });
}

void Master::completeSubscription(const std::string& from, FrameworkInfo info,
                                  const SchedulerCall::Subscribe& subscribe) {
  std::string id = info.id();
  FrameworkEntry* framework = findFramework(id);
  if (framework == nullptr) {
    // A framework id this master does not know: a new framework, or one that subscribed to an
    // earlier master and comes back after a master failover.
    framework = &addFramework(id, info, from);
    LOG(INFO) << "Subscribed framework " << id << " (" << info.name() << ") from " << from;
  } else {
    // Failover or reconnection of a known framework. Whatever it was offered before, the
    // (possibly new) scheduler does not know: take the offers back and offer afresh.
    rescindOffersOf(*framework);
    if (!framework->connection.empty() && framework->connection != from) {
      sendSchedulerError(framework->connection, ERROR_FRAMEWORK_REMOVED,
                         "framework failed over to another scheduler");
      frameworkByConnection_.erase(framework->connection);
    }
    loop_.cancel(framework->failoverTimer);
    framework->failoverTimer = 0;
    framework->info = info;
    framework->connection = from;
    frameworkByConnection_[from] = id;
    framework->partitionAware = false;
    framework->killingState = false;
    for (int c : info.capabilities()) {
      framework->partitionAware |= c == FrameworkInfo::PARTITION_AWARE;
      framework->killingState |= c == FrameworkInfo::TASK_KILLING_STATE;
    }
    allocator_->updateFramework(id, info);
    if (!framework->active) {
      framework->active = true;
      allocator_->activateFramework(id);
    }
    LOG(INFO) << "Resubscribed framework " << id << " (" << info.name() << ") from " << from;
    // Agents holding its tasks send what it has not acknowledged again, now that it listens.
    AgentEvent update;
    *update.mutable_update_framework()->mutable_framework_info() = framework->info;
    for (auto& [agentId, agent] : agents_) {
      if (agent.tasks.count(id) > 0) {
        sendToAgent(agent, update);
      }
    }
  }
  framework->lastSeen = loop_.now();
  ++metrics_.frameworksSubscribed;
  if (!subscribe.suppressed_roles().empty()) {
    allocator_->suppress(id, toVector(subscribe.suppressed_roles()));
  }

  SchedulerEvent event;
  auto* subscribed = event.mutable_subscribed();
  subscribed->set_framework_id(id);
  subscribed->set_heartbeat_interval_seconds(toSeconds(options_.frameworkHeartbeatInterval));
  *subscribed->mutable_master_info() = options_.info;
  sendToFramework(*framework, event);
  requestAllocation();
}

void Master::dropLaunches(FrameworkEntry& framework, const SchedulerCall::Accept& accept,
                          const std::string& why) {
  TaskState state = framework.partitionAware ? TASK_DROPPED : TASK_LOST;
  auto drop = [&](const TaskInfo& task) {
    ++metrics_.tasksDropped;
    SchedulerEvent event;
    *event.mutable_update()->mutable_status() = masterStatus(
        task.task_id(), task.agent_id(), state, TaskStatus::REASON_INVALID_OFFERS, why);
    sendToFramework(framework, event);
  };
  for (const Operation& op : accept.operations()) {
    for (const TaskInfo& task : op.launch().task_infos()) {
      drop(task);
    }
    for (const TaskInfo& task : op.launch_group().task_group().tasks()) {
      drop(task);
    }
  }
}

void Master::accept(FrameworkEntry& framework, const SchedulerCall::Accept& accept) {
  Resources offered;
  std::string agentId;
  std::string role;
  std::string error;
  for (const std::string& offerId : accept.offer_ids()) {
    auto it = offers_.find(offerId);
    if (it == offers_.end() || it->second.offer.framework_id() != framework.info.id()) {
      error = "offer " + offerId + " is no longer valid";
      continue;
    }
    if (!agentId.empty() && it->second.offer.agent_id() != agentId) {
      error = "the offers of one accept must all be for the same agent";
      continue;
    }
    if (!role.empty() && it->second.offer.allocation_role() != role) {
      error = "the offers of one accept must all be for the same role";
      continue;
    }
    agentId = it->second.offer.agent_id();
    role = it->second.offer.allocation_role();
    offered += it->second.resources;
    removeOffer(offerId, false);
  }
  if (accept.offer_ids().empty()) {
    error = "an accept must name at least one offer";
  }
  AgentEntry* agent = agentId.empty() ? nullptr : findAgent(agentId);
  if (error.empty() && agent == nullptr) {
    error = "agent " + agentId + " is gone";
  }
  if (!error.empty()) {
    ++metrics_.invalidCalls;
    LOG(WARNING) << "Framework " << framework.info.id() << ": invalid accept: " << error;
    if (!agentId.empty()) {
      allocator_->recoverResources(framework.info.id(), agentId, role, offered, std::nullopt);
    }
    dropLaunches(framework, accept, error);
    requestAllocation(agentId);
    return;
  }
  ++metrics_.offersAccepted;

  bool changesResources = false;
  for (const Operation& op : accept.operations()) {
    changesResources |= op.type() == Operation::RESERVE || op.type() == Operation::UNRESERVE ||
                        op.type() == Operation::CREATE || op.type() == Operation::DESTROY;
  }
  if (!changesResources) {
    applyAccept(framework, *agent, role, std::move(offered), accept, nullptr);
    return;
  }
  auto plan = planCheckpoint(framework, *agent, role, offered, accept);
  if (!plan) {
    ++metrics_.invalidCalls;
    LOG(WARNING) << "Framework " << framework.info.id() << ": refused operations on agent "
                 << agentId << ": " << plan.error();
    sendSchedulerError(framework.connection, ERROR_INVALID, "accept refused: " + plan.error());
    allocator_->recoverResources(framework.info.id(), agentId, role, offered, std::nullopt);
    dropLaunches(framework, accept, plan.error());
    requestAllocation(agentId);
    return;
  }
  // Stored before anyone hears of it; the offered resources stay the framework's meanwhile.
  agent->planned = plan->checkpointed;
  registry::Operation store;
  store.mutable_set_checkpointed()->set_agent_id(agentId);
  plan->checkpointed.copyTo(store.mutable_set_checkpointed()->mutable_resources());
  std::string frameworkId = framework.info.id();
  persist(std::move(store), [this, frameworkId, agentId, role, offered, accept,
                             plan = std::move(plan).value()] {
    FrameworkEntry* framework = findFramework(frameworkId);
    AgentEntry* agent = findAgent(agentId);
    if (agent != nullptr) {
      agent->checkpointed = plan.checkpointed;
      checkpointed_[agentId] = plan.checkpointed;
      sendCheckpointed(*agent, plan.destroyedVolumes);
    } else {
      checkpointed_[agentId] = plan.checkpointed;  // for when it comes back
    }
    if (framework == nullptr || agent == nullptr) {
      if (framework != nullptr) {
        dropLaunches(*framework, accept, "agent " + agentId + " is gone");
      }
      return;  // what was offered went with the framework or the agent
    }
    applyAccept(*framework, *agent, role, offered, accept, &plan);
  });
}

void Master::applyAccept(FrameworkEntry& framework, AgentEntry& agentEntry,
                         const std::string& role, Resources offered,
                         const SchedulerCall::Accept& accept, const CheckpointPlan* plan) {
  AgentEntry* agent = &agentEntry;
  const std::string agentId = agent->info.id();
  Resources remaining = std::move(offered);
  auto reject = [&](const TaskInfo& task, const std::string& why) {
    ++metrics_.tasksInvalid;
    SchedulerEvent event;
    *event.mutable_update()->mutable_status() = masterStatus(
        task.task_id(), agentId, TASK_ERROR, TaskStatus::REASON_TASK_INVALID, why);
    sendToFramework(framework, event);
  };

  int index = -1;
  for (const Operation& op : accept.operations()) {
    ++index;
    switch (op.type()) {
      case Operation::RESERVE:
      case Operation::UNRESERVE:
      case Operation::CREATE:
      case Operation::DESTROY: {
        if (plan == nullptr) {
          break;
        }
        auto change = plan->changes.find(index);
        if (change == plan->changes.end()) {
          break;
        }
        const auto& [from, to] = change->second;
        remaining -= from;
        remaining += to;
        agent->total -= from;
        agent->total += to;
        allocator_->updateAllocation(framework.info.id(), agentId, role, from, to);
        LOG(INFO) << "Framework " << framework.info.id() << ": " << Operation::Type_Name(op.type())
                  << " on agent " << agentId << ": " << from << " -> " << to;
        break;
      }
      case Operation::LAUNCH: {
        for (const TaskInfo& task : op.launch().task_infos()) {
          Status valid = validateTask(framework, *agent, task, remaining);
          if (!valid) {
            reject(task, valid.error());
            continue;
          }
          remaining -= Resources(task.resources());
          addTask(framework, *agent, task, role);
          AgentEvent event;
          auto* run = event.mutable_run_task();
          *run->mutable_framework() = framework.info;
          *run->mutable_task() = task;
          run->mutable_task()->set_agent_id(agentId);
          sendToAgent(*agent, event);
        }
        break;
      }
      case Operation::LAUNCH_GROUP: {
        const auto& group = op.launch_group();
        std::string why;
        Resources needed;
        std::set<std::string> ids;
        if (group.task_group().tasks().empty()) {
          why = "a task group needs at least one task";
        }
        Status executorValid = validateId(group.executor().executor_id(), "executor id");
        if (why.empty() && !executorValid) {
          why = executorValid.error();
        }
        for (const TaskInfo& task : group.task_group().tasks()) {
          if (!why.empty()) {
            break;
          }
          if (task.has_executor()) {
            why = "tasks of a group must not name an executor of their own";
            break;
          }
          Status valid = validateTask(framework, *agent, task, remaining - needed);
          if (!valid) {
            why = "task " + task.task_id() + ": " + valid.error();
            break;
          }
          if (!ids.insert(task.task_id()).second) {
            why = "task id " + task.task_id() + " appears twice in the group";
            break;
          }
          needed += Resources(task.resources());
        }
        if (!why.empty()) {
          for (const TaskInfo& task : group.task_group().tasks()) {
            reject(task, why);
          }
          break;
        }
        remaining -= needed;
        for (const TaskInfo& task : group.task_group().tasks()) {
          TaskInfo placed = task;
          *placed.mutable_executor() = group.executor();
          addTask(framework, *agent, placed, role);
        }
        AgentEvent event;
        auto* run = event.mutable_run_task_group();
        *run->mutable_framework() = framework.info;
        *run->mutable_executor() = group.executor();
        run->mutable_executor()->set_framework_id(framework.info.id());
        *run->mutable_task_group() = group.task_group();
        for (TaskInfo& task : *run->mutable_task_group()->mutable_tasks()) {
          task.set_agent_id(agentId);
        }
        sendToAgent(*agent, event);
        break;
      }
      default:
        ++metrics_.invalidCalls;
        sendSchedulerError(framework.connection, ERROR_INVALID,
                           "operation " + Operation::Type_Name(op.type()) +
                               " is not supported by this master yet");
        break;
    }
  }

  std::optional<Duration> refuse = options_.defaultRefuse;
  if (accept.filters().has_refuse_seconds()) {
    double s = accept.filters().refuse_seconds();
    refuse = std::isfinite(s) && s > 0 ? fromSeconds(std::min(s, 365.0 * 86400)) : Duration::zero();
  }
  if (!remaining.empty()) {
    allocator_->recoverResources(framework.info.id(), agentId, role, remaining, refuse);
  }
  requestAllocation(agentId);
}

void Master::decline(FrameworkEntry& framework, const SchedulerCall::Decline& decline) {
  std::optional<Duration> refuse = options_.defaultRefuse;
  if (decline.filters().has_refuse_seconds()) {
    double s = decline.filters().refuse_seconds();
    refuse = std::isfinite(s) && s > 0 ? fromSeconds(std::min(s, 365.0 * 86400)) : Duration::zero();
  }
  for (const std::string& offerId : decline.offer_ids()) {
    auto it = offers_.find(offerId);
    if (it == offers_.end() || it->second.offer.framework_id() != framework.info.id()) {
      ++metrics_.dropped["stale_offer"];
      continue;
    }
    std::string agentId = it->second.offer.agent_id();
    std::string role = it->second.offer.allocation_role();
    Resources resources = it->second.resources;
    removeOffer(offerId, false);
    allocator_->recoverResources(framework.info.id(), agentId, role, resources, refuse);
    ++metrics_.offersDeclined;
    requestAllocation(agentId);
  }
}

void Master::kill(FrameworkEntry& framework, const SchedulerCall::Kill& kill) {
  auto it = framework.tasks.find(kill.task_id());
  if (it == framework.tasks.end() && !recoveredAgents_.empty()) {
    return;  // it may be on an agent that has not re-registered since the failover
  }
  if (it == framework.tasks.end()) {
    // Unknown to this master: say so, as reconciliation would.
    SchedulerEvent event;
    *event.mutable_update()->mutable_status() =
        masterStatus(kill.task_id(), kill.agent_id(),
                     framework.partitionAware ? TASK_UNKNOWN : TASK_LOST,
                     TaskStatus::REASON_RECONCILIATION, "attempted to kill an unknown task");
    sendToFramework(framework, event);
    return;
  }
  AgentEntry* agent = findAgent(it->second.agent_id());
  if (agent == nullptr) {
    return;  // the agent's removal already reported the task
  }
  VLOG(1) << "Killing task " << kill.task_id() << " on " << agent->connection;
  AgentEvent event;
  auto* k = event.mutable_kill_task();
  k->set_framework_id(framework.info.id());
  k->set_task_id(kill.task_id());
  if (kill.has_grace_period_seconds()) {
    k->set_grace_period_seconds(kill.grace_period_seconds());
  }
  sendToAgent(*agent, event);
}

void Master::acknowledge(FrameworkEntry& framework, const SchedulerCall::Acknowledge& ack) {
  if (ack.uuid().size() != 16) {
    ++metrics_.invalidCalls;
    sendSchedulerError(framework.connection, ERROR_INVALID,
                       "acknowledgement for task " + ack.task_id() + " has no valid uuid");
    return;
  }
  AgentEntry* agent = findAgent(ack.agent_id());
  if (agent == nullptr) {
    ++metrics_.dropped["unknown_agent"];
    return;
  }
  auto it = framework.tasks.find(ack.task_id());
  if (it != framework.tasks.end() && isTerminalState(it->second.status().state()) &&
      it->second.status().uuid() == ack.uuid()) {
    completeTask(framework, ack.task_id());
  }
  AgentEvent event;
  auto* relay = event.mutable_status_update_ack();
  relay->set_framework_id(framework.info.id());
  relay->set_task_id(ack.task_id());
  relay->set_uuid(ack.uuid());
  sendToAgent(*agent, event);
  ++metrics_.acknowledgementsRelayed;
}

void Master::reconcile(FrameworkEntry& framework, const SchedulerCall::Reconcile& reconcile) {
  auto send = [&](const Task& task) {
    SchedulerEvent event;
    TaskStatus status = task.status();
    status.set_state(task.state());
    status.clear_uuid();
    status.set_source(TaskStatus::SOURCE_MASTER);
    status.set_reason(TaskStatus::REASON_RECONCILIATION);
    status.set_agent_id(task.agent_id());
    status.set_task_id(task.task_id());
    status.set_timestamp(loop_.wallTime());
    *event.mutable_update()->mutable_status() = status;
    sendToFramework(framework, event);
  };
  if (reconcile.tasks().empty()) {
    for (const auto& [id, task] : framework.tasks) {
      send(task);
    }
    return;
  }
  for (const auto& wanted : reconcile.tasks()) {
    auto it = framework.tasks.find(wanted.task_id());
    if (it != framework.tasks.end()) {
      send(it->second);
      continue;
    }
    const Task* completed = nullptr;
    for (const Task& task : framework.completedTasks) {
      if (task.task_id() == wanted.task_id()) {
        completed = &task;
      }
    }
    if (completed != nullptr) {
      send(*completed);
      continue;
    }
    if (recoveredAgents_.count(wanted.agent_id()) > 0 ||
        (wanted.agent_id().empty() && !recoveredAgents_.empty())) {
      continue;  // its agent may still re-register after the failover: no answer yet
    }
    bool unreachable = unreachableAgents_.count(wanted.agent_id()) > 0;
    TaskState state = !framework.partitionAware ? TASK_LOST
                      : unreachable             ? TASK_UNREACHABLE
                                                : TASK_UNKNOWN;
    SchedulerEvent event;
    *event.mutable_update()->mutable_status() = masterStatus(
        wanted.task_id(), wanted.agent_id(), state, TaskStatus::REASON_RECONCILIATION,
        unreachable ? "its agent is unreachable" : "task is unknown to the master");
    sendToFramework(framework, event);
  }
}

void Master::frameworkMessage(FrameworkEntry& framework, const SchedulerCall::Message& message) {
  AgentEntry* agent = findAgent(message.agent_id());
  if (agent == nullptr) {
    ++metrics_.dropped["unknown_agent"];
    return;
  }
  AgentEvent event;
  auto* m = event.mutable_message();
  m->set_framework_id(framework.info.id());
  m->set_executor_id(message.executor_id());
  m->set_data(message.data());
  sendToAgent(*agent, event);
}

}  // namespace agora::master
