#pragma once

// Pods on the kernel. The pod scheduler places pending pods on the master's offers (requests as
// cpus/mem/gpus, nodeSelector and required node affinity on the agents' attributes, spread
// across agents), binds each to its node, launches it as a task group (one task per container,
// restartPolicy as the executor's restart policy with Kubernetes' 10 s..5 min back-off, probes
// as health and readiness checks), and plays the kubelet's part in the API: the pod's phase,
// conditions and container statuses from the tasks' status updates, graceful deletion, pods on
// lost agents replaced, missing images reported as ErrImagePull / ImagePullBackOff. Nodes are
// the agents, from the master's state.
//
// It runs on the API server's loop. What it asks of the cluster goes through a ClusterDriver:
// the SDK's SchedulerDriver in `agora kube`, a simulation in benchmarks.

#include <functional>
#include <map>
#include <unordered_map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agora/agora.pb.h"
#include "common/resources.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"

namespace agora::kube {

class ClusterDriver {
 public:
  virtual ~ClusterDriver() = default;
  // Offers of one agent, accepted together.
  virtual void accept(const std::vector<std::string>& offerIds,
                      const std::vector<Operation>& operations, double refuseSeconds) = 0;
  virtual void decline(const std::string& offerId, double refuseSeconds) = 0;
  virtual void kill(const std::string& taskId, const std::string& agentId) = 0;
  virtual void revive() = 0;
  virtual void suppress() = 0;
  virtual void reconcile() = 0;
};

struct PodSchedulerOptions {
  // How long an offer is held, while pods wait, for them or others that may come; unused ones
  // are then declined. With no pod waiting, offers are declined at once.
  Duration offerHold = seconds(5);
  double refuseSeconds = 5;
  // A pod whose requests say nothing: what its containers get each.
  double defaultCpus = 0.1;
  double defaultMemMiB = 32;
  // The image name that means "the host's own filesystem".
  std::string hostImage = "agora/host";
  // Pods on an agent whose address is on loopback (a one-machine cluster) get an address of
  // their own from here; elsewhere, and with hostNetwork, they have their node's.
  std::string podCidr = "127.98.0.0/16";
  // The cluster's DNS (the kube-dns Service's address; "" for none) and domain: containers get
  // an /etc/resolv.conf that points at it (dnsPolicy ClusterFirst; in an image, or over the
  // host's in a mount namespace of their own).
  std::string dnsServer;
  std::string clusterDomain = "cluster.local";
};

class PodScheduler {
 public:
  PodScheduler(ApiServer* api, ClusterDriver* driver, PodSchedulerOptions options = {});
  ~PodScheduler();
  PodScheduler(const PodScheduler&) = delete;
  PodScheduler& operator=(const PodScheduler&) = delete;

  // Loop thread from here on.
  void start();
  void subscribed();
  void offers(const std::vector<Offer>& offers);
  void rescind(const std::string& offerId);
  void update(const TaskStatus& status);
  // The master's /state: Node objects for its agents (and NotReady for those gone).
  void agents(const nlohmann::json& masterState);
  // Why the master offers this framework nothing now (its role's quota, others' guarantees or
  // fair shares), as the master explains it; "" when offers come. Pods that would fit an
  // agent but wait for offers say so.
  void offersWithheld(const std::string& why);

  uint64_t bound() const { return bound_; }
  size_t pendingCount() const { return pending_.size(); }

  // The task id of a pod's container, and back.
  static std::string taskId(const std::string& podUid, const std::string& container);

 private:
  // An agent's offers, held as one: the master may offer an agent's resources in pieces (what
  // a task gave back, apart from the rest), and a pod may need some of each.
  struct HeldOffer {
    Offer offer;                   // the first
    std::vector<std::string> ids;  // every offer it stands for, the first's included
    Resources available;
    TimerId expiry = 0;
  };
  struct Node {
    std::string name;
    std::string agentId;
    std::string hostname;
    std::string ip;
    std::string address;  // the agent's HTTP address, host:port
    nlohmann::json labels;
    Resources total;
    Resources used;
    bool active = true;
    size_t pods = 0;
  };
  struct Pending {
    std::string key;        // "ns/name"
    std::string agentId;    // set: only on this agent (a relaunch after an image error)
    TimePoint notBefore{};  // a back-off before it is tried again
  };

