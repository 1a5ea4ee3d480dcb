#pragma once

// Finding the leading master. Agents, schedulers and the CLI name the master by the address of
// its HTTP API ("host:5050"); a detector turns that into a MasterInfo with the protocol
// endpoint. The standalone detector asks GET /master/info; a ZooKeeper detector (HA mode)
// watches the election instead and implements the same interface.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agora/agora.pb.h"
#include "common/loop.hpp"
#include "common/result.hpp"

namespace agora {

class MasterDetector {
 public:
  virtual ~MasterDetector() = default;
  // Looks the leader up; `callback` runs on the owner's loop with the answer.
  virtual void detect(std::function<void(Result<MasterInfo>)> callback) = 0;
  // Calls `listener` on the owner's loop whenever another master starts to lead. Detectors
  // that cannot tell (the standalone one) never call it: their users notice a silent master.
  virtual void onLeaderChange(std::function<void(const MasterInfo&)> listener) {}
  // Calls `listener` on the owner's loop with every contending master (the leader first)
  // whenever that set changes, so that a peer can hold connections to the standbys before
  // one of them takes over. Detectors that cannot tell never call it.
  virtual void onContendersChange(
      std::function<void(const std::vector<MasterInfo>&)> listener) {}
};

// The protocol endpoints of `masters`, in order.
std::vector<std::string> endpointsOf(const std::vector<MasterInfo>& masters);

// Blocking lookup of GET http://address/master/info.
Result<MasterInfo> fetchMasterInfo(const std::string& address, Duration timeout);

class StandaloneDetector final : public MasterDetector {
 public:
  StandaloneDetector(Loop& loop, std::string address);
  ~StandaloneDetector() override;

  void detect(std::function<void(Result<MasterInfo>)> callback) override;

 private:
  void work();

  Loop& loop_;
  std::string address_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void(Result<MasterInfo>)>> requests_;
  bool stopping_ = false;
  std::thread worker_;
};

class ZooKeeperClient;

// Follows the election under `basePath` (see common/zk_election.hpp) through a ZooKeeper
// client it does not own. detect() answers once a leader is known.
class ZooKeeperDetector final : public MasterDetector {
 public:
  ZooKeeperDetector(Loop& loop, ZooKeeperClient& zk, std::string basePath);
  ~ZooKeeperDetector() override;

  void detect(std::function<void(Result<MasterInfo>)> callback) override;
  void onLeaderChange(std::function<void(const MasterInfo&)> listener) override;
  void onContendersChange(std::function<void(const std::vector<MasterInfo>&)> listener) override;
  const std::optional<MasterInfo>& leader() const { return leader_; }

 private:
  void refresh();
  void setLeader(std::optional<MasterInfo> leader);
  // Reads every contender's node when the set of nodes differs from the last one read.
  void readContenders(const std::vector<std::string>& nodes);

  Loop& loop_;
  ZooKeeperClient& zk_;
  std::string path_;
  std::optional<MasterInfo> leader_;
  std::vector<std::function<void(Result<MasterInfo>)>> waiting_;
  std::vector<std::function<void(const MasterInfo&)>> listeners_;
  std::vector<std::function<void(const std::vector<MasterInfo>&)>> contenderListeners_;
  std::vector<std::string> contenderNodes_;  // the nodes last read for contenderListeners_
  uint64_t generation_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Finds the leading master once, blocking up to `timeout` (for the CLI). For "host:port" it asks
// that master (a follower names the leader); for "zk://..." it reads the election.
Result<MasterInfo> findLeader(const std::string& master, Duration timeout);

// The detector for a --master value: "host:port" asks that master's HTTP API; "zk://..." follows
// the ZooKeeper election (with a ZooKeeper session of its own).
Result<std::unique_ptr<MasterDetector>> createMasterDetector(Loop& loop, const std::string& master,
                                                             Duration zkSessionTimeout = seconds(10));

}  // namespace agora
