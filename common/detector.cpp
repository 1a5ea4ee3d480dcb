#include "common/detector.hpp"

#include <google/protobuf/util/json_util.h>

#include <zookeeper/zookeeper.h>

#include <glog/logging.h>

#include "common/event_loop.hpp"
#include "common/http.hpp"
#include "common/zk_election.hpp"
#include "common/zookeeper.hpp"

namespace agora {

Result<MasterInfo> fetchMasterInfo(const std::string& address, Duration timeout) {
  auto response = httpGet(address, "/master/info", timeout);
  if (!response) {
    return Error(response.error());
  }
  if (response->status != 200) {
    return Error("master at " + address + " answered /master/info with HTTP " +
                 std::to_string(response->status));
  }
  MasterInfo info;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(response->body, &info, options);
  if (!status.ok()) {
    return Error("bad /master/info from " + address + ": " + status.ToString());
  }
  if (info.endpoint().empty()) {
    return Error("master at " + address + " did not say where its protocol endpoint is");
  }
  return info;
}

StandaloneDetector::StandaloneDetector(Loop& loop, std::string address)
    : loop_(loop), address_(std::move(address)), worker_([this] { work(); }) {}

StandaloneDetector::~StandaloneDetector() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

void StandaloneDetector::detect(std::function<void(Result<MasterInfo>)> callback) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back(std::move(callback));
  }
  wake_.notify_all();
}

void StandaloneDetector::work() {
  while (true) {
    std::deque<std::function<void(Result<MasterInfo>)>> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !requests_.empty(); });
      if (stopping_) {
        return;
      }
      batch.swap(requests_);
    }
    Result<MasterInfo> info = fetchMasterInfo(address_, seconds(2));
    for (auto& callback : batch) {
      loop_.post([callback = std::move(callback), info] { callback(info); });
    }
  }
}

// ------------------------------------------------------------------------------------------

std::vector<std::string> endpointsOf(const std::vector<MasterInfo>& masters) {
  std::vector<std::string> out;
  out.reserve(masters.size());
  for (const MasterInfo& master : masters) {
    out.push_back(master.endpoint());
  }
  return out;
}

ZooKeeperDetector::ZooKeeperDetector(Loop& loop, ZooKeeperClient& zk, std::string basePath)
    : loop_(loop), zk_(zk), path_(mastersPath(basePath)) {
  std::weak_ptr<bool> alive = alive_;
  zk_.addSessionListener([this, alive](ZooKeeper::Session s) {
    if (alive.expired()) {
      return;
    }
    if (s == ZooKeeper::Session::kConnected) {
      refresh();
    }
  });
  zk_.addWatchListener([this, alive](const ZooKeeper::WatchEvent& e) {
    if (!alive.expired() && (e.path == path_ || e.path.rfind(path_ + "/", 0) == 0)) {
      refresh();
    }
  });
  if (zk_.session() == ZooKeeper::Session::kConnected) {
    refresh();
  }
}

ZooKeeperDetector::~ZooKeeperDetector() { alive_.reset(); }

void ZooKeeperDetector::detect(std::function<void(Result<MasterInfo>)> callback) {
  if (leader_) {
    loop_.post([callback = std::move(callback), info = *leader_] { callback(info); });
    return;
  }
  waiting_.push_back(std::move(callback));
}

void ZooKeeperDetector::onLeaderChange(std::function<void(const MasterInfo&)> listener) {
  listeners_.push_back(std::move(listener));
}

void ZooKeeperDetector::onContendersChange(
    std::function<void(const std::vector<MasterInfo>&)> listener) {
  contenderListeners_.push_back(std::move(listener));
}

void ZooKeeperDetector::readContenders(const std::vector<std::string>& nodes) {
  if (contenderListeners_.empty() || nodes == contenderNodes_) {
    return;
  }
  contenderNodes_ = nodes;
  struct Gathering {
    std::vector<std::optional<MasterInfo>> infos;
    size_t pending = 0;
    bool failed = false;
  };
  auto gathering = std::make_shared<Gathering>();
  gathering->infos.resize(nodes.size());
  gathering->pending = nodes.size();
  std::weak_ptr<bool> alive = alive_;
  for (size_t i = 0; i < nodes.size(); ++i) {
    // ZooKeeper answers one session's requests in order, so an older gathering always
    // finishes before a newer one: the last list delivered is the latest.
    zk_.get(path_ + "/" + nodes[i], false, [this, alive, gathering, i](int rc, std::string data,
                                                                      ZkStat) {
      if (alive.expired()) {
        return;
      }
      if (rc == ZOK) {
        auto info = masterInfoFromJson(data);
        if (info) {
          gathering->infos[i] = std::move(info).value();
        }
      } else if (rc != ZNONODE) {
        gathering->failed = true;
      }
      if (--gathering->pending > 0) {
        return;
      }
      if (gathering->failed) {
        contenderNodes_.clear();  // read them all again on the next refresh
      }
      std::vector<MasterInfo> contenders;
      for (auto& info : gathering->infos) {
        if (info) {
          contenders.push_back(std::move(*info));
        }
      }
      for (auto& listener : contenderListeners_) {
        listener(contenders);
      }
    });
  }
}

