#include "frameworks/k8s-like/store/zookeeper_store.hpp"

// The synchronous calls of the multi-threaded client.
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include <glog/logging.h>

#include "common/zookeeper.hpp"

namespace agora::kube {

using nlohmann::json;

struct ZooKeeperStore::Session {
  zhandle_t* zh = nullptr;
  std::mutex mutex;
  std::condition_variable cv;
  int state = 0;
  uint64_t events = 0;  // node events seen (a predecessor's deletion among them)
  bool leading = false;
  bool lost = false;
  std::function<void(const std::string&)> onLost;

  void lose(const std::string& why) {
    std::function<void(const std::string&)> fn;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (lost || !leading) return;
      lost = true;
      fn = onLost;
    }
    if (fn) fn(why);
  }
};

namespace {

constexpr int kMaxObject = 1000 * 1024;  // under ZooKeeper's 1 MB znode limit

void watcher(zhandle_t*, int type, int state, const char*, void* context) {
  auto* session = static_cast<ZooKeeperStore::Session*>(context);
  bool expired = false;
  {
    std::lock_guard<std::mutex> lock(session->mutex);
    if (type == ZOO_SESSION_EVENT) {
      session->state = state;
      expired = state == ZOO_EXPIRED_SESSION_STATE;
    } else {
      ++session->events;
    }
  }
  session->cv.notify_all();
  if (expired) {
    session->lose("the ZooKeeper session expired");
  }
}

std::string escape(const std::string& key) {
  std::string out = key;
  std::replace(out.begin(), out.end(), '/', '|');
  return out;
}

std::string unescape(const std::string& name) {
  std::string out = name;
  std::replace(out.begin(), out.end(), '|', '/');
  return out;
}

std::string zkText(int rc) { return zerror(rc); }

}  // namespace

ZooKeeperStore::ZooKeeperStore(std::string url, std::string path, Options options)
    : Store(options.history), url_(std::move(url)), path_(std::move(path)),
      options_(std::move(options)), session_(std::make_shared<Session>()) {
  session_->onLost = options_.onLost;
}

ZooKeeperStore::~ZooKeeperStore() {
  if (session_->zh != nullptr) {
    {
      std::lock_guard<std::mutex> lock(session_->mutex);
      session_->leading = false;  // closing is not losing
    }
    zookeeper_close(session_->zh);
    session_->zh = nullptr;
  }
}

std::string ZooKeeperStore::describe() const { return "ZooKeeper store at " + url_; }

Result<std::unique_ptr<ZooKeeperStore>> ZooKeeperStore::lead(const std::string& url,
                                                             Options options) {
  auto parsed = parseZkUrl(url);
  if (!parsed) {
    return Error(parsed.error());
  }
  std::unique_ptr<ZooKeeperStore> store(
      new ZooKeeperStore(url, parsed->path, std::move(options)));
  Session& s = *store->session_;
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  int timeoutMs = static_cast<int>(toSeconds(store->options_.sessionTimeout) * 1000);
  s.zh = zookeeper_init(parsed->servers.c_str(), watcher, timeoutMs, nullptr, &s, 0);
  if (s.zh == nullptr) {
    return Error("cannot start a ZooKeeper client for " + parsed->servers);
  }
  {
    std::unique_lock<std::mutex> lock(s.mutex);
    if (!s.cv.wait_for(lock, std::chrono::milliseconds(timeoutMs * 3),
                       [&] { return s.state == ZOO_CONNECTED_STATE; })) {
      return Error("cannot reach ZooKeeper at " + parsed->servers);
    }
  }
  // The store's nodes, made by whoever comes first.
  std::string path = parsed->path;
  std::string at;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    at = path.substr(0, slash);
    int rc = zoo_create(s.zh, at.c_str(), "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0);
    if (rc != ZOK && rc != ZNODEEXISTS) {
      return Error("cannot make " + at + " in ZooKeeper: " + zkText(rc));
    }
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  for (const char* child : {"/objects", "/rv", "/epoch", "/leaders"}) {
    std::string node = path + child;
    int rc = zoo_create(s.zh, node.c_str(), "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0);
    if (rc != ZOK && rc != ZNODEEXISTS) {
      return Error("cannot make " + node + " in ZooKeeper: " + zkText(rc));
    }
  }

  // The election: the lowest sequence leads; the others wait for their predecessor to go.
  std::string identity = store->options_.identity;
  char created[512];
  int rc = zoo_create(s.zh, (path + "/leaders/n_").c_str(), identity.data(),
                      static_cast<int>(identity.size()), &ZOO_OPEN_ACL_UNSAFE,
                      ZOO_EPHEMERAL | ZOO_SEQUENCE, created, sizeof(created));
  if (rc != ZOK) {
    return Error("cannot join the election: " + zkText(rc));
  }
  std::string mine = std::string(created).substr(path.size() + 9);
  while (true) {
    String_vector children{};
    rc = zoo_get_children(s.zh, (path + "/leaders").c_str(), 0, &children);
    if (rc != ZOK) {
      return Error("cannot read the election: " + zkText(rc));
    }
    std::vector<std::string> names;
    for (int i = 0; i < children.count; ++i) names.emplace_back(children.data[i]);
    deallocate_String_vector(&children);
    std::sort(names.begin(), names.end());
    auto me = std::find(names.begin(), names.end(), mine);
    if (me == names.end()) {
      return Error("this instance's election node is gone (its session expired)");
    }
    if (me == names.begin()) {
      break;
    }
    std::string predecessor = path + "/leaders/" + *(me - 1);
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      seen = s.events;
    }
    Stat stat;
    rc = zoo_wexists(s.zh, predecessor.c_str(), watcher, &s, &stat);
    if (rc == ZNONODE) {
      continue;
    }
    if (rc != ZOK) {
      return Error("cannot watch the election: " + zkText(rc));
    }
    LOG(INFO) << "Standing by: " << *(me - 1) << " is ahead of " << mine;
    std::unique_lock<std::mutex> lock(s.mutex);
    s.cv.wait(lock, [&] { return s.events != seen || s.state == ZOO_EXPIRED_SESSION_STATE; });
    if (s.state == ZOO_EXPIRED_SESSION_STATE) {
      return Error("the ZooKeeper session expired while standing by");
    }
  }

  // Leading: a new epoch fences off whoever led before.
  Stat epoch;
  rc = zoo_set2(s.zh, (path + "/epoch").c_str(), identity.data(),
                static_cast<int>(identity.size()), -1, &epoch);
  if (rc != ZOK) {
    return Error("cannot take the epoch: " + zkText(rc));
  }
  store->epochVersion_ = epoch.version;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.leading = true;
  }
  if (Status loaded = store->load(); !loaded) {
    return Error(loaded.error());
  }
  LOG(INFO) << "Leading (epoch " << epoch.version << "); " << store->objects_.size()
            << " objects at version " << store->version_;
  return store;
}

