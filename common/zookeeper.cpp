#include "common/zookeeper.hpp"

#include <zookeeper/zookeeper.h>

#include <cstdio>
#include <cstring>
#include <mutex>

#include <glog/logging.h>

namespace agora {

Result<ZkUrl> parseZkUrl(const std::string& url) {
  const std::string scheme = "zk://";
  if (url.rfind(scheme, 0) != 0) {
    return Error("ZooKeeper URL '" + url + "' must start with zk://");
  }
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= rest.size()) {
    return Error("ZooKeeper URL '" + url + "' needs servers and a path: zk://host:2181/agora");
  }
  ZkUrl out{rest.substr(0, slash), rest.substr(slash)};
  while (out.path.size() > 1 && out.path.back() == '/') {
    out.path.pop_back();
  }
  if (out.path.find("//") != std::string::npos) {
    return Error("ZooKeeper URL '" + url + "' has an empty path component");
  }
  for (char c : out.servers) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == ',' ||
          c == '-' || c == '[' || c == ']')) {
      return Error("ZooKeeper URL '" + url + "' has a bad server list");
    }
  }
  return out;
}

std::string zkError(int rc) { return zerror(rc); }

void zkSilenceClientLog() {
  static FILE* devNull = std::fopen("/dev/null", "w");
  if (devNull != nullptr) {
    zoo_set_log_stream(devNull);
  }
}

// What the C client's threads may touch: the loop to post into, while the client lives.
struct ZooKeeperClient::Shared {
  std::mutex mutex;
  Loop* loop = nullptr;  // null once the client is gone
  zhandle_t* handle = nullptr;
  ZooKeeperClient* client = nullptr;

  void post(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mutex);
    if (loop != nullptr) {
      loop->post(std::move(fn));
    }
  }
};

namespace {

// A completion's context: the shared state and the user's callback.
template <typename Fn>
struct Completion {
  std::shared_ptr<ZooKeeperClient::Shared> shared;
  Fn done;
};

ZkStat toStat(const struct Stat* s) {
  ZkStat out;
  if (s != nullptr) {
    out.version = s->version;
    out.ephemeralOwner = s->ephemeralOwner;
    out.mzxid = s->mzxid;
    out.numChildren = s->numChildren;
  }
  return out;
}

void globalWatcher(zhandle_t* zh, int type, int state, const char* path, void* context) {
  auto* shared = static_cast<std::shared_ptr<ZooKeeperClient::Shared>*>(context);
  std::string p = path == nullptr ? "" : path;
  (*shared)->post([s = *shared, zh, type, state, p] {
    if (s->client == nullptr || s->handle != zh) {
      return;  // a watch from an old session, or the client is gone
    }
    s->client->dispatchWatch(type, state, p);
  });
}

}  // namespace

// Reaches the private members from the free watcher above.
void ZooKeeperClient::dispatchWatch(int type, int state, const std::string& path) {
  if (type == ZOO_SESSION_EVENT) {
    onSessionEvent(state);
    return;
  }
  for (auto& listener : watchListeners_) {
    listener(WatchEvent{type, path});
  }
}

void ZooKeeperClient::notifySession() {
  for (auto& listener : sessionListeners_) {
    listener(session_);
  }
}

ZooKeeperClient::ZooKeeperClient(Loop& loop, std::string servers, Duration sessionTimeout)
    : loop_(loop), servers_(std::move(servers)), sessionTimeout_(sessionTimeout),
      shared_(std::make_shared<Shared>()) {
  static std::once_flag quiet;
  std::call_once(quiet, [] { zoo_set_debug_level(ZOO_LOG_LEVEL_WARN); });
  shared_->loop = &loop_;
  shared_->client = this;
  connect();
}

