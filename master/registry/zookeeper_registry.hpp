#pragma once

#include <set>

#include "common/zookeeper.hpp"
#include "master/registry/registry.hpp"

namespace agora::master {

// The registry in ZooKeeper, for HA masters. Layout under <base>/registry:
//   format            "agora-registry 1 agents=64 frameworks=8"
//   owner             the id of the master that owns the registry; its version is the fence
//   agents/000..063   agent records, by CRC-32 of the agent id
//   frameworks/000..7 framework records, by CRC-32 of the framework id
// so that no node comes near ZooKeeper's 1 MB limit (50,000 agents are ~240 KB a shard).
// recover() bumps the owner node's version; every write is a multi that checks that version
// and the versions of the nodes it replaces, so a stale leader's write fails and two masters
// can never both commit. A write whose answer was lost with the connection is checked
// against what ZooKeeper holds before it is retried.
class ZooKeeperRegistry final : public BatchingRegistry {
 public:
  ZooKeeperRegistry(Loop& loop, ZooKeeper& zk, const std::string& basePath, std::string ownerId,
                    int agentShards = 64, int frameworkShards = 8);
  ~ZooKeeperRegistry() override;
  std::string describe() const override { return "zookeeper " + root_; }

  static int shardOf(const std::string& id, int shards);

 protected:
  void load(std::function<void(Result<RegistryState>)> done) override;
  void store(const RegistryState& next, const std::vector<registry::Operation>& changed,
             std::function<void(Status)> done) override;

 private:
  struct Node {
    std::string path;
    int version = 0;
  };
  struct Write;

  void loadAttempt(std::function<void(Result<RegistryState>)> done, int attempt);
  void loadSteps(std::function<void(Result<RegistryState>)> done);
  void loadFormat(std::function<void(Status)> done);
  void takeOwnership(std::function<void(Status)> done);
  void loadNodes(std::function<void(Result<RegistryState>)> done);
  void runWrite(std::shared_ptr<Write> write, size_t batch);
  void verifyAfterLoss(std::shared_ptr<Write> write, size_t batch, int attempt);

  Loop& loop_;
  ZooKeeper& zk_;
  std::string root_;
  std::string ownerId_;
  int agentShards_;
  int frameworkShards_;
  int ownerVersion_ = -1;
  std::vector<Node> agentNodes_;
  std::vector<Node> frameworkNodes_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace agora::master
