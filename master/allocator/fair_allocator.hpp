#pragma once

#include <functional>
#include <map>
#include <unordered_map>

#include "master/allocator/allocator.hpp"

namespace agora::master {

// A first, simple fair allocator: each agent's free resources go, whole, to the (framework,
// role) with the lowest dominant share that wants them and has not filtered that agent.
// Reserved resources go only to their role; GPU agents only to frameworks that declare
// GPU_RESOURCES. Hierarchical DRF with weights and quota replaces it behind the same interface.
class FairAllocator final : public Allocator {
 public:
  struct Options {
    // An agent's free resources are offered only if they reach one of these.
    double minAllocatableCpus = 0.01;
    double minAllocatableMem = 32;
  };

  // `clock` tells the time for filters (the master's loop clock).
  FairAllocator(std::function<TimePoint()> clock, Options options)
      : clock_(std::move(clock)), options_(options) {}
  explicit FairAllocator(std::function<TimePoint()> clock)
      : FairAllocator(std::move(clock), Options{}) {}

  void addFramework(const std::string& frameworkId, const FrameworkInfo& info,
                    bool active) override;
  void updateFramework(const std::string& frameworkId, const FrameworkInfo& info) override;
  void removeFramework(const std::string& frameworkId) override;
  void activateFramework(const std::string& frameworkId) override;
  void deactivateFramework(const std::string& frameworkId) override;
  void addAgent(const std::string& agentId, const AgentInfo& info,
                const Resources& total) override;
  void removeAgent(const std::string& agentId) override;
  void addUsed(const std::string& frameworkId, const std::string& agentId,
               const std::string& role, const Resources& resources) override;
  void recoverResources(const std::string& frameworkId, const std::string& agentId,
                        const Resources& resources, std::optional<Duration> refuse) override;
  void suppress(const std::string& frameworkId, const std::vector<std::string>& roles) override;
  void revive(const std::string& frameworkId, const std::vector<std::string>& roles) override;
  std::vector<Allocation> allocate(TimePoint now) override;
  std::vector<Allocation> allocate(TimePoint now, const std::set<std::string>& agents) override;

 private:
  struct Filter {
    Resources resources;
    TimePoint expires;
  };
  struct Framework {
    std::vector<std::string> roles;
    std::set<std::string> suppressed;
    bool active = true;
    bool gpuCapable = false;
    Resources allocated;
    std::unordered_map<std::string, Filter> filters;  // by agent id
  };
  struct Agent {
    Resources total;
    Resources allocated;
    bool hasGpus = false;
    std::unordered_map<std::string, Resources> byFramework;
  };

  // Allocates the given agents (all when null).
  std::vector<Allocation> allocateAgents(TimePoint now, const std::set<std::string>* only);
  double dominantShare(const Framework& f) const;
  bool allocatable(const Resources& r) const;
  void setRoles(Framework& f, const FrameworkInfo& info);

  std::function<TimePoint()> clock_;
  Options options_;
  std::map<std::string, Framework> frameworks_;
  std::map<std::string, Agent> agents_;
  Resources clusterTotal_;
  size_t startOffset_ = 0;  // rotates which agent is considered first
};

}  // namespace agora::master