void ZooKeeperDetector::refresh() {
  uint64_t mine = ++generation_;
  std::weak_ptr<bool> alive = alive_;
  zk_.getChildren(path_, true, [this, alive, mine](int rc, std::vector<std::string> children) {
    if (alive.expired() || mine != generation_) {
      return;
    }
    if (rc == ZNONODE) {
      // No master has ever contended: wait for the node to appear.
      setLeader(std::nullopt);
      zk_.exists(path_, true, [this, alive, mine](int rc, ZkStat) {
        // Created in between: its creation watch will never fire, so look again now.
        if (!alive.expired() && mine == generation_ && rc == ZOK) {
          refresh();
        }
      });
      return;
    }
    if (rc != ZOK) {
      VLOG(1) << "Listing " << path_ << ": " << zkError(rc) << "; retrying";
      loop_.after(seconds(1), [this, alive] {
        if (!alive.expired()) {
          refresh();
        }
      });
      return;
    }
    std::vector<std::string> nodes = electionOrder(children);
    readContenders(nodes);
    if (nodes.empty()) {
      setLeader(std::nullopt);
      return;
    }
    // Watch the leader's node too: its deletion is the leader going.
    zk_.get(path_ + "/" + nodes.front(), true, [this, alive, mine](int rc, std::string data, ZkStat) {
      if (alive.expired() || mine != generation_) {
        return;
      }
      if (rc == ZNONODE) {
        refresh();  // it went in between
        return;
      }
      if (rc != ZOK) {
        loop_.after(seconds(1), [this, alive] {
          if (!alive.expired()) {
            refresh();
          }
        });
        return;
      }
      auto info = masterInfoFromJson(data);
      if (!info) {
        LOG(ERROR) << "The leading master's node in " << path_ << " holds " << info.error();
        setLeader(std::nullopt);
        return;
      }
      setLeader(*info);
    });
  });
}

void ZooKeeperDetector::setLeader(std::optional<MasterInfo> leader) {
  bool changed = leader.has_value() &&
                 (!leader_ || leader_->id() != leader->id() ||
                  leader_->endpoint() != leader->endpoint());
  leader_ = std::move(leader);
  if (!leader_) {
    return;
  }
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& callback : waiting) {
    callback(*leader_);
  }
  if (changed) {
    LOG(INFO) << "Leading master is " << leader_->id() << " at " << leader_->endpoint();
    for (auto& listener : listeners_) {
      listener(*leader_);
    }
  }
}

namespace {

// A ZooKeeper detector with a session of its own.
class OwningZooKeeperDetector final : public MasterDetector {
 public:
  OwningZooKeeperDetector(Loop& loop, const ZkUrl& url, Duration sessionTimeout)
      : zk_(loop, url.servers, sessionTimeout), detector_(loop, zk_, url.path) {}
  void detect(std::function<void(Result<MasterInfo>)> callback) override {
    detector_.detect(std::move(callback));
  }
  void onLeaderChange(std::function<void(const MasterInfo&)> listener) override {
    detector_.onLeaderChange(std::move(listener));
  }
  void onContendersChange(
      std::function<void(const std::vector<MasterInfo>&)> listener) override {
    detector_.onContendersChange(std::move(listener));
  }

 private:
  ZooKeeperClient zk_;
  ZooKeeperDetector detector_;
};

}  // namespace

Result<MasterInfo> findLeader(const std::string& master, Duration timeout) {
  if (master.rfind("zk://", 0) != 0) {
    return fetchMasterInfo(master, timeout);
  }
  EventLoop loop;
  auto detector = createMasterDetector(loop, master, std::max<Duration>(timeout, seconds(2)));
  if (!detector) {
    return Error(detector.error());
  }
  Result<MasterInfo> found = Error("no leading master found in " + master + " within " +
                                   formatDuration(timeout));
  (*detector)->detect([&](Result<MasterInfo> info) {
    found = std::move(info);
    loop.stop();
  });
  loop.after(timeout, [&] { loop.stop(); });
  loop.run();
  return found;
}

Result<std::unique_ptr<MasterDetector>> createMasterDetector(Loop& loop, const std::string& master,
                                                             Duration zkSessionTimeout) {
  if (master.rfind("zk://", 0) == 0) {
    auto url = parseZkUrl(master);
    if (!url) {
      return Error(url.error());
    }
    return std::unique_ptr<MasterDetector>(
        new OwningZooKeeperDetector(loop, *url, zkSessionTimeout));
  }
  auto hostPort = splitHostPort(master);
  if (!hostPort) {
    return Error("the master must be host:port or zk://host:port/path: " + hostPort.error());
  }
  return std::unique_ptr<MasterDetector>(new StandaloneDetector(loop, master));
}

}  // namespace agora
