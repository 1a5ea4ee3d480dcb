#include "master/allocator/sorter.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>


namespace agora::master {

const std::array<const char*, Quantities::kKinds> Quantities::kNames = {"cpus", "mem", "disk",
                                                                         "gpus"};

namespace {

constexpr double kEpsilon = 0.0005;

int kindOf(const std::string& name) {
  for (size_t i = 0; i < Quantities::kKinds; ++i) {
    if (name == Quantities::kNames[i]) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

}  // namespace

Quantities Quantities::of(const Resource& resource) {
  Quantities q;
  if (resource.type() == Resource::SCALAR) {
    int kind = kindOf(resource.name());
    if (kind >= 0) {
      q.v[static_cast<size_t>(kind)] = resource.scalar();
    }
  }
  return q;
}

Quantities Quantities::of(const Resources& resources) {
  Quantities q;
  for (const Resource& r : resources.items()) {
    if (r.type() == Resource::SCALAR) {
      int kind = kindOf(r.name());
      if (kind >= 0) {
        q.v[static_cast<size_t>(kind)] += r.scalar();
      }
    }
  }
  return q;
}

Quantities Quantities::unlimited() {
  Quantities q;
  q.v.fill(std::numeric_limits<double>::infinity());
  return q;
}

Result<Quantities> Quantities::parse(const std::string& text) {
  auto resources = Resources::parse(text);
  if (!resources) {
    return Error(resources.error());
  }
  for (const Resource& r : resources->items()) {
    if (kindOf(r.name()) < 0 || r.type() != Resource::SCALAR) {
      return Error("'" + r.name() + "' cannot be counted here (only cpus, mem, disk and gpus)");
    }
    if (r.reservations_size() > 0) {
      return Error("'" + r.name() + "' names a role; amounts here are for the role given");
    }
  }
  return of(*resources);
}

Result<Quantities> Quantities::parseLimit(const std::string& text) {
  auto parsed = parse(text);
  if (!parsed) {
    return parsed;
  }
  auto resources = Resources::parse(text);
  Quantities limit = unlimited();
  for (const Resource& r : resources->items()) {
    limit.v[static_cast<size_t>(kindOf(r.name()))] = 0;
  }
  limit += *parsed;
  return limit;
}

bool Quantities::empty() const {
  return std::all_of(v.begin(), v.end(), [](double x) { return x < kEpsilon; });
}

bool Quantities::contains(const Quantities& o) const {
  for (size_t i = 0; i < kKinds; ++i) {
    if (o.v[i] > kEpsilon && v[i] + kEpsilon < o.v[i]) {
      return false;
    }
  }
  return true;
}

Quantities Quantities::above(const Quantities& floor) const {
  Quantities out;
  for (size_t i = 0; i < kKinds; ++i) {
    out.v[i] = std::max(0.0, v[i] - floor.v[i]);
  }
  return out;
}

std::string Quantities::toString() const {
  std::ostringstream out;
  bool first = true;
  for (size_t i = 0; i < kKinds; ++i) {
    if (v[i] < kEpsilon || isUnlimited(i)) {
      continue;
    }
    out << (first ? "" : ";") << kNames[i] << ":" << std::round(v[i] * 1000) / 1000;
    first = false;
  }
  return out.str();
}

// ------------------------------------------------------------------------------------------

double Sorter::computeShare(const Client& c) const {
  double share = 0;
  for (size_t i = 0; i < Quantities::kKinds; ++i) {
    if (total_.v[i] > 0) {
      share = std::max(share, c.allocation.v[i] / total_.v[i]);
    }
  }
  return share / c.weight;
}

void Sorter::add(Id id, double weight) {
  if (clients_.count(id) > 0) {
    return;
  }
  Client& c = clients_[id];
  c.weight = weight > 0 ? weight : 1;
  c.share = computeShare(c);
  if (!stale_) {
    order_.insert(Entry{c.share, id});
  }
}

void Sorter::remove(Id id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) {
    return;
  }
  if (it->second.active && !stale_) {
    order_.erase(Entry{it->second.share, id});
  }
  clients_.erase(it);
}

void Sorter::activate(Id id) {
  auto it = clients_.find(id);
  if (it == clients_.end() || it->second.active) {
    return;
  }
  Client& c = it->second;
  c.active = true;
  if (!stale_) {
    c.share = computeShare(c);
    order_.insert(Entry{c.share, id});
  }
}

void Sorter::deactivate(Id id) {
  auto it = clients_.find(id);
  if (it == clients_.end() || !it->second.active) {
    return;
  }
  Client& c = it->second;
  if (!stale_) {
    order_.erase(Entry{c.share, id});
  }
  c.active = false;
}

void Sorter::reposition(Id id, Client& c) {
  if (stale_ || !c.active) {
    return;  // order() rebuilds everything anyway, or the client is not in it
  }
  double share = computeShare(c);
  if (share == c.share) {
    return;
  }
  order_.erase(Entry{c.share, id});
  c.share = share;
  order_.insert(Entry{c.share, id});
}

void Sorter::setWeight(Id id, double weight) {
  auto it = clients_.find(id);
  if (it != clients_.end() && weight > 0) {
    it->second.weight = weight;
    reposition(id, it->second);
  }
}

void Sorter::allocate(Id id, const Quantities& amount) {
  auto it = clients_.find(id);
  if (it != clients_.end()) {
    it->second.allocation += amount;
    reposition(id, it->second);
  }
}

void Sorter::unallocate(Id id, const Quantities& amount) {
  auto it = clients_.find(id);
  if (it != clients_.end()) {
    it->second.allocation -= amount;
    for (double& x : it->second.allocation.v) {
      if (x < kEpsilon) {
        x = 0;  // no drift below zero from rounding
      }
    }
    reposition(id, it->second);
  }
}

const Quantities& Sorter::allocation(Id id) const {
  static const Quantities kNone;
  auto it = clients_.find(id);
  return it == clients_.end() ? kNone : it->second.allocation;
}

double Sorter::share(Id id) const {
  auto it = clients_.find(id);
  return it == clients_.end() ? 0 : computeShare(it->second);
}

void Sorter::setTotal(const Quantities& total) {
  if (total.v != total_.v) {
    total_ = total;
    stale_ = true;
  }
}

const std::set<Sorter::Entry>& Sorter::order() {
  if (stale_) {
    stale_ = false;
    order_.clear();
    for (auto& [id, c] : clients_) {
      c.share = computeShare(c);
      if (c.active) {
        order_.insert(Entry{c.share, id});
      }
    }
  }
  return order_;
}

}  // namespace agora::master
