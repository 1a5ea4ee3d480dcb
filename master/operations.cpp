// RESERVE, UNRESERVE, CREATE and DESTROY: what a framework may do to the resources it was
// offered, checked in full before anything is stored.

#include "master/master.hpp"

namespace agora::master {

namespace {

std::string text(const Resource& r) { return Resources(std::vector<Resource>{r}).toString(); }

Resource withoutLastReservation(const Resource& r) {
  Resource out = r;
  out.mutable_reservations()->RemoveLast();
  return out;
}

Resource withoutVolume(const Resource& r) {
  Resource out = r;
  out.clear_disk();
  return out;
}

Status validVolumePath(const std::string& path) {
  if (path.empty() || path.front() == '/') {
    return Error("a volume needs a container_path relative to the sandbox");
  }
  for (size_t start = 0; start <= path.size();) {
    size_t slash = path.find('/', start);
    std::string part = path.substr(start, slash == std::string::npos ? std::string::npos
                                                                      : slash - start);
    if (part.empty() || part == "." || part == "..") {
      return Error("container_path '" + path + "' has an empty, '.' or '..' part");
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return ok();
}

Status validPersistenceId(const std::string& id) {
  if (id.empty() || id.size() > 128) {
    return Error("a volume needs a persistence id of 1 to 128 characters");
  }
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return Error("persistence id '" + id + "' has a character other than letters, digits, "
                   "'-', '_' and '.'");
    }
  }
  return id == "." || id == ".." ? Error("persistence id cannot be '" + id + "'") : ok();
}

}  // namespace

Result<Master::CheckpointPlan> Master::planCheckpoint(const FrameworkEntry& framework,
                                                      const AgentEntry& agent,
                                                      const std::string& role, Resources offered,
                                                      const SchedulerCall::Accept& accept) const {
  CheckpointPlan plan;
  plan.checkpointed = agent.planned;
  Resources remaining = std::move(offered);
  const std::string& principal = framework.info.principal();
  auto ownRole = [&](const Resource& r, const std::string& what) -> Status {
    if (r.reservations_size() == 0 || reservationRole(r) != role) {
      return Error(what + " " + text(r) + " must be reserved for the offer's role '" + role + "'");
    }
    return ok();
  };
  auto allowed = [&](AclAction action, const std::string& what) -> Status {
    if (authorized(action, principal, role, what + " by framework " + framework.info.id())) {
      return ok();
    }
    return Error(what + ": the ACLs do not let " +
                 (principal.empty() ? std::string("a framework without a principal")
                                    : "principal '" + principal + "'") +
                 " do that in role '" + role + "' (" + aclActionName(action) + ")");
  };
  int index = -1;
  for (const Operation& op : accept.operations()) {
    ++index;
    Resources from;
    Resources to;
    switch (op.type()) {
      case Operation::RESERVE:
        if (op.reserve().resources().empty()) {
          return Error("RESERVE names no resources");
        }
        if (Status s = allowed(AclAction::kReserveResources, "RESERVE"); !s) return Error(s.error());
        for (const Resource& r : op.reserve().resources()) {
          if (Status s = Resources::validate(op.reserve().resources()); !s) return Error(s.error());
          if (!isDynamicallyReserved(r)) {
            return Error("RESERVE of " + text(r) + ": its last reservation must be DYNAMIC");
          }
          if (Status s = ownRole(r, "RESERVE of"); !s) return Error(s.error());
          const auto& reservation = r.reservations(r.reservations_size() - 1);
          if (!reservation.principal().empty() && reservation.principal() != principal) {
            return Error("RESERVE of " + text(r) + ": principal '" + reservation.principal() +
                         "' is not the framework's ('" + principal + "')");
          }
          if (isPersistentVolume(r)) {
            return Error("RESERVE of " + text(r) + ": volumes are made with CREATE");
          }
          from += withoutLastReservation(r);
          to += r;
        }
        if (!remaining.contains(from)) {
          return Error("RESERVE of " + to.toString() + ": the offer does not hold " +
                       from.toString() + " (what is left of it: " + remaining.toString() + ")");
        }
        plan.checkpointed += to;
        break;
      case Operation::UNRESERVE:
        if (op.unreserve().resources().empty()) {
          return Error("UNRESERVE names no resources");
        }
        if (Status s = allowed(AclAction::kReserveResources, "UNRESERVE"); !s) {
          return Error(s.error());
        }
        for (const Resource& r : op.unreserve().resources()) {
          if (!isDynamicallyReserved(r) || isPersistentVolume(r)) {
            return Error("UNRESERVE of " + text(r) +
                         ": only dynamic reservations (not volumes, not static ones) can be "
                         "unreserved");
          }
          if (Status s = ownRole(r, "UNRESERVE of"); !s) return Error(s.error());
          from += r;
          to += withoutLastReservation(r);
        }
        if (!remaining.contains(from) || !plan.checkpointed.contains(from)) {
          return Error("UNRESERVE of " + from.toString() + ": the offer does not hold it "
                       "(what is left of it: " + remaining.toString() + ")");
        }
        plan.checkpointed -= from;
        break;
      case Operation::CREATE:
        if (op.create().volumes().empty()) {
          return Error("CREATE names no volumes");
        }
        if (Status s = allowed(AclAction::kCreateVolumes, "CREATE"); !s) return Error(s.error());
        for (const Resource& r : op.create().volumes()) {
          if (!isPersistentVolume(r) || r.type() != Resource::SCALAR) {
            return Error("CREATE of " + text(r) + ": a volume is disk with a persistence id");
          }
          if (Status s = ownRole(r, "CREATE of"); !s) return Error(s.error());
          if (Status s = validPersistenceId(r.disk().persistence_id()); !s) return Error(s.error());
          if (Status s = validVolumePath(r.disk().container_path()); !s) return Error(s.error());
          for (const Resource& existing : plan.checkpointed.items()) {
            if (existing.disk().persistence_id() == r.disk().persistence_id()) {
              return Error("CREATE: a volume '" + r.disk().persistence_id() +
                           "' already exists on agent " + agent.info.id());
            }
          }
          Resource source = withoutVolume(r);
          from += source;
          to += r;
          if (isDynamicallyReserved(source)) {
            if (!plan.checkpointed.contains(source)) {
              return Error("CREATE of " + text(r) + ": " + text(source) + " is not reserved");
            }
            plan.checkpointed -= source;
          }
          plan.checkpointed += r;
        }
        if (!remaining.contains(from)) {
          return Error("CREATE of " + to.toString() + ": the offer does not hold " +
                       from.toString() + " (what is left of it: " + remaining.toString() + ")");
        }
        break;
      case Operation::DESTROY:
        if (op.destroy().volumes().empty()) {
          return Error("DESTROY names no volumes");
        }
        if (Status s = allowed(AclAction::kCreateVolumes, "DESTROY"); !s) return Error(s.error());
        for (const Resource& r : op.destroy().volumes()) {
          if (!isPersistentVolume(r) || !plan.checkpointed.contains(r)) {
            return Error("DESTROY of " + text(r) + ": no such volume on agent " +
                         agent.info.id());
          }
          Resource source = withoutVolume(r);
          from += r;
          to += source;
          plan.checkpointed -= r;
          if (isDynamicallyReserved(source)) {
            plan.checkpointed += source;
          }
          plan.destroyedVolumes += r;
        }
        if (!remaining.contains(from)) {
          return Error("DESTROY of " + from.toString() +
                       ": the volume is in use, or not in the offer");
        }
        break;
      default:
        continue;  // launches are checked as they are applied
    }
    remaining -= from;
    remaining += to;
    plan.changes[index] = {from, to};
  }
  return plan;
}

void Master::operatorReserve(const std::string& agentId, const Resources& resources,
                             bool reserve, std::function<void(Status)> done) {
  AgentEntry* agent = findAgent(agentId);
  if (agent == nullptr) {
    done(Error("unknown agent " + agentId));
    return;
  }
  if (resources.empty()) {
    done(Error("no resources given"));
    return;
  }
  Resources from;
  Resources to;
  Resources checkpointed = agent->planned;
  for (const Resource& r : resources.items()) {
    if (!isDynamicallyReserved(r) || isPersistentVolume(r)) {
      return done(Error(text(r) + ": name a role, as in cpus(eng):4 (a dynamic reservation)"));
    }
    if (Status valid = validateRole(reservationRole(r)); !valid) {
      return done(valid);
    }
    if (reserve) {
      from += withoutLastReservation(r);
      to += r;
    } else {
      from += r;
      to += withoutLastReservation(r);
    }
  }
  if (reserve) {
    checkpointed += to;
  } else if (!checkpointed.contains(from)) {
    return done(Error("agent " + agentId + " has no dynamic reservation of " + from.toString() +
                      " (static reservations are changed on the agent)"));
  } else {
    checkpointed -= from;
  }
  // What is offered on the agent comes back first; what tasks use cannot be changed.
  rescindOffersOn(*agent);
  Resources free = agent->total - agent->used;
  if (!free.contains(from)) {
    return done(Error("agent " + agentId + " does not have " + from.toString() +
                      " free: tasks use " +
                      (agent->used.empty() ? std::string("nothing") : agent->used.toString()) +
                      " of " + agent->total.toString()));
  }
  agent->planned = checkpointed;
  registry::Operation store;
  store.mutable_set_checkpointed()->set_agent_id(agentId);
  checkpointed.copyTo(store.mutable_set_checkpointed()->mutable_resources());
  LOG(INFO) << "Operator " << (reserve ? "reserves " : "unreserves ") << from << " -> " << to
            << " on agent " << agentId;
  persist(std::move(store), [this, agentId, from, to, checkpointed,
                             done = std::move(done)] {
    checkpointed_[agentId] = checkpointed;
    AgentEntry* agent = findAgent(agentId);
    if (agent == nullptr) {
      done(ok());  // stored: it applies when the agent comes back
      return;
    }
    rescindOffersOn(*agent);  // offers made while the write was in flight
    agent->checkpointed = checkpointed;
    Status changed = allocator_->updateAvailable(agentId, from, to);
    if (!changed) {
      // Tasks took them meanwhile: the record says more than the agent can give. It is
      // applied when the agent next registers; say so.
      LOG(WARNING) << "Reservation on agent " << agentId << " stored but not applied yet: "
                   << changed.error();
      done(Error("stored, but not applied yet: " + changed.error()));
      return;
    }
    agent->total -= from;
    agent->total += to;
    sendCheckpointed(*agent);
    requestAllocation(agentId);
    done(ok());
  });
}

}  // namespace agora::master
