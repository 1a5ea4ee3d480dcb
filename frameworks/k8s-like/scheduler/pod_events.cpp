// What the pod scheduler hears from the cluster: offers, task status updates, and the agents
// in the master's state (the Node objects).

#include <algorithm>
#include <optional>

#include <glog/logging.h>

#include "frameworks/k8s-like/apiserver/tables.hpp"
#include "frameworks/k8s-like/scheduler/pod_scheduler.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

constexpr const char* kAgentLabel = "agora.io/agent-id";

const ResourceType& podsType() { return *findResource("", "v1", "pods"); }
const ResourceType& nodesType() { return *findResource("", "v1", "nodes"); }

bool terminal(TaskState s) {
  return s == TASK_FINISHED || s == TASK_FAILED || s == TASK_KILLED || s == TASK_ERROR ||
         s == TASK_LOST || s == TASK_DROPPED || s == TASK_GONE || s == TASK_UNREACHABLE;
}

bool lost(TaskState s) {
  return s == TASK_LOST || s == TASK_DROPPED || s == TASK_GONE || s == TASK_UNREACHABLE;
}

std::pair<std::string, std::string> split(const std::string& key) {
  size_t slash = key.find('/');
  return {key.substr(0, slash), key.substr(slash + 1)};
}

Resources scalars(const json& flat) {
  Resources out;
  for (const char* name : {"cpus", "mem", "gpus", "disk"}) {
    if (flat.is_object() && flat.contains(name) && flat[name].is_number()) {
      out += Resources::scalar(name, flat[name].get<double>());
    }
  }
  return out;
}

std::string nodeNameFor(const std::string& hostname, const std::string& agentId, bool shared) {
  std::string name = hostname.empty() ? "agent" : hostname;
  for (char& c : name) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (shared) {
    // Several agents on one host (a local cluster): each node still has a name of its own.
    std::string tail = agentId.size() > 6 ? agentId.substr(agentId.size() - 6) : agentId;
    for (char& c : tail) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
    }
    name += "-" + tail;
  }
  return name;
}

}  // namespace

void PodScheduler::offers(const std::vector<Offer>& offers) {
  for (const Offer& offer : offers) {
    // An agent's offers wait until the master's state has named its node.
    auto already = heldFor_.find(heldKey(offer));
    if (already != heldFor_.end()) {
      HeldOffer& held = offers_.at(already->second);
      held.ids.push_back(offer.id());
      held.available += Resources(offer.resources());
      continue;
    }
    HeldOffer held;
    held.offer = offer;
    held.ids = {offer.id()};
    held.available = Resources(offer.resources());
    std::string id = offer.id();
    heldFor_[heldKey(offer)] = id;
    std::weak_ptr<bool> alive = alive_;
    held.expiry = api_->loop()->after(options_.offerHold, [this, alive, id] {
      if (alive.lock()) expire(id);
    });
    offers_[id] = std::move(held);
  }
  schedule();
}

void PodScheduler::expire(const std::string& offerId) {
  auto it = offers_.find(offerId);
  if (it == offers_.end()) {
    return;
  }
  std::vector<std::string> ids = std::move(it->second.ids);
  heldFor_.erase(heldKey(it->second.offer));
  offers_.erase(it);
  for (const std::string& id : ids) driver_->decline(id, options_.refuseSeconds);
  if (pending_.empty() && offers_.empty() && !suppressed_) {
    driver_->suppress();
    suppressed_ = true;
  }
}

void PodScheduler::rescind(const std::string& offerId) {
  for (auto it = offers_.begin(); it != offers_.end(); ++it) {
    auto& ids = it->second.ids;
    if (std::find(ids.begin(), ids.end(), offerId) == ids.end()) continue;
    // The rest of the agent's offers go back too: what is held is taken as a whole.
    for (const std::string& id : ids) {
      if (id != offerId) driver_->decline(id, 0);
    }
    api_->loop()->cancel(it->second.expiry);
    heldFor_.erase(heldKey(it->second.offer));
    offers_.erase(it);
    return;
  }
}

