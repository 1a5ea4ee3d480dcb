#include "master/master.hpp"

#include <chrono>

#include <glog/logging.h>

#include "common/ids.hpp"

namespace agora::master {

Master::Master(MasterOptions options, Loop& loop, Transport& transport,
               std::unique_ptr<Allocator> allocator, Registry& registry)
    : options_(std::move(options)), loop_(loop), transport_(transport),
      allocator_(std::move(allocator)), registry_(registry) {
  if (options_.info.id().empty()) {
    options_.info.set_id(uuidString());
  }
  startTime_ = loop_.wallTime();
  options_.info.set_start_time(startTime_);
}

Master::~Master() {
  loop_.cancel(allocationTimer_);
  loop_.cancel(pingTimer_);
  loop_.cancel(livenessTimer_);
  loop_.cancel(reregisterTimer_);
  loop_.cancel(maintenanceTimer_);
  loop_.cancel(historyTimer_);
  for (auto& [id, offer] : offers_) {
    loop_.cancel(offer.timeout);
  }
  for (auto& [id, framework] : frameworks_) {
    loop_.cancel(framework.failoverTimer);
  }
}

void Master::start(const RegistryState& recovered) {
  LOG(INFO) << "Master " << options_.info.id() << " serving agents and schedulers at "
            << options_.info.endpoint() << "; registry " << registry_.describe() << " holds "
            << recovered.agents.size() << " agents and " << recovered.frameworks.size()
            << " frameworks";
  for (const auto& [id, record] : recovered.agents) {
    if (record.unreachable()) {
      unreachableAgents_[id] = UnreachableAgent{record.info(), record.since(),
                                                "unreachable before this master took over"};
    } else {
      recoveredAgents_[id] = record;
    }
  }
  for (const auto& [id, record] : recovered.frameworks) {
    // Known frameworks get back their tasks if they resubscribe in time; a live scheduler
    // notices the new leader at once, so even one without a failover timeout gets a grace.
    FrameworkEntry& framework = addFramework(id, record.info(), "");
    framework.registeredTime = record.registered_time();
    disconnectFramework(framework, "recovered from the registry",
                        std::max(fromSeconds(record.info().failover_timeout()), recoveryGrace()));
  }
  for (const auto& [id, record] : recovered.agents) {
    if (record.checkpointed_size() > 0) {
      checkpointed_[id] = Resources(record.checkpointed());
    }
  }
  for (const auto& [host, record] : recovered.maintenance) {
    maintenance_[host].record = record;
  }
  for (const auto& [role, record] : recovered.roles) {
    applyRole(record);
  }
  servingTime_ = loop_.wallTime();
  if (options_.electedTime == 0) {
    options_.electedTime = servingTime_;
  }
  if (recoveredAgents_.empty()) {
    agentsRecoveredTime_ = servingTime_;
  } else {
    reregisterTimer_ = loop_.after(options_.agentReregisterTimeout, [this] { expireRecoveredAgents(); });
  }
  every(seconds(1), &maintenanceTimer_, &Master::evaluateMaintenance);
  sampleUsage();
  every(seconds(5), &historyTimer_, &Master::sampleUsage);
  // Periodic allocation catches expired filters and anything events did not trigger.
  every(options_.allocationInterval, &allocationTimer_, &Master::allocate);
  every(options_.agentPingTimeout, &pingTimer_, &Master::pingAgents);
  every(options_.frameworkHeartbeatInterval, &livenessTimer_, &Master::checkFrameworkLiveness);
}

void Master::every(Duration interval, TimerId* timer, void (Master::*work)()) {
  *timer = loop_.after(interval, [this, interval, timer, work] {
    (this->*work)();
    every(interval, timer, work);
  });
}

void Master::receive(const std::string& from, Envelope&& envelope) {
  switch (envelope.body_case()) {
    case Envelope::kSchedulerCall:
      ++metrics_.received[{envelope.body_case(), envelope.scheduler_call().call_case()}];
      handleSchedulerCall(from, envelope.authenticated_principal(), envelope.scheduler_call());
      return;
    case Envelope::kAgentCall:
      ++metrics_.received[{envelope.body_case(), envelope.agent_call().call_case()}];
      handleAgentCall(from, envelope.authenticated_principal(), *envelope.mutable_agent_call());
      return;
    default:
      // Events and executor calls have no business reaching the master.
      ++metrics_.dropped["unexpected"];
      LOG_EVERY_N(WARNING, 100) << "Dropped a message of unexpected kind from " << from;
      return;
  }
}

bool Master::authorized(AclAction action, const std::string& principal, const std::string& object,
                        const std::string& who) const {
  if (options_.acls.allows(action, principal, object)) {
    return true;
  }
  uint64_t refused = ++metrics_.unauthorized[aclActionName(action)];
  if (refused <= 10 || refused % 100 == 0) {
    LOG(WARNING) << "ACLs: refused " << aclActionName(action) << " to "
                 << (principal.empty() ? "an anonymous peer" : "principal '" + principal + "'")
                 << (object.empty() ? "" : " on '" + object + "'") << " (" << who << "; "
                 << refused << " refused so far)";
  }
  return false;
}

void Master::requestAllocation(const std::string& agentId) {
  if (agentId.empty()) {
    allocateAll_ = true;
  } else if (!allocateAll_) {
    allocationAgents_.insert(agentId);
  }
  if (allocationPending_) {
    return;
  }
  allocationPending_ = true;
  loop_.post([this] { allocate(); });
}

void Master::allocateNow() { allocate(); }

void Master::allocate() {
  // The periodic run and a pending "everything" look at every agent; events at what changed.
  bool all = allocateAll_ || !allocationPending_;
  std::set<std::string> agents;
  agents.swap(allocationAgents_);
  allocationPending_ = false;
  allocateAll_ = false;
  auto begin = std::chrono::steady_clock::now();
  std::vector<Allocation> allocations =
      all ? allocator_->allocate(loop_.now()) : allocator_->allocate(loop_.now(), agents);
  ++metrics_.allocationRuns;

  std::map<std::string, SchedulerEvent> byFramework;
  for (Allocation& allocation : allocations) {
    FrameworkEntry* framework = findFramework(allocation.frameworkId);
    AgentEntry* agent = findAgent(allocation.agentId);
    if (framework == nullptr || agent == nullptr || !framework->active) {
      // The allocator's view is the master's own; a mismatch is a bug, but recover anyway.
      LOG(ERROR) << "Allocation for unknown framework or agent; recovering it";
      allocator_->recoverResources(allocation.frameworkId, allocation.agentId, allocation.role,
                                   allocation.resources, std::nullopt);
      continue;
    }
    OfferEntry entry;
    std::string offerId = options_.info.id() + "-O" + std::to_string(nextOfferNumber_++);
    entry.offer.set_id(offerId);
    entry.offer.set_framework_id(allocation.frameworkId);
    entry.offer.set_agent_id(allocation.agentId);
    entry.offer.set_hostname(agent->info.hostname());
    entry.offer.set_agent_address(agent->info.address());
    allocation.resources.copyTo(entry.offer.mutable_resources());
    *entry.offer.mutable_attributes() = agent->info.attributes();
    entry.offer.set_allocation_role(allocation.role);
    auto machine = maintenance_.find(agent->info.hostname());
    if (machine != maintenance_.end() && machine->second.record.has_window()) {
      *entry.offer.mutable_unavailability() = machine->second.record.window();
    }
    entry.resources = std::move(allocation.resources);
    if (options_.offerTimeout > Duration::zero()) {
      entry.timeout = loop_.after(options_.offerTimeout, [this, offerId] {
        VLOG(1) << "Offer " << offerId << " timed out";
        std::string agentId = offers_.count(offerId) ? offers_.at(offerId).offer.agent_id() : "";
        removeOffer(offerId, true);
        requestAllocation(agentId);
      });
    }
    agent->offered += entry.resources;
    agent->offers.insert(offerId);
    framework->offers.insert(offerId);
    *byFramework[allocation.frameworkId].mutable_offers()->add_offers() = entry.offer;
    offers_.emplace(offerId, std::move(entry));
    ++metrics_.offersSent;
  }
  for (auto& [frameworkId, event] : byFramework) {
    sendToFramework(frameworks_.at(frameworkId), event);
  }
  double cycle = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  metrics_.allocationSeconds += cycle;
  metrics_.allocationCycle.observe(cycle);
}

void Master::removeOffer(const std::string& offerId, bool rescind) {
  auto it = offers_.find(offerId);
  if (it == offers_.end()) {
    return;
  }
  OfferEntry& entry = it->second;
  loop_.cancel(entry.timeout);
  const std::string& frameworkId = entry.offer.framework_id();
  const std::string& agentId = entry.offer.agent_id();
  if (AgentEntry* agent = findAgent(agentId)) {
    agent->offered -= entry.resources;
    agent->offers.erase(offerId);
  }
  FrameworkEntry* framework = findFramework(frameworkId);
  if (framework != nullptr) {
    framework->offers.erase(offerId);
  }
  if (rescind) {
    allocator_->recoverResources(frameworkId, agentId, entry.offer.allocation_role(),
                                 entry.resources, std::nullopt);
    ++metrics_.offersRescinded;
    if (framework != nullptr && !framework->connection.empty()) {
      SchedulerEvent event;
      event.mutable_rescind()->set_offer_id(offerId);
      sendToFramework(*framework, event);
    }
  }
  offers_.erase(it);
}

void Master::rescindOffersOn(AgentEntry& agent) {
  std::vector<std::string> ids(agent.offers.begin(), agent.offers.end());
  for (const std::string& id : ids) {
    removeOffer(id, true);
  }
}

void Master::rescindOffersOf(FrameworkEntry& framework) {
  std::vector<std::string> ids(framework.offers.begin(), framework.offers.end());
  for (const std::string& id : ids) {
    removeOffer(id, true);
  }
}

Master::FrameworkEntry* Master::findFramework(const std::string& id) {
  auto it = frameworks_.find(id);
  return it == frameworks_.end() ? nullptr : &it->second;
}

std::string Master::agentHttpAddress(const std::string& agentId) const {
  auto it = agents_.find(agentId);
  return it == agents_.end() ? std::string() : it->second.info.address();
}

Master::AgentEntry* Master::findAgent(const std::string& id) {
  auto it = agents_.find(id);
  return it == agents_.end() ? nullptr : &it->second;
}

TaskStatus Master::masterStatus(const std::string& taskId, const std::string& agentId,
                                TaskState state, TaskStatus::Reason reason,
                                const std::string& message) const {
  TaskStatus status;
  status.set_task_id(taskId);
  status.set_agent_id(agentId);
  status.set_state(state);
  status.set_reason(reason);
  status.set_message(message);
  status.set_source(TaskStatus::SOURCE_MASTER);
  status.set_timestamp(loop_.wallTime());
  return status;
}

Duration Master::recoveryGrace() const {
  return options_.frameworkHeartbeatInterval * (options_.maxFrameworkHeartbeatMisses + 1);
}

void Master::persist(registry::Operation op, std::function<void()> then) {
  registry_.apply(std::move(op), [this, then = std::move(then)](Status stored) {
    if (!stored) {
      fatal(stored.error());
      return;
    }
    then();
  });
}

void Master::fatal(const std::string& why) {
  LOG(ERROR) << "Master " << options_.info.id() << " must stop: " << why;
  if (options_.onFatal) {
    options_.onFatal(why);
    return;
  }
  LOG(FATAL) << why;
}

TaskState Master::lostState(const FrameworkEntry& framework) const {
  return framework.partitionAware ? TASK_UNREACHABLE : TASK_LOST;
}

}  // namespace agora::master
