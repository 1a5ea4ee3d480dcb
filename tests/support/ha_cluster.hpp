#pragma once

// HaCluster: a real ZooKeeper server, several `agora master --zk` processes (each kept running
// by `agora supervise`, as `agora up --ha` does), and agents that follow the election. For the
// failover tests.

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "common/time.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/zookeeper_server.hpp"

namespace agora::testing {

struct HaClusterOptions {
  int masters = 3;
  int agents = 2;
  std::string agentResources = "cpus:4;mem:4096;disk:1024";
  Duration sessionTimeout = seconds(2);
  std::string masterIp = "127.0.0.1";  // what the masters listen on and advertise
  std::vector<std::string> masterFlags;
  std::vector<std::string> agentFlags;
};

class HaCluster {
 public:
  explicit HaCluster(HaClusterOptions options = {});
  ~HaCluster();
  HaCluster(const HaCluster&) = delete;
  HaCluster& operator=(const HaCluster&) = delete;

  // Starts everything and waits until a master leads and every agent has registered with it.
  Status start();
  void stop();

  std::string zkUrl() const { return zookeeper_.url("/agora"); }
  ZooKeeperServer& zookeeper() { return zookeeper_; }
  const std::string& dir() const { return dir_.path(); }

  int masters() const { return static_cast<int>(masters_.size()); }
  std::string masterHttp(int i) const {
    return options_.masterIp + ":" + std::to_string(masters_[i].httpPort);
  }
  // The `agora master` process of master i (its supervisor's child), or -1 between restarts.
  pid_t masterProcess(int i) const;
  pid_t agentPid(size_t i) const { return agents_.at(i); }

  // Asks every master; the index of the one that says it leads (-1: none), and how many do.
  int leader() const;
  int countLeaders() const;

  Result<nlohmann::json> leaderState() const;
  bool waitForLeaderState(const std::function<bool(const nlohmann::json&)>& condition,
                          Duration timeout = seconds(30)) const;

 private:
  struct Master {
    pid_t supervisor = -1;
    int httpPort = 0;
    int protocolPort = 0;
  };

  HaClusterOptions options_;
  TempDir dir_;
  ZooKeeperServer zookeeper_;
  std::vector<Master> masters_;
  std::vector<pid_t> agents_;
};

}  // namespace agora::testing
