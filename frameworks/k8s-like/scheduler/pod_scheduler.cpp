#include "frameworks/k8s-like/scheduler/pod_scheduler.hpp"

#include "frameworks/k8s-like/apiserver/services.hpp"

#include <algorithm>
#include <tuple>

#include <glog/logging.h>

#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/selectors.hpp"
#include "frameworks/k8s-like/apiserver/services.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"
#include "frameworks/k8s-like/scheduler/pod_exec.hpp"
#include "frameworks/k8s-like/scheduler/pod_logs.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

constexpr const char* kAgentAnnotation = "agora.io/agent-id";
constexpr const char* kComponent = "agora-scheduler";

const ResourceType& podsType() { return *findResource("", "v1", "pods"); }

std::string keyOf(const json& pod) {
  return pod["metadata"].value("namespace", "") + "/" + pod["metadata"].value("name", "");
}

std::pair<std::string, std::string> split(const std::string& key) {
  size_t slash = key.find('/');
  return {key.substr(0, slash), key.substr(slash + 1)};
}

bool terminal(TaskState s) {
  return s == TASK_FINISHED || s == TASK_FAILED || s == TASK_KILLED || s == TASK_ERROR ||
         s == TASK_LOST || s == TASK_DROPPED || s == TASK_GONE || s == TASK_UNREACHABLE;
}

// Required node affinity: any term whose expressions all hold.
bool affinityHolds(const json& pod, const json& labels) {
  const json terms = pod["spec"]
                         .value("affinity", json::object())
                         .value("nodeAffinity", json::object())
                         .value("requiredDuringSchedulingIgnoredDuringExecution", json::object())
                         .value("nodeSelectorTerms", json::array());
  if (terms.empty()) {
    return true;
  }
  for (const auto& term : terms) {
    bool all = true;
    for (const auto& e : term.value("matchExpressions", json::array())) {
      std::string key = e.value("key", "");
      std::string op = e.value("operator", "");
      bool present = labels.contains(key);
      std::string value = present ? labels[key].get<std::string>() : "";
      json values = e.value("values", json::array());
      bool listed = std::find(values.begin(), values.end(), value) != values.end();
      double bound = values.empty() || !values[0].is_string()
                         ? 0 : std::atof(values[0].get<std::string>().c_str());
      bool holds = op == "In"             ? present && listed
                   : op == "NotIn"        ? !(present && listed)
                   : op == "Exists"       ? present
                   : op == "DoesNotExist" ? !present
                   : op == "Gt"           ? present && std::atof(value.c_str()) > bound
                   : op == "Lt"           ? present && std::atof(value.c_str()) < bound
                                          : false;
      all = all && holds;
    }
    if (all) {
      return true;
    }
  }
  return false;
}

}  // namespace

PodScheduler::PodScheduler(ApiServer* api, ClusterDriver* driver, PodSchedulerOptions options)
    : api_(api), driver_(driver), options_(std::move(options)) {}

PodScheduler::~PodScheduler() {
  *alive_ = false;
  if (podWatch_ != 0) {
    api_->store()->cancel(podWatch_);
  }
  for (auto& [id, held] : offers_) {
    api_->loop()->cancel(held.expiry);
  }
}

std::string PodScheduler::agentOf(const json& pod) const {
  std::string nodeName = stringField(pod.value("spec", json::object()), "nodeName");
  for (const auto& [id, node] : nodes_) {
    if (!nodeName.empty() && node.name == nodeName) return node.address;
  }
  return "";
}

