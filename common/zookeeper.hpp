#pragma once

// Apache ZooKeeper through its C client (zookeeper_mt), behind a small asynchronous interface.
// The C client calls back on threads of its own; every callback and watch here runs on the
// owner's Loop instead. `rc` is a ZooKeeper return code (ZOK, ZNONODE, ZBADVERSION, ...).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/loop.hpp"
#include "common/result.hpp"

namespace agora {

// "zk://host1:2181,host2:2181/agora" -> servers "host1:2181,host2:2181", path "/agora".
struct ZkUrl {
  std::string servers;
  std::string path;
};
Result<ZkUrl> parseZkUrl(const std::string& url);

struct ZkStat {
  int32_t version = 0;
  int64_t ephemeralOwner = 0;
  int64_t mzxid = 0;
  int32_t numChildren = 0;
};

// One operation of an atomic multi: create, set, delete, or check (a version test that
// changes nothing).
struct ZkOp {
  enum class Type { kCreate, kSet, kDelete, kCheck };
  Type type = Type::kCheck;
  std::string path;
  std::string data;
  int version = -1;  // -1: any version

  static ZkOp create(std::string path, std::string data) {
    return {Type::kCreate, std::move(path), std::move(data), -1};
  }
  static ZkOp set(std::string path, std::string data, int version) {
    return {Type::kSet, std::move(path), std::move(data), version};
  }
  static ZkOp remove(std::string path, int version) {
    return {Type::kDelete, std::move(path), "", version};
  }
  static ZkOp check(std::string path, int version) {
    return {Type::kCheck, std::move(path), "", version};
  }
};

std::string zkError(int rc);

// Silences the ZooKeeper C client's own log lines (for command-line tools).
void zkSilenceClientLog();

class ZooKeeper {
 public:
  enum class Session { kConnecting, kConnected, kExpired };
  struct WatchEvent {
    int type = 0;  // ZOO_CREATED_EVENT, ZOO_DELETED_EVENT, ZOO_CHANGED_EVENT, ZOO_CHILD_EVENT
    std::string path;
  };

  virtual ~ZooKeeper() = default;

  virtual void create(const std::string& path, const std::string& data, bool ephemeral,
                      bool sequential, std::function<void(int rc, std::string created)> done) = 0;
  virtual void get(const std::string& path, bool watch,
                   std::function<void(int rc, std::string data, ZkStat stat)> done) = 0;
  virtual void getChildren(const std::string& path, bool watch,
                           std::function<void(int rc, std::vector<std::string>)> done) = 0;
  virtual void exists(const std::string& path, bool watch,
                      std::function<void(int rc, ZkStat stat)> done) = 0;
  virtual void set(const std::string& path, const std::string& data, int version,
                   std::function<void(int rc, ZkStat stat)> done) = 0;
  virtual void remove(const std::string& path, int version, std::function<void(int rc)> done) = 0;
  // All or nothing; rc is the first failing operation's code.
  virtual void multi(const std::vector<ZkOp>& ops, std::function<void(int rc)> done) = 0;

  virtual Session session() const = 0;
  virtual int64_t sessionId() const = 0;
};

// The real client. Connects at once; on session expiry it starts a new session by itself
// (session listeners hear kExpired first: the old session's ephemeral nodes and watches are
// gone). One client (one session) can serve several components of a process.
class ZooKeeperClient final : public ZooKeeper {
 public:
  ZooKeeperClient(Loop& loop, std::string servers, Duration sessionTimeout);
  // Closes the session: its ephemeral nodes go at once.
  ~ZooKeeperClient() override;
  ZooKeeperClient(const ZooKeeperClient&) = delete;
  ZooKeeperClient& operator=(const ZooKeeperClient&) = delete;

  void create(const std::string& path, const std::string& data, bool ephemeral, bool sequential,
              std::function<void(int rc, std::string created)> done) override;
  void get(const std::string& path, bool watch,
           std::function<void(int rc, std::string data, ZkStat stat)> done) override;
  void getChildren(const std::string& path, bool watch,
                   std::function<void(int rc, std::vector<std::string>)> done) override;
  void exists(const std::string& path, bool watch,
              std::function<void(int rc, ZkStat stat)> done) override;
  void set(const std::string& path, const std::string& data, int version,
           std::function<void(int rc, ZkStat stat)> done) override;
  void remove(const std::string& path, int version, std::function<void(int rc)> done) override;
  void multi(const std::vector<ZkOp>& ops, std::function<void(int rc)> done) override;

  Session session() const override { return session_; }
  int64_t sessionId() const override { return sessionId_; }
  Duration sessionTimeout() const { return sessionTimeout_; }

  // Listeners run on the loop, in the order they were added. Watches are one-shot, as in
  // ZooKeeper: each listener sees every watch event and keeps the ones for its paths.
  void addSessionListener(std::function<void(Session)> listener) {
    sessionListeners_.push_back(std::move(listener));
  }
  void addWatchListener(std::function<void(const WatchEvent&)> listener) {
    watchListeners_.push_back(std::move(listener));
  }

  struct Shared;  // what the C client's threads may touch
  // Called on the loop for each event of the C client's watcher (session or node).
  void dispatchWatch(int type, int state, const std::string& path);

 private:
  void connect();
  void onSessionEvent(int state);
  void notifySession();

  Loop& loop_;
  std::string servers_;
  Duration sessionTimeout_;
  std::vector<std::function<void(Session)>> sessionListeners_;
  std::vector<std::function<void(const WatchEvent&)>> watchListeners_;
  std::shared_ptr<Shared> shared_;
  Session session_ = Session::kConnecting;
  int64_t sessionId_ = 0;
};

// Creates `path` and every missing parent (persistent, empty); done(ZOK) when they exist.
void zkCreatePath(ZooKeeper& zk, const std::string& path, std::function<void(int rc)> done);

}  // namespace agora