Status ZooKeeperStore::load() {
  zhandle_t* zh = session_->zh;
  String_vector children{};
  int rc = zoo_get_children(zh, (path_ + "/objects").c_str(), 0, &children);
  if (rc != ZOK) {
    return Error("cannot list the objects: " + zkText(rc));
  }
  std::vector<std::string> names;
  for (int i = 0; i < children.count; ++i) names.emplace_back(children.data[i]);
  deallocate_String_vector(&children);
  std::vector<char> buffer(kMaxObject + 4096);
  for (const std::string& name : names) {
    int length = static_cast<int>(buffer.size());
    Stat stat;
    rc = zoo_get(zh, (path_ + "/objects/" + name).c_str(), 0, buffer.data(), &length, &stat);
    if (rc == ZNONODE) continue;
    if (rc != ZOK) {
      return Error("cannot read " + name + ": " + zkText(rc));
    }
    json value = json::parse(std::string(buffer.data(), std::max(0, length)), nullptr, false);
    if (value.is_discarded()) {
      return Error("the object " + unescape(name) + " in ZooKeeper is not JSON");
    }
    Object object{unescape(name), std::move(value), static_cast<uint64_t>(stat.mzxid)};
    objects_[object.key] = std::move(object);
  }
  Stat rv;
  rc = zoo_exists(zh, (path_ + "/rv").c_str(), 0, &rv);
  if (rc != ZOK) {
    return Error("cannot read the store's version: " + zkText(rc));
  }
  version_ = static_cast<uint64_t>(rv.mzxid);
  for (const auto& [key, object] : objects_) {
    version_ = std::max(version_, object.version);
  }
  historyStart_ = version_;
  return ok();
}

Result<uint64_t> ZooKeeperStore::persist(WatchEvent::Type type, const std::string& key,
                                         const json& value) {
  {
    std::lock_guard<std::mutex> lock(session_->mutex);
    if (session_->lost) {
      return Error("this instance no longer leads");
    }
  }
  std::string node = path_ + "/objects/" + escape(key);
  std::string data = type == WatchEvent::kDeleted ? "" : value.dump();
  if (static_cast<int>(data.size()) > kMaxObject) {
    return Error("the object is larger than ZooKeeper's limit of 1 MB");
  }
  std::string epoch = path_ + "/epoch";
  std::string rv = path_ + "/rv";
  zoo_op_t ops[3];
  zoo_op_result_t results[3] = {};
  Stat objectStat;
  Stat rvStat;
  zoo_check_op_init(&ops[0], epoch.c_str(), epochVersion_);
  if (type == WatchEvent::kAdded) {
    zoo_create_op_init(&ops[1], node.c_str(), data.data(), static_cast<int>(data.size()),
                       &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0);
  } else if (type == WatchEvent::kModified) {
    zoo_set_op_init(&ops[1], node.c_str(), data.data(), static_cast<int>(data.size()), -1,
                    &objectStat);
  } else {
    zoo_delete_op_init(&ops[1], node.c_str(), -1);
  }
  zoo_set_op_init(&ops[2], rv.c_str(), "", 0, -1, &rvStat);
  int rc = zoo_multi(session_->zh, 3, ops, results);
  if (rc != ZOK) {
    if (results[0].err == ZBADVERSION || results[0].err == ZNONODE) {
      session_->lose("another instance leads now (the epoch moved on)");
      return Error("this instance no longer leads");
    }
    return Error("ZooKeeper refused the change to " + key + ": " + zkText(rc));
  }
  return static_cast<uint64_t>(rvStat.mzxid);
}

}  // namespace agora::kube