void PodScheduler::start() {
  // kubectl logs: the container's files on its node's agent.
  std::weak_ptr<bool> alive = alive_;
  api_->connect("pods", "log", [this, alive](const HttpRequest& request, const json& pod,
                                             std::shared_ptr<Exchange> exchange) {
    if (!alive.lock()) return;
    auto asked = logRequest(pod, request.query, agentOf(pod), api_->now());
    if (!asked) {
      exchange->respond(toResponse(ApiOutcome::failure(badRequest(asked.error()))));
      return;
    }
    serveLogs(std::move(*asked), std::move(exchange));
  });
  // kubectl exec, attach and port-forward: the client's WebSocket, relayed to the agent.
  for (const char* subresource : {"exec", "attach", "portforward"}) {
    api_->connect("pods", subresource,
                  [this, alive, subresource](const HttpRequest& request, const json& pod,
                                             std::shared_ptr<Exchange> exchange) {
                    if (!alive.lock()) return;
                    auto target = remoteCommandTarget(pod, request, subresource, agentOf(pod));
                    if (!target) {
                      LOG(INFO) << "Refused " << subresource << " on pod " << keyOf(pod) << ": "
                                << target.error();
                      exchange->respond(
                          toResponse(ApiOutcome::failure(badRequest(target.error()))));
                      return;
                    }
                    relayRemoteCommand(request, std::move(*target), std::move(exchange));
                  });
  }
  podWatch_ = api_->store()
                  ->watch(podsType().keyPrefix(), 0,
                          [this](const WatchEvent& e) {
                            try {
                              onPod(e);
                            } catch (const std::exception& x) {
                              LOG(ERROR) << "Pod " << e.object.key << ": " << x.what();
                            }
                          })
                  .object.version;
  for (const json& pod : api_->list(podsType(), "")) {
    WatchEvent e;
    e.type = WatchEvent::kAdded;
    e.object.key = podsType().key(pod["metadata"].value("namespace", ""),
                                  pod["metadata"].value("name", ""));
    e.object.value = pod;
    onPod(e);
  }
}

void PodScheduler::subscribed() {
  // Whatever the master knows of our tasks comes back as status updates.
  driver_->reconcile();
  // The master may still hold a suppression from before a restart of this process.
  driver_->revive();
  suppressed_ = false;
}

void PodScheduler::onPod(const WatchEvent& event) {
  const json& pod = event.object.value;
  const json& meta = pod["metadata"];
  std::string key = keyOf(pod);
  std::string uid = meta.value("uid", "");
  if (event.type == WatchEvent::kDeleted) {
    byUid_.erase(uid);
    podIps_.erase(uid);
    killing_.erase(uid);
    unschedulable_.erase(key);
    imageBackoff_.erase(key);
    // Anything of it still running goes too.
    for (const auto& c : pod["spec"].value("containers", json::array())) {
      auto it = tasks_.find(taskId(uid, c.value("name", "")));
      if (it != tasks_.end()) {
        if (!terminal(it->second.state())) {
          driver_->kill(it->first, it->second.agent_id());
        }
        tasks_.erase(it);
      }
    }
    if (Node* node = nodeByAgent(meta.value("annotations", json::object())
                                     .value(kAgentAnnotation, ""))) {
      node->pods = node->pods > 0 ? node->pods - 1 : 0;
    }
    return;
  }
  byUid_[uid] = key;
  const json status = pod.value("status", json::object());
  if (status.value("podIP", "") != status.value("hostIP", "")) {
    podIps_[uid] = status.value("podIP", "");
  }
  bool bound = !pod["spec"].value("nodeName", "").empty();
  if (meta.contains("deletionTimestamp")) {
    if (bound) {
      killPod(pod);
    } else {
      api_->purge(podsType(), meta.value("namespace", ""), meta.value("name", ""));
    }
    return;
  }
  if (!bound && !queued_.count(key)) {
    queued_.insert(key);
    pending_.push_back({key, "", TimePoint{}});
    schedule();
  }
}

void PodScheduler::schedule() {
  if (scheduled_) {
    return;
  }
  scheduled_ = true;
  std::weak_ptr<bool> alive = alive_;
  api_->loop()->post([this, alive] {
    if (alive.lock()) {
      scheduled_ = false;
      try {
        place();
      } catch (const std::exception& e) {
        LOG(ERROR) << "Pod placement: " << e.what();
      }
    }
  });
}

