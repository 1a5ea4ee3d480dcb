// The allocation cycle: which (framework, role) each agent's free resources go to.

#include <algorithm>
#include <cmath>

#include "master/allocator/hierarchical_allocator_state.hpp"

namespace agora::master {

using namespace hdrf;  // NOLINT: this file's own helpers

// `resources` with each scalar kind cut down to `cap` (items taken in order).
Resources hdrf::capped(const Resources& resources, Quantities cap) {
  Resources out;
  for (const Resource& r : resources.items()) {
    Quantities q = Quantities::of(r);
    size_t kind = Quantities::kKinds;
    for (size_t i = 0; i < Quantities::kKinds; ++i) {
      if (q.v[i] > 0) {
        kind = i;
      }
    }
    if (kind == Quantities::kKinds) {
      out += r;  // ranges, and scalars that are not shared by amount
      continue;
    }
    double take = std::min(q.v[kind], cap.v[kind]);
    take = std::floor(take * 1000 + 1e-6) / 1000;  // the resolution of scalars
    if (take <= 0) {
      continue;
    }
    cap.v[kind] -= take;
    if (take == r.scalar()) {
      out += r;
    } else {
      Resource part = r;
      part.set_scalar(take);
      out += part;
    }
  }
  return out;
}

bool HierarchicalAllocator::allocatable(const Quantities& q) const {
  for (const Quantities& min : options_.minAllocatable) {
    if (q.contains(min)) {
      return true;
    }
  }
  return false;
}

Quantities HierarchicalAllocator::consumption(const Role& role) const {
  Quantities q = role.allocated;
  q += role.reserved;
  q -= role.reservedAllocated;
  return q;
}

HierarchicalAllocator::Role* HierarchicalAllocator::quotaRootOf(Role& role) const {
  Role* top = nullptr;
  for (Role* n = &role; n != nullptr; n = n->parent) {
    if (n->hasQuota) {
      top = n;
    }
  }
  return top;
}

const Quantities& HierarchicalAllocator::requiredHeadroom() {
  if (!requiredValid_) {
    requiredValid_ = true;
    required_ = Quantities();
    if (quotaRoles_ > 0) {
      for (const auto& [name, role] : roles_) {
        if (role->hasQuota && quotaRootOf(*role) == role) {
          role->need = role->quota.guarantee.above(consumption(*role));
          required_ += role->need;
        }
      }
    }
  }
  return required_;
}

void HierarchicalAllocator::refreshTotals() {
  if (!totalsChanged_) {
    return;
  }
  totalsChanged_ = false;
  for (auto& [name, role] : roles_) {
    role->childSorter.setTotal(clusterTotal_);
    role->frameworkSorter.setTotal(clusterTotal_);
  }
}

void HierarchicalAllocator::note(FrameworkInRole& in, Unoffered reason) {
  if (static_cast<int>(reason) < static_cast<int>(in.last)) {
    in.last = reason;
  }
}

bool HierarchicalAllocator::offerFor(Framework& f, FrameworkInRole& in, Role& role,
                                     Agent& agent, TimePoint now, Role* quotaRoot,
                                     Candidate& out) {
  if (agent.hasGpus && !f.gpuCapable) {
    note(in, Unoffered::kNoFittingAgent);
    return false;
  }
  const Framework::Filter* filter = nullptr;
  if (!in.filters.empty()) {
    auto found = in.filters.find(agent.serial);
    if (found != in.filters.end()) {
      if (found->second.expires <= now) {
        in.filters.erase(found);
      } else {
        filter = &found->second;
      }
    }
  }
  if (!agent.hasReservations && quotaRoles_ == 0) {
    // The common case: the whole of what is free, as it is.
    if (filter != nullptr && filter->resources.contains(agent.available)) {
      note(in, Unoffered::kFiltered);
      return false;
    }
    out.framework = &f;
    out.in = &in;
    out.role = &role;
    out.offer = agent.available;
    out.whole = true;
    return true;
  }
  // What the role may take here: unreserved resources, and those reserved for it or a parent.
  // Without reservations the unreserved part is the agent's free resources, read in place.
  Resources reserved;
  Resources unreservedPart;
  const Resources* unreserved = &agent.available;
  if (agent.hasReservations) {
    for (const Resource& r : agent.available.items()) {
      if (!isReserved(r)) {
        unreservedPart += r;
      } else if (within(role.name, reservationRole(r))) {
        reserved += r;
      }
    }
    unreserved = &unreservedPart;
  }
  Quantities unreservedQ = agent.hasReservations ? Quantities::of(unreservedPart) : agent.availableQ;

  // The unreserved part is capped by quota limits on the path, by the headroom other roles'
  // guarantees need, and in stage 1 by what the guarantee still needs.
  Unoffered bound = Unoffered::kNoFittingAgent;
  Resources cut;
  bool isCut = false;
  if (quotaRoles_ > 0 && !unreservedQ.empty()) {
    // A role with no room left in a kind its limit bounds is at its limit: it gets no more
    // unreserved resources of any kind (mem without cpus would be of no use to it).
    Quantities cap = Quantities::unlimited();
    bool atLimit = false;
    for (Role* n = &role; n != nullptr; n = n->parent) {
      if (n->hasQuota) {
        Quantities room = n->quota.limit.above(consumption(*n));
        for (size_t i = 0; i < Quantities::kKinds; ++i) {
          atLimit |= !n->quota.limit.isUnlimited(i) && room.v[i] < 0.001;
        }
        cap = minimum(cap, room);
      }
    }
    if (atLimit) {
      cap = Quantities();
    }
    if (!cap.contains(unreservedQ)) {
      bound = Unoffered::kQuotaLimit;
    }
    Role* own = quotaRootOf(role);
    Quantities ownNeed;
    if (own != nullptr) {
      ownNeed = own->quota.guarantee.above(consumption(*own));
    }
    Quantities others = requiredHeadroom();
    others -= ownNeed;
    Quantities allowed = freeUnreserved_.above(others);
    if (bound != Unoffered::kQuotaLimit && !allowed.contains(unreservedQ)) {
      bound = Unoffered::kHeadroom;
    }
    cap = minimum(cap, allowed);
    if (quotaRoot != nullptr) {
      for (size_t i = 0; i < Quantities::kKinds; ++i) {
        if (quotaRoot->quota.guarantee.v[i] > 0) {
          cap.v[i] = std::min(cap.v[i], ownNeed.v[i]);
        }
      }
    }
    if (!cap.contains(unreservedQ)) {
      cut = capped(*unreserved, cap);
      isCut = true;
    }
  }
  // Uncut and with nothing reserved on the agent, the offer is all that is free.
  const bool whole = !agent.hasReservations && !isCut;
  Quantities offerQ;
  if (whole) {
    offerQ = agent.availableQ;
  } else {
    offerQ = Quantities::of(reserved);
    offerQ += Quantities::of(isCut ? cut : *unreserved);
  }
  if (offerQ.empty() || !allocatable(offerQ)) {
    note(in, bound);
    return false;
  }
  Resources offer;
  if (whole) {
    offer = agent.available;
  } else {
    offer = std::move(reserved);
    if (isCut) {
      offer += cut;
    } else {
      offer += *unreserved;
    }
  }
  if (filter != nullptr && filter->resources.contains(offer)) {
    note(in, Unoffered::kFiltered);
    return false;
  }
  out.framework = &f;
  out.in = &in;
  out.role = &role;
  out.offer = std::move(offer);
  out.whole = whole;
  return true;
}

bool HierarchicalAllocator::pick(Role& node, Agent& agent, TimePoint now, Role* quotaRoot,
                                 Candidate& out) {
  for (const Sorter::Entry& entry : node.childSorter.order()) {
    if (entry.id == kSelf) {
      for (const Sorter::Entry& fe : node.frameworkSorter.order()) {
        FrameworkInRole* in = node.members[fe.id];
        if (offerFor(*frameworks_[fe.id], *in, node, agent, now, quotaRoot, out)) {
          return true;
        }
      }
      continue;
    }
    auto child = node.childById.find(entry.id);
    if (child == node.childById.end() || child->second->active == 0) {
      continue;
    }
    if (pick(*child->second, agent, now, quotaRoot, out)) {
      return true;
    }
  }
  return false;
}

std::vector<Allocation> HierarchicalAllocator::allocate(TimePoint now) {
  std::vector<uint32_t> all;
  all.reserve(agentIndex_.size());
  for (uint32_t i = 0; i < agents_.size(); ++i) {
    if (agents_[i] != nullptr) {
      all.push_back(i);
    }
  }
  return allocateAgents(now, all, true);
}

std::vector<Allocation> HierarchicalAllocator::allocate(TimePoint now,
                                                        const std::set<std::string>& agents) {
  std::vector<uint32_t> some;
  for (const std::string& id : agents) {
    auto it = agentIndex_.find(id);
    if (it != agentIndex_.end()) {
      some.push_back(it->second);
    }
  }
  return allocateAgents(now, some, false);
}

std::vector<Allocation> HierarchicalAllocator::allocateAgents(TimePoint now,
                                                              const std::vector<uint32_t>& agents,
                                                              bool full) {
  std::vector<Allocation> out;
  refreshTotals();
  if (full) {
    // Every (framework, role) is told afresh why it got nothing, unless it gets something.
    for (auto& f : frameworks_) {
      if (f == nullptr) {
        continue;
      }
      for (auto& [name, in] : f->roles) {
        in.last = !f->active      ? Unoffered::kInactive
                  : in.suppressed ? Unoffered::kSuppressed
                                  : Unoffered::kNothingFree;
      }
    }
  }
  if (agents.empty() || root_->active == 0) {
    return out;
  }
  out.reserve(agents.size());
  std::vector<uint32_t> order = agents;
  std::rotate(order.begin(), order.begin() + static_cast<long>(startOffset_ % order.size()),
              order.end());
  ++startOffset_;

  bool anyFree = false;
  auto commit = [&](Candidate& c, Agent& agent) {
    note(*c.in, Unoffered::kOffered);
    account(*c.framework, *c.role, agent, c.offer, true, c.whole);
    out.push_back(Allocation{c.framework->id, agent.id, c.role->name, std::move(c.offer)});
  };

  // Stage 1: roles whose guarantee is not met yet, the neediest first.
  if (quotaRoles_ > 0) {
    std::vector<Role*> needy;
    for (auto& [name, role] : roles_) {
      if (role->hasQuota && role->active > 0 && quotaRootOf(*role) == role &&
          !role->quota.guarantee.above(consumption(*role)).empty()) {
        needy.push_back(role);
      }
    }
    std::sort(needy.begin(), needy.end(),
              [](const Role* a, const Role* b) { return a->name < b->name; });
    // A role leaves the list once its guarantee is met: within a cycle its use only grows.
    auto met = [this](Role* role) {
      return role->quota.guarantee.above(consumption(*role)).empty();
    };
    for (uint32_t index : order) {
      if (needy.empty()) {
        break;
      }
      Agent& agent = *agents_[index];
      if (!agent.offerable) {
        continue;
      }
      for (auto it = needy.begin(); it != needy.end() && allocatable(agent.availableQ);) {
        Role* role = *it;
        for (int rounds = 0; rounds < 4 && allocatable(agent.availableQ) && !met(role);
             ++rounds) {
          Candidate c;
          if (!pick(*role, agent, now, role, c)) {
            break;
          }
          commit(c, agent);
        }
        it = met(role) ? needy.erase(it) : it + 1;
      }
    }
  }

  // Stage 2: everyone, lowest share first. An agent can go to several frameworks when parts
  // of it are reserved for different roles.
  for (uint32_t index : order) {
    Agent& agent = *agents_[index];
    if (!agent.offerable) {
      continue;
    }
    for (int rounds = 0; rounds < 8 && allocatable(agent.availableQ); ++rounds) {
      anyFree = true;
      Candidate c;
      if (!pick(*root_, agent, now, nullptr, c)) {
        break;
      }
      commit(c, agent);
    }
  }

  if (full && anyFree) {
    // Those that were looked at got their reason; those never reached lost on fair share.
    for (auto& f : frameworks_) {
      if (f == nullptr) {
        continue;
      }
      for (auto& [name, in] : f->roles) {
        if (in.active && in.last == Unoffered::kNothingFree) {
          in.last = Unoffered::kFairShare;
        }
      }
    }
  }
  return out;
}

}  // namespace agora::master