ZooKeeperClient::~ZooKeeperClient() {
  zhandle_t* handle;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->loop = nullptr;
    shared_->client = nullptr;
    handle = shared_->handle;
    shared_->handle = nullptr;
  }
  if (handle != nullptr) {
    auto* context = static_cast<std::shared_ptr<Shared>*>(const_cast<void*>(zoo_get_context(handle)));
    zookeeper_close(handle);
    delete context;
  }
}

void ZooKeeperClient::connect() {
  auto* context = new std::shared_ptr<Shared>(shared_);
  int timeoutMs = static_cast<int>(std::chrono::duration_cast<milliseconds>(sessionTimeout_).count());
  zhandle_t* handle = zookeeper_init(servers_.c_str(), globalWatcher, timeoutMs, nullptr, context, 0);
  if (handle == nullptr) {
    delete context;
    LOG(ERROR) << "Cannot start a ZooKeeper session with " << servers_ << ": "
               << std::strerror(errno) << "; retrying";
    loop_.after(seconds(1), [this] { connect(); });
    return;
  }
  std::lock_guard<std::mutex> lock(shared_->mutex);
  shared_->handle = handle;
}

void ZooKeeperClient::onSessionEvent(int state) {
  if (state == ZOO_CONNECTED_STATE) {
    session_ = Session::kConnected;
    sessionId_ = zoo_client_id(shared_->handle)->client_id;
    notifySession();
  } else if (state == ZOO_EXPIRED_SESSION_STATE) {
    LOG(WARNING) << "ZooKeeper session 0x" << std::hex << sessionId_ << std::dec
                 << " expired; starting a new one";
    session_ = Session::kExpired;
    zhandle_t* old;
    {
      std::lock_guard<std::mutex> lock(shared_->mutex);
      old = shared_->handle;
      shared_->handle = nullptr;
    }
    if (old != nullptr) {
      auto* context = static_cast<std::shared_ptr<Shared>*>(const_cast<void*>(zoo_get_context(old)));
      zookeeper_close(old);
      delete context;
    }
    notifySession();
    session_ = Session::kConnecting;
    connect();
  } else if (state == ZOO_CONNECTING_STATE) {
    session_ = Session::kConnecting;
    notifySession();
  }
}

namespace {

using StatFn = std::function<void(int, ZkStat)>;

// The completion of zoo_aexists and zoo_aset: hands (rc, stat) to the owner's loop.
void statCompleted(int rc, const struct Stat* stat, const void* context) {
  auto* c = static_cast<Completion<StatFn>*>(const_cast<void*>(context));
  ZkStat s = toStat(stat);
  c->shared->post([done = std::move(c->done), rc, s] { done(rc, s); });
  delete c;
}

}  // namespace

#define AGORA_ZK_HANDLE_OR_FAIL(...)                                    \
  zhandle_t* handle;                                                   \
  {                                                                    \
    std::lock_guard<std::mutex> lock(shared_->mutex);                  \
    handle = shared_->handle;                                          \
  }                                                                    \
  if (handle == nullptr) {                                             \
    loop_.post([done = std::move(done)] { done(__VA_ARGS__); });       \
    return;                                                            \
  }

void ZooKeeperClient::create(const std::string& path, const std::string& data, bool ephemeral,
                             bool sequential,
                             std::function<void(int rc, std::string created)> done) {
  AGORA_ZK_HANDLE_OR_FAIL(ZCONNECTIONLOSS, "");
  using Fn = std::function<void(int, std::string)>;
  auto* c = new Completion<Fn>{shared_, std::move(done)};
  int mode = (ephemeral ? ZOO_EPHEMERAL : 0) | (sequential ? ZOO_SEQUENCE : 0);
  int rc = zoo_acreate(
      handle, path.c_str(), data.data(), static_cast<int>(data.size()), &ZOO_OPEN_ACL_UNSAFE, mode,
      [](int rc, const char* value, const void* context) {
        auto* c = static_cast<Completion<Fn>*>(const_cast<void*>(context));
        std::string created = value == nullptr ? "" : value;
        c->shared->post([done = std::move(c->done), rc, created] { done(rc, created); });
        delete c;
      },
      c);
  if (rc != ZOK) {
    loop_.post([done = std::move(c->done), rc] { done(rc, ""); });
    delete c;
  }
}

