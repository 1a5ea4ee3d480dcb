#include "common/resources.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ostream>
#include <sstream>

namespace agora {

namespace {

constexpr double kEpsilon = 0.0005;

double roundMilli(double v) { return std::round(v * 1000.0) / 1000.0; }

using Interval = std::pair<uint64_t, uint64_t>;

std::vector<Interval> toIntervals(const Resource& r) {
  std::vector<Interval> out;
  out.reserve(r.ranges_size());
  for (const Range& range : r.ranges()) {
    out.emplace_back(range.begin(), range.end());
  }
  return out;
}

// Sorts and merges overlapping or adjacent intervals.
std::vector<Interval> normalize(std::vector<Interval> v) {
  std::sort(v.begin(), v.end());
  std::vector<Interval> out;
  for (const Interval& i : v) {
    if (!out.empty() && i.first <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, i.second);
    } else {
      out.push_back(i);
    }
  }
  return out;
}

void setIntervals(Resource* r, const std::vector<Interval>& v) {
  r->clear_ranges();
  for (const Interval& i : v) {
    Range* range = r->add_ranges();
    range->set_begin(i.first);
    range->set_end(i.second);
  }
}

std::vector<Interval> subtractIntervals(const std::vector<Interval>& a,
                                        const std::vector<Interval>& b) {
  std::vector<Interval> out;
  for (Interval cur : a) {
    bool gone = false;
    for (const Interval& cut : b) {
      if (cut.second < cur.first || cut.first > cur.second) {
        continue;
      }
      if (cut.first > cur.first) {
        out.emplace_back(cur.first, cut.first - 1);
      }
      if (cut.second >= cur.second) {
        gone = true;
        break;
      }
      cur.first = cut.second + 1;
    }
    if (!gone) {
      out.push_back(cur);
    }
  }
  return normalize(out);
}

bool intervalsContain(const std::vector<Interval>& a, const std::vector<Interval>& b) {
  for (const Interval& need : b) {
    bool found = false;
    for (const Interval& have : a) {
      if (have.first <= need.first && need.second <= have.second) {
        found = true;
        break;
      }
    }
    if (!found) {
      return false;
    }
  }
  return true;
}

std::string intervalsToString(const Resource& r) {
  std::string s = "[";
  for (int i = 0; i < r.ranges_size(); ++i) {
    if (i > 0) {
      s += ",";
    }
    s += std::to_string(r.ranges(i).begin()) + "-" + std::to_string(r.ranges(i).end());
  }
  return s + "]";
}

bool sameReservation(const Resource::ReservationInfo& a, const Resource::ReservationInfo& b) {
  if (a.type() != b.type() || a.role() != b.role() || a.principal() != b.principal() ||
      a.labels_size() != b.labels_size()) {
    return false;
  }
  for (const auto& [k, v] : a.labels()) {
    auto it = b.labels().find(k);
    if (it == b.labels().end() || it->second != v) {
      return false;
    }
  }
  return true;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) {
    return "";
  }
  size_t e = s.find_last_not_of(" \t\n");
  return s.substr(b, e - b + 1);
}

bool isRangesName(const std::string& name) { return name == "ports"; }

Result<uint64_t> parseUint(const std::string& s) {
  std::string t = trim(s);
  if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos || t.size() > 19) {
    return Error("'" + s + "' is not a non-negative integer");
  }
  return std::stoull(t);
}

Result<std::vector<Interval>> parseIntervals(const std::string& text) {
  std::string t = trim(text);
  if (t.size() < 2 || t.front() != '[' || t.back() != ']') {
    return Error("ranges must look like [31000-32000,33000-33010], got '" + text + "'");
  }
  std::vector<Interval> out;
  std::stringstream in(t.substr(1, t.size() - 2));
  std::string part;
  while (std::getline(in, part, ',')) {
    if (trim(part).empty()) {
      continue;
    }
    size_t dash = part.find('-');
    if (dash == std::string::npos) {
      auto v = parseUint(part);
      if (!v) {
        return Error(v.error());
      }
      out.emplace_back(*v, *v);
      continue;
    }
    auto b = parseUint(part.substr(0, dash));
    auto e = parseUint(part.substr(dash + 1));
    if (!b || !e) {
      return Error("bad range '" + trim(part) + "'");
    }
    if (*b > *e) {
      return Error("bad range '" + trim(part) + "': begin is after end");
    }
    out.emplace_back(*b, *e);
  }
  return normalize(out);
}

}  // namespace

std::string reservationRole(const Resource& r) {
  return r.reservations_size() == 0 ? "*" : r.reservations(r.reservations_size() - 1).role();
}

bool isDynamicallyReserved(const Resource& r) {
  return r.reservations_size() > 0 &&
         r.reservations(r.reservations_size() - 1).type() == Resource::ReservationInfo::DYNAMIC;
}

bool isPersistentVolume(const Resource& r) {
  return r.name() == "disk" && !r.disk().persistence_id().empty();
}

