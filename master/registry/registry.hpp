#pragma once

// The registry: the master's durable record of admitted agents and known frameworks (and, as
// later work adds them, quotas, weights, reservations, maintenance). Every change is stored
// before the master acknowledges it to anyone. Backends: in memory (tests, and standalone
// masters that keep nothing), a file (standalone), ZooKeeper (HA, sharded, fenced so that a
// stale leader's writes fail).

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/loop.hpp"
#include "common/result.hpp"
#include "master/registry/registry.pb.h"

namespace agora::master {

// The registry's content, in memory.
struct RegistryState {
  std::map<std::string, registry::AgentRecord> agents;          // by agent id
  std::map<std::string, registry::FrameworkRecord> frameworks;  // by framework id
  std::map<std::string, registry::RoleRecord> roles;            // by role
  std::map<std::string, registry::MaintenanceRecord> maintenance;  // by hostname

  // Applies one operation at time `now`; an error leaves the state as it was.
  Status apply(const registry::Operation& op, double now);

  registry::Shard toShard() const;
  // Adds what a shard holds (duplicates are an error: the data is inconsistent).
  Status add(const registry::Shard& shard);
};

// Checksummed envelope of stored registry data: "AGR1", length, CRC-32, payload.
std::string encodeRegistryBlob(const std::string& payload);
// The payload, or a clear error for anything that is not a whole, intact blob.
Result<std::string> decodeRegistryBlob(const std::string& blob, const std::string& where);

class Registry {
 public:
  virtual ~Registry() = default;

  // Reads the registry and takes ownership of it: from now on, writes by an earlier owner
  // fail. Called once, before apply().
  virtual void recover(std::function<void(Result<RegistryState>)> done) = 0;

  // Stores `op`; done(ok) once it is durable. Operations are applied in order (batched while a
  // write is in flight). An error means the registry can no longer be written by this master
  // (it lost ownership, or the store failed): the master must stop.
  virtual void apply(registry::Operation op, std::function<void(Status)> done) = 0;

  virtual std::string describe() const = 0;
};

// Batching shared by the backends: one write in flight; operations that arrive meanwhile go
// together in the next one.
class BatchingRegistry : public Registry {
 public:
  explicit BatchingRegistry(Loop& loop) : loop_(loop) {}

  void recover(std::function<void(Result<RegistryState>)> done) final;
  void apply(registry::Operation op, std::function<void(Status)> done) final;

  // Writes completed, operations written (for metrics).
  uint64_t writes() const { return writes_; }
  uint64_t operationsWritten() const { return operationsWritten_; }

 protected:
  // Loads the stored state (and takes ownership).
  virtual void load(std::function<void(Result<RegistryState>)> done) = 0;
  // Makes `next` durable; `changed` are the operations that made it, so a backend can write
  // only what they touched.
  virtual void store(const RegistryState& next, const std::vector<registry::Operation>& changed,
                     std::function<void(Status)> done) = 0;

  Loop& loop_;

 private:
  void writeNext();

  struct Pending {
    registry::Operation op;
    std::function<void(Status)> done;
  };
  RegistryState state_;
  bool recovered_ = false;
  bool writing_ = false;
  std::string failed_;
  std::vector<Pending> queue_;
  uint64_t writes_ = 0;
  uint64_t operationsWritten_ = 0;
};

// Keeps the record in memory only: a restarted master starts empty.
class InMemoryRegistry final : public BatchingRegistry {
 public:
  explicit InMemoryRegistry(Loop& loop) : BatchingRegistry(loop) {}
  std::string describe() const override { return "in memory"; }

 protected:
  void load(std::function<void(Result<RegistryState>)> done) override;
  void store(const RegistryState& next, const std::vector<registry::Operation>& changed,
             std::function<void(Status)> done) override;

 private:
  RegistryState stored_;
};

// The whole record in one file, replaced atomically (write, fsync, rename) on every write.
class FileRegistry final : public BatchingRegistry {
 public:
  FileRegistry(Loop& loop, std::string path) : BatchingRegistry(loop), path_(std::move(path)) {}
  std::string describe() const override { return "file " + path_; }

 protected:
  void load(std::function<void(Result<RegistryState>)> done) override;
  void store(const RegistryState& next, const std::vector<registry::Operation>& changed,
             std::function<void(Status)> done) override;

 private:
  std::string path_;
};

}  // namespace agora::master
