// Operator settings for roles (weights, quota) and the roles view.

#include <cmath>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "master/master.hpp"

namespace agora::master {

namespace {

void toMap(const Quantities& q, google::protobuf::Map<std::string, double>* out) {
  out->clear();
  for (size_t i = 0; i < Quantities::kKinds; ++i) {
    if (!q.isUnlimited(i) && q.v[i] > 0) {
      (*out)[Quantities::kNames[i]] = q.v[i];
    }
  }
}

// A limit keeps its kinds with a value, zero included; the others are unlimited.
void limitToMap(const Quantities& q, google::protobuf::Map<std::string, double>* out) {
  out->clear();
  for (size_t i = 0; i < Quantities::kKinds; ++i) {
    if (!q.isUnlimited(i)) {
      (*out)[Quantities::kNames[i]] = q.v[i];
    }
  }
}

Quantities fromMap(const google::protobuf::Map<std::string, double>& in, bool limit) {
  Quantities q = limit ? Quantities::unlimited() : Quantities();
  for (size_t i = 0; i < Quantities::kKinds; ++i) {
    auto it = in.find(Quantities::kNames[i]);
    if (it != in.end() && std::isfinite(it->second) && it->second >= 0) {
      q.v[i] = it->second;
    }
  }
  return q;
}

nlohmann::json quantitiesJson(const Quantities& q) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < Quantities::kKinds; ++i) {
    if (!q.isUnlimited(i) && q.v[i] > 0.0005) {
      j[Quantities::kNames[i]] = std::round(q.v[i] * 1000) / 1000;
    }
  }
  return j;
}

nlohmann::json limitJson(const Quantities& q) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < Quantities::kKinds; ++i) {
    if (!q.isUnlimited(i)) {
      j[Quantities::kNames[i]] = std::round(q.v[i] * 1000) / 1000;
    }
  }
  return j;
}

}  // namespace

void Master::applyRole(const registry::RoleRecord& record) {
  double weight = record.weight() > 0 ? record.weight() : 1;
  Status weighted = allocator_->setWeight(record.role(), weight);
  if (!weighted) {
    LOG(WARNING) << "Ignoring the stored weight of role " << record.role() << ": "
                 << weighted.error();
  }
  if (record.has_quota()) {
    RoleQuota quota;
    quota.guarantee = fromMap(record.guarantee(), false);
    quota.limit = fromMap(record.limit(), true);
    Status set = allocator_->setQuota(record.role(), quota);
    if (!set) {
      LOG(WARNING) << "Ignoring the stored quota of role " << record.role() << ": "
                   << set.error();
    }
  } else {
    allocator_->removeQuota(record.role());
  }
  if ((record.weight() == 0 || record.weight() == 1) && !record.has_quota()) {
    roleRecords_.erase(record.role());
  } else {
    roleRecords_[record.role()] = record;
  }
}

void Master::storeRole(registry::RoleRecord record, std::function<void(Status)> done) {
  registry::Operation op;
  *op.mutable_set_role() = record;
  persist(std::move(op), [this, record, done = std::move(done)] {
    applyRole(record);
    requestAllocation("");  // shares, limits and headroom changed for every agent
    done(ok());
  });
}

registry::RoleRecord Master::roleRecord(const std::string& role) const {
  auto it = roleRecords_.find(role);
  registry::RoleRecord record = it != roleRecords_.end() ? it->second : registry::RoleRecord();
  record.set_role(role);
  return record;
}

void Master::setWeight(const std::string& role, double weight, std::function<void(Status)> done) {
  Status valid = validateRole(role);
  if (valid && (!std::isfinite(weight) || weight <= 0)) {
    valid = Error("a weight must be a positive number, not " + std::to_string(weight));
  }
  if (!valid) {
    done(valid);
    return;
  }
  registry::RoleRecord record = roleRecord(role);
  record.set_weight(weight);
  LOG(INFO) << "Setting the weight of role " << role << " to " << weight;
  storeRole(std::move(record), std::move(done));
}

void Master::setQuota(const std::string& role, const RoleQuota& quota,
                      std::function<void(Status)> done) {
  Status valid = validateRole(role);
  if (valid && !quota.limit.contains(quota.guarantee)) {
    valid = Error("role '" + role + "': the guarantee (" + quota.guarantee.toString() +
                  ") exceeds the limit (" + quota.limit.toString() + ")");
  }
  if (!valid) {
    done(valid);
    return;
  }
  registry::RoleRecord record = roleRecord(role);
  record.set_has_quota(true);
  toMap(quota.guarantee, record.mutable_guarantee());
  limitToMap(quota.limit, record.mutable_limit());
  LOG(INFO) << "Setting the quota of role " << role << ": guarantee "
            << quota.guarantee.toString() << ", limit " << quota.limit.toString();
  storeRole(std::move(record), std::move(done));
}

void Master::removeQuota(const std::string& role, std::function<void(Status)> done) {
  auto it = roleRecords_.find(role);
  if (it == roleRecords_.end() || !it->second.has_quota()) {
    done(Error("role '" + role + "' has no quota"));
    return;
  }
  registry::RoleRecord record = it->second;
  record.set_has_quota(false);
  record.clear_guarantee();
  record.clear_limit();
  LOG(INFO) << "Removing the quota of role " << role;
  storeRole(std::move(record), std::move(done));
}

nlohmann::json Master::roles() const {
  Quantities total = allocator_->clusterTotal();
  std::map<std::string, std::vector<Explanation>> byRole;
  for (Explanation& e : allocator_->explain()) {
    byRole[e.role].push_back(std::move(e));
  }
  nlohmann::json list = nlohmann::json::array();
  for (const RoleInfo& info : allocator_->roles()) {
    nlohmann::json role = {{"name", info.name},
                           {"weight", info.weight},
                           {"allocated", quantitiesJson(info.allocated)},
                           {"reserved", quantitiesJson(info.reserved)}};
    if (info.hasQuota) {
      nlohmann::json quota = {{"guarantee", quantitiesJson(info.quota.guarantee)},
                              {"limit", limitJson(info.quota.limit)}};
      // Allowed, but flagged: a guarantee the cluster cannot give today.
      if (!total.contains(info.quota.guarantee)) {
        quota["warning"] = "the guarantee exceeds the cluster's total (" + total.toString() + ")";
      }
      role["quota"] = quota;
    }
    nlohmann::json frameworks = nlohmann::json::array();
    for (const Explanation& e : byRole[info.name]) {
      auto f = frameworks_.find(e.frameworkId);
      frameworks.push_back({{"id", e.frameworkId},
                            {"name", f != frameworks_.end() ? f->second.info.name() : ""},
                            {"allocated", quantitiesJson(e.allocated)},
                            {"share", e.share},
                            {"offered", e.reason == Unoffered::kOffered},
                            {"why_not_offered",
                             e.reason == Unoffered::kOffered ? "" : describe(e.reason)}});
    }
    role["frameworks"] = frameworks;
    list.push_back(role);
  }
  return {{"total", quantitiesJson(total)}, {"roles", list}};
}

}  // namespace agora::master
