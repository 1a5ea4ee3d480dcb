// What the master shows operators: /state (JSON) and /metrics (Prometheus text).

#include <sstream>

#include <nlohmann/json.hpp>

#include "common/resources_json.hpp"
#include "master/master.hpp"

namespace agora::master {

using nlohmann::json;

namespace {

std::string stateName(TaskState s) { return TaskState_Name(s); }

json labelsJson(const google::protobuf::RepeatedPtrField<Label>& labels) {
  json out = json::object();
  for (const Label& l : labels) {
    out[l.key()] = l.value();
  }
  return out;
}

}  // namespace

json Master::taskJson(const Task& task) const {
  const TaskStatus& s = task.status();
  json status = {{"state", stateName(s.state())},
                 {"timestamp", s.timestamp()},
                 {"source", TaskStatus::Source_Name(s.source())},
                 {"reason", TaskStatus::Reason_Name(s.reason())},
                 {"message", s.message()}};
  if (s.has_healthy()) {
    status["healthy"] = s.healthy();
  }
  json out = {{"id", task.task_id()},
              {"name", task.name()},
              {"framework_id", task.framework_id()},
              {"executor_id", task.executor_id()},
              {"agent_id", task.agent_id()},
              {"state", stateName(task.state())},
              {"role", task.role()},
              {"resources", resourcesJson(Resources(task.resources()))},
              {"labels", labelsJson(task.labels())},
              {"status", status}};
  auto agent = agents_.find(task.agent_id());
  if (agent != agents_.end()) {
    auto usage = agent->second.usage.find(task.framework_id() + "/" + task.task_id());
    if (usage != agent->second.usage.end()) {
      out["statistics"] = statisticsJson(usage->second);
    }
  }
  return out;
}

json Master::state() const {
  json agents = json::array();
  for (const auto& [id, agent] : agents_) {
    json attributes = json::object();
    for (const Attribute& a : agent.info.attributes()) {
      attributes[a.name()] = a.value();
    }
    size_t tasks = 0;
    for (const auto& [fw, ids] : agent.tasks) {
      tasks += ids.size();
    }
    agents.push_back({{"id", id},
                      {"hostname", agent.info.hostname()},
                      {"address", agent.info.address()},
                      {"active", true},
                      {"registered_time", agent.registeredTime},
                      {"reregistered_time", agent.reregisteredTime},
                      {"resources", resourcesJson(agent.total)},
                      {"used_resources", resourcesJson(agent.used)},
                      {"offered_resources", resourcesJson(agent.offered)},
                      {"attributes", attributes},
                      {"task_count", tasks}});
  }
  json unreachableAgents = json::array();
  for (const auto& [id, removed] : unreachableAgents_) {
    unreachableAgents.push_back({{"id", id},
                                 {"hostname", removed.info.hostname()},
                                 {"since", removed.since},
                                 {"reason", removed.reason}});
  }
  json recoveredAgents = json::array();
  for (const auto& [id, record] : recoveredAgents_) {
    recoveredAgents.push_back({{"id", id}, {"hostname", record.info().hostname()}});
  }

  auto frameworkJson = [&](const FrameworkEntry& f, bool completed) {
    Resources used;
    json tasks = json::array();
    for (const auto& [taskId, task] : f.tasks) {
      if (!isTerminalState(task.state())) {
        used += Resources(task.resources());
      }
      tasks.push_back(taskJson(task));
    }
    json completedTasks = json::array();
    for (const Task& task : f.completedTasks) {
      completedTasks.push_back(taskJson(task));
    }
    Resources offered;
    json offers = json::array();
    for (const std::string& offerId : f.offers) {
      const OfferEntry& offer = offers_.at(offerId);
      offered += offer.resources;
      offers.push_back({{"id", offerId},
                        {"agent_id", offer.offer.agent_id()},
                        {"role", offer.offer.allocation_role()},
                        {"resources", resourcesJson(offer.resources)}});
    }
    json roles = json::array();
    for (const std::string& r : f.info.roles()) {
      roles.push_back(r);
    }
    if (roles.empty()) {
      roles.push_back("*");
    }
    json capabilities = json::array();
    for (int c : f.info.capabilities()) {
      capabilities.push_back(FrameworkInfo::Capability_Name(
          static_cast<FrameworkInfo::Capability>(c)));
    }
    return json{{"id", f.info.id()},
                {"name", f.info.name()},
                {"user", f.info.user()},
                {"principal", f.info.principal()},
                {"hostname", f.info.hostname()},
                {"roles", roles},
                {"capabilities", capabilities},
                {"labels", labelsJson(f.info.labels())},
                {"failover_timeout", f.info.failover_timeout()},
                {"active", f.active && !completed},
                {"connected", !f.connection.empty() && !completed},
                {"registered_time", f.registeredTime},
                {"unregistered_time", f.unregisteredTime},
                {"used_resources", resourcesJson(used)},
                {"offered_resources", resourcesJson(offered)},
                {"tasks", tasks},
                {"completed_tasks", completedTasks},
                {"offers", offers}};
  };

  json frameworks = json::array();
  for (const auto& [id, f] : frameworks_) {
    frameworks.push_back(frameworkJson(f, false));
  }
  json completedFrameworks = json::array();
  for (const auto& [id, f] : completedFrameworks_) {
    completedFrameworks.push_back(frameworkJson(f, true));
  }

  return {{"id", options_.info.id()},
          {"hostname", options_.info.hostname()},
          {"version", options_.info.version()},
          {"endpoint", options_.info.endpoint()},
          {"http_port", options_.info.http_port()},
          {"start_time", startTime_},
          {"leader", true},
          {"agents", agents},
          {"unreachable_agents", unreachableAgents},
          {"recovered_agents", recoveredAgents},
          {"registry", registry_.describe()},
          {"frameworks", frameworks},
          {"completed_frameworks", completedFrameworks}};
}

std::string Master::metricsText() const {
  std::ostringstream out;
  out.precision(15);  // timestamps to the microsecond
  auto gauge = [&](const std::string& name, const std::string& help, double value,
                   const std::string& labels = "") {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n"
        << name << labels << " " << value << "\n";
  };
  auto counter = [&](const std::string& name, const std::string& help, double value) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " counter\n"
        << name << " " << value << "\n";
  };

