#include "master/allocator/fair_allocator.hpp"

#include <algorithm>

#include <glog/logging.h>

namespace agora::master {

namespace {

const char* const kShareNames[] = {"cpus", "mem", "disk", "gpus"};

}  // namespace

void FairAllocator::setRoles(Framework& f, const FrameworkInfo& info) {
  f.roles.assign(info.roles().begin(), info.roles().end());
  if (f.roles.empty()) {
    f.roles.push_back("*");
  }
  f.gpuCapable = std::find(info.capabilities().begin(), info.capabilities().end(),
                           FrameworkInfo::GPU_RESOURCES) != info.capabilities().end();
}

void FairAllocator::addFramework(const std::string& frameworkId, const FrameworkInfo& info,
                                 bool active) {
  Framework& f = frameworks_[frameworkId];
  setRoles(f, info);
  f.active = active;
}

void FairAllocator::updateFramework(const std::string& frameworkId, const FrameworkInfo& info) {
  auto it = frameworks_.find(frameworkId);
  if (it != frameworks_.end()) {
    setRoles(it->second, info);
  }
}

void FairAllocator::removeFramework(const std::string& frameworkId) {
  auto it = frameworks_.find(frameworkId);
  if (it == frameworks_.end()) {
    return;
  }
  for (auto& [agentId, agent] : agents_) {
    auto held = agent.byFramework.find(frameworkId);
    if (held != agent.byFramework.end()) {
      agent.allocated -= held->second;
      agent.byFramework.erase(held);
    }
  }
  frameworks_.erase(it);
}

void FairAllocator::activateFramework(const std::string& frameworkId) {
  auto it = frameworks_.find(frameworkId);
  if (it != frameworks_.end()) {
    it->second.active = true;
  }
}

void FairAllocator::deactivateFramework(const std::string& frameworkId) {
  auto it = frameworks_.find(frameworkId);
  if (it != frameworks_.end()) {
    it->second.active = false;
  }
}

void FairAllocator::addAgent(const std::string& agentId, const AgentInfo& info,
                             const Resources& total) {
  Agent& a = agents_[agentId];
  clusterTotal_ -= a.total;
  a.total = total;
  a.hasGpus = total.scalar("gpus") > 0;
  clusterTotal_ += total;
}

void FairAllocator::removeAgent(const std::string& agentId) {
  auto it = agents_.find(agentId);
  if (it == agents_.end()) {
    return;
  }
  for (auto& [frameworkId, held] : it->second.byFramework) {
    auto f = frameworks_.find(frameworkId);
    if (f != frameworks_.end()) {
      f->second.allocated -= held;
      f->second.filters.erase(agentId);
    }
  }
  clusterTotal_ -= it->second.total;
  agents_.erase(it);
}

void FairAllocator::addUsed(const std::string& frameworkId, const std::string& agentId,
                            const std::string& role, const Resources& resources) {
  auto a = agents_.find(agentId);
  auto f = frameworks_.find(frameworkId);
  if (a == agents_.end() || f == frameworks_.end()) {
    return;
  }
  a->second.allocated += resources;
  a->second.byFramework[frameworkId] += resources;
  f->second.allocated += resources;
}

void FairAllocator::recoverResources(const std::string& frameworkId, const std::string& agentId,
                                     const Resources& resources, std::optional<Duration> refuse) {
  auto a = agents_.find(agentId);
  if (a != agents_.end()) {
    a->second.allocated -= resources;
    auto held = a->second.byFramework.find(frameworkId);
    if (held != a->second.byFramework.end()) {
      held->second -= resources;
      if (held->second.empty()) {
        a->second.byFramework.erase(held);
      }
    }
  }
  auto f = frameworks_.find(frameworkId);
  if (f == frameworks_.end()) {
    return;
  }
  f->second.allocated -= resources;
  if (refuse && *refuse > Duration::zero() && a != agents_.end() && !resources.empty()) {
    Filter& filter = f->second.filters[agentId];
    filter.resources = resources;
    filter.expires = clock_() + *refuse;
  }
}

void FairAllocator::suppress(const std::string& frameworkId,
                             const std::vector<std::string>& roles) {
  auto f = frameworks_.find(frameworkId);
  if (f == frameworks_.end()) {
    return;
  }
  const auto& which = roles.empty() ? f->second.roles : roles;
  f->second.suppressed.insert(which.begin(), which.end());
}

void FairAllocator::revive(const std::string& frameworkId, const std::vector<std::string>& roles) {
  auto f = frameworks_.find(frameworkId);
  if (f == frameworks_.end()) {
    return;
  }
  if (roles.empty()) {
    f->second.suppressed.clear();
  } else {
    for (const std::string& r : roles) {
      f->second.suppressed.erase(r);
    }
  }
  f->second.filters.clear();
}

double FairAllocator::dominantShare(const Framework& f) const {
  double share = 0;
  for (const char* name : kShareNames) {
    double total = clusterTotal_.scalar(name);
    if (total > 0) {
      share = std::max(share, f.allocated.scalar(name) / total);
    }
  }
  return share;
}

bool FairAllocator::allocatable(const Resources& r) const {
  return r.scalar("cpus") >= options_.minAllocatableCpus ||
         r.scalar("mem") >= options_.minAllocatableMem;
}

std::vector<Allocation> FairAllocator::allocate(TimePoint now) {
  return allocateAgents(now, nullptr);
}

std::vector<Allocation> FairAllocator::allocate(TimePoint now,
                                                const std::set<std::string>& agents) {
  return allocateAgents(now, &agents);
}

std::vector<Allocation> FairAllocator::allocateAgents(TimePoint now,
                                                      const std::set<std::string>* only) {
  std::vector<Allocation> out;
  if (agents_.empty() || frameworks_.empty()) {
    return out;
  }
  if (only == nullptr) {
    // Expired filters are dropped by the full (periodic) pass; an event-triggered pass for a
    // few agents stays O(those agents) and checks expiry where it looks a filter up.
    for (auto& [id, f] : frameworks_) {
      std::erase_if(f.filters, [now](const auto& entry) { return entry.second.expires <= now; });
    }
  }

  std::vector<std::pair<double, Framework*>> order;
  std::vector<std::string> ids;
  for (auto& [id, f] : frameworks_) {
    if (f.active) {
      order.emplace_back(dominantShare(f), &f);
      ids.push_back(id);
    }
  }
  if (order.empty()) {
    return out;
  }
  std::vector<size_t> index(order.size());

  std::vector<std::map<std::string, Agent>::iterator> agentOrder;
  if (only != nullptr) {
    for (const std::string& id : *only) {
      auto it = agents_.find(id);
      if (it != agents_.end()) {
        agentOrder.push_back(it);
      }
    }
  } else {
    agentOrder.reserve(agents_.size());
    for (auto it = agents_.begin(); it != agents_.end(); ++it) {
      agentOrder.push_back(it);
    }
  }
  if (agentOrder.empty()) {
    return out;
  }
  std::rotate(agentOrder.begin(), agentOrder.begin() + (startOffset_ % agentOrder.size()),
              agentOrder.end());
  ++startOffset_;

  for (auto& agentIt : agentOrder) {
    const std::string& agentId = agentIt->first;
    Agent& agent = agentIt->second;
    Resources available = agent.total - agent.allocated;
    if (available.empty() || !allocatable(available)) {
      continue;
    }
    // Lowest dominant share first; ties keep a stable order by id.
    for (size_t i = 0; i < index.size(); ++i) {
      index[i] = i;
    }
    std::stable_sort(index.begin(), index.end(),
                     [&](size_t a, size_t b) { return order[a].first < order[b].first; });
    for (size_t i : index) {
      Framework& f = *order[i].second;
      if (agent.hasGpus && !f.gpuCapable) {
        continue;
      }
      bool allocated = false;
      for (const std::string& role : f.roles) {
        if (f.suppressed.count(role) > 0) {
          continue;
        }
        Resources offerable = available.allocatableTo(role);
        if (offerable.empty() || !allocatable(offerable)) {
          continue;
        }
        auto filter = f.filters.find(agentId);
        if (filter != f.filters.end() && filter->second.expires > now &&
            filter->second.resources.contains(offerable)) {
          continue;
        }
        agent.allocated += offerable;
        agent.byFramework[ids[i]] += offerable;
        f.allocated += offerable;
        order[i].first = dominantShare(f);
        out.push_back(Allocation{ids[i], agentId, role, offerable});
        allocated = true;
        break;
      }
      if (allocated) {
        break;
      }
    }
  }
  return out;
}

}  // namespace agora::master
