#pragma once

// What the allocator sorts by: the scalar quantities DRF shares are computed over, and an
// incremental DRF sorter.

#include <array>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/resources.hpp"

namespace agora::master {

// Amounts of the four scalar kinds that shares, quotas and headroom are counted in. Ports and
// other range resources are offered but not shared by amount (as in Mesos).
struct Quantities {
  static constexpr size_t kKinds = 4;
  static const std::array<const char*, kKinds> kNames;  // cpus, mem, disk, gpus

  std::array<double, kKinds> v{};

  static Quantities of(const Resources& resources);
  static Quantities of(const Resource& resource);
  // Every kind unbounded: the default quota limit.
  static Quantities unlimited();
  // Parses "cpus:4;mem:1024" (scalar kinds only, non-negative).
  static Result<Quantities> parse(const std::string& text);
  // The same for a limit: kinds not named are unlimited.
  static Result<Quantities> parseLimit(const std::string& text);

  Quantities& operator+=(const Quantities& o) {
    for (size_t i = 0; i < kKinds; ++i) v[i] += o.v[i];
    return *this;
  }
  Quantities& operator-=(const Quantities& o) {
    for (size_t i = 0; i < kKinds; ++i) v[i] -= o.v[i];
    return *this;
  }
  bool empty() const;
  bool isUnlimited(size_t kind) const { return v[kind] == std::numeric_limits<double>::infinity(); }
  // Every kind of `o` (that is positive there) fits in this.
  bool contains(const Quantities& o) const;
  // Per kind, the part of this above `floor` (never negative).
  Quantities above(const Quantities& floor) const;
  // "cpus:4;mem:1024", zero kinds left out ("" when all are zero); unlimited kinds omitted.
  std::string toString() const;
};

// Keeps clients (roles, or a role's frameworks) in order of weighted dominant share: the
// largest fraction of the cluster's total of any kind the client is allocated, divided by its
// weight; ties by id (the order clients were added in, for roles and frameworks alike). Incremental: a change to one client's allocation moves only that
// client (O(log n)); a change of the total re-sorts once, the next time the order is read.
class Sorter {
 public:
  using Id = uint32_t;

  struct Entry {
    double share;
    Id id;
    bool operator<(const Entry& o) const {
      return share != o.share ? share < o.share : id < o.id;
    }
  };

  // A client starts active: in the order. An inactive one keeps its allocation (it still
  // counts) but is not offered anything, so iterating the order never visits it.
  void add(Id id, double weight = 1);
  void remove(Id id);
  void activate(Id id);
  void deactivate(Id id);
  bool contains(Id id) const { return clients_.count(id) > 0; }
  size_t size() const { return clients_.size(); }
  void setWeight(Id id, double weight);
  void allocate(Id id, const Quantities& amount);
  void unallocate(Id id, const Quantities& amount);
  const Quantities& allocation(Id id) const;
  double share(Id id) const;
  void setTotal(const Quantities& total);

  // Lowest share first. Changing an allocation while iterating invalidates the iteration.
  const std::set<Entry>& order();

 private:
  struct Client {
    double weight = 1;
    Quantities allocation;
    double share = 0;
    bool active = true;
  };
  double computeShare(const Client& c) const;
  void reposition(Id id, Client& c);

  Quantities total_;
  std::unordered_map<Id, Client> clients_;
  std::set<Entry> order_;
  bool stale_ = false;  // the total changed: every share is to be recomputed
};

}  // namespace agora::master
