// The ReplicaSet controller: spec.replicas pods from the template, no more, no fewer.

#include <algorithm>

#include <glog/logging.h>

#include "frameworks/k8s-like/apiserver/selectors.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"
#include "frameworks/k8s-like/controllers/controllers.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

const ResourceType& podsType() { return *findResource("", "v1", "pods"); }
const ResourceType& replicaSetsType() { return *findResource("apps", "v1", "replicasets"); }

int64_t restarts(const json& pod) {
  int64_t n = 0;
  for (const auto& c : pod.value("status", json::object()).value("containerStatuses",
                                                                  json::array())) {
    n += c.value("restartCount", 0);
  }
  return n;
}

// Kubernetes' order for scaling down: pods not yet on a node, then pending, then not ready,
// then those that restarted more, then the newest.
bool deleteFirst(const json& a, const json& b) {
  auto assigned = [](const json& p) { return !p["spec"].value("nodeName", "").empty(); };
  if (assigned(a) != assigned(b)) {
    return !assigned(a);
  }
  auto rank = [](const json& p) {
    std::string phase = p.value("status", json::object()).value("phase", "Pending");
    return phase == "Pending" ? 0 : phase == "Unknown" ? 1 : 2;
  };
  if (rank(a) != rank(b)) {
    return rank(a) < rank(b);
  }
  if (podReady(a) != podReady(b)) {
    return !podReady(a);
  }
  if (restarts(a) != restarts(b)) {
    return restarts(a) > restarts(b);
  }
  return a["metadata"].value("creationTimestamp", "") > b["metadata"].value("creationTimestamp", "");
}

}  // namespace

ReplicaSetController::ReplicaSetController(ApiServer* api)
    : api_(api), queue_(api->loop(), [this](const std::string& key) { sync(key); }) {}

ReplicaSetController::~ReplicaSetController() {
  if (rsWatch_ != 0) api_->store()->cancel(rsWatch_);
  if (podWatch_ != 0) api_->store()->cancel(podWatch_);
}

void ReplicaSetController::start() {
  rsWatch_ = api_->store()
                 ->watch(replicaSetsType().keyPrefix(), 0,
                         [this](const WatchEvent& e) {
                           queue_.add(namespacedName(e.object.value));
                         })
                 .object.version;
  podWatch_ = api_->store()
                  ->watch(podsType().keyPrefix(), 0,
                          [this](const WatchEvent& e) { onPod(e.object.value); })
                  .object.version;
  for (const json& rs : api_->list(replicaSetsType(), "")) {
    queue_.add(namespacedName(rs));
  }
}

void ReplicaSetController::onPod(const json& pod) {
  const json& meta = pod["metadata"];
  for (const auto& ref : meta.value("ownerReferences", json::array())) {
    if (ref.value("kind", "") == "ReplicaSet") {
      queue_.add(meta.value("namespace", "") + "/" + ref.value("name", ""));
      return;
    }
  }
  // An orphan may be adopted by a ReplicaSet whose selector matches it.
  std::string ns = meta.value("namespace", "");
  for (const json& rs : api_->list(replicaSetsType(), ns)) {
    auto selector = LabelSelector::fromObject(rs["spec"].value("selector", json::object()));
    if (selector && !selector->empty() &&
        selector->matches(meta.value("labels", json::object()))) {
      queue_.add(namespacedName(rs));
    }
  }
}

