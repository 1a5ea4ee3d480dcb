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

class Executor {
 public:
  virtual ~Executor() = default;

  virtual void subscribed(ExecutorDriver* driver, const ExecutorInfo& executor,
                          const FrameworkInfo& framework, const AgentInfo& agent) {}
  virtual void launch(ExecutorDriver* driver, const TaskInfo& task) = 0;
  // A task group: by default, each task is launched in turn.
  virtual void launchGroup(ExecutorDriver* driver, const TaskGroupInfo& group);
  virtual void kill(ExecutorDriver* driver, const std::string& taskId,
                    std::optional<double> gracePeriodSeconds) = 0;
  virtual void message(ExecutorDriver* driver, const std::string& data) {}
  // Kill every task within the grace period; the driver stops once their updates are sent.
  virtual void shutdown(ExecutorDriver* driver, double gracePeriodSeconds) = 0;
  virtual void error(ExecutorDriver* driver, const std::string& message) {}
};

class ExecutorDriver {
 public:
  explicit ExecutorDriver(Executor* executor);
  ~ExecutorDriver();
  ExecutorDriver(const ExecutorDriver&) = delete;
  ExecutorDriver& operator=(const ExecutorDriver&) = delete;

  DriverStatus start();
  DriverStatus stop();
  DriverStatus abort();
  DriverStatus join();
  DriverStatus run();

  // Sends a status update (uuid and timestamp are filled in when missing).
  void update(TaskStatus status);
  void message(const std::string& data);

  // The driver's thread, for the executor's own work.
  void post(std::function<void()> fn);
  uint64_t after(std::chrono::nanoseconds delay, std::function<void()> fn);
  void cancel(uint64_t timer);
  void watchFd(int fd, std::function<void()> onReadable);
  void unwatchFd(int fd);

  // Updates sent but not yet recorded by the agent.
  size_t unacknowledged() const;

  const std::string& executorId() const;
  const std::string& frameworkId() const;
  const std::string& agentId() const;
  const std::string& sandbox() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora
