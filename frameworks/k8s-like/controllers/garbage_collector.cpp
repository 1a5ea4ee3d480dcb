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

GarbageCollector::GarbageCollector(ApiServer* api) : api_(api) {}

GarbageCollector::~GarbageCollector() {
  *alive_ = false;
  if (watch_ != 0) {
    api_->store()->cancel(watch_);
  }
}

void GarbageCollector::start() {
  Outcome w = api_->store()->watch("", 0, [this](const WatchEvent&) { schedule(); });
  watch_ = w.object.version;
  schedule();
}

void GarbageCollector::schedule() {
  if (scheduled_) {
    return;
  }
  scheduled_ = true;
  std::weak_ptr<bool> alive = alive_;
  // Coalesced: a burst of changes costs one sweep.
  api_->loop()->after(milliseconds(50), [this, alive] {
    if (alive.lock()) {
      scheduled_ = false;
      try {
        sweep();
      } catch (const std::exception& e) {
        LOG(ERROR) << "Garbage collection: " << e.what();
      }
    }
  });
}

void GarbageCollector::sweep() {
  std::vector<Object> all = api_->store()->list("");
  std::set<std::string> uids;
  std::map<std::string, std::vector<const Object*>> dependents;  // owner uid -> objects
  for (const Object& o : all) {
    const json& meta = o.value["metadata"];
    uids.insert(meta.value("uid", ""));
    for (const auto& ref : meta.value("ownerReferences", json::array())) {
      dependents[ref.value("uid", "")].push_back(&o);
    }
  }
  auto typeOf = [](const json& object) {
    return findKind(object.value("apiVersion", ""), object.value("kind", ""));
  };
  auto deleteObject = [&](const json& object, const std::string& policy) {
    const ResourceType* type = typeOf(object);
    if (type == nullptr) {
      return;
    }
    DeleteOptions options;
    options.propagationPolicy = policy;
    const json& meta = object["metadata"];
    api_->remove(*type, meta.value("namespace", ""), meta.value("name", ""), options);
  };
  auto dropFinalizer = [&](const Object& o, const std::string& finalizer) {
    const ResourceType* type = typeOf(o.value);
    if (type == nullptr) {
      return;
    }
    json next = ApiServer::present(o);
    json kept = json::array();
    for (const auto& f : next["metadata"].value("finalizers", json::array())) {
      if (f != finalizer) {
        kept.push_back(f);
      }
    }
    next["metadata"]["finalizers"] = kept;
    const json& meta = o.value["metadata"];
    api_->update(*type, meta.value("namespace", ""), meta.value("name", ""), next, "", false,
                 true);
  };
  const ResourceType* namespaces = findResource("", "v1", "namespaces");
  for (const Object& o : all) {
    const json& meta = o.value["metadata"];
    std::string uid = meta.value("uid", "");
    // Dependents whose owners are all gone follow them (background propagation).
    json refs = meta.value("ownerReferences", json::array());
    if (!refs.empty() && !meta.contains("deletionTimestamp")) {
      bool anyOwner = false;
      for (const auto& ref : refs) {
        anyOwner = anyOwner || uids.count(ref.value("uid", "")) > 0;
      }
      if (!anyOwner) {
        deleteObject(o.value, "Background");
        continue;
      }
    }
    if (!meta.contains("deletionTimestamp")) {
      continue;
    }
    json finalizers = meta.value("finalizers", json::array());
    auto has = [&](const char* f) {
      return std::find(finalizers.begin(), finalizers.end(), f) != finalizers.end();
    };
    auto& mine = dependents[uid];
    if (has("orphan")) {
      for (const Object* d : mine) {
        const ResourceType* type = typeOf(d->value);
        if (type == nullptr) continue;
        json next = ApiServer::present(*d);
        json kept = json::array();
        for (const auto& ref : next["metadata"].value("ownerReferences", json::array())) {
          if (ref.value("uid", "") != uid) kept.push_back(ref);
        }
        next["metadata"]["ownerReferences"] = kept;
        const json& dm = d->value["metadata"];
        api_->update(*type, dm.value("namespace", ""), dm.value("name", ""), next, "", false,
                     true);
      }
      dropFinalizer(o, "orphan");
    } else if (has("foregroundDeletion")) {
      if (mine.empty()) {
        dropFinalizer(o, "foregroundDeletion");
      } else {
        for (const Object* d : mine) {
          if (!d->value["metadata"].contains("deletionTimestamp")) {
            deleteObject(d->value, "Foreground");
          }
        }
      }
    }
    if (o.value.value("kind", "") == "Namespace") {
      // Empty it, then let it go.
      std::string name = meta.value("name", "");
      bool empty = true;
      for (const Object& other : all) {
        const json& om = other.value["metadata"];
        if (om.value("namespace", "") == name && other.value.value("kind", "") != "Namespace") {
          empty = false;
          if (!om.contains("deletionTimestamp")) {
            deleteObject(other.value, "Background");
          }
        }
      }
      if (empty) {
        api_->purge(*namespaces, "", name);
      }
    }
  }
}

}  // namespace agora::kube
