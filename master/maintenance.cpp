// Maintenance: windows scheduled per machine (hostname), inverse offers to the frameworks
// running there, draining, and machines coming back when their window ends.

#include <cmath>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "master/master.hpp"

namespace agora::master {

namespace {

bool hasWindow(const registry::MaintenanceRecord& record) {
  return record.has_window() && record.window().duration() > 0;
}

}  // namespace

size_t Master::liveTasks(const AgentEntry& agent) const {
  size_t live = 0;
  for (const auto& [frameworkId, ids] : agent.tasks) {
    auto framework = frameworks_.find(frameworkId);
    for (const std::string& id : ids) {
      if (framework == frameworks_.end()) {
        ++live;  // not known to be over
        continue;
      }
      auto task = framework->second.tasks.find(id);
      live += task == framework->second.tasks.end() || !isTerminalState(task->second.state()) ? 1 : 0;
    }
  }
  return live;
}

std::vector<Master::AgentEntry*> Master::agentsOn(const std::string& hostname) {
  std::vector<AgentEntry*> out;
  for (auto& [id, agent] : agents_) {
    if (agent.info.hostname() == hostname) {
      out.push_back(&agent);
    }
  }
  return out;
}

void Master::scheduleMaintenance(const std::vector<std::string>& hostnames, double start,
                                 double duration, std::function<void(Status)> done) {
  if (hostnames.empty()) {
    return done(Error("name at least one machine (hostname)"));
  }
  if (!std::isfinite(start) || start < 0) {
    return done(Error("the window's start must be a time (seconds since the epoch)"));
  }
  if (!std::isfinite(duration) || duration <= 0) {
    return done(Error("the window's duration must be positive"));
  }
  if (start + duration <= loop_.wallTime()) {
    return done(Error("the window is already over"));
  }
  for (const std::string& host : hostnames) {
    if (host.empty() || host.size() > 255) {
      return done(Error("'" + host + "' is not a hostname"));
    }
  }
  auto left = std::make_shared<size_t>(hostnames.size());
  for (const std::string& host : hostnames) {
    registry::MaintenanceRecord record;
    auto known = maintenance_.find(host);
    if (known != maintenance_.end()) {
      record = known->second.record;
    }
    record.set_hostname(host);
    record.mutable_window()->set_start(start);
    record.mutable_window()->set_duration(duration);
    registry::Operation op;
    *op.mutable_set_maintenance() = record;
    persist(std::move(op), [this, record, left, done] {
      Machine& machine = maintenance_[record.hostname()];
      machine.record = record;
      machine.inverseOffers.clear();  // a new window: ask again
      machine.responses.clear();
      // Outstanding offers there come back, to be made again with the window in them.
      for (AgentEntry* agent : agentsOn(record.hostname())) {
        rescindOffersOn(*agent);
        requestAllocation(agent->info.id());
      }
      LOG(INFO) << "Maintenance of " << record.hostname() << " scheduled: "
                << formatDuration(fromSeconds(record.window().duration())) << " from "
                << std::fixed << record.window().start();
      if (--*left == 0) {
        evaluateMaintenance();
        done(ok());
      }
    });
  }
}

void Master::drainMachine(const std::string& hostname, bool kill, Duration grace,
                          std::function<void(Status)> done) {
  if (agentsOn(hostname).empty() && maintenance_.count(hostname) == 0) {
    return done(Error("no agent runs on machine '" + hostname + "'"));
  }
  registry::MaintenanceRecord record;
  auto known = maintenance_.find(hostname);
  if (known != maintenance_.end()) {
    record = known->second.record;
  }
  record.set_hostname(hostname);
  record.set_draining(true);
  record.set_kill(kill);
  record.set_grace_seconds(toSeconds(grace));
  registry::Operation op;
  *op.mutable_set_maintenance() = record;
  persist(std::move(op), [this, record, done = std::move(done)] {
    maintenance_[record.hostname()].record = record;
    LOG(INFO) << "Draining " << record.hostname()
              << (record.kill() ? ": killing its tasks" : ": waiting for its tasks to finish");
    evaluateMaintenance();
    done(ok());
  });
}

void Master::upMachine(const std::string& hostname, std::function<void(Status)> done) {
  if (maintenance_.count(hostname) == 0) {
    return done(Error("machine '" + hostname + "' is not under maintenance"));
  }
  registry::Operation op;
  op.set_remove_maintenance(hostname);
  persist(std::move(op), [this, hostname, done = std::move(done)] {
    maintenance_.erase(hostname);
    for (AgentEntry* agent : agentsOn(hostname)) {
      allocator_->setAgentOfferable(agent->info.id(), true);
      requestAllocation(agent->info.id());
    }
    LOG(INFO) << "Machine " << hostname << " is up";
    done(ok());
  });
}

void Master::respondInverseOffers(FrameworkEntry& framework,
                                  const SchedulerCall::RespondInverseOffers& respond) {
  for (const std::string& id : respond.inverse_offer_ids()) {
    for (auto& [host, machine] : maintenance_) {
      auto it = machine.inverseOffers.find(framework.info.id());
      if (it != machine.inverseOffers.end() && it->second == id) {
        machine.responses[framework.info.id()] = respond.accept();
      }
    }
  }
}

void Master::evaluateMaintenance() {
  double now = loop_.wallTime();
  std::vector<std::string> over;
  for (auto& [host, machine] : maintenance_) {
    const registry::MaintenanceRecord& record = machine.record;
    bool window = hasWindow(record);
    if (window && now >= record.window().start() + record.window().duration()) {
      over.push_back(host);
      continue;
    }
    std::vector<AgentEntry*> agents = agentsOn(host);
    size_t tasks = 0;
    for (AgentEntry* agent : agents) {
      tasks += liveTasks(*agent);
    }
    bool windowStarted = window && now >= record.window().start();
    bool down = windowStarted || (record.draining() && tasks == 0);
    bool offerable = !down && !record.draining();
    bool killAll = windowStarted || (record.draining() && record.kill());
    if (down && !machine.down) {
      LOG(INFO) << "Machine " << host << " is down for maintenance";
    }
    machine.down = down;
    for (AgentEntry* agent : agents) {
      allocator_->setAgentOfferable(agent->info.id(), offerable);
      if (!offerable) {
        rescindOffersOn(*agent);
      }
      for (const auto& [frameworkId, ids] : agent->tasks) {
        FrameworkEntry* framework = findFramework(frameworkId);
        // Frameworks running here hear of the window once, while there is time to move.
        if (window && !windowStarted && framework != nullptr &&
            !framework->connection.empty() && machine.inverseOffers.count(frameworkId) == 0) {
          std::string id = options_.info.id() + "-I" + std::to_string(nextOfferNumber_++);
          machine.inverseOffers[frameworkId] = id;
          SchedulerEvent event;
          InverseOffer* inverse = event.mutable_inverse_offers()->add_inverse_offers();
          inverse->set_id(id);
          inverse->set_framework_id(frameworkId);
          inverse->set_agent_id(agent->info.id());
          inverse->set_hostname(host);
          *inverse->mutable_unavailability() = record.window();
          sendToFramework(*framework, event);
        }
        if (!killAll || framework == nullptr) {
          continue;
        }
        for (const std::string& taskId : ids) {
          auto task = framework->tasks.find(taskId);
          if (task == framework->tasks.end() || isTerminalState(task->second.state()) ||
              !machine.killed.insert(taskId).second) {
            continue;
          }
          AgentEvent kill;
          kill.mutable_kill_task()->set_framework_id(frameworkId);
          kill.mutable_kill_task()->set_task_id(taskId);
          if (record.grace_seconds() > 0) {
            kill.mutable_kill_task()->set_grace_period_seconds(record.grace_seconds());
          }
          sendToAgent(*agent, kill);
        }
      }
    }
  }
  for (const std::string& host : over) {
    LOG(INFO) << "The maintenance window of " << host << " is over; it is up again";
    registry::Operation op;
    op.set_remove_maintenance(host);
    maintenance_.erase(host);
    persist(std::move(op), [] {});
    for (AgentEntry* agent : agentsOn(host)) {
      allocator_->setAgentOfferable(agent->info.id(), true);
      requestAllocation(agent->info.id());
    }
  }
}

nlohmann::json Master::maintenanceStatus() const {
  nlohmann::json machines = nlohmann::json::array();
  for (const auto& [host, machine] : maintenance_) {
    const registry::MaintenanceRecord& record = machine.record;
    nlohmann::json m = {{"hostname", host},
                        {"mode", machine.down ? "down" : "draining"},
                        {"draining_now", record.draining()},
                        {"kill", record.kill()}};
    if (hasWindow(record)) {
      m["window"] = {{"start", record.window().start()},
                     {"duration", record.window().duration()}};
    }
    nlohmann::json agents = nlohmann::json::array();
    size_t tasks = 0;
    for (const auto& [id, agent] : agents_) {
      if (agent.info.hostname() == host) {
        agents.push_back(id);
        tasks += liveTasks(agent);
      }
    }
    m["agents"] = agents;
    m["tasks"] = tasks;
    nlohmann::json answers = nlohmann::json::array();
    for (const auto& [frameworkId, id] : machine.inverseOffers) {
      auto response = machine.responses.find(frameworkId);
      answers.push_back({{"framework_id", frameworkId},
                         {"inverse_offer_id", id},
                         {"response", response == machine.responses.end() ? "pending"
                                      : response->second           ? "accepted"
                                                                   : "declined"}});
    }
    m["inverse_offers"] = answers;
    machines.push_back(m);
  }
  return {{"machines", machines}};
}

}  // namespace agora::master
