// The service proxy on every node (see ProxyDaemonController in controllers.hpp).

#include <glog/logging.h>

#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/controllers/controllers.hpp"
#include "frameworks/k8s-like/proxy/ingress_rules.hpp"
#include "frameworks/k8s-like/proxy/proxy_rules.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

const ResourceType& nodesType() { return *findResource("", "v1", "nodes"); }
const ResourceType& podsType() { return *findResource("", "v1", "pods"); }
const ResourceType& secretsType() { return *findResource("", "v1", "secrets"); }
const ResourceType& servicesType() { return *findResource("", "v1", "services"); }
const ResourceType& ingressesType() {
  return *findResource("networking.k8s.io", "v1", "ingresses");
}

constexpr char kIngressService[] = "agora-ingress";

constexpr char kNamespace[] = "kube-system";
constexpr char kSecret[] = "kube-proxy";
constexpr char kAppLabel[] = "k8s-app";
constexpr char kApp[] = "kube-proxy";
// What the pod was made from: a different value means it is stale.
constexpr char kSettingsAnnotation[] = "agora.dev/proxy-settings";

// Names must be DNS labels: node names are, already.
std::string podName(const std::string& node) { return "kube-proxy-" + node; }

}  // namespace

ProxyDaemonController::ProxyDaemonController(ApiServer* api, ProxyDaemonOptions options)
    : api_(api), options_(std::move(options)) {}

ProxyDaemonController::~ProxyDaemonController() {
  *alive_ = false;
  if (nodeWatch_ != 0) api_->store()->cancel(nodeWatch_);
  if (timer_ != 0) api_->loop()->cancel(timer_);
}

json ProxyDaemonController::podFor(const std::string& node) const {
  bool lb = options_.loadBalancerNodes.empty() || options_.loadBalancerNodes.count(node) > 0;
  auto secretKey = [](const char* key) {
    return json{{"secretKeyRef", {{"name", kSecret}, {"key", key}}}};
  };
  json command = {options_.program,
                  "kube-proxy",
                  "--api=" + options_.api,
                  "--node_ip=$(NODE_IP)",
                  "--node_name=$(NODE_NAME)",
                  std::string("--load_balancer=") + (lb ? "true" : "false")};
  json env = json::array({{{"name", "NODE_IP"},
                           {"valueFrom", {{"fieldRef", {{"fieldPath", "status.hostIP"}}}}}},
                          {{"name", "NODE_NAME"},
                           {"valueFrom", {{"fieldRef", {{"fieldPath", "spec.nodeName"}}}}}}});
  if (!options_.token.empty()) {
    env.push_back({{"name", "AGORA_KUBE_TOKEN"}, {"valueFrom", secretKey("token")}});
  }
  if (!options_.caPem.empty()) {
    env.push_back({{"name", "AGORA_KUBE_CA"}, {"valueFrom", secretKey("ca.crt")}});
  }
  json container = {{"name", "kube-proxy"},
                    {"image", "agora/host"},
                    {"command", command},
                    {"env", env},
                    {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}}}};
  std::string settings = command.dump() + (lb ? "lb" : "");
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", podName(node)},
            {"namespace", kNamespace},
            {"labels", {{kAppLabel, kApp}}},
            {"annotations", {{kSettingsAnnotation, settings}}}}},
          {"spec",
           {{"nodeSelector", {{"kubernetes.io/hostname", node}}},
            {"hostNetwork", true},
            {"restartPolicy", "Always"},
            {"terminationGracePeriodSeconds", 5},
            {"containers", json::array({container})}}}};
}

void ProxyDaemonController::start() {
  nodeWatch_ = api_->store()
                   ->watch(nodesType().keyPrefix(), 0,
                           [this](const WatchEvent&) {
                             if (queued_) return;
                             queued_ = true;
                             std::weak_ptr<bool> alive = alive_;
                             api_->loop()->post([this, alive] {
                               if (alive.lock()) sync();
                             });
                           })
                   .object.version;
  sync();
}

void ProxyDaemonController::syncIngress() {
  // The ingress address: a LoadBalancer Service of the controller's own (so the address is
  // the pool's, and shown), which the proxies serve as HTTP rather than relay.
  ApiOutcome service = api_->get(servicesType(), kNamespace, kIngressService);
  if (!service.ok()) {
    json object = {
        {"apiVersion", "v1"},
        {"kind", "Service"},
        {"metadata",
         {{"name", kIngressService},
          {"namespace", kNamespace},
          {"labels", {{kAppLabel, "agora-ingress"}}},
          {"annotations", {{kIngressControllerAnnotation, "true"}}}}},
        {"spec",
         {{"type", "LoadBalancer"},
          {"ports", json::array({{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}},
                                 {{"name", "https"}, {"port", 443}, {"protocol", "TCP"}}})}}}};
    service = api_->create(servicesType(), kNamespace, object);
    if (!service.ok()) {
      LOG(WARNING) << "Cannot make the ingress Service: " << service.error->message;
      return;
    }
  }
  const json lb = service.object.value("status", json::object())
                      .value("loadBalancer", json::object())
                      .value("ingress", json::array());
  std::string ip = lb.empty() ? "" : lb[0].value("ip", "");
  if (ip.empty()) return;
  // Each Ingress of ours shows the address.
  json status = {{"loadBalancer", {{"ingress", json::array({{{"ip", ip}}})}}}};
  for (const json& ingress : api_->list(ingressesType(), "")) {
    if (!ingressIsOurs(ingress) || ingress.value("status", json::object()) == status) continue;
    json next = ingress;
    next["status"] = status;
    const json meta = ingress["metadata"];
    api_->update(ingressesType(), meta.value("namespace", ""), meta.value("name", ""), next,
                 "status", false, true);
  }
}

void ProxyDaemonController::sync() {
  queued_ = false;
  if (timer_ != 0) api_->loop()->cancel(timer_);
  std::weak_ptr<bool> alive = alive_;
  timer_ = api_->loop()->after(options_.resync, [this, alive] {
    if (alive.lock()) {
      timer_ = 0;
      sync();
    }
  });
  try {
    // The Secret the pods read the API's CA and token from.
    json secret = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata", {{"name", kSecret}, {"namespace", kNamespace}}},
                   {"type", "Opaque"},
                   {"data",
                    {{"token", base64Encode(options_.token)},
                     {"ca.crt", base64Encode(options_.caPem)}}}};
    ApiOutcome current = api_->get(secretsType(), kNamespace, kSecret);
    if (!current.ok()) {
      api_->create(secretsType(), kNamespace, secret);
    } else if (current.object.value("data", json::object()) != secret["data"]) {
      json next = current.object;
      next["data"] = secret["data"];
      api_->update(secretsType(), kNamespace, kSecret, next, "", false, true);
    }
    syncIngress();
    std::set<std::string> nodes;
    for (const json& node : api_->list(nodesType(), "")) {
      nodes.insert(node["metadata"].value("name", ""));
    }
    std::set<std::string> present;
    for (const json& pod : api_->list(podsType(), kNamespace)) {
      const json meta = pod["metadata"];
      if (meta.value("labels", json::object()).value(kAppLabel, "") != kApp) continue;
      std::string name = meta.value("name", "");
      std::string node = name.substr(std::string("kube-proxy-").size());
      std::string phase = pod.value("status", json::object()).value("phase", "");
      bool stale = meta.value("annotations", json::object()).value(kSettingsAnnotation, "") !=
                   podFor(node)["metadata"]["annotations"][kSettingsAnnotation];
      if (meta.contains("deletionTimestamp")) {
        present.insert(node);  // going: made again once gone
        continue;
      }
      if (!nodes.count(node) || stale || phase == "Failed" || phase == "Succeeded") {
        LOG(INFO) << "Replacing the service proxy pod " << name;
        DeleteOptions options;
        api_->remove(podsType(), kNamespace, name, options);
        present.insert(node);
        continue;
      }
      present.insert(node);
    }
    for (const std::string& node : nodes) {
      if (present.count(node)) continue;
      ApiOutcome made = api_->create(podsType(), kNamespace, podFor(node));
      if (!made.ok()) {
        LOG(WARNING) << "Cannot make the service proxy pod for " << node << ": "
                     << made.error->message;
      }
    }
  } catch (const std::exception& e) {
    LOG(ERROR) << "Service proxy pods: " << e.what();
  }
}

}  // namespace agora::kube
