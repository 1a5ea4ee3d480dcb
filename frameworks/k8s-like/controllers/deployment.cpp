// The Deployment controller: rollouts as ReplicaSets, one per pod template.

#include <algorithm>
#include <cmath>
#include <set>

#include <glog/logging.h>

#include "frameworks/k8s-like/apiserver/selectors.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"
#include "frameworks/k8s-like/controllers/controllers.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

constexpr const char* kRevision = "deployment.kubernetes.io/revision";
constexpr const char* kDesired = "deployment.kubernetes.io/desired-replicas";
constexpr const char* kMaxReplicas = "deployment.kubernetes.io/max-replicas";
constexpr const char* kHashLabel = "pod-template-hash";
constexpr const char* kAutoRevert = "agora.io/auto-revert";
constexpr const char* kComponent = "deployment-controller";

const ResourceType& deploymentsType() { return *findResource("apps", "v1", "deployments"); }
const ResourceType& replicaSetsType() { return *findResource("apps", "v1", "replicasets"); }

// Nulls say "unset" (kubectl's rollback writes "creationTimestamp": null): not a difference.
void dropNulls(json& value) {
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end();) {
      if (it->is_null()) {
        it = value.erase(it);
      } else {
        dropNulls(*it);
        ++it;
      }
    }
  } else if (value.is_array()) {
    for (auto& item : value) dropNulls(item);
  }
}

json withoutHash(json tmpl) {
  dropNulls(tmpl);
  if (tmpl.contains("metadata") && tmpl["metadata"].contains("labels")) {
    tmpl["metadata"]["labels"].erase(kHashLabel);
    if (tmpl["metadata"]["labels"].empty()) {
      tmpl["metadata"].erase("labels");
    }
  }
  return tmpl;
}

// FNV-1a over the template, written with Kubernetes' safe alphabet (no vowels, no look-alikes).
std::string templateHash(const json& tmpl) {
  uint32_t h = 2166136261u;
  for (unsigned char c : withoutHash(tmpl).dump()) {
    h ^= c;
    h *= 16777619u;
  }
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string digits = std::to_string(h);
  std::string out;
  for (char c : digits) {
    out += kAlphabet[static_cast<unsigned char>(c) % (sizeof(kAlphabet) - 1)];
  }
  return out;
}

int64_t revisionOf(const json& object) {
  std::string r = object["metadata"].value("annotations", json::object()).value(kRevision, "");
  return r.empty() ? 0 : std::atoll(r.c_str());
}

// maxSurge / maxUnavailable: an int, or a percentage of `replicas` rounded up (surge) or down.
int64_t resolve(const json& value, int64_t replicas, bool roundUp) {
  if (value.is_number_integer()) {
    return value.get<int64_t>();
  }
  if (value.is_string()) {
    std::string s = value.get<std::string>();
    if (!s.empty() && s.back() == '%') {
      double percent = std::atof(s.substr(0, s.size() - 1).c_str());
      double exact = percent * static_cast<double>(replicas) / 100.0;
      return static_cast<int64_t>(roundUp ? std::ceil(exact) : std::floor(exact));
    }
    return std::atoll(s.c_str());
  }
  return 0;
}

int64_t specReplicas(const json& rs) { return rs["spec"].value("replicas", int64_t{0}); }
int64_t statusOf(const json& rs, const char* field) {
  return rs.value("status", json::object()).value(field, int64_t{0});
}

json condition(const std::string& type, const std::string& status, const std::string& reason,
               const std::string& message, const std::string& now) {
  return {{"type", type},         {"status", status},         {"reason", reason},
          {"message", message},   {"lastUpdateTime", now},    {"lastTransitionTime", now}};
}

}  // namespace

DeploymentController::DeploymentController(ApiServer* api)
    : api_(api), queue_(api->loop(), [this](const std::string& key) { sync(key); }) {}