  void onPod(const WatchEvent& event);
  // The kubelet's Events about a pod's container (Pulled, Created, Started, BackOff,
  // Unhealthy), from the transition its task's status makes.
  void containerEvents(const nlohmann::json& pod, const std::string& container,
                       const std::optional<TaskStatus>& previous, const TaskStatus& status);
  // The HTTP address of the agent of the pod's node ("" when it has none yet).
  std::string agentOf(const nlohmann::json& pod) const;
  void schedule();
  void place();
  void expire(const std::string& offerId);
  // The pod's needs, or why it cannot be placed anywhere.
  Resources requestsOf(const nlohmann::json& pod) const;
  bool fits(const nlohmann::json& pod, const Node& node) const;
  std::string unschedulableReason(const nlohmann::json& pod, const Resources& need) const;
  void markUnschedulable(const nlohmann::json& pod, const std::string& message);
  Result<Operation> groupFor(const nlohmann::json& pod, const std::string& agentId) const;
  // A container's environment: the Services' variables, envFrom, env (with ConfigMap and
  // Secret keys, and fields of the pod), or why it cannot be had (a missing ConfigMap).
  Result<std::vector<std::pair<std::string, std::string>>> containerEnvironment(
      const nlohmann::json& pod, const nlohmann::json& container) const;
  // The decoded data of a ConfigMap or Secret in `ns` (none when optional and missing), or why
  // there is none.
  Result<std::map<std::string, std::string>> configData(const std::string& ns, bool secret,
                                                        const std::string& name,
                                                        bool optional) const;
  // The /etc/resolv.conf of the pod's containers (its dnsPolicy and dnsConfig), or none for
  // the host's.
  std::optional<std::string> resolvConf(const nlohmann::json& pod) const;
  bool bind(nlohmann::json& pod, const Node& node);
  void killPod(const nlohmann::json& pod);
  void writeStatus(const std::string& key);
  Node* nodeByAgent(const std::string& agentId);

  ApiServer* api_;
  ClusterDriver* driver_;
  PodSchedulerOptions options_;
  uint64_t podWatch_ = 0;
  std::map<std::string, HeldOffer> offers_;             // by the first offer's id
  std::unordered_map<std::string, std::string> heldFor_;  // heldKey() -> held offer's key
  // What an agent's offers are held together by: one accept takes one agent's and one role's.
  static std::string heldKey(const Offer& offer) {
    return offer.agent_id() + "\n" + offer.allocation_role();
  }
  std::map<std::string, Node> nodes_;  // by agent id
  std::vector<Pending> pending_;
  std::set<std::string> queued_;  // keys in pending_
  std::map<std::string, std::string> byUid_;  // pod uid -> "ns/name"
  std::map<std::string, std::string> podIps_;  // pod uid -> its own address (none: its node's)
  // The last status of each task, by task id.
  std::map<std::string, TaskStatus> tasks_;
  std::map<std::string, std::string> unschedulable_;  // key -> last message told
  std::map<std::string, int> imageBackoff_;           // key -> seconds
  std::set<std::string> killing_;                     // uids of pods being stopped
  std::string withheld_;                              // why no offers come, if they do not
  bool scheduled_ = false;
  bool suppressed_ = false;
  uint64_t bound_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The decoded data of ConfigMap (secret false) or Secret `name` in `ns`; none when `optional`
// and missing; else why there is none.
using ConfigLookup = std::function<Result<std::map<std::string, std::string>>(
    const std::string& ns, bool secret, const std::string& name, bool optional)>;

// The files of the ConfigMap and Secret volumes `container` mounts (items, defaultMode and
// mode, optional, subPath), or why they cannot be had.
Result<std::vector<ContainerInfo::File>> volumeFiles(const nlohmann::json& pod,
                                                     const nlohmann::json& container,
                                                     const ConfigLookup& lookup);

// Kubernetes' $(VAR) references in a container's command and args: replaced by the
// variable's value when the container has it, left as written when not; $$ is a literal $.
std::string expandReferences(const std::string& text,
                             const std::map<std::string, std::string>& variables);

// Kubernetes probe -> Agora health check (exec, httpGet, tcpSocket); HTTP and TCP probes go
// to the probe's host, or else the pod's address; named ports are the container's.
std::optional<HealthCheck> probeToCheck(const nlohmann::json& probe, const std::string& podIP = "",
                                        const nlohmann::json& container = nlohmann::json::object());

// The pod's status from its containers' task statuses (the kubelet's part).
nlohmann::json podStatus(const nlohmann::json& pod, const std::map<std::string, TaskStatus>& tasks,
                         double now);

}  // namespace agora::kube
