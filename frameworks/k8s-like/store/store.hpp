#pragma once

// The kube framework's object store: Kubernetes objects (JSON) by key, one resourceVersion that
// grows with every change across all objects, and watches that start at any version still in
// the store's history (older ones get Gone, as the API server answers 410).
//
// FileStore, the embedded default, keeps a log of changes in its directory, each appended and
// fdatasync'd before the change is acknowledged, and a snapshot every so many changes (after
// which the log starts afresh); opening it again replays the snapshot and the log, so the store
// survives a restart. A ZooKeeper backend for several `agora kube` instances comes later.
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

class FileStore {
 public:
  struct Options {
    uint64_t snapshotEvery = 10000;  // changes between snapshots
    size_t history = 10000;          // changes kept for watches
  };
  // Opens (or makes) the store in `directory`, reading back what it held.
  static Result<std::unique_ptr<FileStore>> open(const std::string& directory, Options options);

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

  // Group commit: between holdSync() and releaseSync() changes are written to the log but
  // synced once, at the release. Whoever holds it tells no one outside the process of those
  // changes before the release returns (the pod scheduler launches its batch after it).
  void holdSync() { ++holds_; }
  Status releaseSync();

  ~FileStore();
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;
  // The oldest version a watch can start after.
  uint64_t oldestWatchable() const;

 private:
  FileStore(std::string directory, Options options)
      : directory_(std::move(directory)), options_(options) {}
  Status load();
  // Makes a change durable and visible: the log first, then memory, then watchers.
  Outcome apply(WatchEvent::Type type, const std::string& key, nlohmann::json value);
  Status snapshot();
  void closeLog();

  std::string directory_;
  Options options_;
  uint64_t version_ = 0;
  uint64_t sinceSnapshot_ = 0;
  std::map<std::string, Object> objects_;
  std::deque<WatchEvent> history_;
  uint64_t historyStart_ = 0;  // versions after this are in history_
  struct Watch {
    std::string prefix;
    Watcher watcher;
  };
  std::map<uint64_t, Watch> watches_;
  uint64_t nextWatch_ = 1;
  int logFd_ = -1;
  int holds_ = 0;
  bool unsynced_ = false;
};

}  // namespace agora::kube