Resources PodScheduler::requestsOf(const json& pod) const {
  Resources need;
  auto group = groupFor(pod, "");
  if (group) {
    for (const TaskInfo& t : group->launch_group().task_group().tasks()) {
      need += Resources(t.resources());
    }
  }
  return need;
}

bool PodScheduler::fits(const json& pod, const Node& node) const {
  const json selector = pod["spec"].value("nodeSelector", json::object());
  for (const auto& [k, v] : selector.items()) {
    if (!node.labels.contains(k) || node.labels[k] != v) {
      return false;
    }
  }
  return affinityHolds(pod, node.labels);
}

PodScheduler::Node* PodScheduler::nodeByAgent(const std::string& agentId) {
  auto it = nodes_.find(agentId);
  return it == nodes_.end() ? nullptr : &it->second;
}

void PodScheduler::place() {
  // One sync of the store for the whole batch of bindings, before any of them is launched.
  api_->store()->holdSync();
  struct Release {
    Store* store;
    bool done = false;
    Status release() {
      done = true;
      return store->releaseSync();
    }
    ~Release() {
      if (!done) (void)store->releaseSync();
    }
  } release{api_->store()};
  TimePoint now = api_->loop()->now();
  std::map<std::string, std::vector<Operation>> launches;  // by offer id
  std::vector<Pending> waiting;
  TimePoint nextTry = TimePoint::max();
  std::set<std::tuple<size_t, double, std::string>> order;
  for (auto& [id, held] : offers_) {
    if (Node* node = nodeByAgent(held.offer.agent_id())) {
      order.insert({node->pods, -held.available.scalar("cpus"), id});
    }
  }
  for (Pending& p : pending_) {
    auto [ns, name] = split(p.key);
    ApiOutcome got = api_->get(podsType(), ns, name);
    if (!got.ok() || got.object["metadata"].contains("deletionTimestamp")) {
      queued_.erase(p.key);
      continue;
    }
    json pod = got.object;
    bool relaunch = !p.agentId.empty();
    if (!relaunch && !pod["spec"].value("nodeName", "").empty()) {
      queued_.erase(p.key);
      continue;
    }
    if (p.notBefore > now) {
      nextTry = std::min(nextTry, p.notBefore);
      waiting.push_back(p);
      continue;
    }
    Resources need = requestsOf(pod);
    auto group = groupFor(pod, "");
    if (!group) {
      // What it lacks (a ConfigMap, a Secret) may come: tried again in a second.
      markUnschedulable(pod, group.error());
      p.notBefore = now + seconds(1);
      nextTry = std::min(nextTry, p.notBefore);
      waiting.push_back(p);
      continue;
    }
    // Spread: the offer of the node with the fewest pods, then the one with the most room.
    HeldOffer* best = nullptr;
    Node* bestNode = nullptr;
    for (auto it = order.begin(); it != order.end(); ++it) {
      HeldOffer& held = offers_.at(std::get<2>(*it));
      const std::string& agent = held.offer.agent_id();
      if (relaunch && agent != p.agentId) continue;
      Node* node = nodeByAgent(agent);
      if (node == nullptr || !held.available.contains(need) || !fits(pod, *node)) continue;
      best = &held;
      bestNode = node;
      order.erase(it);
      break;
    }
    if (best == nullptr) {
      std::string why = unschedulableReason(pod, need);
      if (why.empty() && !withheld_.empty()) {
        why = "no offers from the master for this framework: " + withheld_;
      }
      if (!why.empty() && !relaunch) {
        markUnschedulable(pod, why);
      }
      waiting.push_back(p);
      continue;
    }
    // Bound first, so that what the containers are told of their pod (its IPs, its node)
    // is what it is.
    if (!relaunch && !bind(pod, *bestNode)) {
      order.insert({bestNode->pods, -best->available.scalar("cpus"), best->offer.id()});
      waiting.push_back(p);
      continue;
    }
    auto op = groupFor(pod, best->offer.agent_id());
    if (!op) {
      LOG(ERROR) << "Pod " << p.key << ": " << op.error();
      order.insert({bestNode->pods, -best->available.scalar("cpus"), best->offer.id()});
      continue;
    }
    if (relaunch) {
      // A new executor for the new attempt: the old one may still be on its way out.
      op->mutable_launch_group()->mutable_executor()->set_executor_id(
          "pod." + pod["metadata"].value("uid", "") + "." +
          std::to_string(imageBackoff_[p.key]));
    }
    best->available -= need;
    ++bestNode->pods;
    order.insert({bestNode->pods, -best->available.scalar("cpus"), best->offer.id()});
    launches[best->offer.id()].push_back(*op);
    queued_.erase(p.key);
    unschedulable_.erase(p.key);
    ++bound_;
  }
  pending_ = std::move(waiting);
  if (Status synced = release.release(); !synced) {
    // Not durable: launch nothing; the pods are bound in memory only, and a restart would
    // schedule them again.
    LOG(ERROR) << "Cannot make the pods' bindings durable: " << synced.error();
    return;
  }
  for (auto& [offerId, operations] : launches) {
    auto it = offers_.find(offerId);
    if (it == offers_.end()) continue;
    api_->loop()->cancel(it->second.expiry);
    std::vector<std::string> ids = std::move(it->second.ids);
    heldFor_.erase(heldKey(it->second.offer));
    offers_.erase(it);
    driver_->accept(ids, operations, 0);
  }
  if (!pending_.empty() && suppressed_) {
    driver_->revive();
    suppressed_ = false;
  }
  if (pending_.empty() && !offers_.empty()) {
    // Nothing waits for resources: what is held goes back now, to the frameworks that share
    // the cluster (held, it would count as this framework's and be used by no one).
    std::vector<std::string> idle;
    for (const auto& [id, held] : offers_) idle.push_back(id);
    for (const std::string& id : idle) {
      api_->loop()->cancel(offers_.at(id).expiry);
      expire(id);
    }
  }
  if (nextTry != TimePoint::max()) {
    std::weak_ptr<bool> alive = alive_;
    api_->loop()->after(std::max(Duration::zero(), nextTry - now) + milliseconds(1),
                        [this, alive] {
                          if (alive.lock()) schedule();
                        });
  }
}

