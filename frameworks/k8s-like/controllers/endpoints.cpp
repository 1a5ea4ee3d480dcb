// The Endpoints controller: for each Service with a selector, the Endpoints object and one
// EndpointSlice listing the pods it selects: ready pods serve; pods not ready are listed apart
// (or serve, with publishNotReadyAddresses); terminating pods drain (out of Endpoints, and
// marked terminating in the slice).

#include <glog/logging.h>

#include "frameworks/k8s-like/apiserver/selectors.hpp"
#include "frameworks/k8s-like/controllers/controllers.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

const ResourceType& servicesType() { return *findResource("", "v1", "services"); }
const ResourceType& podsType() { return *findResource("", "v1", "pods"); }
const ResourceType& endpointsType() { return *findResource("", "v1", "endpoints"); }
const ResourceType& slicesType() { return *findResource("discovery.k8s.io", "v1", "endpointslices"); }

// The port a service port reaches in `pod`: its targetPort, a number or a container port's name.
int targetPort(const json& servicePort, const json& pod) {
  json target = servicePort.value("targetPort", servicePort.value("port", json(0)));
  if (target.is_number_integer()) {
    return target.get<int>();
  }
  if (target.is_string()) {
    for (const auto& c : pod["spec"].value("containers", json::array())) {
      for (const auto& p : c.value("ports", json::array())) {
        if (p.value("name", "") == target.get<std::string>()) {
          return p.value("containerPort", 0);
        }
      }
    }
  }
  return 0;
}

// Writes `object` as `type` NAME in `ns`: created, or updated when it changed.
void put(ApiServer* api, const ResourceType& type, const std::string& ns, const std::string& name,
         json object) {
  ApiOutcome current = api->get(type, ns, name);
  if (!current.ok()) {
    api->create(type, ns, std::move(object));
    return;
  }
  json next = current.object;
  bool same = true;
  for (const char* field : {"subsets", "endpoints", "ports", "addressType"}) {
    if (object.contains(field) && next.value(field, json()) != object[field]) {
      next[field] = object[field];
      same = false;
    }
  }
  if (!same) {
    api->update(type, ns, name, next, "", false, true);
  }
}

}  // namespace

EndpointsController::EndpointsController(ApiServer* api)
    : api_(api), queue_(api->loop(), [this](const std::string& key) { sync(key); }) {}

EndpointsController::~EndpointsController() {
  if (serviceWatch_ != 0) api_->store()->cancel(serviceWatch_);
  if (podWatch_ != 0) api_->store()->cancel(podWatch_);
}

void EndpointsController::start() {
  serviceWatch_ = api_->store()
                      ->watch(servicesType().keyPrefix(), 0,
                              [this](const WatchEvent& e) {
                                queue_.add(namespacedName(e.object.value));
                              })
                      .object.version;
  // A pod's change concerns the services of its namespace whose selector matches it.
  podWatch_ = api_->store()
                  ->watch(podsType().keyPrefix(), 0,
                          [this](const WatchEvent& e) {
                            const json& meta = e.object.value["metadata"];
                            std::string ns = meta.value("namespace", "");
                            json labels = meta.value("labels", json::object());
                            for (const json& svc : api_->list(servicesType(), ns)) {
                              json selector = svc["spec"].value("selector", json::object());
                              if (selector.empty()) continue;
                              auto s = LabelSelector::fromObject({{"matchLabels", selector}});
                              if (s && s->matches(labels)) queue_.add(namespacedName(svc));
                            }
                          })
                  .object.version;
  for (const json& svc : api_->list(servicesType(), "")) {
    queue_.add(namespacedName(svc));
  }
}

