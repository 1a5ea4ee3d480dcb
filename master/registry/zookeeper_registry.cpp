#include "master/registry/zookeeper_registry.hpp"

#include <zookeeper/zookeeper.h>

#include <cstdio>

#include <glog/logging.h>

#include "common/crc32.hpp"

namespace agora::master {

namespace {

constexpr size_t kMaxMultiBytes = 900 * 1024;  // under ZooKeeper's 1 MB request limit

std::string shardName(int i) {
  char name[8];
  std::snprintf(name, sizeof(name), "%03d", i);
  return name;
}

std::string formatLine(int agents, int frameworks) {
  return "agora-registry 1 agents=" + std::to_string(agents) +
         " frameworks=" + std::to_string(frameworks);
}

}  // namespace

// One store(): the multis to run in turn, and what each node should hold afterwards.
struct ZooKeeperRegistry::Write {
  struct Item {
    bool agent;  // agent shard or framework shard
    int index;
    std::string blob;
  };
  std::vector<std::vector<Item>> batches;
  std::function<void(Status)> done;
};

ZooKeeperRegistry::ZooKeeperRegistry(Loop& loop, ZooKeeper& zk, const std::string& basePath,
                                     std::string ownerId, int agentShards, int frameworkShards)
    : BatchingRegistry(loop), loop_(loop), zk_(zk), root_(basePath + "/registry"),
      ownerId_(std::move(ownerId)), agentShards_(agentShards), frameworkShards_(frameworkShards) {}

ZooKeeperRegistry::~ZooKeeperRegistry() { alive_.reset(); }

int ZooKeeperRegistry::shardOf(const std::string& id, int shards) {
  return static_cast<int>(crc32(id) % static_cast<uint32_t>(shards));
}

void ZooKeeperRegistry::load(std::function<void(Result<RegistryState>)> done) {
  loadAttempt(std::move(done), 0);
}

void ZooKeeperRegistry::loadAttempt(std::function<void(Result<RegistryState>)> done,
                                    int attempt) {
  // Until the session is connected (or while it reconnects), try again a little later.
  std::weak_ptr<bool> alive = alive_;
  auto retryOr = [this, alive, attempt](std::function<void(Result<RegistryState>)> done,
                                         Result<RegistryState> result) {
    if (result || attempt >= 300 || zk_.session() == ZooKeeper::Session::kConnected) {
      done(std::move(result));
      return;
    }
    loop_.after(milliseconds(100), [this, alive, done, attempt] {
      if (!alive.expired()) {
        loadAttempt(done, attempt + 1);
      }
    });
  };
  if (zk_.session() != ZooKeeper::Session::kConnected) {
    return retryOr(std::move(done), Error("ZooKeeper is not connected"));
  }
  loadSteps([retryOr, done](Result<RegistryState> result) { retryOr(done, std::move(result)); });
}

void ZooKeeperRegistry::loadSteps(std::function<void(Result<RegistryState>)> done) {
  std::weak_ptr<bool> alive = alive_;
  auto fail = [done](const std::string& why) { done(Error(why)); };
  zkCreatePath(zk_, root_ + "/agents", [this, alive, done, fail](int rc) {
    if (alive.expired()) {
      return;
    }
    if (rc != ZOK) {
      return fail("cannot create " + root_ + ": " + zkError(rc));
    }
    zkCreatePath(zk_, root_ + "/frameworks", [this, alive, done, fail](int rc) {
      if (alive.expired()) {
        return;
      }
      if (rc != ZOK) {
        return fail("cannot create " + root_ + "/frameworks: " + zkError(rc));
      }
      loadFormat([this, alive, done](Status format) {
        if (alive.expired()) {
          return;
        }
        if (!format) {
          return done(Error(format.error()));
        }
        takeOwnership([this, alive, done](Status owned) {
          if (alive.expired()) {
            return;
          }
          if (!owned) {
            return done(Error(owned.error()));
          }
          loadNodes(done);
        });
      });
    });
  });
}

void ZooKeeperRegistry::loadFormat(std::function<void(Status)> done) {
  std::weak_ptr<bool> alive = alive_;
  std::string path = root_ + "/format";
  zk_.get(path, false, [this, alive, path, done](int rc, std::string data, ZkStat) {
    if (alive.expired()) {
      return;
    }
    if (rc == ZNONODE) {
      zk_.create(path, formatLine(agentShards_, frameworkShards_), false, false,
                 [this, alive, done](int rc, std::string) {
                   if (alive.expired()) {
                     return;
                   }
                   if (rc == ZNODEEXISTS) {
                     return loadFormat(done);  // another master wrote it first
                   }
                   done(rc == ZOK ? ok() : Status(Error("cannot write the registry format: " +
                                                        zkError(rc))));
                 });
      return;
    }
    if (rc != ZOK) {
      return done(Error("cannot read the registry format: " + zkError(rc)));
    }
    int agents = 0;
    int frameworks = 0;
    if (std::sscanf(data.c_str(), "agora-registry 1 agents=%d frameworks=%d", &agents,
                    &frameworks) != 2 ||
        agents < 1 || agents > 4096 || frameworks < 1 || frameworks > 4096) {
      return done(Error("the registry in " + root_ + " has an unknown format: '" + data + "'"));
    }
    // The stored layout wins over this master's defaults.
    agentShards_ = agents;
    frameworkShards_ = frameworks;
    done(ok());
  });
}

void ZooKeeperRegistry::takeOwnership(std::function<void(Status)> done) {
  std::weak_ptr<bool> alive = alive_;
  std::string path = root_ + "/owner";
  zk_.set(path, ownerId_, -1, [this, alive, path, done](int rc, ZkStat stat) {
    if (alive.expired()) {
      return;
    }
    if (rc == ZNONODE) {
      zk_.create(path, ownerId_, false, false, [this, alive, done](int rc, std::string) {
        if (alive.expired()) {
          return;
        }
        if (rc == ZNODEEXISTS) {
          return takeOwnership(done);
        }
        if (rc != ZOK) {
          return done(Error("cannot take the registry: " + zkError(rc)));
        }
        ownerVersion_ = 0;
        done(ok());
      });
      return;
    }
    if (rc != ZOK) {
      return done(Error("cannot take the registry: " + zkError(rc)));
    }
    ownerVersion_ = stat.version;
    done(ok());
  });
}

void ZooKeeperRegistry::loadNodes(std::function<void(Result<RegistryState>)> done) {
  agentNodes_.assign(agentShards_, Node());
  frameworkNodes_.assign(frameworkShards_, Node());
  struct Gather {
    RegistryState state;
    int left = 0;
    std::string error;
    std::function<void(Result<RegistryState>)> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->left = agentShards_ + frameworkShards_;
  gather->done = std::move(done);
  std::weak_ptr<bool> alive = alive_;

  auto finish = [gather](const std::string& error) {
    if (!error.empty() && gather->error.empty()) {
      gather->error = error;
    }
    if (--gather->left == 0) {
      if (gather->error.empty()) {
        gather->done(std::move(gather->state));
      } else {
        gather->done(Error(gather->error));
      }
    }
  };

  // Reads one node, creating it empty if it does not exist yet.
  auto loader = std::make_shared<std::function<void(Node*, bool)>>();
  *loader = [this, alive, gather, finish, loader](Node* node, bool agents) {
    zk_.get(node->path, false,
            [this, alive, gather, finish, loader, node, agents](int rc, std::string data,
                                                                  ZkStat stat) {
              if (alive.expired()) {
                return;
              }
              if (rc == ZNONODE) {
                std::string empty = encodeRegistryBlob(registry::Shard().SerializeAsString());
                zk_.create(node->path, empty, false, false,
                           [alive, finish, loader, node, agents](int rc, std::string) {
                             if (alive.expired()) {
                               return;
                             }
                             if (rc == ZNODEEXISTS) {
                               (*loader)(node, agents);
                               return;
                             }
                             node->version = 0;
                             finish(rc == ZOK ? "" : "cannot create " + node->path + ": " +
                                                         zkError(rc));
                           });
                return;
              }
              if (rc != ZOK) {
                return finish("cannot read " + node->path + ": " + zkError(rc));
              }
              node->version = stat.version;
              auto payload = decodeRegistryBlob(data, node->path);
              if (!payload) {
                return finish(payload.error());
              }
              registry::Shard shard;
              if (!shard.ParseFromString(*payload)) {
                return finish("registry data in " + node->path + " does not parse");
              }
              if ((agents && (shard.frameworks_size() > 0 || shard.roles_size() > 0 ||
                              shard.maintenance_size() > 0)) ||
                  (!agents && shard.agents_size() > 0)) {
                return finish("registry node " + node->path + " holds records of the wrong kind");
              }
              Status added = gather->state.add(shard);
              finish(added ? "" : "registry node " + node->path + ": " + added.error());
            });
  };
  for (int i = 0; i < agentShards_; ++i) {
    agentNodes_[i].path = root_ + "/agents/" + shardName(i);
    (*loader)(&agentNodes_[i], true);
  }
  for (int i = 0; i < frameworkShards_; ++i) {
    frameworkNodes_[i].path = root_ + "/frameworks/" + shardName(i);
    (*loader)(&frameworkNodes_[i], false);
  }
}

void ZooKeeperRegistry::store(const RegistryState& next,
                              const std::vector<registry::Operation>& changed,
                              std::function<void(Status)> done) {
  std::set<int> agentShards;
  std::set<int> frameworkShards;
  for (const registry::Operation& op : changed) {
    switch (op.op_case()) {
      case registry::Operation::kAdmitAgent:
        agentShards.insert(shardOf(op.admit_agent().id(), agentShards_));
        break;
      case registry::Operation::kMarkUnreachable:
        agentShards.insert(shardOf(op.mark_unreachable().agent_id(), agentShards_));
        break;
      case registry::Operation::kRemoveAgent:
        agentShards.insert(shardOf(op.remove_agent(), agentShards_));
        break;
      case registry::Operation::kAddFramework:
        frameworkShards.insert(shardOf(op.add_framework().id(), frameworkShards_));
        break;
      case registry::Operation::kRemoveFramework:
        frameworkShards.insert(shardOf(op.remove_framework(), frameworkShards_));
        break;
      case registry::Operation::kSetCheckpointed:
        agentShards.insert(shardOf(op.set_checkpointed().agent_id(), agentShards_));
        break;
      case registry::Operation::kSetMaintenance:
        frameworkShards.insert(shardOf("host:" + op.set_maintenance().hostname(), frameworkShards_));
        break;
      case registry::Operation::kRemoveMaintenance:
        frameworkShards.insert(shardOf("host:" + op.remove_maintenance(), frameworkShards_));
        break;
      case registry::Operation::kSetRole:
        frameworkShards.insert(shardOf("role:" + op.set_role().role(), frameworkShards_));
        break;
      case registry::Operation::OP_NOT_SET:
        break;
    }
  }
  // What each touched node holds after the write.
  std::map<int, registry::Shard> agentContent;
  std::map<int, registry::Shard> frameworkContent;
  for (int i : agentShards) {
    agentContent[i];
  }
  for (int i : frameworkShards) {
    frameworkContent[i];
  }
  if (!agentShards.empty()) {
    for (const auto& [id, record] : next.agents) {
      auto it = agentContent.find(shardOf(id, agentShards_));
      if (it != agentContent.end()) {
        *it->second.add_agents() = record;
      }
    }
  }
  if (!frameworkShards.empty()) {
    for (const auto& [id, record] : next.frameworks) {
      auto it = frameworkContent.find(shardOf(id, frameworkShards_));
      if (it != frameworkContent.end()) {
        *it->second.add_frameworks() = record;
      }
    }
    for (const auto& [role, record] : next.roles) {
      auto it = frameworkContent.find(shardOf("role:" + role, frameworkShards_));
      if (it != frameworkContent.end()) {
        *it->second.add_roles() = record;
      }
    }
    for (const auto& [host, record] : next.maintenance) {
      auto it = frameworkContent.find(shardOf("host:" + host, frameworkShards_));
      if (it != frameworkContent.end()) {
        *it->second.add_maintenance() = record;
      }
    }
  }

  auto write = std::make_shared<Write>();
  write->done = std::move(done);
  size_t bytes = 0;
  auto add = [&](bool agent, int index, const registry::Shard& shard) -> Status {
    std::string blob = encodeRegistryBlob(shard.SerializeAsString());
    if (blob.size() > kMaxMultiBytes) {
      return Error("registry shard " + std::to_string(index) + " would hold " +
                   std::to_string(blob.size()) + " bytes, more than ZooKeeper takes");
    }
    if (write->batches.empty() || bytes + blob.size() > kMaxMultiBytes) {
      write->batches.emplace_back();
      bytes = 0;
    }
    bytes += blob.size();
    write->batches.back().push_back(Write::Item{agent, index, std::move(blob)});
    return ok();
  };
  for (const auto& [index, shard] : agentContent) {
    Status s = add(true, index, shard);
    if (!s) {
      loop_.post([done = std::move(write->done), s] { done(s); });
      return;
    }
  }
  for (const auto& [index, shard] : frameworkContent) {
    Status s = add(false, index, shard);
    if (!s) {
      loop_.post([done = std::move(write->done), s] { done(s); });
      return;
    }
  }
  runWrite(write, 0);
}

void ZooKeeperRegistry::runWrite(std::shared_ptr<Write> write, size_t batch) {
  if (batch == write->batches.size()) {
    write->done(ok());
    return;
  }
  std::vector<ZkOp> ops;
  ops.push_back(ZkOp::check(root_ + "/owner", ownerVersion_));
  for (const Write::Item& item : write->batches[batch]) {
    Node& node = item.agent ? agentNodes_[item.index] : frameworkNodes_[item.index];
    ops.push_back(ZkOp::set(node.path, item.blob, node.version));
  }
  std::weak_ptr<bool> alive = alive_;
  zk_.multi(ops, [this, alive, write, batch](int rc) {
    if (alive.expired()) {
      return;
    }
    if (rc == ZOK) {
      for (const Write::Item& item : write->batches[batch]) {
        Node& node = item.agent ? agentNodes_[item.index] : frameworkNodes_[item.index];
        ++node.version;
      }
      runWrite(write, batch + 1);
      return;
    }
    if (rc == ZBADVERSION) {
      write->done(Error("the registry was written by another master: this master no longer "
                        "owns it"));
      return;
    }
    if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZSESSIONMOVED) {
      // The write may or may not have happened: look before trying again.
      verifyAfterLoss(write, batch, 0);
      return;
    }
    write->done(Error("registry write failed: " + zkError(rc)));
  });
}

void ZooKeeperRegistry::verifyAfterLoss(std::shared_ptr<Write> write, size_t batch,
                                        int attempt) {
  std::weak_ptr<bool> alive = alive_;
  if (attempt > 600) {
    write->done(Error("ZooKeeper did not come back to confirm a registry write"));
    return;
  }
  zk_.get(root_ + "/owner", false, [this, alive, write, batch, attempt](int rc, std::string,
                                                                         ZkStat stat) {
    if (alive.expired()) {
      return;
    }
    if (rc != ZOK) {
      loop_.after(milliseconds(100), [this, alive, write, batch, attempt] {
        if (!alive.expired()) {
          verifyAfterLoss(write, batch, attempt + 1);
        }
      });
      return;
    }
    if (stat.version != ownerVersion_) {
      write->done(Error("the registry was taken over by another master"));
      return;
    }
    // A multi is atomic: one node tells whether the whole batch was applied.
    const Write::Item& first = write->batches[batch].front();
    Node& node = first.agent ? agentNodes_[first.index] : frameworkNodes_[first.index];
    zk_.get(node.path, false, [this, alive, write, batch, attempt](int rc, std::string data,
                                                                   ZkStat stat) {
      if (alive.expired()) {
        return;
      }
      const Write::Item& first = write->batches[batch].front();
      Node& node = first.agent ? agentNodes_[first.index] : frameworkNodes_[first.index];
      if (rc != ZOK) {
        loop_.after(milliseconds(100), [this, alive, write, batch, attempt] {
          if (!alive.expired()) {
            verifyAfterLoss(write, batch, attempt + 1);
          }
        });
        return;
      }
      if (stat.version == node.version + 1 && data == first.blob) {
        for (const Write::Item& item : write->batches[batch]) {
          Node& n = item.agent ? agentNodes_[item.index] : frameworkNodes_[item.index];
          ++n.version;
        }
        runWrite(write, batch + 1);  // it went through
      } else if (stat.version == node.version) {
        runWrite(write, batch);  // it did not: again
      } else {
        write->done(Error("registry node " + node.path + " was changed by someone else"));
      }
    });
  });
}

}  // namespace agora::master