DeploymentController::~DeploymentController() {
  if (deploymentWatch_ != 0) api_->store()->cancel(deploymentWatch_);
  if (rsWatch_ != 0) api_->store()->cancel(rsWatch_);
  if (podWatch_ != 0) api_->store()->cancel(podWatch_);
}

void DeploymentController::start() {
  deploymentWatch_ = api_->store()
                         ->watch(deploymentsType().keyPrefix(), 0,
                                 [this](const WatchEvent& e) {
                                   queue_.add(namespacedName(e.object.value));
                                 })
                         .object.version;
  rsWatch_ = api_->store()
                 ->watch(replicaSetsType().keyPrefix(), 0,
                         [this](const WatchEvent& e) {
                           const json& meta = e.object.value["metadata"];
                           for (const auto& ref : meta.value("ownerReferences", json::array())) {
                             if (ref.value("kind", "") == "Deployment") {
                               queue_.add(meta.value("namespace", "") + "/" +
                                          ref.value("name", ""));
                             }
                           }
                         })
                 .object.version;
  // A pod gone may be what a Recreate rollout waits for.
  podWatch_ = api_->store()
                  ->watch(findResource("", "v1", "pods")->keyPrefix(), 0,
                          [this](const WatchEvent& e) {
                            if (e.type != WatchEvent::kDeleted) return;
                            const json& meta = e.object.value["metadata"];
                            std::string ns = meta.value("namespace", "");
                            for (const auto& ref : meta.value("ownerReferences", json::array())) {
                              if (ref.value("kind", "") != "ReplicaSet") continue;
                              ApiOutcome rs = api_->get(replicaSetsType(), ns,
                                                        ref.value("name", ""));
                              if (!rs.ok()) continue;
                              for (const auto& owner :
                                   rs.object["metadata"].value("ownerReferences", json::array())) {
                                if (owner.value("kind", "") == "Deployment") {
                                  queue_.add(ns + "/" + owner.value("name", ""));
                                }
                              }
                            }
                          })
                  .object.version;
  for (const json& d : api_->list(deploymentsType(), "")) {
    queue_.add(namespacedName(d));
  }
}

