#pragma once

// What a node's service proxy serves, worked out from the API's Services and Endpoints: one
// frontend per (address, port, protocol) it listens on (each ClusterIP port, each NodePort on
// the node's address, each load-balancer address on the nodes that serve them), each with the
// ready endpoints behind it. Pure, so that it is tested without sockets; the proxy applies the
// result to its listeners (service_proxy.hpp).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace agora::kube {

// The annotation of the Service whose load-balancer address is the ingress proxy's.
constexpr char kIngressControllerAnnotation[] = "agora.dev/ingress-controller";

struct Backend {
  std::string ip;
  uint16_t port = 0;

  bool operator==(const Backend& o) const { return ip == o.ip && port == o.port; }
  bool operator<(const Backend& o) const {
    return ip != o.ip ? ip < o.ip : port < o.port;
  }
};

struct Frontend {
  std::string protocol;  // "TCP" or "UDP"
  std::string ip;
  uint16_t port = 0;
  std::string service;   // "ns/name:port-name", for logs
  // sessionAffinity ClientIP: how long a client sticks to its endpoint; 0 for none.
  int affinitySeconds = 0;
  std::vector<Backend> backends;  // sorted; empty: connections are refused

  std::string key() const { return protocol + " " + ip + ":" + std::to_string(port); }
};

struct ProxyNode {
  std::string ip;              // the node's address, where NodePorts listen
  bool loadBalancer = true;    // whether this node serves LoadBalancer addresses
};

// `services` and `endpoints` are the items of the two lists. Sorted by key; a frontend
// appears once (the first Service that claims an address and port has it).
std::vector<Frontend> proxyRules(const nlohmann::json& services, const nlohmann::json& endpoints,
                                 const ProxyNode& node);

}  // namespace agora::kube
