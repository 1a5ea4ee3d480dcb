#include "frameworks/k8s-like/controllers/pod_metrics.hpp"

#include <cmath>
#include <thread>
#include <utility>
#include <vector>

#include <glog/logging.h>

#include "common/http.hpp"
#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"

namespace agora::kube {

using json = nlohmann::json;

namespace {

constexpr char kPodExecutor[] = "pod.";  // a pod's executor is "pod.<uid>"

const ResourceType& podsType() { return *findResource("", "v1", "pods"); }
const ResourceType& nodesType() { return *findResource("", "v1", "nodes"); }

// Where a Node's agent answers: its InternalIP and the port in daemonEndpoints.
std::string agentAddress(const json& node) {
  const json status = node.value("status", json::object());
  std::string ip;
  for (const json& a : status.value("addresses", json::array())) {
    if (a.is_object() && stringField(a, "type") == "InternalIP") ip = stringField(a, "address");
  }
  int port = status.value("daemonEndpoints", json::object())
                 .value("kubeletEndpoint", json::object())
                 .value("Port", 0);
  if (ip.empty() || port <= 0) return "";
  return (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

std::string window(double seconds) {
  return std::to_string(static_cast<int64_t>(std::lround(seconds))) + "s";
}

}  // namespace

std::string cpuQuantity(double cores) {
  return std::to_string(static_cast<int64_t>(std::llround(std::max(0.0, cores) * 1e9))) + "n";
}

std::string memoryQuantity(double bytes) {
  return std::to_string(static_cast<int64_t>(std::llround(std::max(0.0, bytes) / 1024))) + "Ki";
}

MetricsCollector::MetricsCollector(ApiServer* api, Duration interval)
    : api_(api), interval_(interval) {
  outbox_->loop = api_->loop();
}

MetricsCollector::~MetricsCollector() {
  {
    std::lock_guard<std::mutex> lock(outbox_->mutex);
    outbox_->loop = nullptr;
  }
  *alive_ = false;
  if (timer_ != 0) api_->loop()->cancel(timer_);
}

void MetricsCollector::start() {
  const ResourceType* podsOfMetrics = findResource("metrics.k8s.io", "v1beta1", "pods");
  const ResourceType* nodesOfMetrics = findResource("metrics.k8s.io", "v1beta1", "nodes");
  api_->provide(*podsOfMetrics, [this](const std::string& ns) {
    std::vector<json> items;
    for (const json& pod : api_->list(podsType(), ns)) {
      json m = podMetrics(pod);
      if (!m.is_null()) items.push_back(std::move(m));
    }
    return items;
  });
  api_->provide(*nodesOfMetrics, [this](const std::string&) {
    std::vector<json> items;
    for (const json& node : api_->list(nodesType(), "")) {
      json m = nodeMetrics(node);
      if (!m.is_null()) items.push_back(std::move(m));
    }
    return items;
  });
  poll();
}

void MetricsCollector::poll() {
  std::weak_ptr<bool> alive = alive_;
  timer_ = api_->loop()->after(interval_, [this, alive] {
    if (alive.lock()) poll();
  });
  if (polling_) return;  // the last round is still out
  std::vector<std::pair<std::string, std::string>> agents;  // node name, address
  for (const json& node : api_->list(nodesType(), "")) {
    std::string address = agentAddress(node);
    if (!address.empty()) {
      agents.emplace_back(stringField(node.value("metadata", json::object()), "name"), address);
    }
  }
  if (agents.empty()) return;
  polling_ = true;
  std::thread([this, alive, outbox = outbox_, agents = std::move(agents)] {
    std::vector<std::pair<std::string, json>> answers;
    for (const auto& [name, address] : agents) {
      auto response = httpGet(address, "/containers", seconds(3));
      if (!response || response->status != 200) continue;
      json containers = json::parse(response->body, nullptr, false);
      if (containers.is_array()) answers.emplace_back(name, std::move(containers));
    }
    std::lock_guard<std::mutex> lock(outbox->mutex);
    if (outbox->loop == nullptr) return;  // the collector is gone
    outbox->loop->post([this, alive, answers = std::move(answers)] {
      if (!alive.lock()) return;
      polling_ = false;
      for (const auto& [name, containers] : answers) ingest(name, containers);
    });
  }).detach();
}

void MetricsCollector::ingest(const std::string& node, const json& containers) {
  std::set<std::string> seen;
  Usage total;
  for (const json& c : containers) {
    if (!c.is_object()) continue;
    std::string executor = stringField(c, "executor_id");
    if (executor.rfind(kPodExecutor, 0) != 0 || !c.contains("statistics")) continue;
    std::string uid = executor.substr(sizeof(kPodExecutor) - 1);
    const json& s = c["statistics"];
    if (!s.is_object()) continue;
    Sample now{s.value("cpus_user_time_secs", 0.0) + s.value("cpus_system_time_secs", 0.0),
               s.value("timestamp", 0.0)};
    double memory = std::max(s.value("mem_rss_bytes", 0.0),
                             s.value("mem_total_bytes", 0.0) - s.value("mem_cache_bytes", 0.0));
    seen.insert(uid);
    auto last = last_.find(uid);
    if (last != last_.end() && now.timestamp > last->second.timestamp &&
        now.cpuSeconds >= last->second.cpuSeconds) {
      double window = now.timestamp - last->second.timestamp;
      pods_[uid] = {(now.cpuSeconds - last->second.cpuSeconds) / window, memory, now.timestamp,
                    window};
    }
    last_[uid] = now;
    if (auto usage = pods_.find(uid); usage != pods_.end()) {
      total.cpuCores += usage->second.cpuCores;
      total.memoryBytes += usage->second.memoryBytes;
      total.timestamp = std::max(total.timestamp, usage->second.timestamp);
      total.window = std::max(total.window, usage->second.window);
    }
  }
  // Pods gone from the node are forgotten.
  for (const std::string& uid : podsOn_[node]) {
    if (seen.count(uid) == 0) {
      last_.erase(uid);
      pods_.erase(uid);
    }
  }
  podsOn_[node] = seen;
  if (total.timestamp == 0) total.timestamp = api_->now();
  if (total.window == 0) total.window = toSeconds(interval_);
  nodes_[node] = total;
}

std::optional<Usage> MetricsCollector::pod(const std::string& uid) const {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return std::nullopt;
  return it->second;
}

std::optional<Usage> MetricsCollector::node(const std::string& name) const {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

json MetricsCollector::podMetrics(const json& pod) const {
  const json meta = pod.value("metadata", json::object());
  auto usage = this->pod(stringField(meta, "uid"));
  if (!usage) return nullptr;
  // The executor's cgroup holds all of the pod's containers: the first one carries it all.
  json containers = json::array();
  const json list = pod.value("spec", json::object()).value("containers", json::array());
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_object()) continue;
    containers.push_back({{"name", stringField(list[i], "name")},
                          {"usage",
                           {{"cpu", cpuQuantity(i == 0 ? usage->cpuCores : 0)},
                            {"memory", memoryQuantity(i == 0 ? usage->memoryBytes : 0)}}}});
  }
  return {{"kind", "PodMetrics"},
          {"apiVersion", "metrics.k8s.io/v1beta1"},
          {"metadata",
           {{"name", stringField(meta, "name")},
            {"namespace", stringField(meta, "namespace")},
            {"labels", meta.value("labels", json::object())},
            {"creationTimestamp", rfc3339(usage->timestamp)}}},
          {"timestamp", rfc3339(usage->timestamp)},
          {"window", window(usage->window)},
          {"containers", containers}};
}

json MetricsCollector::nodeMetrics(const json& node) const {
  const json meta = node.value("metadata", json::object());
  auto usage = this->node(stringField(meta, "name"));
  if (!usage) return nullptr;
  return {{"kind", "NodeMetrics"},
          {"apiVersion", "metrics.k8s.io/v1beta1"},
          {"metadata",
           {{"name", stringField(meta, "name")},
            {"labels", meta.value("labels", json::object())},
            {"creationTimestamp", rfc3339(usage->timestamp)}}},
          {"timestamp", rfc3339(usage->timestamp)},
          {"window", window(usage->window)},
          {"usage",
           {{"cpu", cpuQuantity(usage->cpuCores)}, {"memory", memoryQuantity(usage->memoryBytes)}}}};
}

}  // namespace agora::kube
