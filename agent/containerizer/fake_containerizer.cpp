#include "agent/containerizer/fake_containerizer.hpp"

#include <csignal>
#include <cstdlib>

#include "common/ids.hpp"

namespace agora::agent {

FakeContainerizer::FakeContainerizer(Loop& loop, Duration taskDuration)
    : loop_(loop), taskDuration_(taskDuration) {}

FakeContainerizer::~FakeContainerizer() {
  for (auto& [id, executor] : executors_) {
    for (auto& [taskId, timer] : executor.running) {
      loop_.cancel(timer);
    }
  }
}

Status FakeContainerizer::launch(const ContainerConfig& config) {
  FakeExecutor& executor = executors_[config.containerId];
  executor.frameworkId = config.frameworkId;
  executor.executorId = config.executorId;
  std::string containerId = config.containerId;
  loop_.post([this, containerId] {
    auto it = executors_.find(containerId);
    if (it == executors_.end() || !deliver_) {
      return;
    }
    Envelope envelope;
    auto* call = envelope.mutable_executor_call();
    call->set_framework_id(it->second.frameworkId);
    call->set_executor_id(it->second.executorId);
    call->mutable_subscribe();
    deliver_(containerId, std::move(envelope));
  });
  return ok();
}

void FakeContainerizer::destroy(const std::string& containerId) {
  exit(containerId, SIGKILL);  // as if killed by SIGKILL
}

void FakeContainerizer::report(const std::string& containerId, const std::string& taskId,
                               TaskState state, const std::string& message) {
  auto it = executors_.find(containerId);
  if (it == executors_.end()) {
    return;
  }
  Envelope envelope;
  auto* call = envelope.mutable_executor_call();
  call->set_framework_id(it->second.frameworkId);
  call->set_executor_id(it->second.executorId);
  TaskStatus* status = call->mutable_update()->mutable_status();
  status->set_task_id(taskId);
  status->set_state(state);
  status->set_message(message);
  status->set_uuid(uuidBytes());
  status->set_timestamp(loop_.wallTime());
  loop_.post([this, containerId, envelope = std::move(envelope)]() mutable {
    if (deliver_) {
      deliver_(containerId, std::move(envelope));
    }
  });
}

void FakeContainerizer::startTask(const std::string& containerId, const TaskInfo& task) {
  auto it = executors_.find(containerId);
  if (it == executors_.end() || it->second.running.count(task.task_id()) > 0) {
    return;
  }
  Duration duration = taskDuration_;
  for (const Label& label : task.labels()) {
    if (label.key() == "fake.duration") {
      duration = fromSeconds(std::atof(label.value().c_str()));
    }
  }
  report(containerId, task.task_id(), TASK_RUNNING, "");
  TimerId timer = 0;
  if (duration != Duration::max()) {
    std::string taskId = task.task_id();
    timer = loop_.after(duration, [this, containerId, taskId] {
      auto e = executors_.find(containerId);
      if (e != executors_.end()) {
        e->second.running[taskId] = 0;
      }
      endTask(containerId, taskId, TASK_FINISHED, "Command exited with status 0");
    });
  }
  it->second.running[task.task_id()] = timer;
}

void FakeContainerizer::endTask(const std::string& containerId, const std::string& taskId,
                                TaskState state, const std::string& message) {
  auto it = executors_.find(containerId);
  if (it == executors_.end()) {
    return;
  }
  auto task = it->second.running.find(taskId);
  if (task == it->second.running.end()) {
    return;
  }
  loop_.cancel(task->second);
  it->second.running.erase(task);
  report(containerId, taskId, state, message);
  exitWhenIdle(containerId);
}

void FakeContainerizer::exitWhenIdle(const std::string& containerId) {
  auto it = executors_.find(containerId);
  if (it != executors_.end() && it->second.running.empty()) {
    // After the last update has been delivered, like an executor that exits once done.
    loop_.post([this, containerId] { exit(containerId, 0); });
  }
}

void FakeContainerizer::exit(const std::string& containerId, int status) {
  auto it = executors_.find(containerId);
  if (it == executors_.end()) {
    return;
  }
  for (auto& [taskId, timer] : it->second.running) {
    loop_.cancel(timer);
  }
  executors_.erase(it);
  loop_.post([this, containerId, status] {
    if (onExit_) {
      onExit_(containerId, status);
    }
  });
}

bool FakeContainerizer::send(const std::string& to, const Envelope& envelope) {
  if (!envelope.has_executor_event() || executors_.count(to) == 0) {
    return false;
  }
  const ExecutorEvent& event = envelope.executor_event();
  switch (event.event_case()) {
    case ExecutorEvent::kLaunch:
      startTask(to, event.launch().task());
      break;
    case ExecutorEvent::kLaunchGroup:
      for (const TaskInfo& task : event.launch_group().task_group().tasks()) {
        startTask(to, task);
      }
      break;
    case ExecutorEvent::kKill:
      endTask(to, event.kill().task_id(), TASK_KILLED, "killed");
      break;
    case ExecutorEvent::kShutdown: {
      std::vector<std::string> ids;
      for (const auto& [taskId, timer] : executors_.at(to).running) {
        ids.push_back(taskId);
      }
      for (const std::string& id : ids) {
        endTask(to, id, TASK_KILLED, "executor shut down");
      }
      exitWhenIdle(to);
      break;
    }
    default:
      break;
  }
  return true;
}

}  // namespace agora::agent
