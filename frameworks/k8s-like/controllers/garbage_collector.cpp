// The work queue the controllers share, their helpers, and the garbage collector.

#include <glog/logging.h>

#include "frameworks/k8s-like/apiserver/tables.hpp"
#include "frameworks/k8s-like/controllers/controllers.hpp"

namespace agora::kube {

using nlohmann::json;

WorkQueue::WorkQueue(Loop* loop, std::function<void(const std::string&)> sync)
    : loop_(loop), sync_(std::move(sync)) {}

WorkQueue::~WorkQueue() {
  *alive_ = false;
  for (auto& [key, timer] : delayed_) {
    loop_->cancel(timer);
  }
}

void WorkQueue::add(const std::string& key) {
  dirty_.insert(key);
  if (!scheduled_) {
    scheduled_ = true;
    std::weak_ptr<bool> alive = alive_;
    loop_->post([this, alive] {
      if (alive.lock()) {
        drain();
      }
    });
  }
}

void WorkQueue::addAfter(const std::string& key, Duration delay) {
  auto it = delayed_.find(key);
  if (it != delayed_.end()) {
    loop_->cancel(it->second);
  }
  delayed_[key] = loop_->after(delay, [this, key] {
    delayed_.erase(key);
    add(key);
  });
}

void WorkQueue::drain() {
  scheduled_ = false;
  std::set<std::string> batch;
  batch.swap(dirty_);
  for (const auto& key : batch) {
    try {
      sync_(key);
    } catch (const std::exception& e) {
      // An object of a shape the controller did not expect: skip it, keep the others going.
      LOG(ERROR) << "Cannot sync " << key << ": " << e.what();
    }
  }
}

json controllerReference(const json& owner) {
  return {{"apiVersion", owner.value("apiVersion", "")},
          {"kind", owner.value("kind", "")},
          {"name", owner["metadata"].value("name", "")},
          {"uid", owner["metadata"].value("uid", "")},
          {"controller", true},
          {"blockOwnerDeletion", true}};
}

std::string controllerUid(const json& object) {
  const json refs = object["metadata"].value("ownerReferences", json::array());
  for (const auto& ref : refs) {
    if (ref.value("controller", false)) {
      return ref.value("uid", "");
    }
  }
  return "";
}

std::string namespacedName(const json& object) {
  const json& meta = object["metadata"];
  return meta.value("namespace", "") + "/" + meta.value("name", "");
}

bool podReady(const json& pod) {
  const json conditions = pod.value("status", json::object()).value("conditions", json::array());
  for (const auto& c : conditions) {
    if (c.value("type", "") == "Ready") {
      return c.value("status", "") == "True";
    }
  }
  return false;
}

bool podAvailable(const json& pod, int64_t minReadySeconds, double now) {
  if (!podReady(pod)) {
    return false;
  }
  if (minReadySeconds <= 0) {
    return true;
  }
  const json conditions = pod["status"].value("conditions", json::array());
  for (const auto& c : conditions) {
    if (c.value("type", "") == "Ready") {
      double since = parseRfc3339(c.value("lastTransitionTime", ""));
      return since > 0 && now - since >= static_cast<double>(minReadySeconds);
    }
  }
  return false;
}

bool podActive(const json& pod) {
  std::string phase = pod.value("status", json::object()).value("phase", "");
  return phase != "Succeeded" && phase != "Failed" &&
         !pod["metadata"].contains("deletionTimestamp");
}

namespace {

const ResourceType* typeOf(const json& object) {
  return findKind(object.value("apiVersion", ""), object.value("kind", ""));
}

bool hasFinalizer(const json& meta, const char* name) {
  for (const auto& f : meta.value("finalizers", json::array())) {
    if (f == name) return true;
  }
  return false;
}

}  // namespace

GarbageCollector::GarbageCollector(ApiServer* api, Duration eventTtl)
    : api_(api),
      queue_(api->loop(), [this](const std::string& key) { check(key); }),
      eventTtl_(eventTtl) {}

GarbageCollector::~GarbageCollector() {
  if (watch_ != 0) {
    api_->store()->cancel(watch_);
  }
  api_->loop()->cancel(expiry_);
}

void GarbageCollector::expireEvents() {
  const ResourceType& events = *findResource("", "v1", "events");
  double cutoff = api_->now() - toSeconds(eventTtl_);
  for (const json& event : api_->list(events, "")) {
    const json meta = event.value("metadata", json::object());
    double last = parseRfc3339(event.value("lastTimestamp", std::string()));
    if (last >= 0 && last < cutoff) {
      api_->purge(events, meta.value("namespace", ""), meta.value("name", ""));
    }
  }
  // Looked at a few times within each TTL, and at least every minute.
  Duration every = std::min<Duration>(std::chrono::duration_cast<Duration>(eventTtl_ / 4),
                                      seconds(60));
  expiry_ = api_->loop()->after(std::max<Duration>(every, seconds(1)),
                                [this] { expireEvents(); });
}

void GarbageCollector::start() {
  expireEvents();
  watch_ = api_->store()
               ->watch("", 0,
                       [this](const WatchEvent& e) {
                         try {
                           onChange(e);
                         } catch (const std::exception& x) {
                           LOG(ERROR) << "Garbage collector: " << e.object.key << ": " << x.what();
                         }
                       })
               .object.version;
  for (const Object& o : api_->store()->list("")) {
    WatchEvent e;
    e.type = WatchEvent::kAdded;
    e.object = o;
    onChange(e);
  }
}

void GarbageCollector::onChange(const WatchEvent& event) {
  const std::string& key = event.object.key;
  const json& object = event.object.value;
  if (!object.is_object() || !object.contains("metadata")) {
    return;  // not an API object (the framework's own records)
  }
  const json& meta = object["metadata"];
  std::string uid = meta.value("uid", "");
  // Forget what the object said of its owners before; learn what it says now.
  for (const std::string& owner : ownersOf_[key]) {
    auto it = dependents_.find(owner);
    if (it != dependents_.end()) {
      it->second.erase(key);
      if (it->second.empty()) dependents_.erase(it);
    }
  }
  ownersOf_.erase(key);
  std::string ns = meta.value("namespace", "");
  if (event.type == WatchEvent::kDeleted) {
    byUid_.erase(uid);
    // Its dependents may now be orphans; its owners (foreground) may now be free to go; its
    // terminating namespace may now be empty.
    auto deps = dependents_.find(uid);
    if (deps != dependents_.end()) {
      for (const std::string& d : deps->second) queue_.add(d);
    }
    for (const auto& ref : meta.value("ownerReferences", json::array())) {
      auto owner = byUid_.find(ref.value("uid", ""));
      if (owner != byUid_.end()) queue_.add(owner->second);
    }
    if (!ns.empty() && terminating_.count(ns)) {
      queue_.add(findResource("", "v1", "namespaces")->key("", ns));
    }
    if (object.value("kind", "") == "Namespace") {
      terminating_.erase(meta.value("name", ""));
    }
    return;
  }
  byUid_[uid] = key;
  json refs = meta.value("ownerReferences", json::array());
  for (const auto& ref : refs) {
    std::string owner = ref.value("uid", "");
    ownersOf_[key].push_back(owner);
    dependents_[owner].insert(key);
  }
  if (!refs.empty() || meta.contains("deletionTimestamp")) {
    queue_.add(key);
  }
}

void GarbageCollector::deleteObject(const json& object, const std::string& policy) {
  const ResourceType* type = typeOf(object);
  if (type == nullptr) {
    return;
  }
  DeleteOptions options;
  options.propagationPolicy = policy;
  const json& meta = object["metadata"];
  api_->remove(*type, meta.value("namespace", ""), meta.value("name", ""), options);
}

void GarbageCollector::dropFinalizer(const json& object, const std::string& finalizer) {
  const ResourceType* type = typeOf(object);
  if (type == nullptr) {
    return;
  }
  json next = object;
  json kept = json::array();
  for (const auto& f : next["metadata"].value("finalizers", json::array())) {
    if (f != finalizer) kept.push_back(f);
  }
  next["metadata"]["finalizers"] = kept;
  const json& meta = object["metadata"];
  api_->update(*type, meta.value("namespace", ""), meta.value("name", ""), next, "", false, true);
}

void GarbageCollector::emptyNamespace(const json& nsObject) {
  std::string ns = nsObject["metadata"].value("name", "");
  terminating_.insert(ns);
  bool empty = true;
  for (const ResourceType& type : resourceTypes()) {
    if (!type.namespaced || !type.stored || !type.storageVersion) continue;
    for (const json& object : api_->list(type, ns)) {
      empty = false;
      if (!object["metadata"].contains("deletionTimestamp")) {
        deleteObject(object, "Background");
      }
    }
  }
  if (empty) {
    terminating_.erase(ns);
    api_->purge(*findResource("", "v1", "namespaces"), "", ns);
  }
}

void GarbageCollector::check(const std::string& key) {
  Outcome got = api_->store()->get(key);
  if (!got.ok()) {
    return;
  }
  json object = ApiServer::present(got.object);
  const json& meta = object["metadata"];
  std::string uid = meta.value("uid", "");
  json refs = meta.value("ownerReferences", json::array());
  if (!refs.empty() && !meta.contains("deletionTimestamp")) {
    bool anyOwner = false;
    for (const auto& ref : refs) {
      anyOwner = anyOwner || byUid_.count(ref.value("uid", "")) > 0;
    }
    if (!anyOwner) {
      // Its owners are all gone: it follows them (background propagation).
      deleteObject(object, "Background");
      return;
    }
  }
  if (!meta.contains("deletionTimestamp")) {
    return;
  }
  std::vector<std::string> mine;
  if (auto it = dependents_.find(uid); it != dependents_.end()) {
    mine.assign(it->second.begin(), it->second.end());
  }
  if (hasFinalizer(meta, "orphan")) {
    for (const std::string& d : mine) {
      Outcome dep = api_->store()->get(d);
      const ResourceType* type = dep.ok() ? typeOf(dep.object.value) : nullptr;
      if (type == nullptr) continue;
      json next = ApiServer::present(dep.object);
      json kept = json::array();
      for (const auto& ref : next["metadata"].value("ownerReferences", json::array())) {
        if (ref.value("uid", "") != uid) kept.push_back(ref);
      }
      next["metadata"]["ownerReferences"] = kept;
      const json& dm = next["metadata"];
      api_->update(*type, dm.value("namespace", ""), dm.value("name", ""), next, "", false,
                   true);
    }
    dropFinalizer(object, "orphan");
  } else if (hasFinalizer(meta, "foregroundDeletion")) {
    if (mine.empty()) {
      dropFinalizer(object, "foregroundDeletion");
    } else {
      for (const std::string& d : mine) {
        Outcome dep = api_->store()->get(d);
        if (dep.ok() && !dep.object.value["metadata"].contains("deletionTimestamp")) {
          deleteObject(dep.object.value, "Foreground");
        }
      }
    }
  }
  if (object.value("kind", "") == "Namespace") {
    emptyNamespace(object);
  }
}

}  // namespace agora::kube