void ZooKeeperClient::get(const std::string& path, bool watch,
                          std::function<void(int rc, std::string data, ZkStat stat)> done) {
  AGORA_ZK_HANDLE_OR_FAIL(ZCONNECTIONLOSS, "", ZkStat());
  using Fn = std::function<void(int, std::string, ZkStat)>;
  auto* c = new Completion<Fn>{shared_, std::move(done)};
  int rc = zoo_aget(
      handle, path.c_str(), watch ? 1 : 0,
      [](int rc, const char* value, int length, const struct Stat* stat, const void* context) {
        auto* c = static_cast<Completion<Fn>*>(const_cast<void*>(context));
        std::string data = value == nullptr || length <= 0 ? "" : std::string(value, length);
        ZkStat s = toStat(stat);
        c->shared->post([done = std::move(c->done), rc, data = std::move(data), s] {
          done(rc, data, s);
        });
        delete c;
      },
      c);
  if (rc != ZOK) {
    loop_.post([done = std::move(c->done), rc] { done(rc, "", ZkStat()); });
    delete c;
  }
}

void ZooKeeperClient::getChildren(const std::string& path, bool watch,
                                  std::function<void(int rc, std::vector<std::string>)> done) {
  AGORA_ZK_HANDLE_OR_FAIL(ZCONNECTIONLOSS, std::vector<std::string>());
  using Fn = std::function<void(int, std::vector<std::string>)>;
  auto* c = new Completion<Fn>{shared_, std::move(done)};
  int rc = zoo_aget_children(
      handle, path.c_str(), watch ? 1 : 0,
      [](int rc, const struct String_vector* strings, const void* context) {
        auto* c = static_cast<Completion<Fn>*>(const_cast<void*>(context));
        std::vector<std::string> children;
        if (strings != nullptr) {
          for (int i = 0; i < strings->count; ++i) {
            children.emplace_back(strings->data[i]);
          }
        }
        c->shared->post([done = std::move(c->done), rc, children = std::move(children)] {
          done(rc, children);
        });
        delete c;
      },
      c);
  if (rc != ZOK) {
    loop_.post([done = std::move(c->done), rc] { done(rc, {}); });
    delete c;
  }
}

void ZooKeeperClient::exists(const std::string& path, bool watch,
                             std::function<void(int rc, ZkStat stat)> done) {
  AGORA_ZK_HANDLE_OR_FAIL(ZCONNECTIONLOSS, ZkStat());
  auto* c = new Completion<StatFn>{shared_, std::move(done)};
  int rc = zoo_aexists(
      handle, path.c_str(), watch ? 1 : 0,
      statCompleted, c);
  if (rc != ZOK) {
    loop_.post([done = std::move(c->done), rc] { done(rc, ZkStat()); });
    delete c;
  }
}

void ZooKeeperClient::set(const std::string& path, const std::string& data, int version,
                          std::function<void(int rc, ZkStat stat)> done) {
  AGORA_ZK_HANDLE_OR_FAIL(ZCONNECTIONLOSS, ZkStat());
  auto* c = new Completion<StatFn>{shared_, std::move(done)};
  int rc = zoo_aset(
      handle, path.c_str(), data.data(), static_cast<int>(data.size()), version,
      statCompleted, c);
  if (rc != ZOK) {
    loop_.post([done = std::move(c->done), rc] { done(rc, ZkStat()); });
    delete c;
  }
}

