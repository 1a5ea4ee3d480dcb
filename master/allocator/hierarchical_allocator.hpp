#pragma once

// Hierarchical DRF. Roles form a tree ("eng", "eng/web", "eng/batch"); an agent's free
// resources go to the role with the lowest weighted dominant share (descending the tree), then
// to the framework in that role with the lowest dominant share, among those that want them.
//
// Each cycle has two stages. First, roles whose quota guarantee is not yet met are offered
// what they still need (only the guaranteed kinds are capped at the need). Then every role is
// offered the rest, except what must stay free for guarantees not yet met (headroom: free
// unreserved resources are never handed out below the sum of what guaranteed roles still
// need). Quota limits cap a role's subtree everywhere. Reserved resources go only to their
// role and its descendants, and count towards the role's quota whether used or not.
//
// Sorters are incremental (sorter.hpp); a cycle over A agents with F frameworks visits, per
// agent, the frameworks ahead of the one that takes it: O(A log F) when few are filtered,
// never more than O(A x F).

#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include "master/allocator/allocator.hpp"

namespace agora::master {

struct FrameworkInRole;

class HierarchicalAllocator final : public Allocator {
 public:
  struct Options {
    // An offer is made only if it holds at least one of these (--min_allocatable_resources).
    std::vector<Quantities> minAllocatable = defaultMinAllocatable();
    static std::vector<Quantities> defaultMinAllocatable();
    // Parses "cpus:0.01|mem:32" (alternatives separated by '|').
    static Result<std::vector<Quantities>> parseMinAllocatable(const std::string& text);
  };

  // `clock` tells the time for filters (the master's loop clock).
  HierarchicalAllocator(std::function<TimePoint()> clock, Options options);
  explicit HierarchicalAllocator(std::function<TimePoint()> clock)
      : HierarchicalAllocator(std::move(clock), Options{}) {}
  ~HierarchicalAllocator() override;

  void addFramework(const std::string& frameworkId, const FrameworkInfo& info,
                    bool active) override;
  void updateFramework(const std::string& frameworkId, const FrameworkInfo& info) override;
  void removeFramework(const std::string& frameworkId) override;
  void activateFramework(const std::string& frameworkId) override;
  void deactivateFramework(const std::string& frameworkId) override;
  void addAgent(const std::string& agentId, const AgentInfo& info,
                const Resources& total) override;
  void removeAgent(const std::string& agentId) override;
  void setAgentOfferable(const std::string& agentId, bool offerable) override;
  void addUsed(const std::string& frameworkId, const std::string& agentId,
               const std::string& role, const Resources& resources) override;
  void recoverResources(const std::string& frameworkId, const std::string& agentId,
                        const std::string& role, const Resources& resources,
                        std::optional<Duration> refuse) override;
  void updateAllocation(const std::string& frameworkId, const std::string& agentId,
                        const std::string& role, const Resources& from,
                        const Resources& to) override;
  Status updateAvailable(const std::string& agentId, const Resources& from,
                         const Resources& to) override;
  void suppress(const std::string& frameworkId, const std::vector<std::string>& roles) override;
  void revive(const std::string& frameworkId, const std::vector<std::string>& roles) override;
  std::vector<Allocation> allocate(TimePoint now) override;
  std::vector<Allocation> allocate(TimePoint now, const std::set<std::string>& agents) override;

  Status setWeight(const std::string& role, double weight) override;
  Status setQuota(const std::string& role, const RoleQuota& quota) override;
  void removeQuota(const std::string& role) override;
  std::vector<RoleInfo> roles() const override;
  Quantities clusterTotal() const override { return clusterTotal_; }
  std::vector<Explanation> explain() const override;

 private:
  struct Role;
  struct Framework;
  struct Agent;
  struct Candidate;

  Role& ensureRole(const std::string& name);
  Role* findRole(const std::string& name) const;
  Framework* findFramework(const std::string& id);
  // Subscribes (or not) a framework to its roles, from its info.
  void setRoles(Framework& f, const FrameworkInfo& info);
  // Applies `change` to the framework's roles among `roles` (all when empty); those it returns
  // true for are refreshed.
  void changeRoles(Framework& f, const std::vector<std::string>& roles,
                   const std::function<bool(FrameworkInRole&)>& change);
  // Whether the framework is to be offered anything for `role` now; moves it in or out of
  // the role's sorter order and keeps the subtree's active counts.
  void refreshActive(Framework& f, const std::string& role);

  // What is held moves between "free on the agent" and "held by (framework, role)". `whole`:
  // the resources are all the agent has free.
  void account(Framework& f, Role& role, Agent& agent, const Resources& resources, bool add,
               bool whole = false);
  void accountReservations(Agent& agent, const Resources& total, bool add);

  std::vector<Allocation> allocateAgents(TimePoint now, const std::vector<uint32_t>& agents,
                                         bool full);
  // Stage 1: `quotaRoot` is a role with an unmet guarantee; stage 2: the root.
  bool pick(Role& node, Agent& agent, TimePoint now, Role* quotaRoot, Candidate& out);
  bool offerFor(Framework& f, FrameworkInRole& in, Role& role, Agent& agent, TimePoint now,
                Role* quotaRoot, Candidate& out);
  void note(FrameworkInRole& in, Unoffered reason);
  bool allocatable(const Quantities& q) const;
  Quantities consumption(const Role& role) const;
  // The role's own top-most quota ancestor (itself included), or null.
  Role* quotaRootOf(Role& role) const;
  // Sum over top-most quota roles of what their guarantee still needs (cached until an
  // allocation, reservation or quota changes it).
  const Quantities& requiredHeadroom();
  void refreshTotals();
  // After an allocation change in `role`: its quota root's need, and the sum, kept current.
  void updateNeed(Role& role);

  std::function<TimePoint()> clock_;
  Options options_;
  std::unique_ptr<Role> root_;
  std::unordered_map<std::string, Role*> roles_;  // by name, owned by the tree
  uint32_t nextRoleId_ = 1;                         // 0 is "this role's own frameworks"

  std::vector<std::unique_ptr<Framework>> frameworks_;  // by index; null when removed
  std::unordered_map<std::string, uint32_t> frameworkIndex_;
  std::vector<uint32_t> freeFrameworkSlots_;

  std::vector<std::unique_ptr<Agent>> agents_;  // by index; null when removed
  std::unordered_map<std::string, uint32_t> agentIndex_;
  std::vector<uint32_t> freeAgentSlots_;

  Quantities clusterTotal_;
  Quantities freeUnreserved_;  // unallocated unreserved resources, all agents
  bool totalsChanged_ = false;
  size_t quotaRoles_ = 0;      // roles with a quota set
  Quantities required_;        // requiredHeadroom(), when requiredValid_
  bool requiredValid_ = false;
  size_t startOffset_ = 0;     // rotates which agent is considered first
};

}  // namespace agora::master
