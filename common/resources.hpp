#pragma once

// Resource arithmetic: scalars (cpus, mem, disk, gpus) and ranges (ports), each possibly
// reserved for a role. Two resources combine when they have the same name, the same
// reservations and the same disk identity; scalars are kept to three decimals, as in Mesos.

#include <string>
#include <vector>

#include <google/protobuf/repeated_field.h>

#include "agora/agora.pb.h"
#include "common/result.hpp"

namespace agora {

class Resources {
 public:
  using Proto = google::protobuf::RepeatedPtrField<Resource>;

  Resources() = default;
  // Adds each item; items are assumed valid (validate() first when they come from a peer).
  explicit Resources(const Proto& items);
  explicit Resources(const std::vector<Resource>& items);

  // Parses "cpus:4;mem:1024;ports:[31000-32000,32005-32010];cpus(eng):2". A name in
  // parentheses reserves the item statically for that role; `defaultRole` applies to the rest
  // ("*" means unreserved).
  static Result<Resources> parse(const std::string& text, const std::string& defaultRole = "*");

  // Checks what a peer sent: names, finite non-negative scalars, well-formed ranges.
  static Status validate(const Proto& items);

  static Resource scalar(const std::string& name, double value);
  static Resource ranges(const std::string& name, std::vector<std::pair<uint64_t, uint64_t>> r);

  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<Resource>& items() const { return items_; }

  Resources& operator+=(const Resource& r);
  Resources& operator+=(const Resources& other);
  // Subtracts what is there; what is not there is ignored (callers check contains() first).
  Resources& operator-=(const Resource& r);
  Resources& operator-=(const Resources& other);
  Resources operator+(const Resources& other) const;
  Resources operator-(const Resources& other) const;
  bool operator==(const Resources& other) const;

  bool contains(const Resources& other) const;
  bool contains(const Resource& r) const;

  // The sum of a scalar across all reservations (0 when absent).
  double scalar(const std::string& name) const;
  // The number of values in a range resource, across all reservations.
  uint64_t rangeCount(const std::string& name) const;

  Resources unreserved() const;
  Resources reservedFor(const std::string& role) const;
  // What a framework in `role` may be offered: unreserved plus reserved for that role.
  Resources allocatableTo(const std::string& role) const;

  Proto toProto() const;
  void copyTo(Proto* out) const;
  // "cpus:4;mem:1024;ports:[31000-32000]", stable order, roles in parentheses.
  std::string toString() const;

 private:
  static bool sameKind(const Resource& a, const Resource& b);
  std::vector<Resource> items_;
};

// The role a resource is allocated to: its last reservation, or "*".
std::string reservationRole(const Resource& r);

bool isDynamicallyReserved(const Resource& r);  // its last reservation is DYNAMIC
bool isPersistentVolume(const Resource& r);     // disk with a persistence id

// What a dynamic reservation or a volume was made from: without its persistence id and its
// dynamic reservations (the static form the agent itself reports).
Resource baseOf(const Resource& r);

// An agent's resources once its dynamic reservations and volumes are carved out of what it
// reports: `reported` - base(checkpointed) + checkpointed. An error when `reported` no longer
// holds them (the agent came back smaller).
Result<Resources> applyCheckpointed(const Resources& reported, const Resources& checkpointed);

std::ostream& operator<<(std::ostream& out, const Resources& r);

}  // namespace agora