Resource baseOf(const Resource& r) {
  Resource base = r;
  base.clear_disk();
  while (isDynamicallyReserved(base)) {
    base.mutable_reservations()->RemoveLast();
  }
  return base;
}

Result<Resources> applyCheckpointed(const Resources& reported, const Resources& checkpointed) {
  Resources out = reported;
  for (const Resource& r : checkpointed.items()) {
    Resource base = baseOf(r);
    if (!out.contains(base)) {
      return Error("the agent no longer has " + Resources(std::vector<Resource>{base}).toString() +
                   " for " + Resources(std::vector<Resource>{r}).toString());
    }
    out -= base;
    out += r;
  }
  return out;
}

bool Resources::sameKind(const Resource& a, const Resource& b) {
  if (a.name() != b.name() || a.type() != b.type() ||
      a.reservations_size() != b.reservations_size() ||
      a.disk().persistence_id() != b.disk().persistence_id()) {
    return false;
  }
  for (int i = 0; i < a.reservations_size(); ++i) {
    if (!sameReservation(a.reservations(i), b.reservations(i))) {
      return false;
    }
  }
  return true;
}

Resources::Resources(const Proto& items) {
  for (const Resource& r : items) {
    *this += r;
  }
}

Resources::Resources(const std::vector<Resource>& items) {
  for (const Resource& r : items) {
    *this += r;
  }
}

Resource Resources::scalar(const std::string& name, double value) {
  Resource r;
  r.set_name(name);
  r.set_type(Resource::SCALAR);
  r.set_scalar(roundMilli(value));
  return r;
}

Resource Resources::ranges(const std::string& name, std::vector<std::pair<uint64_t, uint64_t>> v) {
  Resource r;
  r.set_name(name);
  r.set_type(Resource::RANGES);
  setIntervals(&r, normalize(std::move(v)));
  return r;
}

Result<Resources> Resources::parse(const std::string& text, const std::string& defaultRole) {
  Resources out;
  std::stringstream in(text);
  std::string token;
  while (std::getline(in, token, ';')) {
    token = trim(token);
    if (token.empty()) {
      continue;
    }
    size_t colon = token.find(':');
    if (colon == std::string::npos) {
      return Error("bad resource '" + token + "': expected name:value, e.g. cpus:4");
    }
    std::string name = trim(token.substr(0, colon));
    std::string value = trim(token.substr(colon + 1));
    std::string role = defaultRole;
    size_t paren = name.find('(');
    if (paren != std::string::npos) {
      if (name.back() != ')') {
        return Error("bad resource name '" + name + "': expected name(role)");
      }
      role = name.substr(paren + 1, name.size() - paren - 2);
      name = trim(name.substr(0, paren));
      if (role.empty()) {
        return Error("bad resource '" + token + "': empty role");
      }
    }
    if (name.empty() || name.find_first_of(" []()") != std::string::npos) {
      return Error("bad resource name '" + name + "' in '" + token + "'");
    }
    Resource r;
    if (!value.empty() && value.front() == '[') {
      auto intervals = parseIntervals(value);
      if (!intervals) {
        return Error("bad resource '" + token + "': " + intervals.error());
      }
      r = ranges(name, *intervals);
    } else {
      if (isRangesName(name)) {
        return Error("bad resource '" + token + "': " + name + " takes ranges like [31000-32000]");
      }
      char* end = nullptr;
      double v = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !std::isfinite(v) || v < 0) {
        return Error("bad resource '" + token + "': '" + value +
                     "' is not a non-negative number");
      }
      r = scalar(name, v);
    }
    if (role != "*") {
      auto* reservation = r.add_reservations();
      reservation->set_type(Resource::ReservationInfo::STATIC);
      reservation->set_role(role);
    }
    out += r;
  }
  return out;
}

Status Resources::validate(const Proto& items) {
  for (const Resource& r : items) {
    if (r.name().empty()) {
      return Error("a resource has no name");
    }
    if (r.type() == Resource::SCALAR) {
      if (!std::isfinite(r.scalar()) || r.scalar() < 0) {
        return Error("resource " + r.name() + " has an invalid value");
      }
      if (r.ranges_size() > 0) {
        return Error("scalar resource " + r.name() + " has ranges");
      }
    } else if (r.type() == Resource::RANGES) {
      for (const Range& range : r.ranges()) {
        if (range.begin() > range.end()) {
          return Error("resource " + r.name() + " has a range whose begin is after its end");
        }
      }
    } else {
      return Error("resource " + r.name() + " has an unknown type");
    }
    for (const auto& reservation : r.reservations()) {
      if (reservation.role().empty() || reservation.role() == "*") {
        return Error("resource " + r.name() + " has a reservation without a role");
      }
    }
  }
  return ok();
}

