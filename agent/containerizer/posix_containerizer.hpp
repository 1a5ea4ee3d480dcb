#pragma once

#include <sys/types.h>

#include <unordered_map>

#include <memory>
#include <set>
#include <vector>

#include "isolators/cgroups.hpp"
#include "isolators/isolator.hpp"
#include "agent/containerizer/containerizer.hpp"
#include "common/event_loop.hpp"

namespace agora::agent {

// Runs each executor as a child process in a session of its own. Everything the executor
// starts stays in that session (unless it calls setsid itself), so destroy() can find and kill
// all of it by session id. The agent becomes a child subreaper, so a container's orphans are
// reaped here rather than by init. Needs SIGCHLD blocked in every thread (main() does that
// before any thread starts).
//
// With isolation, each container also goes through the isolators (isolators/isolator.hpp):
// cgroups limited to its resources, and Linux namespaces.
struct CgroupsIsolation {
  cgroups::Layout layout;
  std::string root = "agora";  // relative to the agent's own cgroup, or absolute
  bool cpuHardLimit = false;
  uint64_t maxPids = 0;        // 0: no pids limit
  bool cpu = true;
  bool memory = true;
  bool pids = true;
  bool devices = false;  // deny all but the standard devices (v1)
  // Linux namespaces for each container (util-linux's unshare): "pid", "mount", "uts", "ipc",
  // "net" (see isolators/namespaces_isolator.hpp).
  std::set<std::string> namespaces;
  bool anyCgroups() const { return cpu || memory || pids || devices; }
};

class PosixContainerizer final : public Containerizer {
 public:
  explicit PosixContainerizer(EventLoop& loop,
                              std::optional<CgroupsIsolation> isolation = std::nullopt);
  ~PosixContainerizer() override;

  void setExitCallback(ExitCallback callback) override { onExit_ = std::move(callback); }
  Status launch(const ContainerConfig& config) override;
  void destroy(const std::string& containerId) override;
  Status update(const std::string& containerId, const Resources& resources,
                const std::vector<std::string>& devices) override;
  std::optional<Limitation> limitation(const std::string& containerId) override;
  // Memory the executor process itself needs on top of its tasks' (its container's limit is
  // the tasks' memory plus this).
  static constexpr uint64_t kExecutorMemoryOverhead = 32ull << 20;
  Result<cgroups::Stats> usage(const std::string& containerId) const override;
  std::optional<ContainerProcess> process(const std::string& containerId) const override;
  bool recover(const std::string& containerId, const ContainerProcess& process) override;

  // Kills every container (agent shutdown).
  void destroyAll();

 private:
  void reap();
  void armReapTimer();
  // The container's first process has ended: clean up after it and call back.
  void exited(pid_t pid, int status);
  // Every isolator's cleanup for the container.
  void cleanup(const std::string& containerId);

  EventLoop& loop_;
  int signalFd_ = -1;
  TimerId reapTimer_ = 0;
  ExitCallback onExit_;
  std::vector<std::unique_ptr<isolators::Isolator>> isolators_;  // in wrapping order
  std::unordered_map<std::string, pid_t> pids_;           // by container id
  std::unordered_map<pid_t, std::string> containers_;     // by executor pid
  // Containers taken back from an earlier run: not our children, so watched through a pidfd
  // (or, where the kernel has none, by polling), by pid.
  std::unordered_map<pid_t, int> recovered_;
};

}  // namespace agora::agent
