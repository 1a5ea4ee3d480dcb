#pragma once

// The kube framework's object store: Kubernetes objects (JSON) by key, one resourceVersion that
// grows with every change across all objects, and watches that start at any version still in
// the store's history (older ones get Gone, as the API server answers 410).
//
// FileStore, the embedded default, keeps a log of changes in its directory, each appended and
// fdatasync'd before the change is acknowledged, and a snapshot every so many changes (after
// which the log starts afresh); opening it again replays the snapshot and the log, so the store
// survives a restart. ZooKeeperStore (zookeeper_store.hpp) keeps the objects in ZooKeeper, for
// several `agora kube` instances with one leader.
//
// Not thread-safe: the API server drives it from its event loop.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace agora::kube {

struct Object {
  std::string key;         // "pods/default/web": what the API server stores it under
  nlohmann::json value;
  uint64_t version = 0;    // the resourceVersion of its last change
};

enum class StoreCode { kOk, kNotFound, kAlreadyExists, kConflict, kGone, kInternal };

struct Outcome {
  StoreCode code = StoreCode::kOk;
  std::string message;
  Object object;  // the object as stored (or as it was, for a deletion)
  bool ok() const { return code == StoreCode::kOk; }
};

struct WatchEvent {
  enum Type { kAdded, kModified, kDeleted } type = kAdded;
  Object object;
};

// The store's interface and its in-memory part (objects, history, watches), the same for every
// backend; a backend makes each change durable (and gives it its version) before it is visible.
class Store {
 public:
  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Outcome get(const std::string& key) const;
  // Every object whose key starts with `prefix`, by key; and the version the list is at.
  std::vector<Object> list(const std::string& prefix, uint64_t* version = nullptr) const;
  Outcome create(const std::string& key, nlohmann::json value);
  // With `expected` (not 0), only if the object is still at that version (else kConflict).
  Outcome update(const std::string& key, nlohmann::json value, uint64_t expected = 0);
  Outcome remove(const std::string& key, uint64_t expected = 0);

  using Watcher = std::function<void(const WatchEvent&)>;
  // Every change under `prefix` after `from` (0: from now), past ones first. kGone when `from`
  // is older than the history kept. Returns the watch's id in `object.version`.
  Outcome watch(const std::string& prefix, uint64_t from, Watcher watcher);
  void cancel(uint64_t watch);

  uint64_t version() const { return version_; }
  // The oldest version a watch can start after.
  uint64_t oldestWatchable() const { return historyStart_; }

  // Group commit: between holdSync() and releaseSync() a backend may make changes durable
  // together, at the release. Whoever holds it tells no one outside the process of those
  // changes before the release returns (the pod scheduler launches its batch after it).
  virtual void holdSync() {}
  virtual Status releaseSync() { return ok(); }

  // What it is, for logs ("file store in DIR", "ZooKeeper store at zk://...").
  virtual std::string describe() const = 0;

 protected:
  explicit Store(size_t history) : historyLimit_(history) {}
  // Makes the change durable; returns its version, greater than every earlier one.
  virtual Result<uint64_t> persist(WatchEvent::Type type, const std::string& key,
                                   const nlohmann::json& value) = 0;
  // After each change is visible.
  virtual void changed() {}
  void remember(const WatchEvent& event);

  uint64_t version_ = 0;
  std::map<std::string, Object> objects_;
  std::deque<WatchEvent> history_;
  uint64_t historyStart_ = 0;  // versions after this are in history_
  size_t historyLimit_;

 private:
  Outcome apply(WatchEvent::Type type, const std::string& key, nlohmann::json value);

  struct Watch {
    std::string prefix;
    Watcher watcher;
  };
  std::map<uint64_t, Watch> watches_;
  uint64_t nextWatch_ = 1;
};

// The embedded default: a log of changes and snapshots in a directory.
class FileStore final : public Store {
 public:
  struct Options {
    uint64_t snapshotEvery = 10000;  // changes between snapshots (at least the store's size)
    size_t history = 10000;          // changes kept for watches
  };
  // Opens (or makes) the store in `directory`, reading back what it held.
  static Result<std::unique_ptr<FileStore>> open(const std::string& directory, Options options);
  ~FileStore() override;

  void holdSync() override { ++holds_; }
  Status releaseSync() override;
  std::string describe() const override { return "file store in " + directory_; }

 protected:
  Result<uint64_t> persist(WatchEvent::Type type, const std::string& key,
                           const nlohmann::json& value) override;
  void changed() override;

 private:
  FileStore(std::string directory, Options options)
      : Store(options.history), directory_(std::move(directory)), options_(options) {}
  Status load();
  Status snapshot();
  void closeLog();

  std::string directory_;
  Options options_;
  uint64_t sinceSnapshot_ = 0;
  int logFd_ = -1;
  int holds_ = 0;
  bool unsynced_ = false;
};

}  // namespace agora::kube
