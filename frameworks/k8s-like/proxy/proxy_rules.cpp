#include "frameworks/k8s-like/proxy/proxy_rules.hpp"

#include <algorithm>
#include <map>

#include "frameworks/k8s-like/apiserver/objects.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

int integer(const json& object, const char* field) {
  return object.is_object() && object.contains(field) && object[field].is_number_integer()
             ? object[field].get<int>() : 0;
}

bool isAddress(const std::string& ip) {
  return !ip.empty() && ip != "None" && ip.find_first_not_of("0123456789.:abcdefABCDEF") ==
                                             std::string::npos;
}

}  // namespace

std::vector<Frontend> proxyRules(const json& services, const json& endpoints,
                                 const ProxyNode& node) {
  // Endpoints by "ns/name".
  std::map<std::string, const json*> byService;
  if (endpoints.is_array()) {
    for (const json& e : endpoints) {
      if (!e.is_object()) continue;
      const json meta = e.value("metadata", json::object());
      byService[stringField(meta, "namespace") + "/" + stringField(meta, "name")] = &e;
    }
  }
  std::map<std::string, Frontend> out;
  if (!services.is_array()) {
    return {};
  }
  for (const json& service : services) {
    // What a malformed object lacks, it does not get: the others are served all the same.
    try {
      if (!service.is_object()) continue;
      const json meta = service.value("metadata", json::object());
      const json spec = service.value("spec", json::object());
      if (!spec.is_object()) continue;
      std::string key = stringField(meta, "namespace") + "/" + stringField(meta, "name");
      std::string type = stringField(spec, "type").empty() ? "ClusterIP" : stringField(spec, "type");
      std::string clusterIP = stringField(spec, "clusterIP");
      if (type == "ExternalName" || stringField(meta.value("annotations", json::object()),
                                        kIngressControllerAnnotation) == "true") {
        continue;  // nothing to relay; the ingress proxy serves the ingress address itself
      }
      int affinity = 0;
      if (stringField(spec, "sessionAffinity") == "ClientIP") {
        affinity = 10800;
        const json config = spec.value("sessionAffinityConfig", json::object())
                                .value("clientIP", json::object());
        if (int t = integer(config, "timeoutSeconds"); t > 0) affinity = t;
      }
      std::vector<std::string> lbAddresses;
      if (type == "LoadBalancer" && node.loadBalancer) {
        const json ingress = service.value("status", json::object())
                                 .value("loadBalancer", json::object())
                                 .value("ingress", json::array());
        for (const json& i : ingress.is_array() ? ingress : json::array()) {
          if (isAddress(stringField(i, "ip"))) lbAddresses.push_back(stringField(i, "ip"));
        }
      }
      auto found = byService.find(key);
      json subsets = found == byService.end() ? json::array()
                                              : found->second->value("subsets", json::array());
      if (!subsets.is_array()) subsets = json::array();
      json ports = spec.value("ports", json::array());
      if (!ports.is_array()) ports = json::array();
      for (const json& port : ports) {
        if (!port.is_object()) continue;
        std::string protocol = stringField(port, "protocol").empty() ? "TCP" : stringField(port, "protocol");
        if (protocol != "TCP" && protocol != "UDP") {
          continue;  // SCTP is not proxied
        }
        std::string name = stringField(port, "name");
        // The ready addresses of the endpoint port of the same name (and protocol).
        std::vector<Backend> backends;
        for (const json& subset : subsets) {
          if (!subset.is_object()) continue;
          const json endpointPorts = subset.value("ports", json::array());
          const json addresses = subset.value("addresses", json::array());
          if (!endpointPorts.is_array() || !addresses.is_array()) continue;
          for (const json& ep : endpointPorts) {
            std::string epProtocol = stringField(ep, "protocol").empty() ? "TCP" : stringField(ep, "protocol");
            if (stringField(ep, "name") != name || epProtocol != protocol) continue;
            int target = integer(ep, "port");
            if (target <= 0 || target > 65535) continue;
            for (const json& a : addresses) {
              if (isAddress(stringField(a, "ip"))) {
                backends.push_back({stringField(a, "ip"), static_cast<uint16_t>(target)});
              }
            }
          }
        }
        std::sort(backends.begin(), backends.end());
        backends.erase(std::unique(backends.begin(), backends.end()), backends.end());
        Frontend base;
        base.protocol = protocol;
        base.service = key + ":" + (name.empty() ? std::to_string(integer(port, "port")) : name);
        base.affinitySeconds = affinity;
        base.backends = backends;
        auto add = [&](const std::string& ip, int listenPort) {
          if (!isAddress(ip) || listenPort <= 0 || listenPort > 65535) return;
          Frontend f = base;
          f.ip = ip;
          f.port = static_cast<uint16_t>(listenPort);
          out.emplace(f.key(), std::move(f));  // the first claim keeps it
        };
        add(clusterIP, integer(port, "port"));
        if (type == "NodePort" || type == "LoadBalancer") {
          add(node.ip, integer(port, "nodePort"));
        }
        for (const std::string& ip : lbAddresses) {
          add(ip, integer(port, "port"));
        }
      }
    } catch (const json::exception&) {
      continue;
    }
  }
  std::vector<Frontend> rules;
  rules.reserve(out.size());
  for (auto& [k, f] : out) rules.push_back(std::move(f));
  return rules;
}

}  // namespace agora::kube
