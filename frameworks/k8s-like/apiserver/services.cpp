#include "frameworks/k8s-like/apiserver/services.hpp"

#include <arpa/inet.h>

#include <set>

#include "frameworks/k8s-like/apiserver/objects.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

struct Range {
  uint32_t first = 0;  // host order, the first usable address
  uint32_t last = 0;
};

Result<Range> parseCidr(const std::string& cidr) {
  size_t slash = cidr.find('/');
  if (slash == std::string::npos) {
    return Error("'" + cidr + "' is not a CIDR (like 127.96.0.0/16)");
  }
  in_addr address{};
  if (::inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &address) != 1) {
    return Error("'" + cidr + "' is not an IPv4 CIDR");
  }
  int prefix = std::atoi(cidr.substr(slash + 1).c_str());
  if (prefix < 8 || prefix > 30) {
    return Error("'" + cidr + "': the prefix must be between 8 and 30");
  }
  uint32_t base = ntohl(address.s_addr);
  uint32_t size = 1u << (32 - prefix);
  base &= ~(size - 1);
  return Range{base + 1, base + size - 2};  // not the network's or the broadcast address
}

std::string text(uint32_t ip) {
  in_addr address{};
  address.s_addr = htonl(ip);
  char buf[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &address, buf, sizeof(buf));
  return buf;
}

std::optional<uint32_t> parse(const std::string& ip) {
  in_addr address{};
  if (::inet_pton(AF_INET, ip.c_str(), &address) != 1) {
    return std::nullopt;
  }
  return ntohl(address.s_addr);
}

}  // namespace

Result<std::string> addressAt(const std::string& cidr, uint32_t index) {
  auto range = parseCidr(cidr);
  if (!range) {
    return range.error();
  }
  if (index > range->last - range->first) {
    return Error(cidr + " has fewer than " + std::to_string(index + 1) + " addresses");
  }
  return text(range->first + index);
}

Result<std::string> firstFreeAddress(const std::string& cidr, const std::set<std::string>& used) {
  auto range = parseCidr(cidr);
  if (!range) {
    return range.error();
  }
  for (uint32_t ip = range->first; ip <= range->last; ++ip) {
    std::string candidate = text(ip);
    if (!used.count(candidate)) {
      return candidate;
    }
  }
  return Error("no address of " + cidr + " is free");
}

Status ServiceRanges::setNodePortRange(const std::string& range) {
  size_t dash = range.find('-');
  int first = std::atoi(range.substr(0, dash).c_str());
  int last = dash == std::string::npos ? 0 : std::atoi(range.substr(dash + 1).c_str());
  if (dash == std::string::npos || first < 1 || last > 65535 || first > last) {
    return Error("'" + range + "' is not a port range (like 30000-32767)");
  }
  nodePortFirst = first;
  nodePortLast = last;
  return ok();
}

