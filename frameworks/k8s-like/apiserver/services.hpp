#pragma once

// What a Service is given when it is stored, as kube-apiserver gives it: a ClusterIP from the
// service range (unless headless or ExternalName), a node port from the node-port range for
// each port of a NodePort or LoadBalancer service, and, for a LoadBalancer, an address from the
// load-balancer pool in its status. On a one-machine cluster both address ranges are on
// loopback, so nothing needs configuring and no traffic leaves the host.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "frameworks/k8s-like/apiserver/status.hpp"

namespace agora::kube {

struct ServiceRanges {
  std::string serviceCidr = "127.96.0.0/16";
  int nodePortFirst = 30000;
  int nodePortLast = 32767;
  std::string loadBalancerPool = "127.97.0.0/16";

  // "30000-32767" -> the two ends; a CIDR is checked by allocate().
  Status setNodePortRange(const std::string& text);
};

// Fills in what `service` lacks (clusterIP, clusterIPs, nodePorts, the load balancer's address)
// without reusing what `others` hold; checks what it asks for itself (an address outside the
// range or taken, a node port outside the range or taken). `current` is the stored version on
// an update (null on create), whose allocations carry over.
std::vector<FieldCause> allocateService(const ServiceRanges& ranges, nlohmann::json& service,
                                        const nlohmann::json& current,
                                        const std::vector<nlohmann::json>& others);

// The `index`th usable address of `cidr` (0: the first after the network's).
Result<std::string> addressAt(const std::string& cidr, uint32_t index);

// The first address of `cidr` (not its network or broadcast address) that `used` lacks.
Result<std::string> firstFreeAddress(const std::string& cidr, const std::set<std::string>& used);

}  // namespace agora::kube
