#pragma once

// Leader election for masters. A master contends with its MasterInfo; it acts as the leader
// only after `elected`, and stops acting the moment `lost` runs (the master process exits and
// its supervisor restarts it as a contender).

#include <functional>
#include <memory>
#include <string>

#include "agora/agora.pb.h"
#include "common/loop.hpp"

namespace agora {
class ZooKeeperClient;
}

namespace agora::master {

class MasterContender {
 public:
  virtual ~MasterContender() = default;
  virtual void contend(const MasterInfo& info, std::function<void()> elected,
                       std::function<void(const std::string& why)> lost) = 0;
};

// The standalone default: the only master leads at once.
class StandaloneContender final : public MasterContender {
 public:
  explicit StandaloneContender(Loop& loop) : loop_(loop) {}
  void contend(const MasterInfo&, std::function<void()> elected,
               std::function<void(const std::string&)>) override {
    loop_.post(std::move(elected));
  }

 private:
  Loop& loop_;
};

// ZooKeeper election: an ephemeral sequential node under <base>/masters holds this master's
// MasterInfo; the lowest sequence leads; every other contender watches only the node just
// before its own (no herd when the leader goes). Leadership is lost when the session expires,
// or when ZooKeeper has been unreachable for a whole session timeout. (A process paused that
// long is the master's own loop's business: EventLoop::onOversleep with a PauseDetector.)
class ZooKeeperContender final : public MasterContender {
 public:
  ZooKeeperContender(Loop& loop, ZooKeeperClient& zk, std::string basePath);
  ~ZooKeeperContender() override;

  void contend(const MasterInfo& info, std::function<void()> elected,
               std::function<void(const std::string&)> lost) override;

  // This contender's node ("" until created).
  const std::string& node() const { return node_; }

 private:
  void enter();
  void check();
  void lose(const std::string& why);
  void watchdog();

  Loop& loop_;
  ZooKeeperClient& zk_;
  std::string path_;
  MasterInfo info_;
  std::function<void()> elected_;
  std::function<void(const std::string&)> lost_;
  std::string node_;
  std::string watching_;  // the predecessor's path
  bool entered_ = false;
  bool leading_ = false;
  bool done_ = false;
  TimePoint disconnectedSince_;
  bool disconnected_ = false;
  TimerId watchdogTimer_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace agora::master
