#pragma once

// The executor side of the Agora SDK. An executor runs inside a container the agent started;
// the ExecutorDriver reads its identity from the environment (AGORA_*), subscribes to the
// agent, delivers status updates reliably (each is kept and resent until the agent has
// recorded it), and calls the Executor back on the driver's own thread.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agora/agora.pb.h"
#include "agora/scheduler.hpp"  // DriverStatus

namespace agora {

class ExecutorDriver;

// A framework's own executor: the callbacks its ExecutorDriver makes, one at a time, on the
// driver's thread.
class Executor {
 public:
  virtual ~Executor() = default;

  // The agent accepted the executor (again, after an agent restart).
  virtual void subscribed(ExecutorDriver* driver, const ExecutorInfo& executor,
                          const FrameworkInfo& framework, const AgentInfo& agent) {}
  // A task to run: report TASK_RUNNING, then a terminal state, with ExecutorDriver::update.
  virtual void launch(ExecutorDriver* driver, const TaskInfo& task) = 0;
  // A task group: by default, each task is launched in turn.
  virtual void launchGroup(ExecutorDriver* driver, const TaskGroupInfo& group);
  // Kill a task (within the grace period, when one is given) and report TASK_KILLED.
  virtual void kill(ExecutorDriver* driver, const std::string& taskId,
                    std::optional<double> gracePeriodSeconds) = 0;
  // Data the scheduler sent (SchedulerDriver::message).
  virtual void message(ExecutorDriver* driver, const std::string& data) {}
  // Kill every task within the grace period; the driver stops once their updates are sent.
  virtual void shutdown(ExecutorDriver* driver, double gracePeriodSeconds) = 0;
  // An unrecoverable error: the driver has aborted.
  virtual void error(ExecutorDriver* driver, const std::string& message) {}
};

// Connects an Executor to the agent that started it.
class ExecutorDriver {
 public:
  // Reads the executor's identity from the environment the agent gave it.
  explicit ExecutorDriver(Executor* executor);
  ~ExecutorDriver();
  ExecutorDriver(const ExecutorDriver&) = delete;
  ExecutorDriver& operator=(const ExecutorDriver&) = delete;

  // Starts the driver's thread: it subscribes to the agent.
  DriverStatus start();
  // Stops the driver: call once the tasks have ended and unacknowledged() is 0, so that no
  // update is lost.
  DriverStatus stop();
  // Stops the driver, its status kAborted.
  DriverStatus abort();
  // Blocks until the driver stops or aborts.
  DriverStatus join();
  // start() and join().
  DriverStatus run();

  // Sends a status update (uuid and timestamp are filled in when missing).
  void update(TaskStatus status);
  // Sends data to the framework's scheduler (Scheduler::message).
  void message(const std::string& data);

  // The driver's thread, for the executor's own work: run `fn` there soon.
  void post(std::function<void()> fn);
  // Runs `fn` there after `delay`; returns a timer cancel() takes.
  uint64_t after(std::chrono::nanoseconds delay, std::function<void()> fn);
  void cancel(uint64_t timer);
  // Calls `onReadable` there whenever `fd` is readable, until unwatchFd(fd).
  void watchFd(int fd, std::function<void()> onReadable);
  void unwatchFd(int fd);

  // Updates sent but not yet recorded by the agent.
  size_t unacknowledged() const;

  // Who it is, and its sandbox directory (from the environment).
  const std::string& executorId() const;
  const std::string& frameworkId() const;
  const std::string& agentId() const;
  const std::string& sandbox() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora
