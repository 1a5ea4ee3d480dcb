#pragma once

// The kube framework's controllers, on the API server's loop: each watches the store, queues
// the keys of what changed, and brings the world to what the objects ask for (level-triggered:
// a sync reads the current state, never the event).
//
// - GarbageCollector: deletes objects whose owners are gone (ownerReferences), carries out
//   Foreground and Orphan deletion (their finalizers), and empties terminating namespaces.
// - ReplicaSetController: keeps spec.replicas pods from the template, adopts matching orphans,
//   scales down in Kubernetes' order, reports status.
// - DeploymentController: one ReplicaSet per template (pod-template-hash), RollingUpdate with
//   maxSurge/maxUnavailable or Recreate, revisions and history, pause, the Progressing and
//   Available conditions with progressDeadlineSeconds, and the opt-in auto-revert.
// - EndpointsController: Endpoints and an EndpointSlice for each Service with a selector, from
//   the pods it selects (ready ones serve; terminating ones drain).
// - ProxyDaemonController: the service proxy pod on every node, and the ingress address.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/loop.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"

namespace agora::kube {

// Keys to sync, each at most once per pass however often it changed.
class WorkQueue {
 public:
  WorkQueue(Loop* loop, std::function<void(const std::string&)> sync);
  ~WorkQueue();
  void add(const std::string& key);
  void addAfter(const std::string& key, Duration delay);

 private:
  void drain();

  Loop* loop_;
  std::function<void(const std::string&)> sync_;
  std::set<std::string> dirty_;
  bool scheduled_ = false;
  std::map<std::string, TimerId> delayed_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class GarbageCollector {
 public:
  // Events older than `eventTtl` (by their last time) go too, as the kube-apiserver's
  // --event-ttl has them go.
  explicit GarbageCollector(ApiServer* api, Duration eventTtl = std::chrono::hours(1));
  ~GarbageCollector();
  void start();

 private:
  void expireEvents();

  void onChange(const WatchEvent& event);
  void check(const std::string& key);
  void deleteObject(const nlohmann::json& object, const std::string& policy);
  void dropFinalizer(const nlohmann::json& object, const std::string& finalizer);
  void emptyNamespace(const nlohmann::json& ns);

  ApiServer* api_;
  WorkQueue queue_;  // store keys to look at
  uint64_t watch_ = 0;
  // Indexes kept from the store's changes: every object's uid, and the dependents of each
  // owner uid (what ownerReferences point at).
  std::map<std::string, std::string> byUid_;                   // uid -> key
  std::map<std::string, std::set<std::string>> dependents_;    // owner uid -> keys
  std::map<std::string, std::vector<std::string>> ownersOf_;   // key -> owner uids
  std::set<std::string> terminating_;                          // namespaces being deleted
  Duration eventTtl_;
  TimerId expiry_ = 0;
};

class ReplicaSetController {
 public:
  explicit ReplicaSetController(ApiServer* api);
  ~ReplicaSetController();
  void start();

 private:
  void sync(const std::string& key);
  void onPod(const nlohmann::json& pod);

  ApiServer* api_;
  WorkQueue queue_;
  uint64_t rsWatch_ = 0;
  uint64_t podWatch_ = 0;
};

class DeploymentController {
 public:
  explicit DeploymentController(ApiServer* api);
  ~DeploymentController();
  void start();

 private:
  void sync(const std::string& key);

  ApiServer* api_;
  WorkQueue queue_;
  uint64_t deploymentWatch_ = 0;
  uint64_t rsWatch_ = 0;
  uint64_t podWatch_ = 0;
};

class EndpointsController {
 public:
  explicit EndpointsController(ApiServer* api);
  ~EndpointsController();
  void start();

 private:
  void sync(const std::string& key);

  ApiServer* api_;
  WorkQueue queue_;
  uint64_t serviceWatch_ = 0;
  uint64_t podWatch_ = 0;
};

// The service proxy on every node, DaemonSet-style: a pod kube-system/kube-proxy-NODE bound to
// each Node (host network, the host's filesystem, `agora kube-proxy`), with the API's address,
// CA and token from the Secret kube-system/kube-proxy. Pods that finished or whose settings are
// stale (the API moved) are replaced; those of Nodes gone are deleted.
struct ProxyDaemonOptions {
  std::string program;  // the agora binary, as the agents' hosts see it
  std::string api;      // https://host:port
  std::string caPem;
  std::string token;
  // The nodes that serve LoadBalancer addresses; empty: all.
  std::set<std::string> loadBalancerNodes;
  Duration resync = seconds(2);
};

class ProxyDaemonController {
 public:
  ProxyDaemonController(ApiServer* api, ProxyDaemonOptions options);
  ~ProxyDaemonController();
  void start();
  // One pass (the resync timer runs it too).
  void sync();

  // The pod the controller keeps on `node`.
  nlohmann::json podFor(const std::string& node) const;

 private:
  // The ingress address (the LoadBalancer Service kube-system/agora-ingress), shown in the
  // status of each Ingress the proxies serve.
  void syncIngress();
  ApiServer* api_;
  ProxyDaemonOptions options_;
  uint64_t nodeWatch_ = 0;
  TimerId timer_ = 0;
  bool queued_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The owner reference a controller puts on what it makes.
nlohmann::json controllerReference(const nlohmann::json& owner);
// The uid of the object's controller (its ownerReference with controller: true), or "".
std::string controllerUid(const nlohmann::json& object);
// "ns/name" of an object.
std::string namespacedName(const nlohmann::json& object);
// A pod is ready (condition Ready=True), and available (ready for minReadySeconds by `now`).
bool podReady(const nlohmann::json& pod);
bool podAvailable(const nlohmann::json& pod, int64_t minReadySeconds, double now);
bool podActive(const nlohmann::json& pod);  // not finished and not being deleted

}  // namespace agora::kube