void PodScheduler::update(const TaskStatus& status) {
  const std::string& id = status.task_id();
  std::string uid = id.substr(0, id.find('.'));
  auto owner = byUid_.find(uid);
  if (owner == byUid_.end()) {
    // A task of a pod that no longer exists: it has no business running.
    if (!terminal(status.state())) {
      driver_->kill(id, status.agent_id());
    }
    tasks_.erase(id);
    return;
  }
  std::string key = owner->second;
  auto before = tasks_.find(id);
  std::optional<TaskStatus> previous;
  if (before != tasks_.end()) previous = before->second;
  tasks_[id] = status;
  auto [ns, name] = split(key);
  ApiOutcome got = api_->get(podsType(), ns, name);
  if (!got.ok()) {
    return;
  }
  json pod = got.object;
  containerEvents(pod, id.substr(id.find('.') + 1), previous, status);
  if (lost(status.state()) && !pod["metadata"].contains("deletionTimestamp")) {
    bool controlled = false;
    for (const auto& ref : pod["metadata"].value("ownerReferences", json::array())) {
      controlled = controlled || ref.value("controller", false);
    }
    api_->recordEvent(pod, "Warning", "NodeLost",
                      "The pod's agent was lost (" + status.message() + ")", "agora-scheduler");
    if (controlled) {
      api_->purge(podsType(), ns, name);  // its controller makes a replacement
      return;
    }
  }
  if (status.state() == TASK_FAILED &&
      status.message().find("no image '") != std::string::npos &&
      !pod["metadata"].contains("deletionTimestamp")) {
    // ErrImagePull, then ImagePullBackOff: tried again on its node, 10 s doubling to 5 min.
    int& backoff = imageBackoff_[key];
    bool first = backoff == 0;
    backoff = first ? 10 : std::min(backoff * 2, 300);
    if (first || !queued_.count(key)) {
      api_->recordEvent(pod, "Warning", first ? "Failed" : "BackOff",
                        first ? "Failed to pull image: " + status.message()
                              : "Back-off pulling image: " + status.message(),
                        "kubelet");
    }
    if (!queued_.count(key)) {
      queued_.insert(key);
      pending_.push_back({key, status.agent_id(), api_->loop()->now() + seconds(backoff)});
      schedule();
    }
  }
  writeStatus(key);
}

void PodScheduler::containerEvents(const json& pod, const std::string& container,
                                   const std::optional<TaskStatus>& previous,
                                   const TaskStatus& status) {
  // What the kubelet says about a container, from what its executor reports.
  std::string image;
  for (const auto& c : pod["spec"].value("containers", json::array())) {
    if (c.value("name", "") == container) image = c.value("image", "");
  }
  // What reconciliation repeats (after this framework restarted) was said already.
  if (status.reason() == TaskStatus::REASON_RECONCILIATION) return;
  bool wasRunning = previous && previous->state() == TASK_RUNNING;
  bool restarted = previous && status.restart_count() > previous->restart_count();
  if (status.state() == TASK_RUNNING && (!wasRunning || restarted)) {
    if (restarted) {
      api_->recordEvent(pod, "Warning", "BackOff",
                        "Back-off restarting failed container " + container + " in pod " +
                            pod["metadata"].value("name", ""),
                        "kubelet");
    }
    api_->recordEvent(pod, "Normal", "Pulled",
                      "Container image \"" + image + "\" already present on machine", "kubelet");
    api_->recordEvent(pod, "Normal", "Created", "Created container " + container, "kubelet");
    api_->recordEvent(pod, "Normal", "Started", "Started container " + container, "kubelet");
  }
  bool wasUnhealthy = previous && previous->has_healthy() && !previous->healthy();
  if (status.has_healthy() && !status.healthy() && !wasUnhealthy) {
    api_->recordEvent(pod, "Warning", "Unhealthy",
                      "Liveness probe failed: " + status.message(), "kubelet");
  }
  bool wasUnready = previous && previous->has_ready() && !previous->ready();
  if (status.has_ready() && !status.ready() && !wasUnready && status.state() == TASK_RUNNING) {
    api_->recordEvent(pod, "Warning", "Unhealthy",
                      "Readiness probe failed: " + status.message(), "kubelet");
  }
}

