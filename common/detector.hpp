#pragma once

// Finding the leading master. Agents, schedulers and the CLI name the master by the address of
// its HTTP API ("host:5050"); a detector turns that into a MasterInfo with the protocol
// endpoint. The standalone detector asks GET /master/info; a ZooKeeper detector (HA mode)
// watches the election instead and implements the same interface.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "agora/agora.pb.h"
#include "common/loop.hpp"
#include "common/result.hpp"

namespace agora {

class MasterDetector {
 public:
  virtual ~MasterDetector() = default;
  // Looks the leader up; `callback` runs on the owner's loop with the answer.
  virtual void detect(std::function<void(Result<MasterInfo>)> callback) = 0;
};

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

}  // namespace agora
