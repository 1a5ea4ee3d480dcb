// Tasks in the master: validation of launches and bookkeeping of where each task is.

#include <cmath>

#include "common/health_check.hpp"
#include "common/ids.hpp"
#include "master/master.hpp"

namespace agora::master {

Status Master::validateTask(const FrameworkEntry& framework, const AgentEntry& agent,
                            const TaskInfo& task, const Resources& available) const {
  Status s = validateId(task.task_id(), "task id");
  if (!s) {
    return s;
  }
  if (framework.tasks.count(task.task_id()) > 0) {
    return Error("task id " + task.task_id() + " is already in use by this framework");
  }
  if (!task.agent_id().empty() && task.agent_id() != agent.info.id()) {
    return Error("task names agent " + task.agent_id() + " but its offers are for agent " +
                 agent.info.id());
  }
  s = Resources::validate(task.resources());
  if (!s) {
    return s;
  }
  Resources wanted(task.resources());
  if (wanted.empty()) {
    return Error("a task must ask for some resources (for example cpus:0.1;mem:32)");
  }
  if (double gpus = wanted.scalar("gpus"); gpus != std::floor(gpus)) {
    return Error("GPUs are given whole: a task cannot ask for gpus:" + std::to_string(gpus));
  }
  if (!available.contains(wanted)) {
    return Error("task uses more resources (" + wanted.toString() + ") than its offers hold (" +
                 available.toString() + ")");
  }
  if (task.has_executor()) {
    const ExecutorInfo& executor = task.executor();
    s = validateId(executor.executor_id(), "executor id");
    if (!s) {
      return s;
    }
    if (executor.type() == ExecutorInfo::CUSTOM && executor.command().value().empty()) {
      return Error("a custom executor needs a command");
    }
    s = Resources::validate(executor.resources());
    if (!s) {
      return s;
    }
  } else if (task.command().value().empty() && task.container().image().empty()) {
    return Error("a task needs a command (or an executor, or an image)");
  }
  // Who it runs as: its command's user, its executor's, or the framework's.
  const std::string& user = !task.command().user().empty() ? task.command().user()
                            : task.has_executor() && !task.executor().command().user().empty()
                                ? task.executor().command().user()
                                : framework.info.user();
  if (options_.acls.enabled() &&
      !authorized(AclAction::kRunTasks, framework.info.principal(), user,
                  "task " + task.task_id() + " of framework " + framework.info.id())) {
    return Error("the ACLs do not let " +
                 (framework.info.principal().empty()
                      ? std::string("a framework without a principal")
                      : "principal '" + framework.info.principal() + "'") +
                 " run tasks as user '" + user + "' (run_tasks)");
  }
  if (task.container().rootfs_layers_size() > 0 || task.container().mounts_size() > 0) {
    return Error("container.rootfs_layers and container.mounts are the agent's to fill in");
  }
  if (task.has_kill_grace_period_seconds() &&
      (!std::isfinite(task.kill_grace_period_seconds()) || task.kill_grace_period_seconds() < 0)) {
    return Error("kill_grace_period_seconds must be a non-negative number");
  }
  if (task.has_health_check()) {
    if (Status check = validateHealthCheck(task.health_check()); !check) {
      return Error("invalid health check: " + check.error());
    }
  }
  return ok();
}

void Master::addTask(FrameworkEntry& framework, AgentEntry& agent, const TaskInfo& info,
                     const std::string& role) {
  Task& task = framework.tasks[info.task_id()];
  task.set_name(info.name());
  task.set_task_id(info.task_id());
  task.set_framework_id(framework.info.id());
  task.set_executor_id(info.has_executor() ? info.executor().executor_id() : "");
  task.set_agent_id(agent.info.id());
  task.set_state(TASK_STAGING);
  *task.mutable_resources() = info.resources();
  task.set_role(role);
  *task.mutable_labels() = info.labels();
  task.mutable_status()->set_task_id(info.task_id());
  task.mutable_status()->set_state(TASK_STAGING);
  task.mutable_status()->set_agent_id(agent.info.id());
  task.mutable_status()->set_timestamp(loop_.wallTime());
  agent.used += Resources(info.resources());
  agent.tasks[framework.info.id()].insert(info.task_id());
  ++metrics_.tasksLaunched;
}

void Master::completeTask(FrameworkEntry& framework, const std::string& taskId) {
  auto it = framework.tasks.find(taskId);
  if (it == framework.tasks.end()) {
    return;
  }
  if (AgentEntry* agent = findAgent(it->second.agent_id())) {
    agent->usage.erase(framework.info.id() + "/" + taskId);
    auto byFramework = agent->tasks.find(framework.info.id());
    if (byFramework != agent->tasks.end()) {
      byFramework->second.erase(taskId);
      if (byFramework->second.empty()) {
        agent->tasks.erase(byFramework);
      }
    }
  }
  framework.completedTasks.push_back(std::move(it->second));
  framework.tasks.erase(it);
  while (framework.completedTasks.size() > options_.maxCompletedTasksPerFramework) {
    framework.completedTasks.pop_front();
  }
}

}  // namespace agora::master