void PodScheduler::offersWithheld(const std::string& why) {
  if (why == withheld_) {
    return;
  }
  withheld_ = why;
  if (!pending_.empty()) {
    schedule();
  }
}

std::string PodScheduler::unschedulableReason(const json& pod, const Resources& need) const {
  size_t active = 0;
  std::map<std::string, size_t> reasons;
  for (const auto& [id, node] : nodes_) {
    if (!node.active) continue;
    ++active;
    if (!fits(pod, node)) {
      ++reasons["node(s) didn't match Pod's node affinity/selector"];
      continue;
    }
    Resources free = node.total - node.used;
    bool short_ = false;
    for (const auto& [resource, label] :
         std::vector<std::pair<std::string, std::string>>{
             {"cpus", "cpu"}, {"mem", "memory"}, {"gpus", "nvidia.com/gpu"}}) {
      if (need.scalar(resource) > free.scalar(resource) + 1e-9) {
        ++reasons["Insufficient " + label];
        short_ = true;
      }
    }
    if (!short_) {
      return "";  // it fits there: only waiting for that agent's offer
    }
  }
  std::string out = "0/" + std::to_string(active) + " nodes are available";
  if (reasons.empty()) {
    return out + ": no nodes are registered.";
  }
  std::string sep = ": ";
  for (const auto& [why, n] : reasons) {
    out += sep + std::to_string(n) + " " + why;
    sep = ", ";
  }
  return out + ".";
}

