#pragma once

#include <sys/types.h>

#include <unordered_map>

#include "agent/containerizer/containerizer.hpp"
#include "common/event_loop.hpp"

namespace agora::agent {

// Runs each executor as a child process in a session of its own. Everything the executor
// starts stays in that session (unless it calls setsid itself), so destroy() can find and kill
// all of it by session id. The agent becomes a child subreaper, so a container's orphans are
// reaped here rather than by init. Needs SIGCHLD blocked in every thread (main() does that
// before any thread starts).
class PosixContainerizer final : public Containerizer {
 public:
  explicit PosixContainerizer(EventLoop& loop);
  ~PosixContainerizer() override;

  void setExitCallback(ExitCallback callback) override { onExit_ = std::move(callback); }
  Status launch(const ContainerConfig& config) override;
  void destroy(const std::string& containerId) override;

  // Kills every container (agent shutdown).
  void destroyAll();

 private:
  void reap();
  void armReapTimer();

  EventLoop& loop_;
  int signalFd_ = -1;
  TimerId reapTimer_ = 0;
  ExitCallback onExit_;
  std::unordered_map<std::string, pid_t> pids_;           // by container id
  std::unordered_map<pid_t, std::string> containers_;     // by executor pid
};

}  // namespace agora::agent