void ZooKeeperClient::remove(const std::string& path, int version,
                             std::function<void(int rc)> done) {
  AGORA_ZK_HANDLE_OR_FAIL(ZCONNECTIONLOSS);
  using Fn = std::function<void(int)>;
  auto* c = new Completion<Fn>{shared_, std::move(done)};
  int rc = zoo_adelete(
      handle, path.c_str(), version,
      [](int rc, const void* context) {
        auto* c = static_cast<Completion<Fn>*>(const_cast<void*>(context));
        c->shared->post([done = std::move(c->done), rc] { done(rc); });
        delete c;
      },
      c);
  if (rc != ZOK) {
    loop_.post([done = std::move(c->done), rc] { done(rc); });
    delete c;
  }
}

namespace {

// A multi's buffers must live until its completion.
struct MultiCompletion {
  std::shared_ptr<ZooKeeperClient::Shared> shared;
  std::function<void(int)> done;
  std::vector<ZkOp> ops;
  std::vector<zoo_op_t> zops;
  std::vector<zoo_op_result_t> results;
  std::vector<std::string> createdPaths;
  std::vector<struct Stat> stats;
};

}  // namespace

void ZooKeeperClient::multi(const std::vector<ZkOp>& ops, std::function<void(int rc)> done) {
  AGORA_ZK_HANDLE_OR_FAIL(ZCONNECTIONLOSS);
  if (ops.empty()) {
    loop_.post([done = std::move(done)] { done(ZOK); });
    return;
  }
  auto* c = new MultiCompletion{shared_, std::move(done), ops, {}, {}, {}, {}};
  c->zops.resize(c->ops.size());
  c->results.resize(c->ops.size());
  c->createdPaths.assign(c->ops.size(), std::string(512, '\0'));
  c->stats.resize(c->ops.size());
  for (size_t i = 0; i < c->ops.size(); ++i) {
    const ZkOp& op = c->ops[i];
    switch (op.type) {
      case ZkOp::Type::kCreate:
        zoo_create_op_init(&c->zops[i], op.path.c_str(), op.data.data(),
                           static_cast<int>(op.data.size()), &ZOO_OPEN_ACL_UNSAFE, 0,
                           c->createdPaths[i].data(), static_cast<int>(c->createdPaths[i].size()));
        break;
      case ZkOp::Type::kSet:
        zoo_set_op_init(&c->zops[i], op.path.c_str(), op.data.data(),
                        static_cast<int>(op.data.size()), op.version, &c->stats[i]);
        break;
      case ZkOp::Type::kDelete:
        zoo_delete_op_init(&c->zops[i], op.path.c_str(), op.version);
        break;
      case ZkOp::Type::kCheck:
        zoo_check_op_init(&c->zops[i], op.path.c_str(), op.version);
        break;
    }
  }
  int rc = zoo_amulti(
      handle, static_cast<int>(c->zops.size()), c->zops.data(), c->results.data(),
      [](int rc, const void* context) {
        auto* c = static_cast<MultiCompletion*>(const_cast<void*>(context));
        c->shared->post([done = std::move(c->done), rc] { done(rc); });
        delete c;
      },
      c);
  if (rc != ZOK) {
    loop_.post([done = std::move(c->done), rc] { done(rc); });
    delete c;
  }
}

void zkCreatePath(ZooKeeper& zk, const std::string& path, std::function<void(int rc)> done) {
  // Creates each prefix in turn; an existing node is fine.
  auto prefixes = std::make_shared<std::vector<std::string>>();
  for (size_t at = path.find('/', 1); ; at = path.find('/', at + 1)) {
    prefixes->push_back(path.substr(0, at));
    if (at == std::string::npos) {
      break;
    }
  }
  auto step = std::make_shared<std::function<void(size_t)>>();
  *step = [&zk, prefixes, step, done](size_t i) {
    if (i == prefixes->size()) {
      done(ZOK);
      *step = nullptr;  // break the cycle
      return;
    }
    zk.create((*prefixes)[i], "", false, false, [step, i, done](int rc, std::string) {
      if (rc != ZOK && rc != ZNODEEXISTS) {
        done(rc);
        *step = nullptr;
        return;
      }
      (*step)(i + 1);
    });
  };
  (*step)(0);
}

}  // namespace agora
