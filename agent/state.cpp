// What the agent shows: /state (JSON) and /metrics.

#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/agent.hpp"

#include "common/fs.hpp"
#include "common/resources_json.hpp"

namespace agora::agent {

using nlohmann::json;

json Agent::containers() const {
  json out = json::array();
  for (const auto& [fid, framework] : frameworks_) {
    for (const auto& [eid, executor] : framework.executors) {
      json c = {{"container_id", executor.containerId},
                {"framework_id", fid},
                {"executor_id", eid},
                {"tasks", executor.tasks.size()}};
      Resources limits(executor.info.resources());
      for (const auto& [id, task] : executor.tasks) {
        limits += Resources(task.resources());
      }
      c["resources"] = resourcesJson(limits);
      c["disk_used_bytes"] = executor.diskUsed;
      if (auto stats = statisticsOf(executor)) {
        c["statistics"] = statisticsJson(*stats);
      }
      out.push_back(std::move(c));
    }
  }
  return out;
}

Result<Agent::TaskContainer> Agent::taskContainer(const std::string& taskId) const {
  for (const auto& [fid, framework] : frameworks_) {
    for (const auto& [eid, executor] : framework.executors) {
      auto task = executor.tasks.find(taskId);
      if (task == executor.tasks.end()) {
        continue;
      }
      if (task->second.state() != TASK_RUNNING && task->second.state() != TASK_STARTING) {
        return Error("task " + taskId + " is not running (it is " +
                     TaskState_Name(task->second.state()) + ")");
      }
      auto process = containerizer_.process(executor.containerId);
      if (!process || process->pid <= 0) {
        return Error("the container of task " + taskId + " has no process");
      }
      // A task of a group has a sandbox of its own in its executor's.
      std::string own = executor.directory + "/tasks/" + taskId;
      return TaskContainer{process->pid, pathExists(own) ? own : executor.directory};
    }
  }
  return Error("no task " + taskId + " on this agent");
}

json Agent::state() const {
  json frameworks = json::array();
  Resources used;
  for (const auto& [fid, framework] : frameworks_) {
    json executors = json::array();
    for (const auto& [eid, executor] : framework.executors) {
      json tasks = json::array();
      for (const auto& [tid, task] : executor.tasks) {
        tasks.push_back({{"id", tid},
                         {"name", task.name()},
                         {"state", TaskState_Name(task.state())},
                         {"resources", resourcesJson(Resources(task.resources()))}});
        if (task.state() == TASK_STAGING || task.state() == TASK_STARTING ||
            task.state() == TASK_RUNNING || task.state() == TASK_KILLING) {
          used += Resources(task.resources());
        }
      }
      json completed = json::array();
      for (const auto& [tid, state] : executor.completedTasks) {
        completed.push_back({{"id", tid}, {"state", TaskState_Name(state)}});
      }
      const char* phase = executor.phase == Executor::Phase::kLaunching ? "LAUNCHING"
                          : executor.phase == Executor::Phase::kRunning ? "RUNNING"
                                                                        : "TERMINATING";
      executors.push_back({{"id", eid},
                           {"name", executor.info.name()},
                           {"type", ExecutorInfo::Type_Name(executor.info.type())},
                           {"container_id", executor.containerId},
                           {"directory", executor.directory},
                           {"phase", phase},
                           {"start_time", executor.startTime},
                           {"tasks", tasks},
                           {"completed_tasks", completed}});
    }
    frameworks.push_back({{"id", fid},
                          {"name", framework.info.name()},
                          {"user", framework.info.user()},
                          {"executors", executors}});
  }
  json completed = json::array();
  for (const CompletedExecutor& e : completedExecutors_) {
    json tasks = json::array();
    for (const auto& [tid, state] : e.tasks) {
      tasks.push_back({{"id", tid}, {"state", TaskState_Name(state)}});
    }
    completed.push_back({{"id", e.id},
                         {"framework_id", e.frameworkId},
                         {"container_id", e.containerId},
                         {"directory", e.directory},
                         {"exit", e.exit},
                         {"tasks", tasks}});
  }
  const char* state = state_ == State::kRegistered      ? "REGISTERED"
                      : state_ == State::kRegistering   ? "REGISTERING"
                      : state_ == State::kShuttingDown  ? "SHUTTING_DOWN"
                                                        : "DETECTING";
  json attributes = json::object();
  for (const Attribute& a : options_.info.attributes()) {
    attributes[a.name()] = a.value();
  }
  return {{"id", agentId_},
          {"hostname", options_.info.hostname()},
          {"address", options_.info.address()},
          {"version", AGORA_VERSION},
          {"state", state},
          {"start_time", startTime_},
          {"master_id", masterInfo_.id()},
          {"master_endpoint", masterInfo_.endpoint()},
          {"work_dir", options_.workDir},
          {"resources", resourcesJson(Resources(options_.info.resources()))},
          {"used_resources", resourcesJson(used)},
          {"attributes", attributes},
          {"frameworks", frameworks},
          {"completed_executors", completed},
          {"pending_status_updates", statusUpdates_.pending()}};
}

std::string Agent::metricsText() const {
  std::ostringstream out;
  auto line = [&](const std::string& name, const char* type, const std::string& help,
                  double value) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
        << name << " " << value << "\n";
  };
  size_t executors = 0;
  for (const auto& [fid, f] : frameworks_) {
    executors += f.executors.size();
  }
  line("agora_agent_registered", "gauge", "1 when registered with a master.",
       state_ == State::kRegistered ? 1 : 0);
  line("agora_agent_executors", "gauge", "Executors running.", static_cast<double>(executors));
  line("agora_agent_executors_launched_total", "counter", "Executors started.",
       static_cast<double>(counters_.executorsLaunched));
  line("agora_agent_executors_exited_total", "counter", "Executors that exited.",
       static_cast<double>(counters_.executorsExited));
  line("agora_agent_tasks_received_total", "counter", "Tasks the master sent.",
       static_cast<double>(counters_.tasksLaunched));
  line("agora_agent_status_updates_sent_total", "counter", "Status updates sent to the master.",
       static_cast<double>(counters_.statusUpdates));
  line("agora_agent_status_updates_pending", "gauge", "Status updates not yet acknowledged.",
       static_cast<double>(statusUpdates_.pending()));
  line("agora_agent_status_update_retries_total", "counter", "Status updates sent again.",
       static_cast<double>(statusUpdates_.retries()));
  line("agora_agent_invalid_messages_total", "counter",
       "Messages dropped as invalid or out of place.",
       static_cast<double>(counters_.invalidMessages));
  line("agora_agent_registrations_total", "counter", "(Re-)registration attempts.",
       static_cast<double>(counters_.registrations));
  out << "# HELP agora_agent_status_update_roundtrip_seconds From an update's first sending "
         "to its acknowledgement.\n# TYPE agora_agent_status_update_roundtrip_seconds histogram\n";
  statusUpdates_.roundTrip().write(out, "agora_agent_status_update_roundtrip_seconds");
  return out.str();
}

}  // namespace agora::agent