void ReplicaSetController::sync(const std::string& key) {
  size_t slash = key.find('/');
  std::string ns = key.substr(0, slash);
  std::string name = key.substr(slash + 1);
  ApiOutcome got = api_->get(replicaSetsType(), ns, name);
  if (!got.ok()) {
    return;  // gone: the garbage collector takes its pods
  }
  json rs = got.object;
  const json& meta = rs["metadata"];
  if (meta.contains("deletionTimestamp")) {
    return;
  }
  std::string uid = meta.value("uid", "");
  auto selector = LabelSelector::fromObject(rs["spec"].value("selector", json::object()));
  if (!selector || selector->empty()) {
    return;
  }
  int64_t replicas = rs["spec"].value("replicas", int64_t{1});
  int64_t minReady = rs["spec"].value("minReadySeconds", int64_t{0});
  std::vector<json> owned;
  for (json& pod : api_->list(podsType(), ns)) {
    json& pm = pod["metadata"];
    std::string owner = controllerUid(pod);
    bool matches = selector->matches(pm.value("labels", json::object()));
    if (owner.empty() && matches && podActive(pod)) {
      // Adopt it.
      json refs = pm.value("ownerReferences", json::array());
      refs.push_back(controllerReference(rs));
      pm["ownerReferences"] = refs;
      ApiOutcome adopted = api_->update(podsType(), ns, pm.value("name", ""), pod, "", false,
                                        true);
      if (adopted.ok()) {
        owned.push_back(adopted.object);
      }
    } else if (owner == uid) {
      owned.push_back(pod);
    }
  }
  std::vector<json> active;
  for (const json& pod : owned) {
    if (podActive(pod)) {
      active.push_back(pod);
    }
  }
  int64_t diff = static_cast<int64_t>(active.size()) - replicas;
  if (diff < 0) {
    json tmpl = rs["spec"].value("template", json::object());
    json tmeta = tmpl.value("metadata", json::object());
    for (int64_t i = 0; i < -diff; ++i) {
      json pod = {{"apiVersion", "v1"},
                  {"kind", "Pod"},
                  {"metadata",
                   {{"generateName", name + "-"},
                    {"namespace", ns},
                    {"labels", tmeta.value("labels", json::object())},
                    {"ownerReferences", json::array({controllerReference(rs)})}}},
                  {"spec", tmpl.value("spec", json::object())}};
      if (tmeta.contains("annotations")) {
        pod["metadata"]["annotations"] = tmeta["annotations"];
      }
      ApiOutcome created = api_->create(podsType(), ns, pod);
      if (!created.ok()) {
        api_->recordEvent(rs, "Warning", "FailedCreate",
                          "Error creating: " + created.error->message, "replicaset-controller");
        break;
      }
      active.push_back(created.object);
      api_->recordEvent(rs, "Normal", "SuccessfulCreate",
                        "Created pod: " + created.object["metadata"].value("name", ""),
                        "replicaset-controller");
    }
  } else if (diff > 0) {
    std::sort(active.begin(), active.end(), deleteFirst);
    for (int64_t i = 0; i < diff; ++i) {
      const json& pm = active[static_cast<size_t>(i)]["metadata"];
      api_->remove(podsType(), ns, pm.value("name", ""), DeleteOptions{});
      api_->recordEvent(rs, "Normal", "SuccessfulDelete",
                        "Deleted pod: " + pm.value("name", ""), "replicaset-controller");
    }
    active.erase(active.begin(), active.begin() + diff);
  }
  int64_t ready = 0;
  int64_t available = 0;
  bool waitingForAvailable = false;
  for (const json& pod : active) {
    ready += podReady(pod) ? 1 : 0;
    bool isAvailable = podAvailable(pod, minReady, api_->now());
    available += isAvailable ? 1 : 0;
    waitingForAvailable = waitingForAvailable || (podReady(pod) && !isAvailable);
  }
  if (waitingForAvailable) {
    queue_.addAfter(key, seconds(1));
  }
  json status = {{"replicas", static_cast<int64_t>(active.size())},
                 {"fullyLabeledReplicas", static_cast<int64_t>(active.size())},
                 {"readyReplicas", ready},
                 {"availableReplicas", available},
                 {"observedGeneration", meta.value("generation", int64_t{1})}};
  if (rs.value("status", json::object()) != status) {
    json next = rs;
    next["status"] = status;
    api_->update(replicaSetsType(), ns, name, next, "status", false, true);
  }
}

}  // namespace agora::kube
