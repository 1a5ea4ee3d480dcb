#include "frameworks/k8s-like/apiserver/conversion.hpp"

#include <cstddef>
#include <string>

namespace agora::kube {

using json = nlohmann::json;

namespace {

bool isCpuUtilization(const json& metric) {
  if (!metric.is_object() || metric.value("type", "") != "Resource") return false;
  const json resource = metric.value("resource", json::object());
  return resource.value("name", "") == "cpu" &&
         resource.value("target", json::object()).value("type", "") == "Utilization";
}

void copyField(const json& from, json& to, const char* name) {
  if (from.is_object() && from.contains(name)) to[name] = from[name];
}

// What both versions say alike: the spec's target and bounds, the status's counts and times.
template <size_t N>
void copyFields(const json& from, json& to, const char* const (&names)[N]) {
  for (const char* name : names) copyField(from, to, name);
}

constexpr const char* kSpecFields[] = {"scaleTargetRef", "minReplicas", "maxReplicas"};
constexpr const char* kStatusFields[] = {"observedGeneration", "lastScaleTime", "currentReplicas",
                                         "desiredReplicas"};

}  // namespace

json hpaV1ToV2(const json& v1, const json& stored) {
  json v2 = v1;
  v2["apiVersion"] = "autoscaling/v2";
  const json spec = v1.value("spec", json::object());
  json out = json::object();
  copyFields(spec, out, kSpecFields);
  const json storedSpec = stored.is_object() ? stored.value("spec", json::object()) : json::object();
  copyField(storedSpec, out, "behavior");
  json metrics = json::array();
  for (const json& m : storedSpec.value("metrics", json::array())) {
    if (!isCpuUtilization(m)) metrics.push_back(m);
  }
  if (spec.contains("targetCPUUtilizationPercentage")) {
    metrics.push_back({{"type", "Resource"},
                       {"resource",
                        {{"name", "cpu"},
                         {"target",
                          {{"type", "Utilization"},
                           {"averageUtilization", spec["targetCPUUtilizationPercentage"]}}}}}});
  }
  if (!metrics.empty()) out["metrics"] = metrics;
  v2["spec"] = out;
  if (v1.contains("status")) {
    const json status = v1.value("status", json::object());
    json next = stored.is_object() ? stored.value("status", json::object()) : json::object();
    copyFields(status, next, kStatusFields);
    v2["status"] = next;
  }
  return v2;
}

json hpaV2ToV1(const json& v2) {
  json v1 = v2;
  v1["apiVersion"] = "autoscaling/v1";
  const json spec = v2.value("spec", json::object());
  json out = json::object();
  copyFields(spec, out, kSpecFields);
  for (const json& m : spec.value("metrics", json::array())) {
    if (isCpuUtilization(m)) {
      out["targetCPUUtilizationPercentage"] =
          m["resource"]["target"].value("averageUtilization", 0);
    }
  }
  v1["spec"] = out;
  const json status = v2.value("status", json::object());
  json next = json::object();
  copyFields(status, next, kStatusFields);
  if (!next.contains("currentReplicas")) next["currentReplicas"] = 0;
  if (!next.contains("desiredReplicas")) next["desiredReplicas"] = 0;
  for (const json& m : status.value("currentMetrics", json::array())) {
    if (!m.is_object() || m.value("type", "") != "Resource") continue;
    const json resource = m.value("resource", json::object());
    const json current = resource.value("current", json::object());
    if (resource.value("name", "") == "cpu" && current.contains("averageUtilization")) {
      next["currentCPUUtilizationPercentage"] = current["averageUtilization"];
    }
  }
  v1["status"] = next;
  return v1;
}

}  // namespace agora::kube