void EndpointsController::sync(const std::string& key) {
  size_t slash = key.find('/');
  std::string ns = key.substr(0, slash);
  std::string name = key.substr(slash + 1);
  ApiOutcome got = api_->get(servicesType(), ns, name);
  if (!got.ok()) {
    return;  // its Endpoints and slice go with it (ownerReferences)
  }
  const json svc = got.object;
  const json spec = svc.value("spec", json::object());
  json selector = spec.value("selector", json::object());
  if (selector.empty() || spec.value("type", "") == "ExternalName") {
    return;  // endpoints of a service without a selector are the user's to write
  }
  auto matcher = LabelSelector::fromObject({{"matchLabels", selector}});
  if (!matcher) {
    return;
  }
  bool publishNotReady = spec.value("publishNotReadyAddresses", false);
  json ports = json::array();
  for (const auto& p : spec.value("ports", json::array())) {
    // Named or not, the name is there ("" when the Service's port has none): clients read it.
    json port = {{"port", 0}, {"protocol", p.value("protocol", "TCP")},
                 {"name", p.value("name", "")}};
    ports.push_back(port);
  }
  json ready = json::array();
  json notReady = json::array();
  json sliceEndpoints = json::array();
  int resolved = -1;
  for (const json& pod : api_->list(podsType(), ns, &*matcher)) {
    const json& meta = pod["metadata"];
    std::string ip = pod.value("status", json::object()).value("podIP", "");
    std::string phase = pod.value("status", json::object()).value("phase", "");
    if (ip.empty() || phase == "Succeeded" || phase == "Failed") {
      continue;
    }
    bool terminating = meta.contains("deletionTimestamp");
    bool isReady = podReady(pod) && !terminating;
    json address = {{"ip", ip},
                    {"nodeName", pod["spec"].value("nodeName", "")},
                    {"targetRef",
                     {{"kind", "Pod"},
                      {"namespace", ns},
                      {"name", meta.value("name", "")},
                      {"uid", meta.value("uid", "")}}}};
    if (!terminating) {
      (isReady || publishNotReady ? ready : notReady).push_back(address);
    }
    sliceEndpoints.push_back({{"addresses", {ip}},
                              {"conditions",
                               {{"ready", isReady || (publishNotReady && !terminating)},
                                {"serving", podReady(pod)},
                                {"terminating", terminating}}},
                              {"nodeName", pod["spec"].value("nodeName", "")},
                              {"targetRef", address["targetRef"]}});
    if (resolved < 0) {
      // Ports are resolved against the first pod (named target ports may differ per pod in
      // Kubernetes; here the first pod's meaning is used for all).
      size_t i = 0;
      for (const auto& p : spec.value("ports", json::array())) {
        ports[i++]["port"] = targetPort(p, pod);
      }
      resolved = 1;
    }
  }
  json subsets = json::array();
  if (!ready.empty() || !notReady.empty()) {
    json subset = {{"ports", ports}};
    if (!ready.empty()) subset["addresses"] = ready;
    if (!notReady.empty()) subset["notReadyAddresses"] = notReady;
    subsets.push_back(subset);
  }
  json owner = controllerReference(svc);
  json endpoints = {{"apiVersion", "v1"},
                    {"kind", "Endpoints"},
                    {"metadata",
                     {{"name", name},
                      {"namespace", ns},
                      {"labels", svc["metadata"].value("labels", json::object())},
                      {"ownerReferences", json::array({owner})}}},
                    {"subsets", subsets}};
  put(api_, endpointsType(), ns, name, endpoints);
  json slice = {{"apiVersion", "discovery.k8s.io/v1"},
                {"kind", "EndpointSlice"},
                {"metadata",
                 {{"name", name + "-agora"},
                  {"namespace", ns},
                  {"labels",
                   {{"kubernetes.io/service-name", name},
                    {"endpointslice.kubernetes.io/managed-by", "agora-endpoints-controller"}}},
                  {"ownerReferences", json::array({owner})}}},
                {"addressType", "IPv4"},
                {"endpoints", sliceEndpoints},
                {"ports", ports}};
  put(api_, slicesType(), ns, name + "-agora", slice);
}

}  // namespace agora::kube