Resources& Resources::operator+=(const Resource& r) {
  if (r.type() == Resource::SCALAR && r.scalar() < kEpsilon) {
    return *this;
  }
  if (r.type() == Resource::RANGES && r.ranges_size() == 0) {
    return *this;
  }
  for (Resource& have : items_) {
    if (!sameKind(have, r)) {
      continue;
    }
    if (r.type() == Resource::SCALAR) {
      have.set_scalar(roundMilli(have.scalar() + r.scalar()));
    } else {
      auto merged = toIntervals(have);
      auto more = toIntervals(r);
      merged.insert(merged.end(), more.begin(), more.end());
      setIntervals(&have, normalize(merged));
    }
    return *this;
  }
  items_.push_back(r);
  Resource& added = items_.back();
  if (added.type() == Resource::SCALAR) {
    added.set_scalar(roundMilli(added.scalar()));
  } else {
    setIntervals(&added, normalize(toIntervals(added)));
  }
  return *this;
}

Resources& Resources::operator+=(const Resources& other) {
  for (const Resource& r : other.items_) {
    *this += r;
  }
  return *this;
}

Resources& Resources::operator-=(const Resource& r) {
  for (auto it = items_.begin(); it != items_.end(); ++it) {
    if (!sameKind(*it, r)) {
      continue;
    }
    bool empty;
    if (r.type() == Resource::SCALAR) {
      double left = roundMilli(it->scalar() - r.scalar());
      it->set_scalar(std::max(0.0, left));
      empty = left < kEpsilon;
    } else {
      auto left = subtractIntervals(toIntervals(*it), toIntervals(r));
      setIntervals(&*it, left);
      empty = left.empty();
    }
    if (empty) {
      items_.erase(it);
    }
    return *this;
  }
  return *this;
}

Resources& Resources::operator-=(const Resources& other) {
  for (const Resource& r : other.items_) {
    *this -= r;
  }
  return *this;
}

Resources Resources::operator+(const Resources& other) const {
  Resources out = *this;
  out += other;
  return out;
}

Resources Resources::operator-(const Resources& other) const {
  Resources out = *this;
  out -= other;
  return out;
}

bool Resources::operator==(const Resources& other) const {
  return contains(other) && other.contains(*this);
}

bool Resources::contains(const Resource& r) const {
  if (r.type() == Resource::SCALAR && r.scalar() < kEpsilon) {
    return true;
  }
  for (const Resource& have : items_) {
    if (!sameKind(have, r)) {
      continue;
    }
    if (r.type() == Resource::SCALAR) {
      return have.scalar() + kEpsilon >= r.scalar();
    }
    return intervalsContain(toIntervals(have), normalize(toIntervals(r)));
  }
  return r.type() == Resource::RANGES && r.ranges_size() == 0;
}

bool Resources::contains(const Resources& other) const {
  for (const Resource& r : other.items_) {
    if (!contains(r)) {
      return false;
    }
  }
  return true;
}

double Resources::scalar(const std::string& name) const {
  double sum = 0;
  for (const Resource& r : items_) {
    if (r.name() == name && r.type() == Resource::SCALAR) {
      sum += r.scalar();
    }
  }
  return roundMilli(sum);
}

uint64_t Resources::rangeCount(const std::string& name) const {
  uint64_t n = 0;
  for (const Resource& r : items_) {
    if (r.name() == name && r.type() == Resource::RANGES) {
      for (const Range& range : r.ranges()) {
        n += range.end() - range.begin() + 1;
      }
    }
  }
  return n;
}

Resources Resources::unreserved() const {
  Resources out;
  for (const Resource& r : items_) {
    if (r.reservations_size() == 0) {
      out.items_.push_back(r);
    }
  }
  return out;
}

Resources Resources::reservedFor(const std::string& role) const {
  Resources out;
  for (const Resource& r : items_) {
    if (r.reservations_size() > 0 && reservationRole(r) == role) {
      out.items_.push_back(r);
    }
  }
  return out;
}

Resources Resources::allocatableTo(const std::string& role) const {
  Resources out;
  for (const Resource& r : items_) {
    if (r.reservations_size() == 0 || reservationRole(r) == role) {
      out.items_.push_back(r);
    }
  }
  return out;
}

Resources::Proto Resources::toProto() const {
  Proto out;
  copyTo(&out);
  return out;
}

void Resources::copyTo(Proto* out) const {
  out->Clear();
  out->Reserve(static_cast<int>(items_.size()));
  for (const Resource& r : items_) {
    *out->Add() = r;
  }
}

std::string Resources::toString() const {
  std::vector<std::string> parts;
  for (const Resource& r : items_) {
    std::string name = r.name();
    if (r.reservations_size() > 0) {
      name += "(" + reservationRole(r) + ")";
    }
    if (!r.disk().persistence_id().empty()) {
      name += "[" + r.disk().persistence_id() + "]";
    }
    if (r.type() == Resource::SCALAR) {
      std::ostringstream v;
      v << r.scalar();
      parts.push_back(name + ":" + v.str());
    } else {
      parts.push_back(name + ":" + intervalsToString(r));
    }
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) {
      out += ";";
    }
    out += p;
  }
  return out;
}

std::ostream& operator<<(std::ostream& out, const Resources& r) { return out << r.toString(); }

}  // namespace agora
