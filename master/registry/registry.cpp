#include "master/registry/registry.hpp"

#include <cstring>

#include <glog/logging.h>

#include "common/crc32.hpp"
#include "common/fs.hpp"
#include "common/ids.hpp"

namespace agora::master {

Status RegistryState::apply(const registry::Operation& op, double now) {
  switch (op.op_case()) {
    case registry::Operation::kAdmitAgent: {
      const AgentInfo& info = op.admit_agent();
      Status valid = validateId(info.id(), "agent id");
      if (!valid) {
        return valid;
      }
      registry::AgentRecord& record = agents[info.id()];
      *record.mutable_info() = info;
      record.set_unreachable(false);
      record.set_since(now);
      return ok();
    }
    case registry::Operation::kMarkUnreachable: {
      auto it = agents.find(op.mark_unreachable().agent_id());
      if (it == agents.end()) {
        return Error("cannot mark unknown agent " + op.mark_unreachable().agent_id() +
                     " unreachable");
      }
      it->second.set_unreachable(true);
      it->second.set_since(now);
      return ok();
    }
    case registry::Operation::kRemoveAgent:
      agents.erase(op.remove_agent());
      return ok();
    case registry::Operation::kAddFramework: {
      const FrameworkInfo& info = op.add_framework();
      Status valid = validateId(info.id(), "framework id");
      if (!valid) {
        return valid;
      }
      registry::FrameworkRecord& record = frameworks[info.id()];
      bool added = !record.has_info();
      *record.mutable_info() = info;
      if (added) {
        record.set_registered_time(now);
      }
      return ok();
    }
    case registry::Operation::kRemoveFramework:
      frameworks.erase(op.remove_framework());
      return ok();
    case registry::Operation::kSetCheckpointed: {
      auto it = agents.find(op.set_checkpointed().agent_id());
      if (it == agents.end()) {
        return Error("cannot record reservations on unknown agent " +
                     op.set_checkpointed().agent_id());
      }
      *it->second.mutable_checkpointed() = op.set_checkpointed().resources();
      return ok();
    }
    case registry::Operation::kSetMaintenance: {
      const registry::MaintenanceRecord& record = op.set_maintenance();
      if (record.hostname().empty()) {
        return Error("a maintenance record needs a hostname");
      }
      maintenance[record.hostname()] = record;
      return ok();
    }
    case registry::Operation::kRemoveMaintenance:
      maintenance.erase(op.remove_maintenance());
      return ok();
    case registry::Operation::kSetRole: {
      const registry::RoleRecord& record = op.set_role();
      if (record.role().empty()) {
        return Error("a role record needs a role");
      }
      if ((record.weight() == 0 || record.weight() == 1) && !record.has_quota()) {
        roles.erase(record.role());
      } else {
        roles[record.role()] = record;
      }
      return ok();
    }
    case registry::Operation::OP_NOT_SET:
      break;
  }
  return Error("empty registry operation");
}

registry::Shard RegistryState::toShard() const {
  registry::Shard shard;
  for (const auto& [id, record] : agents) {
    *shard.add_agents() = record;
  }
  for (const auto& [id, record] : frameworks) {
    *shard.add_frameworks() = record;
  }
  for (const auto& [role, record] : roles) {
    *shard.add_roles() = record;
  }
  for (const auto& [host, record] : maintenance) {
    *shard.add_maintenance() = record;
  }
  return shard;
}

Status RegistryState::add(const registry::Shard& shard) {
  for (const registry::AgentRecord& record : shard.agents()) {
    Status valid = validateId(record.info().id(), "agent id");
    if (!valid) {
      return valid;
    }
    if (!agents.emplace(record.info().id(), record).second) {
      return Error("agent " + record.info().id() + " is recorded twice");
    }
  }
  for (const registry::FrameworkRecord& record : shard.frameworks()) {
    Status valid = validateId(record.info().id(), "framework id");
    if (!valid) {
      return valid;
    }
    if (!frameworks.emplace(record.info().id(), record).second) {
      return Error("framework " + record.info().id() + " is recorded twice");
    }
  }
  for (const registry::RoleRecord& record : shard.roles()) {
    if (record.role().empty()) {
      return Error("a role record without a role");
    }
    if (!roles.emplace(record.role(), record).second) {
      return Error("role " + record.role() + " is recorded twice");
    }
  }
  for (const registry::MaintenanceRecord& record : shard.maintenance()) {
    if (record.hostname().empty()) {
      return Error("a maintenance record without a hostname");
    }
    if (!maintenance.emplace(record.hostname(), record).second) {
      return Error("maintenance of " + record.hostname() + " is recorded twice");
    }
  }
  return ok();
}

namespace {

constexpr char kMagic[4] = {'A', 'G', 'R', '1'};
constexpr size_t kHeader = 12;  // magic, length, crc

void putU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    out.push_back(static_cast<char>(v >> (8 * i)));
  }
}

