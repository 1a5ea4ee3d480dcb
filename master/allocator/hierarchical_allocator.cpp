// The hierarchical allocator's bookkeeping: the role tree, frameworks, agents, what each holds,
// and the operator's settings (the allocation cycle is allocation_cycle.cpp).

#include "master/allocator/hierarchical_allocator_state.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <glog/logging.h>

namespace agora::master {

using namespace hdrf;  // NOLINT: this file's own helpers

// ------------------------------------------------------------------------------------------

std::vector<Quantities> HierarchicalAllocator::Options::defaultMinAllocatable() {
  Quantities cpus;
  cpus.v[0] = 0.01;
  Quantities mem;
  mem.v[1] = 32;
  return {cpus, mem};
}

Result<std::vector<Quantities>> HierarchicalAllocator::Options::parseMinAllocatable(
    const std::string& text) {
  std::vector<Quantities> out;
  size_t start = 0;
  while (true) {
    size_t bar = text.find('|', start);
    std::string part = text.substr(start, bar == std::string::npos ? std::string::npos
                                                                    : bar - start);
    auto q = Quantities::parse(part);
    if (!q) {
      return Error("--min_allocatable_resources: " + q.error());
    }
    if (q->empty()) {
      return Error("--min_allocatable_resources: an empty alternative in '" + text + "'");
    }
    out.push_back(*q);
    if (bar == std::string::npos) {
      break;
    }
    start = bar + 1;
  }
  return out;
}

HierarchicalAllocator::HierarchicalAllocator(std::function<TimePoint()> clock, Options options)
    : clock_(std::move(clock)), options_(std::move(options)), root_(std::make_unique<Role>()) {
  root_->childSorter.add(kSelf);
  roles_[""] = root_.get();
}

HierarchicalAllocator::~HierarchicalAllocator() = default;

HierarchicalAllocator::Role& HierarchicalAllocator::ensureRole(const std::string& name) {
  auto it = roles_.find(name);
  if (it != roles_.end()) {
    return *it->second;
  }
  size_t slash = name.rfind('/');
  Role& parent = slash == std::string::npos ? *root_ : ensureRole(name.substr(0, slash));
  auto role = std::make_unique<Role>();
  role->name = name;
  role->parent = &parent;
  role->id = nextRoleId_++;
  role->childSorter.setTotal(clusterTotal_);
  role->frameworkSorter.setTotal(clusterTotal_);
  role->childSorter.add(kSelf);
  parent.childSorter.add(role->id, role->weight);
  Role* raw = role.get();
  parent.childById[raw->id] = raw;
  parent.children[name] = std::move(role);
  roles_[name] = raw;
  return *raw;
}

HierarchicalAllocator::Role* HierarchicalAllocator::findRole(const std::string& name) const {
  auto it = roles_.find(name);
  return it == roles_.end() ? nullptr : it->second;
}

HierarchicalAllocator::Framework* HierarchicalAllocator::findFramework(const std::string& id) {
  auto it = frameworkIndex_.find(id);
  return it == frameworkIndex_.end() ? nullptr : frameworks_[it->second].get();
}

void HierarchicalAllocator::refreshActive(Framework& f, const std::string& roleName) {
  auto it = f.roles.find(roleName);
  if (it == f.roles.end()) {
    return;
  }
  Framework::InRole& in = it->second;
  Role& role = ensureRole(roleName);
  bool want = f.active && in.subscribed && !in.suppressed;
  bool keep = in.subscribed || !in.allocated.empty();
  if (keep && !in.inSorter) {
    role.frameworkSorter.add(f.index);
    role.frameworkSorter.allocate(f.index, in.allocated);
    role.members[f.index] = &in;
    in.inSorter = true;
  }
  if (in.inSorter) {
    if (want) {
      role.frameworkSorter.activate(f.index);
    } else {
      role.frameworkSorter.deactivate(f.index);
    }
  }
  if (want != in.active) {
    in.active = want;
    for (Role* n = &role; n != nullptr; n = n->parent) {
      n->active = want ? n->active + 1 : n->active - 1;
    }
  }
  if (in.subscribed) {
    role.subscribers.insert(f.id);
  } else {
    role.subscribers.erase(f.id);
  }
  if (!keep) {
    if (in.inSorter) {
      role.frameworkSorter.remove(f.index);
      role.members.erase(f.index);
    }
    f.roles.erase(it);
  }
}

void HierarchicalAllocator::setRoles(Framework& f, const FrameworkInfo& info) {
  std::set<std::string> wanted(info.roles().begin(), info.roles().end());
  if (wanted.empty()) {
    wanted.insert("*");
  }
  f.gpuCapable = std::find(info.capabilities().begin(), info.capabilities().end(),
                           FrameworkInfo::GPU_RESOURCES) != info.capabilities().end();
  std::vector<std::string> touched;
  for (auto& [name, in] : f.roles) {
    if (in.subscribed && wanted.count(name) == 0) {
      in.subscribed = false;
      touched.push_back(name);
    }
  }
  for (const std::string& name : wanted) {
    if (!validateRole(name)) {
      LOG(WARNING) << "Framework " << f.id << ": ignoring invalid role '" << name << "'";
      continue;
    }
    f.roles[name].subscribed = true;
    touched.push_back(name);
  }
  for (const std::string& name : touched) {
    refreshActive(f, name);
  }
}

void HierarchicalAllocator::addFramework(const std::string& frameworkId,
                                         const FrameworkInfo& info, bool active) {
  if (findFramework(frameworkId) != nullptr) {
    updateFramework(frameworkId, info);
    if (active) {
      activateFramework(frameworkId);
    } else {
      deactivateFramework(frameworkId);
    }
    return;
  }
  uint32_t index;
  if (!freeFrameworkSlots_.empty()) {
    index = freeFrameworkSlots_.back();
    freeFrameworkSlots_.pop_back();
  } else {
    index = static_cast<uint32_t>(frameworks_.size());
    frameworks_.emplace_back();
  }
  auto f = std::make_unique<Framework>();
  f->id = frameworkId;
  f->index = index;
  f->active = active;
  Framework& raw = *f;
  frameworks_[index] = std::move(f);
  frameworkIndex_[frameworkId] = index;
  setRoles(raw, info);
}

void HierarchicalAllocator::updateFramework(const std::string& frameworkId,
                                            const FrameworkInfo& info) {
  if (Framework* f = findFramework(frameworkId)) {
    setRoles(*f, info);
  }
}

void HierarchicalAllocator::removeFramework(const std::string& frameworkId) {
  Framework* f = findFramework(frameworkId);
  if (f == nullptr) {
    return;
  }
  for (auto& agent : agents_) {
    if (agent == nullptr) {
      continue;
    }
    std::vector<std::pair<Role*, Resources>> mine;
    for (auto it = agent->held.lower_bound({f->index, nullptr});
         it != agent->held.end() && it->first.first == f->index; ++it) {
      mine.emplace_back(it->first.second, it->second);
    }
    for (auto& [role, resources] : mine) {
      account(*f, *role, *agent, resources, false);
    }
  }
  std::vector<std::string> names;
  for (auto& [name, in] : f->roles) {
    in.subscribed = false;
    in.filters.clear();
    names.push_back(name);
  }
  f->active = false;
  for (const std::string& name : names) {
    refreshActive(*f, name);
  }
  uint32_t index = f->index;
  frameworkIndex_.erase(frameworkId);
  frameworks_[index].reset();
  freeFrameworkSlots_.push_back(index);
}

void HierarchicalAllocator::changeRoles(Framework& f, const std::vector<std::string>& roles,
                                        const std::function<bool(FrameworkInRole&)>& change) {
  std::vector<std::string> changed;
  for (auto& [name, in] : f.roles) {
    if ((roles.empty() || std::find(roles.begin(), roles.end(), name) != roles.end()) &&
        change(in)) {
      changed.push_back(name);
    }
  }
  for (const std::string& name : changed) {
    refreshActive(f, name);
  }
}

void HierarchicalAllocator::activateFramework(const std::string& frameworkId) {
  if (Framework* f = findFramework(frameworkId)) {
    f->active = true;
    changeRoles(*f, {}, [](FrameworkInRole&) { return true; });
  }
}

void HierarchicalAllocator::deactivateFramework(const std::string& frameworkId) {
  if (Framework* f = findFramework(frameworkId)) {
    f->active = false;
    changeRoles(*f, {}, [](FrameworkInRole&) { return true; });
  }
}

void HierarchicalAllocator::suppress(const std::string& frameworkId,
                                     const std::vector<std::string>& roles) {
  if (Framework* f = findFramework(frameworkId)) {
    changeRoles(*f, roles, [](FrameworkInRole& in) {
      in.suppressed = in.subscribed;
      return in.subscribed;
    });
  }
}

void HierarchicalAllocator::revive(const std::string& frameworkId,
                                   const std::vector<std::string>& roles) {
  if (Framework* f = findFramework(frameworkId)) {
    changeRoles(*f, roles, [](FrameworkInRole& in) {
      in.suppressed = false;
      in.filters.clear();
      return true;
    });
  }
}

// ------------------------------------------------------------------------------------------

void HierarchicalAllocator::accountReservations(Agent& agent, const Resources& total, bool add) {
  requiredValid_ = false;
  for (const Resource& r : total.items()) {
    if (!isReserved(r)) {
      continue;
    }
    Quantities q = Quantities::of(r);
    for (Role* n = &ensureRole(reservationRole(r)); n != nullptr; n = n->parent) {
      if (add) {
        n->reserved += q;
      } else {
        n->reserved -= q;
      }
    }
  }
  (void)agent;
}

void HierarchicalAllocator::addAgent(const std::string& agentId, const AgentInfo& info,
                                     const Resources& total) {
  (void)info;
  auto found = agentIndex_.find(agentId);
  if (found != agentIndex_.end()) {
    // Known (re-registered): take the new total; what frameworks hold stays held.
    Agent& agent = *agents_[found->second];
    freeUnreserved_ -= Quantities::of(agent.available.unreserved());
    clusterTotal_ -= Quantities::of(agent.total);
    accountReservations(agent, agent.total, false);
    agent.total = total;
    agent.available = total;
    for (const auto& [key, resources] : agent.held) {
      agent.available -= resources;
    }
    agent.availableQ = Quantities::of(agent.available);
    agent.hasGpus = total.scalar("gpus") > 0;
    agent.hasReservations = std::any_of(total.items().begin(), total.items().end(), isReserved);
    accountReservations(agent, total, true);
    clusterTotal_ += Quantities::of(total);
    freeUnreserved_ += Quantities::of(agent.available.unreserved());
    totalsChanged_ = true;
    return;
  }
  uint32_t index;
  if (!freeAgentSlots_.empty()) {
    index = freeAgentSlots_.back();
    freeAgentSlots_.pop_back();
  } else {
    index = static_cast<uint32_t>(agents_.size());
    agents_.emplace_back();
  }
  static uint64_t serials = 0;
  auto agent = std::make_unique<Agent>();
  agent->id = agentId;
  agent->serial = ++serials;
  agent->total = total;
  agent->available = total;
  agent->availableQ = Quantities::of(total);
  agent->hasGpus = total.scalar("gpus") > 0;
  agent->hasReservations = std::any_of(total.items().begin(), total.items().end(), isReserved);
  accountReservations(*agent, total, true);
  clusterTotal_ += agent->availableQ;
  freeUnreserved_ += Quantities::of(total.unreserved());
  agents_[index] = std::move(agent);
  agentIndex_[agentId] = index;
  totalsChanged_ = true;
}

void HierarchicalAllocator::setAgentOfferable(const std::string& agentId, bool offerable) {
  auto found = agentIndex_.find(agentId);
  if (found != agentIndex_.end()) {
    agents_[found->second]->offerable = offerable;
  }
}

void HierarchicalAllocator::removeAgent(const std::string& agentId) {
  auto found = agentIndex_.find(agentId);
  if (found == agentIndex_.end()) {
    return;
  }
  uint32_t index = found->second;
  Agent& agent = *agents_[index];
  auto held = agent.held;
  for (auto& [key, resources] : held) {
    if (frameworks_[key.first] != nullptr) {
      account(*frameworks_[key.first], *key.second, agent, resources, false);
    }
  }
  accountReservations(agent, agent.total, false);
  clusterTotal_ -= Quantities::of(agent.total);
  freeUnreserved_ -= Quantities::of(agent.available.unreserved());
  agentIndex_.erase(found);
  agents_[index].reset();
  freeAgentSlots_.push_back(index);
  totalsChanged_ = true;
}

void HierarchicalAllocator::account(Framework& f, Role& role, Agent& agent,
                                    const Resources& resources, bool add, bool whole) {
  Quantities q;
  Quantities reserved;
  for (const Resource& r : resources.items()) {
    Quantities one = Quantities::of(r);
    q += one;
    if (isReserved(r)) {
      reserved += one;
    }
  }
  Quantities unreserved = q;
  unreserved -= reserved;
  auto key = std::make_pair(f.index, &role);
  auto found = f.roles.find(role.name);
  if (found == f.roles.end()) {
    found = f.roles.emplace(role.name, Framework::InRole()).first;
  }
  Framework::InRole& in = found->second;
  if (add) {
    bool joined = !in.inSorter;
    if (joined) {
      // Held for a role it is not subscribed to (tasks it had before it changed roles).
      role.frameworkSorter.add(f.index);
      role.frameworkSorter.deactivate(f.index);
      role.members[f.index] = &in;
      in.inSorter = true;
    }
    if (whole) {
      agent.available = Resources();
      agent.availableQ = Quantities();
    } else {
      agent.available -= resources;
      agent.availableQ -= q;
    }
    auto [slot, inserted] = agent.held.try_emplace(key, resources);
    if (!inserted) {
      slot->second += resources;
    }
    freeUnreserved_ -= unreserved;
    in.allocated += q;
    role.frameworkSorter.allocate(f.index, q);
    role.childSorter.allocate(kSelf, q);
    for (Role* n = &role; n != nullptr; n = n->parent) {
      n->allocated += q;
      n->reservedAllocated += reserved;
      if (n->parent != nullptr) {
        n->parent->childSorter.allocate(n->id, q);
      }
    }
    updateNeed(role);
    if (joined) {
      refreshActive(f, role.name);
    }
    return;
  }
  auto held = agent.held.find(key);
  if (held == agent.held.end() || !held->second.contains(resources)) {
    LOG(ERROR) << "Allocator: framework " << f.id << " gives back " << resources << " on agent "
               << agent.id << " for role " << role.name << " but holds "
               << (held == agent.held.end() ? std::string("nothing") : held->second.toString());
    return;
  }
  held->second -= resources;
  if (held->second.empty()) {
    agent.held.erase(held);
  }
  agent.available += resources;
  agent.availableQ += q;
  freeUnreserved_ += unreserved;
  in.allocated -= q;
  for (double& x : in.allocated.v) {
    x = x < 0.0005 ? 0.0 : x;
  }
  role.frameworkSorter.unallocate(f.index, q);
  role.childSorter.unallocate(kSelf, q);
  for (Role* n = &role; n != nullptr; n = n->parent) {
    n->allocated -= q;
    n->reservedAllocated -= reserved;
    if (n->parent != nullptr) {
      n->parent->childSorter.unallocate(n->id, q);
    }
  }
  updateNeed(role);
  if (!in.subscribed && in.allocated.empty()) {
    refreshActive(f, role.name);  // drops a role it no longer holds or wants
  }
}

void HierarchicalAllocator::updateNeed(Role& role) {
  if (!requiredValid_ || quotaRoles_ == 0) {
    return;
  }
  if (Role* root = quotaRootOf(role)) {
    required_ -= root->need;
    root->need = root->quota.guarantee.above(consumption(*root));
    required_ += root->need;
  }
}

void HierarchicalAllocator::addUsed(const std::string& frameworkId, const std::string& agentId,
                                    const std::string& role, const Resources& resources) {
  Framework* f = findFramework(frameworkId);
  auto a = agentIndex_.find(agentId);
  if (f == nullptr || a == agentIndex_.end() || resources.empty()) {
    return;
  }
  std::string name = role;
  if (name.empty() || !validateRole(name)) {
    name = "*";
    for (const auto& [r, in] : f->roles) {
      if (in.subscribed) {
        name = r;
        break;
      }
    }
  }
  Agent& agent = *agents_[a->second];
  if (!agent.available.contains(resources)) {
    LOG(ERROR) << "Allocator: agent " << agentId << " has " << agent.available
               << " free, not the " << resources << " framework " << frameworkId << " uses";
    return;
  }
  account(*f, ensureRole(name), agent, resources, true);
}

void HierarchicalAllocator::recoverResources(const std::string& frameworkId,
                                             const std::string& agentId,
                                             const std::string& role,
                                             const Resources& resources,
                                             std::optional<Duration> refuse) {
  Framework* f = findFramework(frameworkId);
  auto a = agentIndex_.find(agentId);
  if (f == nullptr || a == agentIndex_.end() || resources.empty()) {
    return;
  }
  Agent& agent = *agents_[a->second];
  std::string name = role.empty() ? "*" : role;
  Role* r = findRole(name);
  if (r == nullptr) {
    LOG(ERROR) << "Allocator: framework " << frameworkId << " gives back resources for role "
               << name << ", which holds nothing";
    return;
  }
  account(*f, *r, agent, resources, false);
  if (refuse && *refuse > Duration::zero()) {
    auto in = f->roles.find(name);
    if (in != f->roles.end()) {
      in->second.filters[agent.serial] = Framework::Filter{resources, clock_() + *refuse};
    }
  }
}

Status HierarchicalAllocator::updateAvailable(const std::string& agentId, const Resources& from,
                                              const Resources& to) {
  auto a = agentIndex_.find(agentId);
  if (a == agentIndex_.end()) {
    return Error("unknown agent " + agentId);
  }
  Agent& agent = *agents_[a->second];
  if (!agent.available.contains(from)) {
    return Error("agent " + agentId + " does not have " + from.toString() +
                 " free (it may be offered or in use): free now is " +
                 agent.available.toString());
  }
  freeUnreserved_ -= Quantities::of(agent.available.unreserved());
  accountReservations(agent, agent.total, false);
  agent.total -= from;
  agent.total += to;
  agent.available -= from;
  agent.available += to;
  agent.availableQ = Quantities::of(agent.available);
  agent.hasReservations =
      std::any_of(agent.total.items().begin(), agent.total.items().end(), isReserved);
  accountReservations(agent, agent.total, true);
  freeUnreserved_ += Quantities::of(agent.available.unreserved());
  return ok();
}

void HierarchicalAllocator::updateAllocation(const std::string& frameworkId,
                                             const std::string& agentId, const std::string& role,
                                             const Resources& from, const Resources& to) {
  Framework* f = findFramework(frameworkId);
  Role* r = findRole(role.empty() ? "*" : role);
  auto a = agentIndex_.find(agentId);
  if (f == nullptr || r == nullptr || a == agentIndex_.end()) {
    return;
  }
  Agent& agent = *agents_[a->second];
  account(*f, *r, agent, from, false);  // back to free...
  if (!updateAvailable(agentId, from, to)) {
    LOG(ERROR) << "Allocator: cannot turn " << from << " into " << to << " on " << agentId;
    account(*f, *r, agent, from, true);
    return;
  }
  account(*f, *r, agent, to, true);  // ...changed, and held again
}

// ------------------------------------------------------------------------------------------

Status HierarchicalAllocator::setWeight(const std::string& role, double weight) {
  Status valid = validateRole(role);
  if (!valid) {
    return valid;
  }
  if (!(weight > 0) || !std::isfinite(weight)) {
    return Error("a weight must be a positive number");
  }
  Role& r = ensureRole(role);
  r.weight = weight;
  r.parent->childSorter.setWeight(r.id, weight);
  return ok();
}

Status HierarchicalAllocator::setQuota(const std::string& role, const RoleQuota& quota) {
  Status valid = validateRole(role);
  if (!valid) {
    return valid;
  }
  if (!quota.limit.contains(quota.guarantee)) {
    return Error("role '" + role + "': the guarantee (" + quota.guarantee.toString() +
                 ") exceeds the limit (" + quota.limit.toString() + ")");
  }
  Role& r = ensureRole(role);
  if (!r.hasQuota) {
    ++quotaRoles_;
  }
  r.hasQuota = true;
  r.quota = quota;
  requiredValid_ = false;
  return ok();
}

void HierarchicalAllocator::removeQuota(const std::string& role) {
  Role* r = findRole(role);
  if (r != nullptr && r->hasQuota) {
    r->hasQuota = false;
    r->quota = RoleQuota{};
    --quotaRoles_;
    requiredValid_ = false;
  }
}

std::vector<RoleInfo> HierarchicalAllocator::roles() const {
  std::vector<RoleInfo> out;
  std::vector<const Role*> pending{root_.get()};
  while (!pending.empty()) {
    const Role* r = pending.back();
    pending.pop_back();
    for (auto it = r->children.rbegin(); it != r->children.rend(); ++it) {
      pending.push_back(it->second.get());
    }
    if (r == root_.get()) {
      continue;
    }
    if (r->subscribers.empty() && r->allocated.empty() && r->reserved.empty() &&
        r->weight == 1 && !r->hasQuota) {
      continue;
    }
    RoleInfo info;
    info.name = r->name;
    info.weight = r->weight;
    info.quota = r->quota;
    info.hasQuota = r->hasQuota;
    info.allocated = r->allocated;
    info.reserved = r->reserved;
    info.frameworks.assign(r->subscribers.begin(), r->subscribers.end());
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<Explanation> HierarchicalAllocator::explain() const {
  std::vector<Explanation> out;
  for (const auto& f : frameworks_) {
    if (f == nullptr) {
      continue;
    }
    for (const auto& [name, in] : f->roles) {
      if (!in.subscribed) {
        continue;
      }
      Explanation e;
      e.frameworkId = f->id;
      e.role = name;
      e.reason = in.last;
      e.allocated = in.allocated;
      const Role* role = findRole(name);
      e.share = role != nullptr ? role->frameworkSorter.share(f->index) : 0;
      out.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace agora::master
