#pragma once

// The HorizontalPodAutoscaler controller (autoscaling/v2): every sync period, each HPA's
// Deployment or ReplicaSet is scaled to what its Resource metrics (CPU or memory, against a
// utilisation of the pods' requests or an average value) ask for, by Kubernetes' algorithm:
// desired = ceil(current * usage / target) outside a tolerance (0.1), pods without metrics and
// unready pods taken as Kubernetes takes them, recommendations stabilised (scale-down over
// 300 s by default), the behavior's scale-up and scale-down policies, min and max replicas.
// Usage comes from the MetricsCollector (the agents' cgroup measurements).

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"
#include "frameworks/k8s-like/controllers/pod_metrics.hpp"

namespace agora::kube {

// One pod, for one metric.
struct PodSample {
  bool ready = true;
  std::optional<double> usage;  // none: no measurement yet
  double request = 0;           // the pod's request of the resource (0: none)
};

struct MetricTarget {
  std::optional<double> utilization;   // percent of request
  std::optional<double> averageValue;  // per pod, in the resource's units
};

struct ReplicaProposal {
  int replicas = 0;
  std::optional<int> utilization;  // percent, what status reports
  double averageValue = 0;         // per pod with a measurement
};

// Kubernetes' replica calculation for one resource metric (`cpu`: unready pods are set aside
// as Kubernetes does for CPU). Fails when no pod has a measurement or a pod has no request
// for a utilisation target.
Result<ReplicaProposal> proposeReplicas(int current, const std::vector<PodSample>& pods,
                                       const MetricTarget& target, bool cpu, double tolerance);

struct AutoscalerOptions {
  Duration syncPeriod = seconds(15);
  Duration downscaleStabilization = seconds(300);
  double tolerance = 0.1;
};

class HorizontalPodAutoscalerController {
 public:
  HorizontalPodAutoscalerController(ApiServer* api, const MetricsCollector* metrics,
                                    AutoscalerOptions options);
  ~HorizontalPodAutoscalerController();
  void start();

 private:
  struct History {
    std::deque<std::pair<double, int>> recommendations;  // (time, replicas)
    std::deque<std::pair<double, int>> changes;          // (time, replicas added or removed)
  };
  void syncAll();
  void sync(const nlohmann::json& hpa);
  int stabilize(History& history, const nlohmann::json& behavior, int current, int desired,
                double now) const;

  ApiServer* api_;
  const MetricsCollector* metrics_;
  AutoscalerOptions options_;
  std::map<std::string, History> history_;  // by HPA uid
  TimerId timer_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace agora::kube
