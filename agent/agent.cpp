// The agent's side towards the master: detection, registration, liveness, and the dispatch of
// what the master sends.

#include "agent/agent.hpp"

#include <random>
#include <type_traits>

#include <glog/logging.h>

#include "common/ids.hpp"

namespace agora::agent {

namespace {

StatusUpdateManager::Options updateOptions(const AgentOptions& options) {
  StatusUpdateManager::Options out = options.statusUpdates;
  if (options.checkpoint && out.directory.empty()) {
    out.directory = options.workDir + "/meta/updates";
  }
  return out;
}

}  // namespace

Agent::Agent(AgentOptions options, Loop& loop, Transport& master, Connect connect,
             MasterDetector& detector, Transport& executors, Containerizer& containerizer)
    : options_(std::move(options)), loop_(loop), master_(master), connect_(std::move(connect)),
      detector_(detector), executors_(executors), containerizer_(containerizer),
      statusUpdates_(loop, updateOptions(options_),
                     [this](const std::string& frameworkId, const TaskStatus& status,
                            TaskState latest) {
                       return forwardStatusUpdate(frameworkId, status, latest);
                     }),
      backoff_(options_.registrationBackoffMin) {
  startTime_ = loop_.wallTime();
  if (options_.masterPingTimeout > Duration::zero()) {
    pingTimeout_ = options_.masterPingTimeout;
  }
  containerizer_.setExitCallback(
      [this](const std::string& containerId, int status) { executorExited(containerId, status); });
  detector_.onLeaderChange([this](const MasterInfo& leader) { leaderChanged(leader); });
}

void Agent::leaderChanged(const MasterInfo& leader) {
  if (state_ == State::kShuttingDown ||
      (leader.id() == masterInfo_.id() && leader.endpoint() == masterInfo_.endpoint())) {
    return;
  }
  LOG(INFO) << "Master " << leader.id() << " leads now; re-registering with it";
  masterInfo_.clear_endpoint();
  // A little random delay, so that thousands of agents do not all connect in the same instant;
  // none over a connection that is already up.
  Duration delay = Duration::zero();
  if (!alreadyConnected_ || !alreadyConnected_(leader.endpoint())) {
    std::uniform_int_distribution<int64_t> jitter(0, options_.leaderChangeJitter.count());
    delay = Duration(jitter(rng_));
  }
  loop_.cancel(registrationTimer_);
  registrationTimer_ = loop_.after(delay, [this] { detect(); });
  state_ = State::kDetecting;
  statusUpdates_.pause();
}

Agent::~Agent() {
  loop_.cancel(registrationTimer_);
  loop_.cancel(livenessTimer_);
  loop_.cancel(heartbeatTimer_);
  loop_.cancel(diskTimer_);
  loop_.cancel(usageTimer_);
  loop_.cancel(gcTimer_);
  for (auto& [fid, framework] : frameworks_) {
    for (auto& [eid, executor] : framework.executors) {
      loop_.cancel(executor.registrationTimer);
      loop_.cancel(executor.shutdownTimer);
    }
  }
}

void Agent::start() {
  LOG(INFO) << "Agent on " << options_.info.hostname() << " offering "
            << Resources(options_.info.resources()) << "; executors connect at "
            << options_.executorEndpoint;
  detect();
  checkMasterLiveness();
  heartbeatExecutors();
  diskTimer_ = loop_.after(options_.diskWatchInterval, [this] { checkDisk(); });
  if (options_.usageInterval > Duration::zero()) {
    usageTimer_ = loop_.after(options_.usageInterval, [this] { reportUsage(); });
  }
  if (options_.checkpoint) {  // an agent of real containers, with real sandboxes
    gcTimer_ = loop_.after(seconds(1), [this] { collectGarbage(); });
  }
}

void Agent::detect() {
  if (state_ == State::kShuttingDown) {
    return;
  }
  state_ = State::kDetecting;
  statusUpdates_.pause();
  uint64_t generation = ++detectGeneration_;
  detector_.detect([this, generation](Result<MasterInfo> info) {
    if (generation != detectGeneration_ || state_ == State::kShuttingDown) {
      return;
    }
    if (!info) {
      LOG_EVERY_N(WARNING, 10) << "No master found yet: " << info.error();
      Duration wait = jittered(backoff_);
      backoff_ = std::min(backoff_ * 2, options_.registrationBackoffMax);
      loop_.cancel(registrationTimer_);
      registrationTimer_ = loop_.after(wait, [this] { detect(); });
      return;
    }
    if (masterInfo_.endpoint() != info->endpoint() || info->endpoint().empty()) {
      connectionDropped_ = false;
      Status connected = connect_(info->endpoint());
      if (!connected) {
        LOG(WARNING) << connected.error();
        registrationTimer_ = loop_.after(backoff_, [this] { detect(); });
        return;
      }
    }
    masterInfo_ = *info;
    state_ = State::kRegistering;
    registerWithMaster();
  });
}

void Agent::registerWithMaster() {
  Envelope envelope;
  AgentCall* call = envelope.mutable_agent_call();
  AgentCall::Reregister* reg = nullptr;
  int lentTasks = 0;
  if (agentId_.empty()) {
    *call->mutable_register_()->mutable_agent_info() = options_.info;
    call->mutable_register_()->set_version(AGORA_VERSION);
  } else {
    reg = call->mutable_reregister();
    *reg->mutable_agent_info() = options_.info;
    reg->mutable_agent_info()->set_id(agentId_);
    reg->set_version(AGORA_VERSION);
    // The frameworks, executors and tasks are lent to the message while it is sent, not
    // copied into it: after a failover every agent re-registers at once, each with all of its
    // tasks. What was lent is taken back below, before the message is destroyed.
    auto lend = [](auto* field, const auto& item) {
      field->UnsafeArenaAddAllocated(const_cast<std::remove_const_t<
                                         std::remove_reference_t<decltype(item)>>*>(&item));
    };
    for (const auto& [fid, framework] : frameworks_) {
      lend(reg->mutable_frameworks(), framework.info);
      for (const auto& [eid, executor] : framework.executors) {
        lend(reg->mutable_executors(), executor.info);
        for (const auto& [tid, task] : executor.tasks) {
          lend(reg->mutable_tasks(), task);
        }
      }
    }
    lentTasks = reg->tasks_size();
    // Tasks whose executor is gone but whose final updates are still on their way.
    statusUpdates_.forEachStream([&](const std::string& frameworkId, const std::string& taskId,
                                     const TaskStatus& head, TaskState latest) {
      if (findExecutorOfTask(frameworkId, taskId) != nullptr) {
        return;
      }
      Task* task = reg->add_tasks();
      task->set_task_id(taskId);
      task->set_framework_id(frameworkId);
      task->set_executor_id(head.executor_id());
      task->set_agent_id(agentId_);
      task->set_state(latest);
    });
  }
  ++counters_.registrations;
  sendToMaster(envelope);
  if (reg != nullptr) {
    while (reg->tasks_size() > lentTasks) {
      reg->mutable_tasks()->RemoveLast();
    }
    while (reg->tasks_size() > 0) {
      reg->mutable_tasks()->UnsafeArenaReleaseLast();
    }
    while (reg->executors_size() > 0) {
      reg->mutable_executors()->UnsafeArenaReleaseLast();
    }
    while (reg->frameworks_size() > 0) {
      reg->mutable_frameworks()->UnsafeArenaReleaseLast();
    }
  }

  // No answer in time: look for the master again (it may have moved) and retry.
  Duration wait = jittered(backoff_);
  backoff_ = std::min(backoff_ * 2, options_.registrationBackoffMax);
  loop_.cancel(registrationTimer_);
  registrationTimer_ = loop_.after(wait, [this] {
    if (state_ == State::kRegistering) {
      detect();
    }
  });
}

Duration Agent::jittered(Duration backoff) {
  // Between half and the whole of the back-off, so that agents spread out.
  std::uniform_int_distribution<int64_t> pick(backoff.count() / 2, backoff.count());
  return Duration(pick(rng_));
}

void Agent::onRegistered(const AgentEvent::Registered& registered) {
  if (state_ != State::kRegistering && state_ != State::kRegistered) {
    return;
  }
  bool first = agentId_.empty();
  agentId_ = registered.agent_id();
  options_.info.set_id(agentId_);
  if (registered.master_info().id().size() > 0) {
    std::string endpoint = masterInfo_.endpoint();
    masterInfo_ = registered.master_info();
    masterInfo_.set_endpoint(endpoint);
  }
  state_ = State::kRegistered;
  lastPing_ = loop_.now();
  if (options_.masterPingTimeout > Duration::zero()) {
    pingTimeout_ = options_.masterPingTimeout;
  } else if (registered.ping_timeout_seconds() > 0) {
    pingTimeout_ = fromSeconds(std::min(registered.ping_timeout_seconds(), 86400.0));
  }
  backoff_ = options_.registrationBackoffMin;
  loop_.cancel(registrationTimer_);
  registrationTimer_ = 0;
  LOG(INFO) << (first ? "Registered" : "Re-registered") << " with master " << masterInfo_.id()
            << " as agent " << agentId_;
  if (first) {
    checkpointAgent();
  }
  statusUpdates_.resume();
}

void Agent::checkMasterLiveness() {
  if (state_ == State::kRegistered && loop_.now() - lastPing_ > pingTimeout_) {
    lostMaster("no ping from the master for " + formatDuration(pingTimeout_));
  }
  livenessTimer_ = loop_.after(std::max<Duration>(pingTimeout_ / 4, milliseconds(10)),
                               [this] { checkMasterLiveness(); });
}

void Agent::masterConnectionChanged(bool connected) {
  if (!connected) {
    VLOG(1) << "Connection to the master dropped";
    connectionDropped_ = true;
    return;
  }
  // The first connect is not a reconnect.
  if (connectionDropped_ &&
      (state_ == State::kRegistered || state_ == State::kRegistering)) {
    connectionDropped_ = false;
    // Possibly a new master behind the same endpoint: say who we are (again). The master
    // answers a registration it already has the same way.
    state_ = State::kRegistering;
    statusUpdates_.pause();
    backoff_ = options_.registrationBackoffMin;
    registerWithMaster();
  }
}

void Agent::lostMaster(const std::string& why) {
  LOG(WARNING) << "Lost master " << masterInfo_.id() << ": " << why;
  masterInfo_.clear_endpoint();
  detect();
}

void Agent::sendToMaster(AgentCall call) {
  Envelope envelope;
  *envelope.mutable_agent_call() = std::move(call);
  sendToMaster(envelope);
}

void Agent::sendToMaster(Envelope& envelope) {
  envelope.mutable_agent_call()->set_agent_id(agentId_);
  master_.send("master", envelope);
}

bool Agent::forwardStatusUpdate(const std::string& frameworkId, const TaskStatus& status,
                                TaskState latest) {
  if (state_ != State::kRegistered) {
    return false;
  }
  AgentCall call;
  auto* update = call.mutable_status_update();
  update->set_framework_id(frameworkId);
  *update->mutable_status() = status;
  update->set_latest_state(latest);
  sendToMaster(std::move(call));
  ++counters_.statusUpdates;
  return true;
}

void Agent::receiveFromMaster(const std::string& from, Envelope&& envelope) {
  if (!envelope.has_agent_event()) {
    ++counters_.invalidMessages;
    return;
  }
  const AgentEvent& event = envelope.agent_event();
  if (event.has_registered()) {
    onRegistered(event.registered());
    return;
  }
  if (event.has_error()) {
    const auto& error = event.error();
    if (error.code() == ERROR_UNKNOWN_AGENT && state_ == State::kRegistered) {
      LOG(WARNING) << "Master does not know this agent (" << error.message()
                   << "); re-registering";
      state_ = State::kRegistering;
      statusUpdates_.pause();
      registerWithMaster();
    } else if (error.code() == ERROR_AGENT_REMOVED) {
      LOG(ERROR) << "Master removed this agent: " << error.message() << "; registering anew";
      agentId_.clear();
      state_ = State::kRegistering;
      registerWithMaster();
    } else {
      LOG(ERROR) << "Master refused: " << error.message();
    }
    return;
  }
  if (state_ != State::kRegistered) {
    // Not ours to act on until the master has (re-)admitted us.
    VLOG(1) << "Dropped a message from the master while not registered: "
            << event.ShortDebugString();
    ++counters_.invalidMessages;
    return;
  }
  switch (event.event_case()) {
    case AgentEvent::kPing: {
      if (event.ping().master_id() != masterInfo_.id()) {
        LOG(INFO) << "Pinged by a different master (" << event.ping().master_id()
                  << "); re-registering";
        masterInfo_.set_id(event.ping().master_id());
        state_ = State::kRegistering;
        statusUpdates_.pause();
        registerWithMaster();
        return;
      }
      lastPing_ = loop_.now();
      AgentCall pong;
      pong.mutable_pong()->set_master_id(masterInfo_.id());
      sendToMaster(std::move(pong));
      return;
    }
    case AgentEvent::kRunTask:
      runTask(event.run_task().framework(), event.run_task().task());
      return;
    case AgentEvent::kRunTaskGroup:
      runTaskGroup(event.run_task_group().framework(), event.run_task_group().executor(),
                   event.run_task_group().task_group());
      return;
    case AgentEvent::kKillTask:
      killTask(event.kill_task());
      return;
    case AgentEvent::kStatusUpdateAck: {
      const auto& ack = event.status_update_ack();
      if (statusUpdates_.acknowledge(ack.framework_id(), ack.task_id(), ack.uuid()) &&
          !statusUpdates_.hasStream(ack.framework_id(), ack.task_id())) {
        if (Executor* executor = findExecutorOfTask(ack.framework_id(), ack.task_id())) {
          forgetAcknowledgedTask(*executor, ack.task_id());
        }
      }
      return;
    }
    case AgentEvent::kShutdownFramework:
      shutdownFramework(event.shutdown_framework().framework_id());
      return;
    case AgentEvent::kUpdateFramework: {
      const FrameworkInfo& info = event.update_framework().framework_info();
      auto framework = frameworks_.find(info.id());
      if (framework != frameworks_.end()) {
        framework->second.info = info;
      }
      statusUpdates_.flush(info.id());
      return;
    }
    case AgentEvent::kUpdateResources:
      updateResources(event.update_resources());
      return;
    case AgentEvent::kMessage: {
      const auto& message = event.message();
      Executor* executor = findExecutor(message.framework_id(), message.executor_id());
      if (executor == nullptr || executor->phase != Executor::Phase::kRunning) {
        ++counters_.invalidMessages;
        return;
      }
      ExecutorEvent out;
      out.mutable_message()->set_data(message.data());
      sendToExecutor(*executor, out);
      return;
    }
    default:
      ++counters_.invalidMessages;
      return;
  }
}

void Agent::shutdown(std::function<void()> done) {
  LOG(INFO) << "Agent shutting down: stopping every executor";
  state_ = State::kShuttingDown;
  shutdownDone_ = std::move(done);
  bool any = false;
  for (auto& [fid, framework] : frameworks_) {
    for (auto& [eid, executor] : framework.executors) {
      any = true;
      shutdownExecutor(executor);
    }
  }
  if (!any) {
    auto finished = std::move(shutdownDone_);
    shutdownDone_ = nullptr;
    loop_.post(std::move(finished));
  }
}

}  // namespace agora::agent