void DeploymentController::sync(const std::string& key) {
  size_t slash = key.find('/');
  std::string ns = key.substr(0, slash);
  std::string name = key.substr(slash + 1);
  ApiOutcome got = api_->get(deploymentsType(), ns, name);
  if (!got.ok() || got.object["metadata"].contains("deletionTimestamp")) {
    return;
  }
  json d = got.object;
  const json& spec = d["spec"];
  std::string uid = d["metadata"].value("uid", "");
  int64_t replicas = spec.value("replicas", int64_t{1});
  auto selector = LabelSelector::fromObject(spec.value("selector", json::object()));
  if (!selector || selector->empty()) {
    return;
  }
  std::string now = rfc3339(api_->now());

  // The ReplicaSets it controls (adopting orphans that match), the new one and the old ones.
  std::vector<json> all;
  for (json& rs : api_->list(replicaSetsType(), ns)) {
    std::string owner = controllerUid(rs);
    if (owner.empty() && selector->matches(rs["metadata"].value("labels", json::object()))) {
      json refs = rs["metadata"].value("ownerReferences", json::array());
      refs.push_back(controllerReference(d));
      rs["metadata"]["ownerReferences"] = refs;
      ApiOutcome adopted = api_->update(replicaSetsType(), ns, rs["metadata"].value("name", ""),
                                        rs, "", false, true);
      if (adopted.ok()) {
        all.push_back(adopted.object);
      }
    } else if (owner == uid) {
      all.push_back(rs);
    }
  }
  json tmpl = spec.value("template", json::object());
  int64_t maxRevision = 0;
  std::optional<json> newRs;
  std::vector<json> old;
  for (const json& rs : all) {
    maxRevision = std::max(maxRevision, revisionOf(rs));
  }
  for (const json& rs : all) {
    if (!newRs && withoutHash(rs["spec"].value("template", json::object())) == withoutHash(tmpl)) {
      newRs = rs;
    } else {
      old.push_back(rs);
    }
  }
  std::sort(old.begin(), old.end(),
            [](const json& a, const json& b) { return revisionOf(a) < revisionOf(b); });
  std::string strategy = spec.value("strategy", json::object()).value("type", "RollingUpdate");
  json rolling = spec.value("strategy", json::object()).value("rollingUpdate", json::object());
  int64_t maxSurge = strategy == "RollingUpdate"
                         ? resolve(rolling.value("maxSurge", json("25%")), replicas, true) : 0;
  int64_t maxUnavailable =
      strategy == "RollingUpdate"
          ? resolve(rolling.value("maxUnavailable", json("25%")), replicas, false) : 0;
  if (strategy == "RollingUpdate" && maxSurge == 0 && maxUnavailable == 0) {
    maxUnavailable = 1;
  }
  bool paused = spec.value("paused", false);

  auto scale = [&](json& rs, int64_t to, const char* verb) {
    int64_t from = specReplicas(rs);
    json next = rs;
    next["spec"]["replicas"] = to;
    next["metadata"]["annotations"][kDesired] = std::to_string(replicas);
    next["metadata"]["annotations"][kMaxReplicas] = std::to_string(replicas + maxSurge);
    if (from == to && next["metadata"]["annotations"] == rs["metadata"]["annotations"]) {
      return;
    }
    ApiOutcome scaled = api_->update(replicaSetsType(), ns, rs["metadata"].value("name", ""),
                                     next, "", false, true);
    if (scaled.ok()) {
      rs = scaled.object;
      if (from != to) {
        api_->recordEvent(d, "Normal", "ScalingReplicaSet",
                          std::string("Scaled ") + verb + " replica set " +
                              rs["metadata"].value("name", "") + " to " + std::to_string(to) +
                              " from " + std::to_string(from),
                          kComponent);
      }
    }
  };

  bool created = false;
  if (!newRs && !paused) {
    std::string hash = templateHash(tmpl);
    json labels = tmpl.value("metadata", json::object()).value("labels", json::object());
    labels[kHashLabel] = hash;
    json rsTemplate = tmpl;
    rsTemplate["metadata"]["labels"] = labels;
    json rsSelector = spec["selector"];
    rsSelector["matchLabels"][kHashLabel] = hash;
    int64_t initial = 0;
    if (strategy == "RollingUpdate") {
      int64_t total = 0;
      for (const json& rs : old) total += specReplicas(rs);
      initial = old.empty() ? replicas
                            : std::max<int64_t>(0, std::min(replicas, replicas + maxSurge - total));
    }
    json rs = {{"apiVersion", "apps/v1"},
               {"kind", "ReplicaSet"},
               {"metadata",
                {{"name", name + "-" + hash},
                 {"namespace", ns},
                 {"labels", labels},
                 {"annotations",
                  {{kRevision, std::to_string(maxRevision + 1)},
                   {kDesired, std::to_string(replicas)},
                   {kMaxReplicas, std::to_string(replicas + maxSurge)}}},
                 {"ownerReferences", json::array({controllerReference(d)})}}},
               {"spec",
                {{"replicas", initial},
                 {"minReadySeconds", spec.value("minReadySeconds", 0)},
                 {"selector", rsSelector},
                 {"template", rsTemplate}}}};
    std::string cause = d["metadata"].value("annotations", json::object())
                            .value("kubernetes.io/change-cause", "");
    if (!cause.empty()) {
      rs["metadata"]["annotations"]["kubernetes.io/change-cause"] = cause;
    }
    ApiOutcome made = api_->create(replicaSetsType(), ns, rs);
    if (!made.ok()) {
      LOG(WARNING) << "Deployment " << key << ": cannot make its ReplicaSet: "
                   << made.error->message;
      return;
    }
    newRs = made.object;
    created = true;
    api_->recordEvent(d, "Normal", "ScalingReplicaSet",
                      "Scaled up replica set " + name + "-" + hash + " to " +
                          std::to_string(initial),
                      kComponent);
  } else if (newRs && revisionOf(*newRs) < maxRevision && !paused) {
    // A template seen before (a rollback): it becomes the newest revision again.
    json next = *newRs;
    next["metadata"]["annotations"][kRevision] = std::to_string(maxRevision + 1);
    ApiOutcome bumped = api_->update(replicaSetsType(), ns, next["metadata"].value("name", ""),
                                     next, "", false, true);
    if (bumped.ok()) newRs = bumped.object;
  }

  // A scale mid-rollout: every active ReplicaSet grows or shrinks in proportion to its size,
  // within replicas + maxSurge, as Kubernetes' proportional scaling does; the rollout then goes
  // on from there.
  std::vector<json*> active;
  if (newRs && specReplicas(*newRs) > 0) active.push_back(&*newRs);
  for (json& rs : old) {
    if (specReplicas(rs) > 0) active.push_back(&rs);
  }
  bool scaled = false;
  for (json* rs : active) {
    std::string desired =
        (*rs)["metadata"].value("annotations", json::object()).value(kDesired, "");
    scaled = scaled || (!desired.empty() && std::atoll(desired.c_str()) != replicas);
  }
  if (active.size() > 1 && scaled) {
    int64_t allowed = replicas + maxSurge;
    int64_t current = 0;
    for (json* rs : active) current += specReplicas(*rs);
    int64_t toAdd = allowed - current;
    std::sort(active.begin(), active.end(), [&](json* a, json* b) {
      return toAdd > 0 ? specReplicas(*a) > specReplicas(*b)
                       : specReplicas(*a) < specReplicas(*b);
    });
    std::vector<int64_t> sizes;
    int64_t added = 0;
    for (json* rs : active) {
      std::string was =
          (*rs)["metadata"].value("annotations", json::object()).value(kMaxReplicas, "");
      int64_t before = was.empty() ? current : std::max<int64_t>(1, std::atoll(was.c_str()));
      int64_t share = static_cast<int64_t>(std::llround(
                          static_cast<double>(specReplicas(*rs)) * static_cast<double>(allowed) /
                          static_cast<double>(before))) - specReplicas(*rs);
      share = toAdd > 0 ? std::min(share, toAdd - added) : std::max(share, toAdd - added);
      added += share;
      sizes.push_back(std::max<int64_t>(0, specReplicas(*rs) + share));
    }
    if (!sizes.empty()) sizes[0] = std::max<int64_t>(0, sizes[0] + (toAdd - added));
    for (size_t i = 0; i < active.size(); ++i) {
      scale(*active[i], sizes[i], sizes[i] > specReplicas(*active[i]) ? "up" : "down");
    }
  } else if (newRs && !paused) {
    json& fresh = *newRs;
    if (strategy == "Recreate") {
      // Recreate: the new pods start only once every old pod is gone (terminating ones too).
      bool oldRunning = false;
      std::set<std::string> oldUids;
      for (json& rs : old) {
        scale(rs, 0, "down");
        oldUids.insert(rs["metadata"].value("uid", ""));
      }
      for (const json& pod : api_->list(*findResource("", "v1", "pods"), ns)) {
        std::string phase = pod.value("status", json::object()).value("phase", "");
        if (oldUids.count(controllerUid(pod)) && phase != "Succeeded" && phase != "Failed") {
          oldRunning = true;
        }
      }
      if (!oldRunning) {
        scale(fresh, replicas, specReplicas(fresh) < replicas ? "up" : "down");
      }
    } else {
      int64_t total = specReplicas(fresh);
      for (const json& rs : old) total += specReplicas(rs);
      // Scale up the new one within maxSurge.
      if (specReplicas(fresh) > replicas) {
        scale(fresh, replicas, "down");
      } else if (specReplicas(fresh) < replicas) {
        int64_t room = replicas + maxSurge - total;
        if (room > 0) {
          int64_t to = std::min(replicas, specReplicas(fresh) + room);
          total += to - specReplicas(fresh);
          scale(fresh, to, "up");
        }
      }
      // Scale down the old ones while keeping replicas - maxUnavailable available.
      int64_t minAvailable = replicas - maxUnavailable;
      int64_t newUnavailable = specReplicas(fresh) - statusOf(fresh, "availableReplicas");
      int64_t budget = total - minAvailable - newUnavailable;
      // Old pods that are not available anyway go first.
      for (json& rs : old) {
        if (budget <= 0) break;
        int64_t unhealthy = specReplicas(rs) - statusOf(rs, "availableReplicas");
        int64_t cut = std::min(budget, std::max<int64_t>(0, unhealthy));
        if (cut > 0) {
          scale(rs, specReplicas(rs) - cut, "down");
          budget -= cut;
        }
      }
      int64_t availableNow = statusOf(fresh, "availableReplicas");
      for (const json& rs : old) availableNow += statusOf(rs, "availableReplicas");
      int64_t canRemove = std::min(budget, availableNow - minAvailable);
      for (json& rs : old) {
        if (canRemove <= 0) break;
        int64_t cut = std::min(canRemove, specReplicas(rs));
        if (cut > 0) {
          scale(rs, specReplicas(rs) - cut, "down");
          canRemove -= cut;
        }
      }
    }
  } else if (paused && newRs) {
    // Paused: only follow scaling, on the current ReplicaSet.
    bool rolling = false;
    for (const json& rs : old) rolling = rolling || specReplicas(rs) > 0;
    if (!rolling) scale(*newRs, replicas, specReplicas(*newRs) < replicas ? "up" : "down");
  }

  // History: old, empty ReplicaSets beyond revisionHistoryLimit go, oldest first.
  int64_t limit = spec.value("revisionHistoryLimit", int64_t{10});
  std::vector<json> empty;
  for (const json& rs : old) {
    if (specReplicas(rs) == 0 && statusOf(rs, "replicas") == 0) empty.push_back(rs);
  }
  for (size_t i = 0; static_cast<int64_t>(empty.size() - i) > limit; ++i) {
    api_->remove(replicaSetsType(), ns, empty[i]["metadata"].value("name", ""), DeleteOptions{});
  }

  // Status and conditions.
  int64_t total = 0, ready = 0, available = 0, updated = 0, oldPods = 0;
  for (const json& rs : old) {
    total += statusOf(rs, "replicas");
    ready += statusOf(rs, "readyReplicas");
    available += statusOf(rs, "availableReplicas");
    oldPods += statusOf(rs, "replicas");
  }
  if (newRs) {
    total += statusOf(*newRs, "replicas");
    ready += statusOf(*newRs, "readyReplicas");
    available += statusOf(*newRs, "availableReplicas");
    updated = statusOf(*newRs, "replicas");
  }
  json status = d.value("status", json::object());
  json previous = status;
  status["observedGeneration"] = d["metadata"].value("generation", int64_t{1});
  status["replicas"] = total;
  status["updatedReplicas"] = updated;
  status["readyReplicas"] = ready;
  status["availableReplicas"] = available;
  status["unavailableReplicas"] = std::max<int64_t>(0, replicas - available);
  json conditions = status.value("conditions", json::array());
  auto find = [&](const std::string& type) -> json* {
    for (auto& c : conditions) {
      if (c.value("type", "") == type) return &c;
    }
    return nullptr;
  };
  auto set = [&](const std::string& type, const std::string& value, const std::string& reason,
                 const std::string& message) {
    json* c = find(type);
    if (c == nullptr) {
      conditions.push_back(condition(type, value, reason, message, now));
      return;
    }
    if (c->value("status", "") != value) (*c)["lastTransitionTime"] = now;
    if (c->value("reason", "") != reason || c->value("message", "") != message ||
        c->value("status", "") != value) {
      (*c)["lastUpdateTime"] = now;
    }
    (*c)["status"] = value;
    (*c)["reason"] = reason;
    (*c)["message"] = message;
  };
  bool availableEnough = available >= replicas - maxUnavailable;
  set("Available", availableEnough ? "True" : "False",
      availableEnough ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
      availableEnough ? "Deployment has minimum availability."
                      : "Deployment does not have minimum availability.");
  std::string rsName = newRs ? (*newRs)["metadata"].value("name", "") : "";
  bool complete = newRs && updated == replicas && available == replicas && oldPods == 0 &&
                  specReplicas(*newRs) == replicas;
  bool progressed = previous.value("updatedReplicas", -1) != updated ||
                    previous.value("availableReplicas", -1) != available ||
                    previous.value("readyReplicas", -1) != ready || created;
  int64_t deadline = spec.value("progressDeadlineSeconds", int64_t{600});
  json* progressing = find("Progressing");
  bool exceeded = progressing && progressing->value("reason", "") == "ProgressDeadlineExceeded";
  if (paused) {
    set("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused");
  } else if (complete) {
    set("Progressing", "True", "NewReplicaSetAvailable",
        "ReplicaSet \"" + rsName + "\" has successfully progressed.");
  } else if (progressed || !progressing || progressing->value("reason", "") == "DeploymentPaused") {
    set("Progressing", "True", created ? "NewReplicaSetCreated" : "ReplicaSetUpdated",
        created ? "Created new replica set \"" + rsName + "\""
                : "ReplicaSet \"" + rsName + "\" is progressing.");
    queue_.addAfter(key, seconds(deadline) + milliseconds(100));
  } else if (!exceeded && progressing) {
    double since = parseRfc3339(progressing->value("lastUpdateTime", ""));
    if (since > 0 && api_->now() - since > static_cast<double>(deadline)) {
      set("Progressing", "False", "ProgressDeadlineExceeded",
          "ReplicaSet \"" + rsName + "\" has timed out progressing.");
      api_->recordEvent(d, "Warning", "ProgressDeadlineExceeded",
                        "Deployment \"" + name + "\" has timed out progressing.", kComponent);
      exceeded = true;
      if (d["metadata"].value("annotations", json::object()).value(kAutoRevert, "") == "true" &&
          !old.empty()) {
        // Opt-in: roll back to the previous revision's template.
        json previousTemplate = withoutHash(old.back()["spec"].value("template", json::object()));
        json next = d;
        next["spec"]["template"] = previousTemplate;
        ApiOutcome reverted = api_->update(deploymentsType(), ns, name, next, "", false, true);
        if (reverted.ok()) {
          api_->recordEvent(d, "Warning", "RolledBack",
                            "Rolled back to revision " + std::to_string(revisionOf(old.back())) +
                                " after the progress deadline was exceeded",
                            kComponent);
          return;
        }
      }
    } else if (since > 0) {
      queue_.addAfter(key, seconds(deadline) + milliseconds(100));
    }
  }
  status["conditions"] = conditions;
  json next = d;
  if (newRs) {
    next["metadata"]["annotations"][kRevision] = std::to_string(revisionOf(*newRs));
  }
  if (next["metadata"].value("annotations", json::object()) !=
      d["metadata"].value("annotations", json::object())) {
    ApiOutcome annotated = api_->update(deploymentsType(), ns, name, next, "", false, true);
    if (!annotated.ok()) return;
    next = annotated.object;
  }
  if (status != previous) {
    next["status"] = status;
    api_->update(deploymentsType(), ns, name, next, "status", false, true);
  }
}

}  // namespace agora::kube
