#pragma once

// The kube store in ZooKeeper, for several `agora kube` instances of which one leads. Under the
// store's path:
//
//   objects/<key, with '|' for '/'>   each object's JSON; its znode's modification zxid is its
//                                     resourceVersion
//   rv                                set by every change in the same transaction: its mzxid is
//                                     the store's version (ZooKeeper's zxid grows with every
//                                     write, so resourceVersions grow across objects)
//   epoch                             bumped by each new leader; every change checks it, so a
//                                     deposed leader that has not noticed yet can write nothing
//   leaders/                          the election: an ephemeral sequential node per instance,
//                                     the lowest leads, each watches only its predecessor
//
// The leader keeps every object in memory (the Store part) and writes each change to ZooKeeper
// (one atomic multi) before it is visible or acknowledged. Watches start from the versions the
// leader has seen since it took over; older ones are Gone (410), and clients list again.
//
// ZooKeeper's synchronous C API, on a session of its own: a change blocks the loop for one
// round trip, as a FileStore change blocks it for one fdatasync.

#include <functional>
#include <memory>
#include <string>

#include "common/time.hpp"
#include "frameworks/k8s-like/store/store.hpp"

namespace agora::kube {

class ZooKeeperStore final : public Store {
 public:
  struct Options {
    Duration sessionTimeout = seconds(10);
    size_t history = 10000;
    std::string identity;  // written into the election node and the epoch (who leads)
    // Runs (on a ZooKeeper thread) when this instance stops leading: its session expired, or a
    // change found another leader's epoch. The process should stop at once.
    std::function<void(const std::string& why)> onLost;
  };

  // Connects to `url` (zk://host:port,.../path), waits until this instance leads (the others
  // wait here for the leader to go), and loads the objects.
  static Result<std::unique_ptr<ZooKeeperStore>> lead(const std::string& url, Options options);
  ~ZooKeeperStore() override;

  std::string describe() const override;

  struct Session;  // the C client's handle and what its threads share

 protected:
  Result<uint64_t> persist(WatchEvent::Type type, const std::string& key,
                           const nlohmann::json& value) override;

 private:
  ZooKeeperStore(std::string url, std::string path, Options options);
  Status load();

  std::string url_;
  std::string path_;
  Options options_;
  std::shared_ptr<Session> session_;
  int epochVersion_ = -1;
};

}  // namespace agora::kube
