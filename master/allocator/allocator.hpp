#pragma once

// The allocator decides which framework is offered which agent's free resources. It is a pure
// state machine on the master's loop: the master tells it what exists and what is used, and
// asks it for allocations; it never sends anything itself. Pluggable: the master holds it
// through this interface (the full hierarchical DRF allocator is its own piece of work).

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agora/agora.pb.h"
#include "common/resources.hpp"
#include "common/time.hpp"

namespace agora::master {

struct Allocation {
  std::string frameworkId;
  std::string agentId;
  std::string role;
  Resources resources;
};

class Allocator {
 public:
  virtual ~Allocator() = default;

  virtual void addFramework(const std::string& frameworkId, const FrameworkInfo& info,
                            bool active) = 0;
  virtual void updateFramework(const std::string& frameworkId, const FrameworkInfo& info) = 0;
  virtual void removeFramework(const std::string& frameworkId) = 0;
  virtual void activateFramework(const std::string& frameworkId) = 0;
  virtual void deactivateFramework(const std::string& frameworkId) = 0;

  virtual void addAgent(const std::string& agentId, const AgentInfo& info,
                        const Resources& total) = 0;
  virtual void removeAgent(const std::string& agentId) = 0;

  // Marks resources on an agent as held by a framework (tasks the master learned of on
  // re-registration, not through an offer).
  virtual void addUsed(const std::string& frameworkId, const std::string& agentId,
                       const std::string& role, const Resources& resources) = 0;

  // Resources a framework gives back: declined or unused offers, finished tasks. With
  // `refuse`, the framework is not offered (a subset of) them on that agent for that long.
  virtual void recoverResources(const std::string& frameworkId, const std::string& agentId,
                                const Resources& resources,
                                std::optional<Duration> refuse) = 0;

  // Roles empty: all of the framework's roles.
  virtual void suppress(const std::string& frameworkId, const std::vector<std::string>& roles) = 0;
  virtual void revive(const std::string& frameworkId, const std::vector<std::string>& roles) = 0;

  // Hands out what is free now; the resources returned count as allocated.
  virtual std::vector<Allocation> allocate(TimePoint now) = 0;
  // The same, looking only at these agents (what changed since the last allocation).
  virtual std::vector<Allocation> allocate(TimePoint now,
                                           const std::set<std::string>& agents) = 0;
};

}  // namespace agora::master
