#pragma once

// The hierarchical allocator's internal state, shared by its bookkeeping
// (hierarchical_allocator.cpp) and its allocation cycle (allocation_cycle.cpp).

#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "master/allocator/hierarchical_allocator.hpp"

namespace agora::master {

namespace hdrf {

inline constexpr Sorter::Id kSelf = 0;  // in a role's child sorter: the role's own frameworks

inline bool isReserved(const Resource& r) { return r.reservations_size() > 0; }

// Whether `role` is `ancestor` or one of its descendants.
inline bool within(const std::string& role, const std::string& ancestor) {
  return role == ancestor ||
         (role.size() > ancestor.size() && role.compare(0, ancestor.size(), ancestor) == 0 &&
          role[ancestor.size()] == '/');
}

inline Quantities minimum(const Quantities& a, const Quantities& b) {
  Quantities out;
  for (size_t i = 0; i < Quantities::kKinds; ++i) {
    out.v[i] = std::min(a.v[i], b.v[i]);
  }
  return out;
}

// `resources` with each scalar kind cut down to `cap` (items taken in order).
Resources capped(const Resources& resources, Quantities cap);

}  // namespace hdrf

struct FrameworkInRole {
  struct Filter {
    Resources resources;
    TimePoint expires;
  };
  bool subscribed = false;
  bool suppressed = false;
  bool inSorter = false;  // a client of the role's framework sorter
  bool active = false;    // counted in the role's `active`
  Unoffered last = Unoffered::kNothingFree;
  Quantities allocated;
  std::unordered_map<uint64_t, Filter> filters;  // by agent serial
};

struct HierarchicalAllocator::Role {
  std::string name;
  Role* parent = nullptr;
  Sorter::Id id = 0;
  std::map<std::string, std::unique_ptr<Role>> children;  // by name
  double weight = 1;
  bool hasQuota = false;
  RoleQuota quota;
  Sorter childSorter;      // child roles by id, and kSelf for this role's own frameworks
  Sorter frameworkSorter;  // frameworks by index
  Quantities allocated;          // subtree: offered or in use
  Quantities reserved;           // subtree: reserved on agents, used or not
  Quantities reservedAllocated;  // subtree: the reserved part of `allocated`
  size_t active = 0;             // subtree: (framework, role) pairs to offer to
  Quantities need;               // a top-most quota role: what its guarantee still needs
  std::set<std::string> subscribers;  // framework ids subscribed to exactly this role
  std::unordered_map<Sorter::Id, Role*> childById;
  // The frameworks in frameworkSorter, by index: their state in this role.
  std::unordered_map<uint32_t, FrameworkInRole*> members;
};

struct HierarchicalAllocator::Framework {
  using InRole = FrameworkInRole;
  using Filter = FrameworkInRole::Filter;
  std::string id;
  uint32_t index = 0;
  bool active = true;
  bool gpuCapable = false;
  std::map<std::string, InRole> roles;
};

struct HierarchicalAllocator::Agent {
  std::string id;
  uint64_t serial = 0;  // never reused, unlike the index: filters name agents by it
  Resources total;
  Resources available;
  Quantities availableQ;
  bool hasGpus = false;
  bool hasReservations = false;
  bool offerable = true;  // false while down for maintenance
  std::map<std::pair<uint32_t, Role*>, Resources> held;  // by (framework, role)
};

struct HierarchicalAllocator::Candidate {
  Framework* framework = nullptr;
  FrameworkInRole* in = nullptr;
  Role* role = nullptr;
  Resources offer;
  bool whole = false;  // the offer is all the agent has free
};

}  // namespace agora::master
