#pragma once

// A scheduler for tests: launches the tasks it is given into the first offers that fit, and
// records every update, so a test can wait for a task to reach a state.

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agora/scheduler.hpp"
#include "common/resources.hpp"
#include "common/time.hpp"

namespace agora::testing {

class TestScheduler final : public Scheduler {
 public:
  static TaskInfo commandTask(const std::string& id, const std::string& command,
                              const std::string& resources = "cpus:0.1;mem:32") {
    TaskInfo task;
    task.set_task_id(id);
    task.set_name(id);
    task.mutable_command()->set_value(command);
    Resources::parse(resources)->copyTo(task.mutable_resources());
    return task;
  }

  // Queues a task; it is launched into the next offer that holds it.
  void launch(const TaskInfo& task, SchedulerDriver* driver = nullptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back(task);
    if (driver != nullptr) {
      driver->revive();
    }
  }

  // Queues a task group; it is launched (LAUNCH_GROUP) into the next offer that holds it all.
  void launchGroup(const ExecutorInfo& executor, const std::vector<TaskInfo>& tasks) {
    std::lock_guard<std::mutex> lock(mutex_);
    Operation op;
    op.set_type(Operation::LAUNCH_GROUP);
    *op.mutable_launch_group()->mutable_executor() = executor;
    for (const TaskInfo& t : tasks) {
      *op.mutable_launch_group()->mutable_task_group()->add_tasks() = t;
    }
    pendingGroups_.push_back(op);
  }

  void subscribed(SchedulerDriver*, const std::string& frameworkId, const MasterInfo&) override {
    std::lock_guard<std::mutex> lock(mutex_);
    frameworkId_ = frameworkId;
    ++subscriptions_;
    changed_.notify_all();
  }

  void offers(SchedulerDriver* driver, const std::vector<Offer>& offers) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Offer& offer : offers) {
      Resources available(offer.resources());
      std::vector<TaskInfo> tasks;
      for (auto it = pending_.begin(); it != pending_.end();) {
        Resources need(it->resources());
        if (available.contains(need)) {
          available -= need;
          it->set_agent_id(offer.agent_id());
          agentAddress_[it->task_id()] = offer.agent_address();
          tasks.push_back(*it);
          it = pending_.erase(it);
        } else {
          ++it;
        }
      }
      std::vector<Operation> operations;
      for (auto it = pendingGroups_.begin(); it != pendingGroups_.end();) {
        Resources need;
        for (const TaskInfo& t : it->launch_group().task_group().tasks()) {
          need += Resources(t.resources());
        }
        if (available.contains(need)) {
          available -= need;
          for (const TaskInfo& t : it->launch_group().task_group().tasks()) {
            agentAddress_[t.task_id()] = offer.agent_address();
          }
          operations.push_back(*it);
          it = pendingGroups_.erase(it);
        } else {
          ++it;
        }
      }
      if (!tasks.empty()) {
        Operation launch;
        launch.set_type(Operation::LAUNCH);
        for (const TaskInfo& t : tasks) {
          *launch.mutable_launch()->add_task_infos() = t;
        }
        operations.push_back(launch);
      }
      Filters filters;
      filters.set_refuse_seconds(1);
      if (operations.empty()) {
        driver->decline(offer.id(), filters);
      } else {
        driver->accept({offer.id()}, operations, filters);
      }
    }
  }

  void update(SchedulerDriver*, const TaskStatus& status) override {
    std::lock_guard<std::mutex> lock(mutex_);
    updates_[status.task_id()].push_back(status);
    changed_.notify_all();
  }

  void error(SchedulerDriver*, const std::string& message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    errors_.push_back(message);
    changed_.notify_all();
  }

  // Waits until the task has reached `state` (true) or `timeout` passed (false).
  bool waitForState(const std::string& taskId, TaskState state, Duration timeout = seconds(30)) {
    return waitFor([&] { return reached(taskId, state); }, timeout);
  }

  // Waits until the task's latest state is terminal; returns that status.
  TaskStatus waitForEnd(const std::string& taskId, Duration timeout = seconds(30)) {
    TaskStatus last;
    waitFor(
        [&] {
          auto it = updates_.find(taskId);
          if (it == updates_.end()) {
            return false;
          }
          last = it->second.back();
          TaskState s = last.state();
          return s == TASK_FINISHED || s == TASK_FAILED || s == TASK_KILLED || s == TASK_ERROR ||
                 s == TASK_LOST || s == TASK_DROPPED || s == TASK_GONE;
        },
        timeout);
    return last;
  }

  // Waits until the scheduler has been subscribed at least `times` times.
  bool waitForSubscription(int times = 1, Duration timeout = seconds(30)) {
    return waitFor([&] { return subscriptions_ >= times; }, timeout);
  }

  // Waits until the task has had more than `count` updates.
  bool waitForUpdates(const std::string& taskId, size_t count, Duration timeout = seconds(30)) {
    return waitFor([&] { return updates_[taskId].size() > count; }, timeout);
  }

  std::vector<TaskState> states(const std::string& taskId) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<TaskState> out;
    for (const TaskStatus& s : updates_[taskId]) {
      out.push_back(s.state());
    }
    return out;
  }

  std::vector<TaskStatus> statuses(const std::string& taskId) {
    std::lock_guard<std::mutex> lock(mutex_);
    return updates_[taskId];
  }

  // Waits until an update for the task satisfies `condition`; true if one did in time.
  bool waitForStatus(const std::string& taskId,
                     const std::function<bool(const TaskStatus&)>& condition,
                     Duration timeout = seconds(30)) {
    return waitFor(
        [&] {
          for (const TaskStatus& s : updates_[taskId]) {
            if (condition(s)) {
              return true;
            }
          }
          return false;
        },
        timeout);
  }

  std::string agentAddress(const std::string& taskId) {
    std::lock_guard<std::mutex> lock(mutex_);
    return agentAddress_[taskId];
  }

  std::string frameworkId() {
    std::lock_guard<std::mutex> lock(mutex_);
    return frameworkId_;
  }

  int subscriptions() {
    std::lock_guard<std::mutex> lock(mutex_);
    return subscriptions_;
  }

  // The driver's errors (it aborted), after waiting up to `timeout` for one.
  std::vector<std::string> waitForErrors(Duration timeout = seconds(30)) {
    waitFor([&] { return !errors_.empty(); }, timeout);
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_;
  }

 private:
  // `condition` runs with the lock held: it may read the members, not call public methods.
  bool waitFor(const std::function<bool()>& condition, Duration timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, condition);
  }

  bool reached(const std::string& taskId, TaskState state) {
    auto it = updates_.find(taskId);
    if (it == updates_.end()) {
      return false;
    }
    for (const TaskStatus& s : it->second) {
      if (s.state() == state) {
        return true;
      }
    }
    return false;
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<TaskInfo> pending_;
  std::deque<Operation> pendingGroups_;
  std::map<std::string, std::vector<TaskStatus>> updates_;
  std::map<std::string, std::string> agentAddress_;
  std::vector<std::string> errors_;
  std::string frameworkId_;
  int subscriptions_ = 0;
};

inline FrameworkInfo testFramework(const std::string& name = "test") {
  FrameworkInfo info;
  info.set_name(name);
  info.set_user("root");
  return info;
}

}  // namespace agora::testing
