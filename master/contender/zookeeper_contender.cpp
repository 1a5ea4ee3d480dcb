#include <zookeeper/zookeeper.h>

#include <algorithm>

#include <glog/logging.h>

#include "common/zk_election.hpp"
#include "common/zookeeper.hpp"
#include "master/contender/contender.hpp"

namespace agora::master {

ZooKeeperContender::ZooKeeperContender(Loop& loop, ZooKeeperClient& zk, std::string basePath)
    : loop_(loop), zk_(zk), path_(mastersPath(basePath)) {
  std::weak_ptr<bool> alive = alive_;
  zk_.addSessionListener([this, alive](ZooKeeper::Session s) {
    if (alive.expired() || done_) {
      return;
    }
    switch (s) {
      case ZooKeeper::Session::kConnected:
        disconnected_ = false;
        if (elected_ && !entered_) {
          enter();
        }
        break;
      case ZooKeeper::Session::kConnecting:
        if (!disconnected_) {
          disconnected_ = true;
          disconnectedSince_ = loop_.now();
        }
        break;
      case ZooKeeper::Session::kExpired:
        if (entered_) {
          lose("the ZooKeeper session expired");
        }
        break;
    }
  });
  zk_.addWatchListener([this, alive](const ZooKeeper::WatchEvent& e) {
    if (!alive.expired() && !done_ && !watching_.empty() && e.path == watching_) {
      check();
    }
  });
}

ZooKeeperContender::~ZooKeeperContender() {
  alive_.reset();
  loop_.cancel(watchdogTimer_);
}

void ZooKeeperContender::contend(const MasterInfo& info, std::function<void()> elected,
                                 std::function<void(const std::string&)> lost) {
  info_ = info;
  elected_ = std::move(elected);
  lost_ = std::move(lost);
  watchdog();
  if (zk_.session() == ZooKeeper::Session::kConnected) {
    enter();
  }
}

void ZooKeeperContender::enter() {
  entered_ = true;
  std::weak_ptr<bool> alive = alive_;
  zkCreatePath(zk_, path_, [this, alive](int rc) {
    if (alive.expired() || done_) {
      return;
    }
    if (rc != ZOK) {
      LOG(WARNING) << "Cannot create " << path_ << ": " << zkError(rc) << "; retrying";
      entered_ = false;
      loop_.after(seconds(1), [this, alive] {
        if (!alive.expired() && !done_ && !entered_ &&
            zk_.session() == ZooKeeper::Session::kConnected) {
          enter();
        }
      });
      return;
    }
    zk_.create(path_ + "/info_", masterInfoToJson(info_), true, true,
               [this, alive](int rc, std::string created) {
                 if (alive.expired() || done_) {
                   return;
                 }
                 if (rc != ZOK) {
                   // The node may or may not exist: only a new session is certain.
                   lose("cannot enter the election: " + zkError(rc));
                   return;
                 }
                 node_ = created.substr(created.rfind('/') + 1);
                 LOG(INFO) << "Contending for leadership as " << created;
                 check();
               });
  });
}

void ZooKeeperContender::check() {
  std::weak_ptr<bool> alive = alive_;
  zk_.getChildren(path_, false, [this, alive](int rc, std::vector<std::string> children) {
    if (alive.expired() || done_) {
      return;
    }
    if (rc != ZOK) {
      loop_.after(milliseconds(200), [this, alive] {
        if (!alive.expired() && !done_) {
          check();
        }
      });
      return;
    }
    if (std::find(children.begin(), children.end(), node_) == children.end()) {
      lose("this master's election node is gone");
      return;
    }
    std::optional<std::string> before = predecessorNode(children, node_);
    if (!before) {
      if (!leading_) {
        leading_ = true;
        watching_.clear();
        LOG(INFO) << "Elected leader (" << node_ << ")";
        elected_();
      }
      return;
    }
    // Watch only the node just before ours.
    watching_ = path_ + "/" + *before;
    zk_.exists(watching_, true, [this, alive](int rc, ZkStat) {
      if (alive.expired() || done_) {
        return;
      }
      if (rc == ZNONODE) {
        check();  // it went before the watch was set
      }
    });
  });
}

void ZooKeeperContender::watchdog() {
  // (A paused process is caught by the master's loop before anything else runs: see
  // EventLoop::onOversleep and PauseDetector. A merely busy loop keeps its session.)
  TimePoint now = loop_.now();
  Duration limit = zk_.sessionTimeout();
  if (entered_ && disconnected_ && now - disconnectedSince_ > limit) {
    lose("ZooKeeper unreachable for longer than the session timeout");
    return;
  }
  watchdogTimer_ = loop_.after(std::max<Duration>(limit / 10, milliseconds(20)),
                               [this] { watchdog(); });
}

void ZooKeeperContender::lose(const std::string& why) {
  if (done_) {
    return;
  }
  done_ = true;
  loop_.cancel(watchdogTimer_);
  LOG(ERROR) << "Lost (or cannot hold) leadership: " << why;
  if (lost_) {
    lost_(why);
  }
}

}  // namespace agora::master
