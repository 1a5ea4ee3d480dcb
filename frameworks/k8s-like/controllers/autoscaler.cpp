#include "frameworks/k8s-like/controllers/autoscaler.hpp"

#include <algorithm>
#include <cmath>

#include <glog/logging.h>

#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/selectors.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"

namespace agora::kube {

using json = nlohmann::json;

namespace {

const ResourceType& hpaType() {
  return *findResource("autoscaling", "v2", "horizontalpodautoscalers");
}
const ResourceType& podsType() { return *findResource("", "v1", "pods"); }

bool podReady(const json& pod) {
  const json status = pod.value("status", json::object());
  for (const json& c : status.value("conditions", json::array())) {
    if (c.is_object() && stringField(c, "type") == "Ready") return stringField(c, "status") == "True";
  }
  return false;
}

// The pod's request of `resource` (cores, bytes), summed over its containers; 0 if any lacks one.
double podRequest(const json& pod, const std::string& resource) {
  double total = 0;
  for (const json& c : pod.value("spec", json::object()).value("containers", json::array())) {
    if (!c.is_object()) continue;
    const json requests =
        c.value("resources", json::object()).value("requests", json::object());
    auto it = requests.find(resource);
    if (it == requests.end()) return 0;
    auto q = parseQuantity(*it);
    if (!q) return 0;
    total += *q;
  }
  return total;
}

// The usage and requests of the pods with a value in `usage` (NaN: not counted).
struct Totals {
  double used = 0;
  double requested = 0;
  size_t counted = 0;
};

Totals totalsOf(const std::vector<PodSample>& pods, const std::vector<double>& usage) {
  Totals t;
  for (size_t i = 0; i < pods.size(); ++i) {
    if (std::isnan(usage[i])) continue;
    t.used += usage[i];
    t.requested += pods[i].request;
    ++t.counted;
  }
  return t;
}

// Their usage as a ratio to the target.
double ratioOf(const Totals& t, const MetricTarget& target) {
  if (target.utilization) {
    return t.requested > 0 ? (t.used * 100 / t.requested) / *target.utilization : 0;
  }
  return t.counted > 0 && *target.averageValue > 0 ? t.used / (*target.averageValue * t.counted)
                                                   : 0;
}

json condition(const std::string& type, bool status, const std::string& reason,
               const std::string& message, const json& before, double now) {
  json c = {{"type", type},
            {"status", status ? "True" : "False"},
            {"reason", reason},
            {"message", message},
            {"lastTransitionTime", rfc3339(now)}};
  for (const json& old : before) {
    if (old.is_object() && stringField(old, "type") == type &&
        stringField(old, "status") == c["status"].get<std::string>()) {
      c["lastTransitionTime"] = old.value("lastTransitionTime", c["lastTransitionTime"]);
    }
  }
  return c;
}

}  // namespace

Result<ReplicaProposal> proposeReplicas(int current, const std::vector<PodSample>& pods,
                                       const MetricTarget& target, bool cpu, double tolerance) {
  constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> usage(pods.size(), kNone);
  size_t measured = 0;
  bool missing = false;
  bool unready = false;
  for (size_t i = 0; i < pods.size(); ++i) {
    if (!pods[i].usage) {
      missing = true;
    } else if (cpu && !pods[i].ready) {
      unready = true;
    } else {
      if (target.utilization && pods[i].request <= 0) {
        return Error("missing request for " + std::string(cpu ? "cpu" : "memory"));
      }
      usage[i] = *pods[i].usage;
      ++measured;
    }
  }
  if (measured == 0) return Error("no metrics returned for the pods (they may be unready)");
  ReplicaProposal proposal;
  Totals measuredTotals = totalsOf(pods, usage);
  if (target.utilization && measuredTotals.requested > 0) {
    proposal.utilization =
        static_cast<int>(measuredTotals.used * 100 / measuredTotals.requested);
  }
  proposal.averageValue = measuredTotals.used / static_cast<double>(measured);
  double ratio = ratioOf(measuredTotals, target);
  bool upWithUnready = unready && ratio > 1.0;
  proposal.replicas = current;
  if (!upWithUnready && !missing) {
    if (std::abs(1.0 - ratio) > tolerance) {
      proposal.replicas = static_cast<int>(std::ceil(ratio * static_cast<double>(measured)));
    }
    return proposal;
  }
  // Pods without a measurement count as at their target when scaling down (at most 100% of
  // their request) and as idle when scaling up; unready ones as idle when scaling up.
  for (size_t i = 0; i < pods.size(); ++i) {
    if (!pods[i].usage) {
      usage[i] = ratio < 1.0 ? (target.utilization
                                    ? pods[i].request * std::max(100.0, *target.utilization) / 100
                                    : *target.averageValue)
                             : 0;
    } else if (cpu && !pods[i].ready && upWithUnready) {
      usage[i] = 0;
    }
  }
  Totals all = totalsOf(pods, usage);
  double next = ratioOf(all, target);
  if (std::abs(1.0 - next) <= tolerance || (ratio < 1.0 && next > 1.0) ||
      (ratio > 1.0 && next < 1.0)) {
    return proposal;
  }
  int replicas = static_cast<int>(std::ceil(next * static_cast<double>(all.counted)));
  if ((next < 1.0 && replicas > current) || (next > 1.0 && replicas < current)) return proposal;
  proposal.replicas = replicas;
  return proposal;
}

HorizontalPodAutoscalerController::HorizontalPodAutoscalerController(
    ApiServer* api, const MetricsCollector* metrics, AutoscalerOptions options)
    : api_(api), metrics_(metrics), options_(options) {}

HorizontalPodAutoscalerController::~HorizontalPodAutoscalerController() {
  *alive_ = false;
  if (timer_ != 0) api_->loop()->cancel(timer_);
}

void HorizontalPodAutoscalerController::start() {
  std::weak_ptr<bool> alive = alive_;
  timer_ = api_->loop()->after(options_.syncPeriod, [this, alive] {
    if (!alive.lock()) return;
    syncAll();
    start();
  });
}

void HorizontalPodAutoscalerController::syncAll() {
  std::set<std::string> seen;
  for (const json& hpa : api_->list(hpaType(), "")) {
    seen.insert(stringField(hpa.value("metadata", json::object()), "uid"));
    try {
      sync(hpa);
    } catch (const std::exception& e) {
      LOG(ERROR) << "HPA " << hpa["metadata"].value("name", "") << ": " << e.what();
    }
  }
  for (auto it = history_.begin(); it != history_.end();) {
    it = seen.count(it->first) ? std::next(it) : history_.erase(it);
  }
}

int HorizontalPodAutoscalerController::stabilize(History& history, const json& behavior,
                                                 int current, int desired, double now) const {
  const json up = behavior.value("scaleUp", json::object());
  const json down = behavior.value("scaleDown", json::object());
  double upWindow = up.value("stabilizationWindowSeconds", 0.0);
  double downWindow =
      down.value("stabilizationWindowSeconds", toSeconds(options_.downscaleStabilization));
  history.recommendations.emplace_back(now, desired);
  while (!history.recommendations.empty() &&
         now - history.recommendations.front().first > std::max(upWindow, downWindow) + 1) {
    history.recommendations.pop_front();
  }
  int upRecommendation = desired;
  int downRecommendation = desired;
  for (const auto& [at, replicas] : history.recommendations) {
    if (now - at <= upWindow) upRecommendation = std::min(upRecommendation, replicas);
    if (now - at <= downWindow) downRecommendation = std::max(downRecommendation, replicas);
  }
  int recommendation = std::clamp(current, upRecommendation, downRecommendation);
  if (recommendation == current) return current;
  // The policies: how much may change per period, from the replicas at the period's start.
  bool scaleUp = recommendation > current;
  const json rules = scaleUp ? up : down;
  json policies = rules.value("policies", json::array());
  if (policies.empty()) {
    policies = scaleUp ? json::array({{{"type", "Pods"}, {"value", 4}, {"periodSeconds", 15}},
                                      {{"type", "Percent"}, {"value", 100}, {"periodSeconds", 15}}})
                       : json::array({{{"type", "Percent"}, {"value", 100}, {"periodSeconds", 15}}});
  }
  std::string select = rules.value("selectPolicy", "Max");
  if (select == "Disabled") return current;
  std::optional<int> limit;
  for (const json& p : policies) {
    if (!p.is_object()) continue;
    double period = p.value("periodSeconds", 15.0);
    int changed = 0;
    for (const auto& [at, delta] : history.changes) {
      if (now - at <= period && (delta > 0) == scaleUp) changed += delta;
    }
    int start = current - changed;
    double value = p.value("value", 0.0);
    bool pods = p.value("type", "") == "Pods";
    int allowed = scaleUp ? (pods ? start + static_cast<int>(value)
                                  : static_cast<int>(std::ceil(start * (1 + value / 100))))
                          : (pods ? start - static_cast<int>(value)
                                  : static_cast<int>(std::ceil(start * (1 - value / 100))));
    bool loosest = (select == "Max") == scaleUp;  // Max: the policy that allows the most change
    if (!limit || (loosest ? allowed > *limit : allowed < *limit)) limit = allowed;
  }
  if (limit) {
    recommendation = scaleUp ? std::min(recommendation, std::max(*limit, current))
                             : std::max(recommendation, std::min(*limit, current));
  }
  return recommendation;
}

void HorizontalPodAutoscalerController::sync(const json& hpaIn) {
  json hpa = hpaIn;
  const json meta = hpa.value("metadata", json::object());
  std::string ns = stringField(meta, "namespace");
  std::string name = stringField(meta, "name");
  const json spec = hpa.value("spec", json::object());
  const json before = hpa.value("status", json::object());
  const json oldConditions = before.value("conditions", json::array());
  double now = api_->now();
  json status = before;
  json conditions = json::array();
  auto finish = [&] {
    status["conditions"] = conditions;
    if (status != before) {
      hpa["status"] = status;
      api_->update(hpaType(), ns, name, hpa, "status", false, true);
    }
  };
  const json ref = spec.value("scaleTargetRef", json::object());
  std::string kind = stringField(ref, "kind");
  const ResourceType* targetType = kind == "Deployment"   ? findResource("apps", "v1", "deployments")
                                   : kind == "ReplicaSet" ? findResource("apps", "v1", "replicasets")
                                                          : nullptr;
  ApiOutcome target = targetType != nullptr ? api_->get(*targetType, ns, stringField(ref, "name"))
                                            : ApiOutcome::failure(notServed());
  if (!target.ok()) {
    conditions.push_back(condition("AbleToScale", false, "FailedGetScale",
                                   "the HPA controller was unable to get the target's current "
                                   "scale: " + kind + " " + stringField(ref, "name") + " not found",
                                   oldConditions, now));
    api_->recordEvent(hpa, "Warning", "FailedGetScale",
                      kind + " " + ns + "/" + stringField(ref, "name") + " not found",
                      "horizontal-pod-autoscaler");
    finish();
    return;
  }
  json targetSpec = target.object.value("spec", json::object());
  int current = targetSpec.value("replicas", 1);
  int minReplicas = spec.value("minReplicas", 1);
  int maxReplicas = spec.value("maxReplicas", std::max(minReplicas, 1));
  status["currentReplicas"] = current;
  conditions.push_back(condition("AbleToScale", true, "SucceededGetScale",
                                 "the HPA controller was able to get the target's current scale",
                                 oldConditions, now));
  if (current == 0) {
    status["desiredReplicas"] = 0;
    conditions.push_back(condition("ScalingActive", false, "ScalingDisabled",
                                   "scaling is disabled since the replica count of the target is "
                                   "zero", oldConditions, now));
    finish();
    return;
  }
  auto selector = LabelSelector::fromObject(targetSpec.value("selector", json::object()));
  std::vector<json> pods;
  if (selector) {
    for (const json& pod : api_->list(podsType(), ns, &*selector)) {
      const json podMeta = pod.value("metadata", json::object());
      std::string phase = stringField(pod.value("status", json::object()), "phase");
      if (podMeta.contains("deletionTimestamp") || phase == "Failed" || phase == "Succeeded") continue;
      pods.push_back(pod);
    }
  }
  json metrics = spec.value("metrics", json::array());
  if (metrics.empty()) {
    metrics = json::array({{{"type", "Resource"},
                            {"resource",
                             {{"name", "cpu"},
                              {"target", {{"type", "Utilization"}, {"averageUtilization", 80}}}}}}});
  }
  std::optional<int> desired;
  std::string why;
  std::string failure;
  json currentMetrics = json::array();
  for (const json& m : metrics) {
    if (!m.is_object() || stringField(m, "type") != "Resource") {
      failure = "only Resource metrics (cpu, memory) are supported";
      continue;
    }
    const json resource = m.value("resource", json::object());
    std::string resourceName = stringField(resource, "name");
    const json t = resource.value("target", json::object());
    MetricTarget mt;
    if (stringField(t, "type") == "Utilization" && t.contains("averageUtilization")) {
      mt.utilization = t.value("averageUtilization", 0.0);
    } else if (auto v = parseQuantity(t.value("averageValue", json())); v) {
      mt.averageValue = *v;
    }
    if ((resourceName != "cpu" && resourceName != "memory") ||
        (!mt.utilization && !mt.averageValue)) {
      failure = "metric " + resourceName + ": a cpu or memory target of Utilization or AverageValue";
      continue;
    }
    std::vector<PodSample> samples;
    for (const json& pod : pods) {
      PodSample s;
      s.ready = podReady(pod);
      s.request = podRequest(pod, resourceName);
      if (auto usage = metrics_->pod(stringField(pod["metadata"], "uid"))) {
        s.usage = resourceName == "cpu" ? usage->cpuCores : usage->memoryBytes;
      }
      samples.push_back(s);
    }
    auto proposal = proposeReplicas(current, samples, mt, resourceName == "cpu", options_.tolerance);
    if (!proposal) {
      failure = "failed to get " + resourceName + " utilization: " + proposal.error();
      continue;
    }
    json currentValue = {{"averageValue", resourceName == "cpu"
                                               ? cpuQuantity(proposal->averageValue)
                                               : std::to_string(static_cast<int64_t>(proposal->averageValue))}};
    if (proposal->utilization) currentValue["averageUtilization"] = *proposal->utilization;
    currentMetrics.push_back(
        {{"type", "Resource"}, {"resource", {{"name", resourceName}, {"current", currentValue}}}});
    if (!desired || proposal->replicas > *desired) {
      desired = proposal->replicas;
      why = resourceName + " resource " +
            (mt.utilization ? "utilization (percentage of request)" : "") +
            (proposal->replicas > current ? " above target" : " below target");
    }
  }
  status["currentMetrics"] = currentMetrics;
  if (!desired) {
    conditions.push_back(condition("ScalingActive", false, "FailedGetResourceMetric",
                                   "the HPA was unable to compute the replica count: " + failure,
                                   oldConditions, now));
    api_->recordEvent(hpa, "Warning", "FailedGetResourceMetric", failure,
                      "horizontal-pod-autoscaler");
    finish();
    return;
  }
  conditions.push_back(condition("ScalingActive", true, "ValidMetricFound",
                                 "the HPA was able to successfully calculate a replica count",
                                 oldConditions, now));
  History& history = history_[stringField(meta, "uid")];
  int next = stabilize(history, spec.value("behavior", json::object()), current, *desired, now);
  int clamped = std::clamp(next, minReplicas, std::max(minReplicas, maxReplicas));
  conditions.push_back(
      clamped != next || *desired > maxReplicas || *desired < minReplicas
          ? condition("ScalingLimited", true,
                      *desired > maxReplicas ? "TooManyReplicas" : "TooFewReplicas",
                      "the desired replica count is " +
                          std::string(*desired > maxReplicas ? "more than the maximum"
                                                             : "less than the minimum"),
                      oldConditions, now)
          : condition("ScalingLimited", false, "DesiredWithinRange",
                      "the desired count is within the acceptable range", oldConditions, now));
  status["desiredReplicas"] = clamped;
  if (clamped != current) {
    json scaled = target.object;
    scaled["spec"]["replicas"] = clamped;
    ApiOutcome done = api_->update(*targetType, ns, stringField(ref, "name"), scaled);
    if (done.ok()) {
      history.changes.emplace_back(now, clamped - current);
      while (history.changes.size() > 64) history.changes.pop_front();
      status["lastScaleTime"] = rfc3339(now);
      std::string reason = clamped > *desired || clamped < *desired ? "the limits" : why;
      api_->recordEvent(hpa, "Normal", "SuccessfulRescale",
                        "New size: " + std::to_string(clamped) + "; reason: " + reason,
                        "horizontal-pod-autoscaler");
    }
  }
  finish();
}

}  // namespace agora::kube
