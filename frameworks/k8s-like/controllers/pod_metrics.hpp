#pragma once

// Resource usage of pods and nodes, from the agents' own measurements (GET /containers on each
// agent: a pod's executor container's cgroup CPU time and memory), sampled every `interval`.
// CPU is the rate between two samples, in cores; memory is the working set (usage less page
// cache). It serves metrics.k8s.io/v1beta1 (kubectl top) and feeds the autoscaler.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/loop.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"

namespace agora::kube {

struct Usage {
  double cpuCores = 0;
  double memoryBytes = 0;
  double timestamp = 0;  // seconds since the epoch, of the later sample
  double window = 0;     // seconds between the two samples
};

class MetricsCollector {
 public:
  MetricsCollector(ApiServer* api, Duration interval);
  ~MetricsCollector();
  MetricsCollector(const MetricsCollector&) = delete;
  MetricsCollector& operator=(const MetricsCollector&) = delete;

  // Starts sampling and serves metrics.k8s.io.
  void start();

  // Loop thread from here on.
  std::optional<Usage> pod(const std::string& uid) const;
  std::optional<Usage> node(const std::string& name) const;
  // One agent's /containers answer, as sampled (pure of I/O, so tested without agents).
  void ingest(const std::string& node, const nlohmann::json& containers);

  // PodMetrics and NodeMetrics objects (null without a measurement yet).
  nlohmann::json podMetrics(const nlohmann::json& pod) const;
  nlohmann::json nodeMetrics(const nlohmann::json& node) const;

 private:
  struct Sample {
    double cpuSeconds = 0;
    double timestamp = 0;
  };
  void poll();

  ApiServer* api_;
  Duration interval_;
  std::map<std::string, Sample> last_;  // pod uid -> its last sample
  std::map<std::string, Usage> pods_;   // pod uid -> usage
  std::map<std::string, Usage> nodes_;  // node name -> the sum of its pods
  std::map<std::string, std::set<std::string>> podsOn_;  // node name -> pod uids
  bool polling_ = false;
  TimerId timer_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // What a sampling thread may post its answers to: cleared (under its mutex) when the
  // collector goes, so a thread still waiting on an agent never posts to a loop that is gone.
  struct Outbox {
    std::mutex mutex;
    Loop* loop = nullptr;
  };
  std::shared_ptr<Outbox> outbox_ = std::make_shared<Outbox>();
};

// "250m", "12Ki": usage as Kubernetes quantities (nano-cores rounded to a millicore, bytes to
// a KiB).
std::string cpuQuantity(double cores);
std::string memoryQuantity(double bytes);

}  // namespace agora::kube