uint32_t getU32(const std::string& in, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return v;
}

}  // namespace

std::string encodeRegistryBlob(const std::string& payload) {
  std::string out(kMagic, sizeof(kMagic));
  putU32(out, static_cast<uint32_t>(payload.size()));
  putU32(out, crc32(payload));
  out += payload;
  return out;
}

Result<std::string> decodeRegistryBlob(const std::string& blob, const std::string& where) {
  if (blob.size() < kHeader || std::memcmp(blob.data(), kMagic, sizeof(kMagic)) != 0) {
    return Error("registry data in " + where + " is not an Agora registry (bad header)");
  }
  uint32_t length = getU32(blob, 4);
  if (blob.size() - kHeader != length) {
    return Error("registry data in " + where + " is truncated or has trailing bytes (" +
                 std::to_string(blob.size() - kHeader) + " bytes where " +
                 std::to_string(length) + " were written)");
  }
  std::string payload = blob.substr(kHeader);
  if (crc32(payload) != getU32(blob, 8)) {
    return Error("registry data in " + where + " is corrupt (checksum mismatch)");
  }
  return payload;
}

// ------------------------------------------------------------------------------------------

void BatchingRegistry::recover(std::function<void(Result<RegistryState>)> done) {
  load([this, done = std::move(done)](Result<RegistryState> state) {
    if (state) {
      state_ = *state;
      recovered_ = true;
    }
    done(std::move(state));
  });
}

void BatchingRegistry::apply(registry::Operation op, std::function<void(Status)> done) {
  CHECK(recovered_) << "registry used before recover()";
  if (!failed_.empty()) {
    loop_.post([done = std::move(done), why = failed_] { done(Error(why)); });
    return;
  }
  queue_.push_back(Pending{std::move(op), std::move(done)});
  if (!writing_) {
    writeNext();
  }
}

void BatchingRegistry::writeNext() {
  if (queue_.empty()) {
    return;
  }
  std::vector<Pending> batch;
  batch.swap(queue_);
  RegistryState next = state_;
  std::vector<registry::Operation> changed;
  std::vector<std::function<void(Status)>> dones;
  double now = loop_.wallTime();
  for (Pending& p : batch) {
    Status applied = next.apply(p.op, now);
    if (!applied) {
      // An invalid operation fails alone; the rest of the batch goes on.
      loop_.post([done = std::move(p.done), applied] { done(applied); });
      continue;
    }
    changed.push_back(std::move(p.op));
    dones.push_back(std::move(p.done));
  }
  if (changed.empty()) {
    return;
  }
  writing_ = true;
  store(next, changed,
        [this, next, count = changed.size(), dones = std::move(dones)](Status stored) mutable {
          writing_ = false;
          if (stored) {
            state_ = std::move(next);
            ++writes_;
            operationsWritten_ += count;
          } else {
            failed_ = stored.error();
            LOG(ERROR) << "Registry write failed: " << failed_;
          }
          for (auto& done : dones) {
            done(stored);
          }
          if (!failed_.empty()) {
            for (Pending& p : queue_) {
              p.done(Error(failed_));
            }
            queue_.clear();
            return;
          }
          writeNext();
        });
}

// ------------------------------------------------------------------------------------------

void InMemoryRegistry::load(std::function<void(Result<RegistryState>)> done) {
  loop_.post([this, done = std::move(done)] { done(stored_); });
}

void InMemoryRegistry::store(const RegistryState& next, const std::vector<registry::Operation>&,
                             std::function<void(Status)> done) {
  stored_ = next;
  loop_.post([done = std::move(done)] { done(ok()); });
}

void FileRegistry::load(std::function<void(Result<RegistryState>)> done) {
  Result<RegistryState> state = RegistryState();
  if (pathExists(path_)) {
    auto blob = readFile(path_);
    if (!blob) {
      state = Error(blob.error());
    } else {
      auto payload = decodeRegistryBlob(*blob, path_);
      registry::Shard shard;
      if (!payload) {
        state = Error(payload.error());
      } else if (!shard.ParseFromString(*payload)) {
        state = Error("registry data in " + path_ + " does not parse");
      } else {
        RegistryState loaded;
        Status added = loaded.add(shard);
        state = added ? Result<RegistryState>(std::move(loaded))
                      : Result<RegistryState>(Error("registry " + path_ + ": " + added.error()));
      }
    }
  }
  loop_.post([done = std::move(done), state = std::move(state)] { done(state); });
}

void FileRegistry::store(const RegistryState& next, const std::vector<registry::Operation>&,
                         std::function<void(Status)> done) {
  Status written = writeFileAtomic(path_, encodeRegistryBlob(next.toShard().SerializeAsString()));
  loop_.post([done = std::move(done), written] { done(written); });
}

}  // namespace agora::master
