#pragma once

// The allocator decides which framework is offered which agent's free resources. It is a pure
// state machine on the master's loop: the master tells it what exists and what is used, and
// asks it for allocations; it never sends anything itself. Pluggable: the master holds it
// through this interface; HierarchicalAllocator (hierarchical DRF) is the one it uses.

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agora/agora.pb.h"
#include "common/resources.hpp"
#include "common/result.hpp"
#include "common/time.hpp"
#include "master/allocator/sorter.hpp"

namespace agora::master {

struct Allocation {
  std::string frameworkId;
  std::string agentId;
  std::string role;
  Resources resources;
};

// A role's quota: a guarantee (set aside for the role until it uses it) and a limit (never
// allocated beyond), both counted over the role's whole subtree.
struct RoleQuota {
  Quantities guarantee;
  Quantities limit = Quantities::unlimited();
};

// What the allocator knows of a role, for operators (`agora roles`).
struct RoleInfo {
  std::string name;
  double weight = 1;
  RoleQuota quota;
  bool hasQuota = false;
  Quantities allocated;  // offered or in use, the role's subtree
  Quantities reserved;   // reserved on agents for the role's subtree
  std::vector<std::string> frameworks;  // subscribed to exactly this role
};

// Why a framework got nothing for a role in the last allocation that looked at it.
enum class Unoffered {
  kOffered,        // it did get something
  kInactive,       // disconnected or deactivated
  kSuppressed,     // the framework suppressed offers for the role
  kQuotaLimit,     // the role (or an ancestor) is at its quota limit
  kHeadroom,       // what was free is set aside for other roles' quota guarantees
  kFiltered,       // it declined what was free, with a filter still in force
  kNoFittingAgent, // nothing free fits: too small, reserved for others, or GPU agents only
  kFairShare,      // others with lower shares took what was free first
  kNothingFree,    // no agent had anything free
};
const char* describe(Unoffered reason);

struct Explanation {
  std::string frameworkId;
  std::string role;
  Unoffered reason = Unoffered::kNothingFree;
  Quantities allocated;  // what the framework holds in the role
  double share = 0;      // its dominant share within the role
};

// Checks a role name: "*" or slash-separated segments of letters, digits, '-', '_' and '.',
// none empty, "." or "..", and none starting with '-'.
Status validateRole(const std::string& role);

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
  // Maintenance: an agent that is not offerable keeps its accounting but is offered nothing.
  virtual void setAgentOfferable(const std::string& agentId, bool offerable) = 0;

  // Marks resources on an agent as held by a framework (tasks the master learned of on
  // re-registration, not through an offer).
  virtual void addUsed(const std::string& frameworkId, const std::string& agentId,
                       const std::string& role, const Resources& resources) = 0;

  // Resources a framework gives back from what it holds for `role`: declined or unused offers,
  // finished tasks. With `refuse`, the framework is not offered (a subset of) them on that agent
  // for that role for that long.
  virtual void recoverResources(const std::string& frameworkId, const std::string& agentId,
                                const std::string& role, const Resources& resources,
                                std::optional<Duration> refuse) = 0;

  // An operation on resources a framework holds (RESERVE, UNRESERVE, CREATE, DESTROY): `from`
  // becomes `to`, both in what the framework holds and in the agent's total.
  virtual void updateAllocation(const std::string& frameworkId, const std::string& agentId,
                                const std::string& role, const Resources& from,
                                const Resources& to) = 0;
  // The same on free resources (an operator's reservation); an error if they are not free.
  virtual Status updateAvailable(const std::string& agentId, const Resources& from,
                                 const Resources& to) = 0;

  // Roles empty: all of the framework's roles.
  virtual void suppress(const std::string& frameworkId, const std::vector<std::string>& roles) = 0;
  virtual void revive(const std::string& frameworkId, const std::vector<std::string>& roles) = 0;

  // Hands out what is free now; the resources returned count as allocated.
  virtual std::vector<Allocation> allocate(TimePoint now) = 0;
  // The same, looking only at these agents (what changed since the last allocation).
  virtual std::vector<Allocation> allocate(TimePoint now,
                                           const std::set<std::string>& agents) = 0;

  // Operator settings. Weights are positive; a quota's guarantee must fit in its limit.
  virtual Status setWeight(const std::string& role, double weight) = 0;
  virtual Status setQuota(const std::string& role, const RoleQuota& quota) = 0;
  virtual void removeQuota(const std::string& role) = 0;

  // Roles that have frameworks, allocations, reservations, a weight or a quota.
  virtual std::vector<RoleInfo> roles() const = 0;
  virtual Quantities clusterTotal() const = 0;
  // For each (framework, role): whether the last allocation that looked at it offered
  // something, and if not, why.
  virtual std::vector<Explanation> explain() const = 0;
};

}  // namespace agora::master