  gauge("agora_master_uptime_seconds", "Seconds since the master started.",
        loop_.wallTime() - startTime_);
  gauge("agora_master_elected", "1 when this master leads.", 1);
  gauge("agora_master_agents", "Registered agents.", static_cast<double>(agents_.size()));
  gauge("agora_master_agents_unreachable", "Agents marked unreachable.",
        static_cast<double>(unreachableAgents_.size()));
  gauge("agora_master_agents_recovering", "Agents in the registry that have not re-registered "
        "since this master took over.", static_cast<double>(recoveredAgents_.size()));
  gauge("agora_master_elected_timestamp_seconds", "When this master was elected (Unix time).",
        options_.electedTime);
  gauge("agora_master_serving_timestamp_seconds",
        "When this master had recovered the registry and began to serve (Unix time).",
        servingTime_);
  gauge("agora_master_agents_recovered_timestamp_seconds",
        "When every agent in the registry had re-registered or been marked unreachable after "
        "this master took over (Unix time; 0 until then).",
        agentsRecoveredTime_);

  size_t connected = 0;
  for (const auto& [id, f] : frameworks_) {
    connected += f.connection.empty() ? 0 : 1;
  }
  out << "# HELP agora_master_frameworks Frameworks known to the master.\n"
      << "# TYPE agora_master_frameworks gauge\n"
      << "agora_master_frameworks{state=\"connected\"} " << connected << "\n"
      << "agora_master_frameworks{state=\"disconnected\"} " << frameworks_.size() - connected
      << "\n"
      << "agora_master_frameworks{state=\"completed\"} " << completedFrameworks_.size() << "\n";

  // Counting every task is linear in the tasks: done at most once a second, however often
  // /metrics is scraped.
  if (taskCounts_.empty() || loop_.now() - taskCountsAt_ > seconds(1)) {
    taskCounts_.clear();
    for (int s = TaskState_MIN; s <= TaskState_MAX; ++s) {
      if (TaskState_IsValid(s) && !isTerminalState(static_cast<TaskState>(s)) && s != TASK_UNKNOWN) {
        taskCounts_[static_cast<TaskState>(s)] = 0;
      }
    }
    for (const auto& [id, f] : frameworks_) {
      for (const auto& [taskId, task] : f.tasks) {
        if (!isTerminalState(task.state())) {
          ++taskCounts_[task.state()];
        }
      }
    }
    taskCountsAt_ = loop_.now();
  }
  const std::map<TaskState, size_t>& byState = taskCounts_;
  out << "# HELP agora_master_tasks Tasks that have not ended, by state.\n"
      << "# TYPE agora_master_tasks gauge\n";
  for (const auto& [state, n] : byState) {
    out << "agora_master_tasks{state=\"" << stateName(state) << "\"} " << n << "\n";
  }
  out << "# HELP agora_master_tasks_terminal_total Tasks that ended, by final state.\n"
      << "# TYPE agora_master_tasks_terminal_total counter\n";
  for (int s = TaskState_MIN; s <= TaskState_MAX; ++s) {
    if (TaskState_IsValid(s) && isTerminalState(static_cast<TaskState>(s))) {
      auto it = metrics_.tasksTerminal.find(static_cast<TaskState>(s));
      out << "agora_master_tasks_terminal_total{state=\"" << stateName(static_cast<TaskState>(s))
          << "\"} " << (it == metrics_.tasksTerminal.end() ? 0 : it->second) << "\n";
    }
  }
  counter("agora_master_tasks_launched_total", "Tasks sent to agents.", metrics_.tasksLaunched);
  counter("agora_master_tasks_invalid_total", "Launches refused with TASK_ERROR.",
          metrics_.tasksInvalid);
  counter("agora_master_tasks_dropped_total", "Launches against offers that were gone.",
          metrics_.tasksDropped);

