#pragma once

// cgroups/cpu, cgroups/mem, cgroups/pids, cgroups/devices: each container gets cgroups of its
// own below the agent's (or `root`), limited to its resources: cpu shares (and a CFS quota),
// a memory limit (its tasks' memory plus what the executor itself needs), a pids limit, and
// only the standard devices (plus the GPUs it is given). Its first process enters them before
// it runs anything (a small shell writes its own pid into cgroup.procs, then execs), so
// everything the container starts is counted, limited, and killed with it.

#include <memory>
#include <set>
#include <unordered_map>

#include "isolators/isolator.hpp"

namespace agora::isolators {

struct CgroupsOptions {
  cgroups::Layout layout;
  std::string root = "agora";  // relative to the agent's own cgroup, or absolute
  bool cpu = true;
  bool cpuHardLimit = false;  // a CFS quota as well as shares
  bool memory = true;
  bool pids = true;
  uint64_t maxPids = 0;  // 0: no pids limit
  bool devices = false;  // deny all but the standard devices (v1)
  // Memory the executor process itself needs on top of its tasks'.
  uint64_t executorMemoryOverhead = 32ull << 20;
  // Tell the container's executor it may give each of its tasks cgroups of their own below
  // the container's (AGORA_TASK_CGROUPS: "1", or "cfs" with a CFS quota).
  bool nestedForTasks = false;
};

class CgroupsIsolator final : public Isolator {
 public:
  explicit CgroupsIsolator(CgroupsOptions options);
  ~CgroupsIsolator() override;

  std::string name() const override { return "cgroups"; }
  Status prepare(const ContainerSpec& spec, Launch* launch) override;
  Status update(const std::string& containerId, const Resources& resources,
                const std::vector<std::string>& devices) override;
  std::optional<cgroups::Stats> usage(const std::string& containerId) const override;
  std::optional<Limitation> limitation(const std::string& containerId) const override;
  void kill(const std::string& containerId) override;
  Status cleanup(const std::string& containerId) override;
  Status recover(const std::string& containerId) override;

 private:
  Status applyLimits(cgroups::Container& container, const Resources& resources);

  CgroupsOptions options_;
  std::unordered_map<std::string, std::unique_ptr<cgroups::Container>> containers_;
  std::unordered_map<std::string, std::set<std::string>> devices_;  // beyond the standard ones
};

}  // namespace agora::isolators
