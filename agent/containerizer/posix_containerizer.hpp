#pragma once

#include <sys/types.h>

#include <unordered_map>

#include <memory>
#include <set>

#include "isolators/cgroups.hpp"
#include "agent/containerizer/containerizer.hpp"
#include "common/event_loop.hpp"

namespace agora::agent {

// Runs each executor as a child process in a session of its own. Everything the executor
// starts stays in that session (unless it calls setsid itself), so destroy() can find and kill
// all of it by session id. The agent becomes a child subreaper, so a container's orphans are
// reaped here rather than by init. Needs SIGCHLD blocked in every thread (main() does that
// before any thread starts).
//
// With cgroups isolation, each container also gets cgroups (below the agent's own, or
// `root`) limited to its resources: cpu shares (and a CFS quota with `cpuHardLimit`), a memory
// limit, a pids limit. The executor is placed in them before it runs anything (a small shell
// wrapper writes its own pid into cgroup.procs, then execs), so everything it starts is
// counted, limited, and killed with the container.
struct CgroupsIsolation {
  cgroups::Layout layout;
  std::string root = "agora";  // relative to the agent's own cgroup, or absolute
  bool cpuHardLimit = false;
  uint64_t maxPids = 0;        // 0: no pids limit
  bool cpu = true;
  bool memory = true;
  bool pids = true;
  bool devices = false;  // deny all but the standard devices (v1)
  // Linux namespaces for each container (util-linux's unshare): "pid" (its own process tree,
  // with its own /proc), "mount" (mounts made inside stay inside; a private /tmp), "uts" (its
  // hostname is the executor id), "ipc", "net" (a network stack of its own: loopback only).
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
  // Containers taken back from an earlier run: not our children, so watched through a pidfd
  // (or, where the kernel has none, by polling), by pid.
  std::unordered_map<pid_t, int> recovered_;

  EventLoop& loop_;
  int signalFd_ = -1;
  TimerId reapTimer_ = 0;
  ExitCallback onExit_;
  std::unordered_map<std::string, pid_t> pids_;           // by container id
  std::unordered_map<pid_t, std::string> containers_;     // by executor pid
  std::optional<CgroupsIsolation> isolation_;
  std::unordered_map<std::string, std::unique_ptr<cgroups::Container>> cgroups_;  // by id
  std::unordered_map<std::string, std::set<std::string>> devices_;  // allowed beyond the standard
  Status applyLimits(cgroups::Container& container, const Resources& resources);
};

}  // namespace agora::agent
