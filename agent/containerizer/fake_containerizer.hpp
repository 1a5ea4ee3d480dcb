#pragma once

#include <functional>
#include <map>
#include <unordered_map>

#include "agent/containerizer/containerizer.hpp"
#include "common/loop.hpp"
#include "common/transport.hpp"

namespace agora::agent {

// A containerizer with no processes, for simulated agents (tests, benchmarks): each container
// holds an in-process executor that speaks the executor protocol. It is also the agent's
// executor link: the agent's messages to executors arrive at send(), and the executors' calls
// go back through the deliver function. A task runs for `taskDuration` (or the seconds in its
// label "fake.duration"), then finishes; Duration::max() means until killed.
class FakeContainerizer final : public Containerizer, public Transport {
 public:
  using Deliver = std::function<void(const std::string& from, Envelope&& envelope)>;

  FakeContainerizer(Loop& loop, Duration taskDuration);
  ~FakeContainerizer() override;

  // Where the executors' calls go (the agent's receiveFromExecutor).
  void setDeliver(Deliver deliver) { deliver_ = std::move(deliver); }

  void setExitCallback(ExitCallback callback) override { onExit_ = std::move(callback); }
  Status launch(const ContainerConfig& config) override;
  void destroy(const std::string& containerId) override;

  bool send(const std::string& to, const Envelope& envelope) override;

  size_t containers() const { return executors_.size(); }

 private:
  struct FakeExecutor {
    std::string frameworkId;
    std::string executorId;
    std::map<std::string, TimerId> running;  // task id -> finish timer (0: until killed)
  };

  void startTask(const std::string& containerId, const TaskInfo& task);
  void report(const std::string& containerId, const std::string& taskId, TaskState state,
              const std::string& message);
  void endTask(const std::string& containerId, const std::string& taskId, TaskState state,
               const std::string& message);
  void exitWhenIdle(const std::string& containerId);
  void exit(const std::string& containerId, int status);

  Loop& loop_;
  Duration taskDuration_;
  Deliver deliver_;
  ExitCallback onExit_;
  std::unordered_map<std::string, FakeExecutor> executors_;
};

}  // namespace agora::agent