  gauge("agora_master_offers_outstanding", "Offers made and not yet answered.",
        static_cast<double>(offers_.size()));
  counter("agora_master_offers_sent_total", "Offers made.", metrics_.offersSent);
  counter("agora_master_offers_accepted_total", "Accepts of offers.", metrics_.offersAccepted);
  counter("agora_master_offers_declined_total", "Offers declined.", metrics_.offersDeclined);
  counter("agora_master_offers_rescinded_total", "Offers rescinded.", metrics_.offersRescinded);
  counter("agora_master_status_updates_forwarded_total", "Status updates sent to frameworks.",
          metrics_.statusUpdatesForwarded);
  counter("agora_master_status_updates_dropped_total",
          "Status updates not forwarded (framework away or gone; the agent retries).",
          metrics_.statusUpdatesDropped);
  counter("agora_master_acknowledgements_total", "Acknowledgements relayed to agents.",
          metrics_.acknowledgementsRelayed);
  counter("agora_master_agents_registered_total", "Agent registrations.",
          metrics_.agentsRegistered);
  counter("agora_master_agents_reregistered_total", "Agent re-registrations.",
          metrics_.agentsReregistered);
  counter("agora_master_agents_removed_total", "Agents removed.", metrics_.agentsRemoved);
  counter("agora_master_frameworks_subscribed_total", "Framework subscriptions.",
          metrics_.frameworksSubscribed);
  counter("agora_master_frameworks_removed_total", "Frameworks removed.",
          metrics_.frameworksRemoved);
  counter("agora_master_allocation_runs_total", "Allocation cycles.", metrics_.allocationRuns);
  counter("agora_master_allocation_seconds_total", "Time spent allocating.",
          metrics_.allocationSeconds);
  counter("agora_master_invalid_calls_total", "Calls refused as invalid.", metrics_.invalidCalls);
  out << "# HELP agora_master_unauthorized_total Requests the ACLs refused, by action.\n"
      << "# TYPE agora_master_unauthorized_total counter\n";
  for (const auto& [action, n] : metrics_.unauthorized) {
    out << "agora_master_unauthorized_total{action=\"" << action << "\"} " << n << "\n";
  }
  out << "# HELP agora_master_allocation_cycle_seconds How long allocation cycles take.\n"
      << "# TYPE agora_master_allocation_cycle_seconds histogram\n";
  metrics_.allocationCycle.write(out, "agora_master_allocation_cycle_seconds");

  uint64_t received = 0;
  out << "# HELP agora_master_messages_received_total Messages received, by kind.\n"
      << "# TYPE agora_master_messages_received_total counter\n";
  for (const auto& [kind, n] : metrics_.received) {
    received += n;
    const auto* body = Envelope::descriptor()->FindFieldByNumber(kind.first);
    const google::protobuf::Descriptor* inner = body ? body->message_type() : nullptr;
    const auto* call = inner ? inner->FindFieldByNumber(kind.second) : nullptr;
    out << "agora_master_messages_received_total{kind=\""
        << (body ? body->name() : "unknown") << "." << (call ? call->name() : "unknown")
        << "\"} " << n << "\n";
  }
  std::map<std::string, uint64_t> dropped = metrics_.dropped;
  if (metrics_.transportStats) {
    TransportStats t = metrics_.transportStats();
    dropped["malformed"] += t.malformed;
    if (t.throttled > 0) {
      dropped["throttled"] += t.throttled;
    }
    counter("agora_master_connections_rejected_total",
            "Connections that failed the ZeroMQ handshake (not a peer).", t.handshakeFailures);
    counter("agora_master_connections_unauthenticated_total",
            "Connections refused in the CURVE handshake: no keys, or keys not admitted.",
            t.authFailures);
    counter("agora_master_disconnects_total", "Peer connections closed (including oversized "
            "messages).", t.disconnects);
    counter("agora_master_messages_sent_total", "Messages sent.", t.sent);
  }
  dropped.try_emplace("malformed", 0);
  out << "# HELP agora_master_messages_dropped_total Messages dropped, by reason.\n"
      << "# TYPE agora_master_messages_dropped_total counter\n";
  for (const auto& [reason, n] : dropped) {
    out << "agora_master_messages_dropped_total{reason=\"" << reason << "\"} " << n << "\n";
  }
  return out.str();
}

}  // namespace agora::master