void PodScheduler::writeStatus(const std::string& key) {
  auto [ns, name] = split(key);
  ApiOutcome got = api_->get(podsType(), ns, name);
  if (!got.ok()) {
    return;
  }
  json pod = got.object;
  std::string uid = pod["metadata"].value("uid", "");
  if (pod["metadata"].contains("deletionTimestamp")) {
    bool anyLive = false;
    for (const auto& c : pod["spec"].value("containers", json::array())) {
      auto it = tasks_.find(taskId(uid, c.value("name", "")));
      anyLive = anyLive || it == tasks_.end() || !terminal(it->second.state());
    }
    if (!anyLive) {
      api_->purge(podsType(), ns, name);
      return;
    }
  }
  json status = podStatus(pod, tasks_, api_->now());
  if (status != pod.value("status", json::object())) {
    json next = pod;
    next["status"] = status;
    api_->update(podsType(), ns, name, next, "status", false, true);
  }
}

void PodScheduler::agents(const json& state) {
  const json agents = state.value("agents", json::array());
  std::map<std::string, int> perHost;
  for (const auto& a : agents) ++perHost[a.value("hostname", "")];
  std::set<std::string> seen;
  std::map<std::string, std::string> named;  // agent id -> the name its Node already has
  bool anyUnnamed = false;
  for (const auto& a : agents) anyUnnamed = anyUnnamed || nodes_[a.value("id", "")].name.empty();
  if (anyUnnamed) {
    for (const json& existing : api_->list(nodesType(), "")) {
      const json labels = existing["metadata"].value("labels", json::object());
      if (labels.contains(kAgentLabel) && labels[kAgentLabel].is_string()) {
        named[labels[kAgentLabel].get<std::string>()] = existing["metadata"].value("name", "");
      }
    }
  }
  for (const auto& a : agents) {
    std::string id = a.value("id", "");
    seen.insert(id);
    Node& node = nodes_[id];
    std::string hostname = a.value("hostname", "");
    // A name once given stays (the Node object carries the agent's id).
    if (node.name.empty()) {
      auto known = named.find(id);
      node.name = known != named.end() ? known->second
                                       : nodeNameFor(hostname, id, perHost[hostname] > 1);
    }
    node.agentId = id;
    node.hostname = hostname;
    std::string address = a.value("address", "");
    node.ip = address.substr(0, address.rfind(':'));
    node.address = address;
    node.total = scalars(a.value("resources", json::object()));
    node.used = scalars(a.value("used_resources", json::object()));
    node.active = true;
    json labels = {{"kubernetes.io/hostname", node.name},
                   {"kubernetes.io/os", "linux"},
                   {"kubernetes.io/arch", "amd64"},
                   {kAgentLabel, id}};
    const json attributes = a.value("attributes", json::object());
    for (const auto& [k, v] : attributes.items()) {
      labels[k] = v;
    }
    node.labels = labels;
    json capacity = {{"cpu", std::to_string(node.total.scalar("cpus"))},
                     {"memory", std::to_string(static_cast<int64_t>(
                                    node.total.scalar("mem") * 1024)) + "Ki"},
                     {"pods", "110"}};
    if (node.total.scalar("gpus") > 0) {
      capacity["nvidia.com/gpu"] = std::to_string(static_cast<int>(node.total.scalar("gpus")));
    }
    json object = {{"apiVersion", "v1"},
                   {"kind", "Node"},
                   {"metadata", {{"name", node.name}, {"labels", labels}}},
                   {"spec", json::object()},
                   {"status",
                    {{"capacity", capacity},
                     {"allocatable", capacity},
                     {"addresses", json::array({{{"type", "InternalIP"}, {"address", node.ip}},
                                                {{"type", "Hostname"}, {"address", hostname}}})},
                     {"daemonEndpoints",
                      {{"kubeletEndpoint",
                        {{"Port", std::atoi(address.substr(address.rfind(':') + 1).c_str())}}}}},
                     {"nodeInfo",
                      {{"kubeletVersion", "v1.32.0-agora"},
                       {"kubeProxyVersion", "v1.32.0-agora"},
                       {"osImage", "Agora agent"},
                       {"kernelVersion", ""},
                       {"containerRuntimeVersion", "agora://" AGORA_VERSION},
                       {"operatingSystem", "linux"},
                       {"architecture", "amd64"}}}}}};
    ApiOutcome current = api_->get(nodesType(), "", node.name);
    json ready = {{"type", "Ready"}, {"status", "True"}, {"reason", "AgentReady"},
                  {"message", "the agent is registered with the master"}};
    if (!current.ok()) {
      ready["lastTransitionTime"] = rfc3339(api_->now());
      ready["lastHeartbeatTime"] = ready["lastTransitionTime"];
      object["status"]["conditions"] = json::array({ready});
      ApiOutcome created = api_->create(nodesType(), "", object);
      if (created.ok()) {
        api_->recordEvent(created.object, "Normal", "RegisteredNode",
                          "Node " + node.name + " event: Registered Node " + node.name +
                              " in Controller",
                          "node-controller");
        api_->recordEvent(created.object, "Normal", "NodeReady",
                          "Node " + node.name + " status is now: NodeReady", "kubelet");
      }
      continue;
    }
    json next = current.object;
    json conditions = next["status"].value("conditions", json::array());
    bool wasReady = !conditions.empty() && conditions[0].value("status", "") == "True";
    if (wasReady) {
      ready["lastTransitionTime"] = conditions[0].value("lastTransitionTime", "");
      ready["lastHeartbeatTime"] = conditions[0].value("lastHeartbeatTime", "");
    } else {
      ready["lastTransitionTime"] = rfc3339(api_->now());
      ready["lastHeartbeatTime"] = ready["lastTransitionTime"];
    }
    object["status"]["conditions"] = json::array({ready});
    object["metadata"] = next["metadata"];
    object["metadata"]["labels"] = labels;
    if (object["status"] != next["status"] || object["metadata"] != next["metadata"]) {
      api_->update(nodesType(), "", node.name, object, "", false, true);
    }
    if (!wasReady) {
      api_->recordEvent(next, "Normal", "NodeReady",
                        "Node " + node.name + " status is now: NodeReady", "kubelet");
    }
  }
  // Agents the master no longer lists are NotReady (unreachable, or gone).
  for (auto& [id, node] : nodes_) {
    if (seen.count(id) || !node.active) continue;
    node.active = false;
    ApiOutcome current = api_->get(nodesType(), "", node.name);
    if (!current.ok()) continue;
    json next = current.object;
    next["status"]["conditions"] = json::array(
        {{{"type", "Ready"},
          {"status", "Unknown"},
          {"reason", "AgentUnreachable"},
          {"message", "the master no longer lists this agent"},
          {"lastTransitionTime", rfc3339(api_->now())},
          {"lastHeartbeatTime", rfc3339(api_->now())}}});
    api_->update(nodesType(), "", node.name, next, "", false, true);
    api_->recordEvent(next, "Normal", "NodeNotReady",
                      "Node " + node.name + " status is now: NodeNotReady", "node-controller");
  }
  // Pods counted per node, for spreading.
  for (auto& [id, node] : nodes_) node.pods = 0;
  for (const auto& [uid, key] : byUid_) {
    (void)uid;
    auto [ns, name] = split(key);
    ApiOutcome pod = api_->get(podsType(), ns, name);
    if (!pod.ok()) continue;
    std::string agent = pod.object["metadata"].value("annotations", json::object())
                            .value(kAgentLabel, "");
    if (Node* node = nodeByAgent(agent)) ++node->pods;
  }
}

}  // namespace agora::kube