std::vector<FieldCause> allocateService(const ServiceRanges& ranges, json& service,
                                        const json& current, const std::vector<json>& others) {
  std::vector<FieldCause> causes;
  json& spec = service["spec"];
  std::string uid = stringField(service["metadata"], "uid");
  std::string type = spec.value("type", "ClusterIP");
  std::set<uint32_t> usedIps;
  std::set<int> usedPorts;
  std::set<uint32_t> usedLb;
  for (const json& other : others) {
    const json& meta = other["metadata"];
    if (stringField(meta, "name") == stringField(service["metadata"], "name") &&
        stringField(meta, "namespace") == stringField(service["metadata"], "namespace")) {
      continue;  // itself
    }
    if (auto ip = parse(stringField(other.value("spec", json::object()), "clusterIP"))) usedIps.insert(*ip);
    for (const auto& p : other.value("spec", json::object()).value("ports", json::array())) {
      if (p.contains("nodePort") && p["nodePort"].is_number_integer()) {
        usedPorts.insert(p["nodePort"].get<int>());
      }
    }
    const json lb = other.value("status", json::object())
                        .value("loadBalancer", json::object())
                        .value("ingress", json::array());
    for (const auto& i : lb) {
      if (auto ip = parse(stringField(i, "ip"))) usedLb.insert(*ip);
    }
  }

  // The ClusterIP: kept, checked, or the first free one.
  const json currentSpec =
      current.is_object() ? current.value("spec", json::object()) : json::object();
  std::string wanted = stringField(spec, "clusterIP");
  if (wanted.empty() && !stringField(currentSpec, "clusterIP").empty()) {
    wanted = stringField(currentSpec, "clusterIP");
    spec["clusterIP"] = wanted;
  }
  if (type == "ExternalName") {
    spec.erase("clusterIP");
    spec.erase("clusterIPs");
  } else if (wanted == "None") {
    spec["clusterIPs"] = {"None"};
  } else {
    auto range = parseCidr(ranges.serviceCidr);
    if (!range) {
      causes.push_back({"spec.clusterIP", wanted, "no service range: " + range.error()});
      return causes;
    }
    if (!wanted.empty()) {
      auto ip = parse(wanted);
      if (!ip) {
        causes.push_back({"spec.clusterIP", wanted, "must be a valid IP address"});
      } else if (*ip < range->first || *ip > range->last) {
        causes.push_back({"spec.clusterIP", wanted,
                          "provided IP is not in the valid range. The range of valid IPs is " +
                              ranges.serviceCidr});
      } else if (usedIps.count(*ip) && stringField(currentSpec, "clusterIP") != wanted) {
        causes.push_back({"spec.clusterIP", wanted, "provided IP is already allocated"});
      }
    } else {
      uint32_t ip = range->first;
      while (ip <= range->last && usedIps.count(ip)) ++ip;
      if (ip > range->last) {
        causes.push_back({"spec.clusterIP", "", "the service range " + ranges.serviceCidr +
                                                    " is full"});
        return causes;
      }
      wanted = text(ip);
      spec["clusterIP"] = wanted;
    }
    spec["clusterIPs"] = {wanted};
  }

  // Node ports for NodePort and LoadBalancer services.
  bool nodePorts = type == "NodePort" || type == "LoadBalancer";
  json& ports = spec["ports"];
  if (!ports.is_array()) {
    ports = json::array();
  }
  for (size_t i = 0; i < ports.size(); ++i) {
    json& p = ports[i];
    std::string at = "spec.ports[" + std::to_string(i) + "].nodePort";
    if (!nodePorts) {
      p.erase("nodePort");
      continue;
    }
    if (!p.contains("nodePort")) {
      for (const auto& old : currentSpec.value("ports", json::array())) {
        if (old.value("port", 0) == p.value("port", -1) &&
            old.value("protocol", "TCP") == p.value("protocol", "TCP") &&
            old.contains("nodePort")) {
          p["nodePort"] = old["nodePort"];
        }
      }
    }
    if (p.contains("nodePort")) {
      int port = p["nodePort"].is_number_integer() ? p["nodePort"].get<int>() : -1;
      if (port < ranges.nodePortFirst || port > ranges.nodePortLast) {
        causes.push_back({at, p["nodePort"].dump(),
                          "provided port is not in the valid range. The range of valid ports is " +
                              std::to_string(ranges.nodePortFirst) + "-" +
                              std::to_string(ranges.nodePortLast)});
      } else if (usedPorts.count(port)) {
        causes.push_back({at, std::to_string(port), "provided port is already allocated"});
      }
      usedPorts.insert(port);
      continue;
    }
    int port = ranges.nodePortFirst;
    while (port <= ranges.nodePortLast && usedPorts.count(port)) ++port;
    if (port > ranges.nodePortLast) {
      causes.push_back({at, "", "the node port range is full"});
      continue;
    }
    p["nodePort"] = port;
    usedPorts.insert(port);
  }

  // A load balancer's address, in the service's status.
  if (type == "LoadBalancer") {
    const json kept = current.is_object() ? current.value("status", json::object())
                                                  .value("loadBalancer", json::object())
                                                  .value("ingress", json::array())
                                          : json::array();
    if (!kept.empty()) {
      service["status"]["loadBalancer"]["ingress"] = kept;
    } else {
      auto pool = parseCidr(ranges.loadBalancerPool);
      if (!pool) {
        causes.push_back({"spec.type", type, "no load-balancer pool: " + pool.error()});
        return causes;
      }
      uint32_t ip = pool->first;
      while (ip <= pool->last && usedLb.count(ip)) ++ip;
      if (ip <= pool->last) {
        service["status"]["loadBalancer"]["ingress"] = json::array({{{"ip", text(ip)}}});
      }
    }
  } else if (service.contains("status") && service["status"].is_object()) {
    service["status"]["loadBalancer"] = json::object();
  }
  (void)uid;
  return causes;
}

}  // namespace agora::kube