void PodScheduler::markUnschedulable(const json& pod, const std::string& message) {
  std::string key = keyOf(pod);
  if (unschedulable_[key] == message) {
    return;
  }
  unschedulable_[key] = message;
  json next = pod;
  json conditions = json::array();
  for (const auto& c : pod.value("status", json::object()).value("conditions", json::array())) {
    if (c.value("type", "") != "PodScheduled") conditions.push_back(c);
  }
  conditions.push_back({{"type", "PodScheduled"},
                        {"status", "False"},
                        {"reason", "Unschedulable"},
                        {"message", message},
                        {"lastProbeTime", nullptr},
                        {"lastTransitionTime", rfc3339(api_->now())}});
  next["status"]["conditions"] = conditions;
  auto [ns, name] = split(key);
  api_->update(podsType(), ns, name, next, "status", false, true);
  api_->recordEvent(pod, "Warning", "FailedScheduling", message, "default-scheduler");
}

bool PodScheduler::bind(json& pod, const Node& node) {
  auto [ns, name] = split(keyOf(pod));
  pod["spec"]["nodeName"] = node.name;
  pod["metadata"]["annotations"][kAgentAnnotation] = node.agentId;
  json status = podStatus(pod, tasks_, api_->now());
  std::string podIP = node.ip;
  if (node.ip.rfind("127.", 0) == 0 && !pod["spec"].value("hostNetwork", false)) {
    std::set<std::string> used;
    for (const auto& [uid, ip] : podIps_) used.insert(ip);
    auto address = firstFreeAddress(options_.podCidr, used);
    if (!address) {
      markUnschedulable(pod, "no pod address: " + address.error());
      return false;
    }
    podIP = *address;
    podIps_[pod["metadata"].value("uid", "")] = podIP;
  }
  status["hostIP"] = node.ip;
  status["podIP"] = podIP;
  status["podIPs"] = json::array({{{"ip", podIP}}});
  status["hostIPs"] = json::array({{{"ip", node.ip}}});
  pod["status"] = status;
  // One write: the binding and the status that goes with it.
  ApiOutcome bound = api_->update(podsType(), ns, name, pod, "", false, true);
  if (!bound.ok()) {
    LOG(WARNING) << "Cannot bind pod " << ns << "/" << name << ": " << bound.error->message;
    return false;
  }
  pod = bound.object;
  api_->recordEvent(pod, "Normal", "Scheduled",
                    "Successfully assigned " + ns + "/" + name + " to " + node.name,
                    "default-scheduler");
  return true;
}

void PodScheduler::killPod(const json& pod) {
  std::string uid = pod["metadata"].value("uid", "");
  if (!killing_.insert(uid).second) {
    return;  // asked already
  }
  std::string agent = pod["metadata"].value("annotations", json::object())
                          .value(kAgentAnnotation, "");
  bool anyLive = false;
  for (const auto& c : pod["spec"].value("containers", json::array())) {
    std::string id = taskId(uid, c.value("name", ""));
    auto it = tasks_.find(id);
    if (it == tasks_.end() || !terminal(it->second.state())) {
      anyLive = true;
      driver_->kill(id, agent);
      if (it != tasks_.end()) {
        api_->recordEvent(pod, "Normal", "Killing", "Stopping container " + c.value("name", ""),
                          "kubelet");
      }
    }
  }
  auto [ns, name] = split(keyOf(pod));
  if (!anyLive) {
    api_->purge(podsType(), ns, name);
    return;
  }
  // If the agent never answers (it is gone), the pod goes after its grace period anyway.
  int64_t grace = pod["metadata"].value("deletionGracePeriodSeconds", int64_t{30});
  std::weak_ptr<bool> alive = alive_;
  std::string expected = uid;
  api_->loop()->after(seconds(grace + 30), [this, alive, ns, name, expected] {
    if (!alive.lock()) return;
    ApiOutcome got = api_->get(podsType(), ns, name);
    if (got.ok() && got.object["metadata"].value("uid", "") == expected) {
      api_->purge(podsType(), ns, name);
    }
  });
}

}  // namespace agora::kube
