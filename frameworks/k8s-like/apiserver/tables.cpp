#include "frameworks/k8s-like/apiserver/tables.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>

#include "frameworks/k8s-like/apiserver/selectors.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

struct Column {
  Column(std::string n, std::string t = "string", int p = 0, std::string f = "")
      : name(std::move(n)), type(std::move(t)), priority(p), format(std::move(f)) {}
  std::string name;
  std::string type;
  int priority;  // 1: only with -o wide
  std::string format;
};

std::string str(const json& object, const std::string& path, const std::string& fallback = "") {
  std::string v = fieldValue(object, path);
  return v.empty() ? fallback : v;
}

int64_t num(const json& object, const std::string& path) {
  std::string v = fieldValue(object, path);
  if (v.empty()) {
    return 0;
  }
  try {
    return std::stoll(v);
  } catch (...) {
    return 0;
  }
}

const json& at(const json& object, const std::string& a, const std::string& b = "") {
  static const json kNull;
  if (!object.is_object() || !object.contains(a)) {
    return kNull;
  }
  if (b.empty()) {
    return object[a];
  }
  const json& first = object[a];
  return first.is_object() && first.contains(b) ? first[b] : kNull;
}

std::string age(const json& object, double now) {
  double created = parseRfc3339(str(object, "metadata.creationTimestamp"));
  return created < 0 ? "<unknown>" : humanDuration(now - created);
}

std::string joinContainers(const json& podSpec, const std::string& field) {
  std::string out;
  for (const auto& c : at(podSpec, "containers").is_array() ? at(podSpec, "containers")
                                                            : json::array()) {
    out += (out.empty() ? "" : ",") + c.value(field, std::string());
  }
  return out;
}

std::string selectorText(const json& selector) {
  auto s = LabelSelector::fromObject(selector);
  return s && !s->empty() ? s->toString() : "<none>";
}

std::string mapSelectorText(const json& selector) {
  if (!selector.is_object() || selector.empty()) {
    return "<none>";
  }
  std::string out;
  for (const auto& [k, v] : selector.items()) {
    out += (out.empty() ? "" : ",") + k + "=" + (v.is_string() ? v.get<std::string>() : "");
  }
  return out;
}

std::string servicePorts(const json& svc) {
  std::string out;
  const json& ports = at(svc, "spec", "ports");
  if (ports.is_array()) {
    for (const auto& p : ports) {
      std::string one = std::to_string(p.value("port", 0));
      if (p.contains("nodePort")) {
        one += ":" + std::to_string(p.value("nodePort", 0));
      }
      one += "/" + p.value("protocol", std::string("TCP"));
      out += (out.empty() ? "" : ",") + one;
    }
  }
  return out.empty() ? "<none>" : out;
}

std::string externalIp(const json& svc) {
  std::string type = str(svc, "spec.type", "ClusterIP");
  if (type == "ExternalName") {
    return str(svc, "spec.externalName", "<none>");
  }
  std::string out;
  const json& ingress = at(at(svc, "status"), "loadBalancer", "ingress");
  if (ingress.is_array()) {
    for (const auto& i : ingress) {
      out += (out.empty() ? "" : ",") + i.value("ip", i.value("hostname", std::string()));
    }
  }
  const json& external = at(svc, "spec", "externalIPs");
  if (external.is_array()) {
    for (const auto& ip : external) {
      out += (out.empty() ? "" : ",") + ip.get<std::string>();
    }
  }
  if (out.empty()) {
    return type == "LoadBalancer" ? "<pending>" : "<none>";
  }
  return out;
}

std::string restarts(const json& pod, double now) {
  int64_t count = 0;
  double last = -1;
  const json& statuses = at(pod, "status", "containerStatuses");
  if (statuses.is_array()) {
    for (const auto& c : statuses) {
      count += c.value("restartCount", 0);
      double finished = parseRfc3339(str(c, "lastState.terminated.finishedAt"));
      last = std::max(last, finished);
    }
  }
  std::string out = std::to_string(count);
  if (count > 0 && last > 0) {
    out += " (" + humanDuration(now - last) + " ago)";
  }
  return out;
}

std::string podReady(const json& pod) {
  const json& containers = at(pod, "spec", "containers");
  size_t total = containers.is_array() ? containers.size() : 0;
  size_t ready = 0;
  const json& statuses = at(pod, "status", "containerStatuses");
  if (statuses.is_array()) {
    for (const auto& c : statuses) {
      ready += c.value("ready", false) ? 1 : 0;
    }
  }
  return std::to_string(ready) + "/" + std::to_string(total);
}

std::string nodeStatus(const json& node) {
  std::string status = "Unknown";
  const json& conditions = at(node, "status", "conditions");
  if (conditions.is_array()) {
    for (const auto& c : conditions) {
      if (c.value("type", "") == "Ready") {
        status = c.value("status", "") == "True" ? "Ready" : "NotReady";
      }
    }
  }
  if (at(node, "spec", "unschedulable") == true) {
    status += ",SchedulingDisabled";
  }
  return status;
}

std::string nodeAddress(const json& node, const std::string& type) {
  const json& addresses = at(node, "status", "addresses");
  if (addresses.is_array()) {
    for (const auto& a : addresses) {
      if (a.value("type", "") == type) {
        return a.value("address", "");
      }
    }
  }
  return "<none>";
}

std::string hpaTargets(const json& hpa) {
  std::string out;
  const json& metrics = at(hpa, "spec", "metrics");
  const json& current = at(hpa, "status", "currentMetrics");
  if (!metrics.is_array()) {
    return "<none>";
  }
  for (size_t i = 0; i < metrics.size(); ++i) {
    const json& m = metrics[i];
    if (m.value("type", "") != "Resource") {
      continue;
    }
    std::string name = str(m, "resource.name");
    std::string target = str(m, "resource.target.averageUtilization");
    std::string now = "<unknown>";
    if (current.is_array() && i < current.size()) {
      std::string v = str(current[i], "resource.current.averageUtilization");
      if (!v.empty()) {
        now = v + "%";
      }
    }
    out += (out.empty() ? "" : ", ") + name + ": " + now + "/" +
           (target.empty() ? str(m, "resource.target.averageValue") : target + "%");
  }
  return out.empty() ? "<none>" : out;
}

std::vector<Column> columnsOf(const ResourceType& t) {
  const std::string& k = t.kind;
  if (k == "Pod") {
    return {{"Name", "string", 0, "name"}, {"Ready"}, {"Status"}, {"Restarts", "string"},
            {"Age"}, {"IP", "string", 1}, {"Node", "string", 1}, {"Nominated Node", "string", 1},
            {"Readiness Gates", "string", 1}};
  }
  if (k == "Deployment") {
    return {{"Name", "string", 0, "name"}, {"Ready"}, {"Up-to-date", "integer"},
            {"Available", "integer"}, {"Age"}, {"Containers", "string", 1},
            {"Images", "string", 1}, {"Selector", "string", 1}};
  }
  if (k == "ReplicaSet") {
    return {{"Name", "string", 0, "name"}, {"Desired", "integer"}, {"Current", "integer"},
            {"Ready", "integer"}, {"Age"}, {"Containers", "string", 1},
            {"Images", "string", 1}, {"Selector", "string", 1}};
  }
  if (k == "Service") {
    return {{"Name", "string", 0, "name"}, {"Type"}, {"Cluster-IP"}, {"External-IP"},
            {"Port(s)"}, {"Age"}, {"Selector", "string", 1}};
  }
  if (k == "ConfigMap") {
    return {{"Name", "string", 0, "name"}, {"Data", "integer"}, {"Age"}};
  }
  if (k == "Secret") {
    return {{"Name", "string", 0, "name"}, {"Type"}, {"Data", "integer"}, {"Age"}};
  }
  if (k == "Namespace") {
    return {{"Name", "string", 0, "name"}, {"Status"}, {"Age"}};
  }
  if (k == "Node") {
    return {{"Name", "string", 0, "name"}, {"Status"}, {"Roles"}, {"Age"}, {"Version"},
            {"Internal-IP", "string", 1}, {"External-IP", "string", 1},
            {"OS-Image", "string", 1}, {"Kernel-Version", "string", 1},
            {"Container-Runtime", "string", 1}};
  }
  if (k == "Event") {
    return {{"Last Seen"}, {"Type"}, {"Reason"}, {"Object"}, {"Message"}};
  }
  if (k == "Endpoints") {
    return {{"Name", "string", 0, "name"}, {"Endpoints"}, {"Age"}};
  }
  if (k == "HorizontalPodAutoscaler") {
    return {{"Name", "string", 0, "name"}, {"Reference"}, {"Targets"},
            {"MinPods", "string"}, {"MaxPods", "integer"}, {"Replicas", "integer"}, {"Age"}};
  }
  if (k == "Ingress") {
    return {{"Name", "string", 0, "name"}, {"Class"}, {"Hosts"}, {"Address"}, {"Ports"},
            {"Age"}};
  }
  if (k == "EndpointSlice") {
    return {{"Name", "string", 0, "name"}, {"AddressType"}, {"Ports"}, {"Endpoints"}, {"Age"}};
  }
  if (k == "ServiceAccount") {
    return {{"Name", "string", 0, "name"}, {"Secrets", "integer"}, {"Age"}};
  }
  return {{"Name", "string", 0, "name"}, {"Age"}};
}

json cellsOf(const ResourceType& t, const json& o, double now) {
  const std::string& k = t.kind;
  std::string name = str(o, "metadata.name");
  if (k == "Pod") {
    return {name, podReady(o), podDisplayStatus(o), restarts(o, now), age(o, now),
            str(o, "status.podIP", "<none>"), str(o, "spec.nodeName", "<none>"),
            str(o, "status.nominatedNodeName", "<none>"), "<none>"};
  }
  if (k == "Deployment") {
    const json& pod = at(at(o, "spec"), "template", "spec");
    return {name,
            std::to_string(num(o, "status.readyReplicas")) + "/" +
                std::to_string(num(o, "spec.replicas")),
            num(o, "status.updatedReplicas"), num(o, "status.availableReplicas"), age(o, now),
            joinContainers(pod, "name"), joinContainers(pod, "image"),
            selectorText(at(o, "spec", "selector"))};
  }
  if (k == "ReplicaSet") {
    const json& pod = at(at(o, "spec"), "template", "spec");
    return {name, num(o, "spec.replicas"), num(o, "status.replicas"),
            num(o, "status.readyReplicas"), age(o, now), joinContainers(pod, "name"),
            joinContainers(pod, "image"), selectorText(at(o, "spec", "selector"))};
  }
  if (k == "Service") {
    return {name, str(o, "spec.type", "ClusterIP"), str(o, "spec.clusterIP", "<none>"),
            externalIp(o), servicePorts(o), age(o, now),
            mapSelectorText(at(o, "spec", "selector"))};
  }
  if (k == "ConfigMap") {
    size_t n = (o.contains("data") && o["data"].is_object() ? o["data"].size() : 0) +
               (o.contains("binaryData") && o["binaryData"].is_object() ? o["binaryData"].size()
                                                                        : 0);
    return {name, n, age(o, now)};
  }
  if (k == "Secret") {
    size_t n = o.contains("data") && o["data"].is_object() ? o["data"].size() : 0;
    return {name, str(o, "type", "Opaque"), n, age(o, now)};
  }
  if (k == "Namespace") {
    return {name, str(o, "status.phase", "Active"), age(o, now)};
  }
  if (k == "Node") {
    std::string roles;
    const json& labels = at(o, "metadata", "labels");
    if (labels.is_object()) {
      for (const auto& [key, value] : labels.items()) {
        if (key.rfind("node-role.kubernetes.io/", 0) == 0) {
          roles += (roles.empty() ? "" : ",") + key.substr(24);
        }
      }
    }
    return {name, nodeStatus(o), roles.empty() ? "<none>" : roles, age(o, now),
            str(o, "status.nodeInfo.kubeletVersion"), nodeAddress(o, "InternalIP"),
            nodeAddress(o, "ExternalIP"), str(o, "status.nodeInfo.osImage", "<unknown>"),
            str(o, "status.nodeInfo.kernelVersion", "<unknown>"),
            str(o, "status.nodeInfo.containerRuntimeVersion", "<unknown>")};
  }
  if (k == "Event") {
    double last = parseRfc3339(str(o, "lastTimestamp", str(o, "eventTime")));
    std::string object = str(o, "involvedObject.kind");
    for (char& c : object) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return {last < 0 ? "<unknown>" : humanDuration(now - last), str(o, "type"),
            str(o, "reason"), object + "/" + str(o, "involvedObject.name"), str(o, "message")};
  }
  if (k == "Endpoints") {
    std::string out;
    const json& subsets = at(o, "subsets");
    if (subsets.is_array()) {
      for (const auto& s : subsets) {
        for (const auto& a : at(s, "addresses").is_array() ? s["addresses"] : json::array()) {
          for (const auto& p : at(s, "ports").is_array() ? s["ports"] : json::array()) {
            out += (out.empty() ? "" : ",") + a.value("ip", std::string()) + ":" +
                   std::to_string(p.value("port", 0));
          }
        }
      }
    }
    return {name, out.empty() ? "<none>" : out, age(o, now)};
  }
  if (k == "HorizontalPodAutoscaler") {
    return {name,
            str(o, "spec.scaleTargetRef.kind") + "/" + str(o, "spec.scaleTargetRef.name"),
            hpaTargets(o), str(o, "spec.minReplicas", "<unset>"), num(o, "spec.maxReplicas"),
            num(o, "status.currentReplicas"), age(o, now)};
  }
  if (k == "Ingress") {
    std::string hosts;
    const json& rules = at(o, "spec", "rules");
    if (rules.is_array()) {
      for (const auto& r : rules) {
        hosts += (hosts.empty() ? "" : ",") + r.value("host", std::string("*"));
      }
    }
    std::string address;
    const json& lb = at(at(o, "status"), "loadBalancer", "ingress");
    if (lb.is_array()) {
      for (const auto& i : lb) {
        address += (address.empty() ? "" : ",") + i.value("ip", i.value("hostname", std::string()));
      }
    }
    bool tls = at(o, "spec", "tls").is_array() && !at(o, "spec", "tls").empty();
    return {name, str(o, "spec.ingressClassName", "<none>"), hosts.empty() ? "*" : hosts,
            address, tls ? "80, 443" : "80", age(o, now)};
  }
  if (k == "EndpointSlice") {
    std::string ports;
    for (const auto& p : at(o, "ports").is_array() ? o["ports"] : json::array()) {
      ports += (ports.empty() ? "" : ",") + std::to_string(p.value("port", 0));
    }
    std::string endpoints;
    for (const auto& e : at(o, "endpoints").is_array() ? o["endpoints"] : json::array()) {
      for (const auto& a : at(e, "addresses").is_array() ? e["addresses"] : json::array()) {
        endpoints += (endpoints.empty() ? "" : ",") + a.get<std::string>();
      }
    }
    return {name, str(o, "addressType"), ports.empty() ? "<unset>" : ports,
            endpoints.empty() ? "<unset>" : endpoints, age(o, now)};
  }
  if (k == "ServiceAccount") {
    return {name, at(o, "secrets").is_array() ? o["secrets"].size() : 0, age(o, now)};
  }
  return {name, age(o, now)};
}

}  // namespace

std::string humanDuration(double secondsValue) {
  if (secondsValue < -1) {
    return "<invalid>";
  }
  int64_t s = secondsValue < 0 ? 0 : static_cast<int64_t>(secondsValue);
  char buf[32];
  if (s < 120) {
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
    return buf;
  }
  int64_t m = s / 60;
  if (m < 10) {
    int64_t rest = s % 60;
    if (rest == 0) {
      std::snprintf(buf, sizeof(buf), "%lldm", static_cast<long long>(m));
    } else {
      std::snprintf(buf, sizeof(buf), "%lldm%llds", static_cast<long long>(m),
                    static_cast<long long>(rest));
    }
    return buf;
  }
  if (m < 180) {
    std::snprintf(buf, sizeof(buf), "%lldm", static_cast<long long>(m));
    return buf;
  }
  int64_t h = m / 60;
  if (h < 8) {
    int64_t rest = m % 60;
    if (rest == 0) {
      std::snprintf(buf, sizeof(buf), "%lldh", static_cast<long long>(h));
    } else {
      std::snprintf(buf, sizeof(buf), "%lldh%lldm", static_cast<long long>(h),
                    static_cast<long long>(rest));
    }
    return buf;
  }
  if (h < 48) {
    std::snprintf(buf, sizeof(buf), "%lldh", static_cast<long long>(h));
    return buf;
  }
  if (h < 24 * 8) {
    int64_t rest = h % 24;
    if (rest == 0) {
      std::snprintf(buf, sizeof(buf), "%lldd", static_cast<long long>(h / 24));
    } else {
      std::snprintf(buf, sizeof(buf), "%lldd%lldh", static_cast<long long>(h / 24),
                    static_cast<long long>(rest));
    }
    return buf;
  }
  if (h < 24 * 365 * 2) {
    std::snprintf(buf, sizeof(buf), "%lldd", static_cast<long long>(h / 24));
    return buf;
  }
  int64_t y = h / (24 * 365);
  if (h < 24 * 365 * 8) {
    std::snprintf(buf, sizeof(buf), "%lldy%lldd", static_cast<long long>(y),
                  static_cast<long long>((h % (24 * 365)) / 24));
    return buf;
  }
  std::snprintf(buf, sizeof(buf), "%lldy", static_cast<long long>(y));
  return buf;
}

std::string rfc3339(double unixSeconds) {
  time_t t = static_cast<time_t>(unixSeconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double parseRfc3339(const std::string& text) {
  struct tm tm {};
  int year, month, day, hour, minute;
  double second;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%lf", &year, &month, &day, &hour, &minute,
                  &second) != 6) {
    return -1;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = 0;
  return static_cast<double>(timegm(&tm)) + second;
}

std::string podDisplayStatus(const json& pod) {
  std::string reason = str(pod, "status.phase", "Pending");
  if (!str(pod, "status.reason").empty()) {
    reason = str(pod, "status.reason");
  }
  bool hasRunning = false;
  const json& statuses = at(pod, "status", "containerStatuses");
  if (statuses.is_array()) {
    for (auto it = statuses.rbegin(); it != statuses.rend(); ++it) {
      const json& c = *it;
      std::string waiting = str(c, "state.waiting.reason");
      std::string terminated = str(c, "state.terminated.reason");
      if (!waiting.empty()) {
        reason = waiting;
      } else if (!terminated.empty()) {
        reason = terminated;
      } else if (at(c, "state").contains("terminated")) {
        int64_t signal = num(c, "state.terminated.signal");
        reason = signal != 0 ? "Signal:" + std::to_string(signal)
                             : "ExitCode:" + std::to_string(num(c, "state.terminated.exitCode"));
      } else if (c.value("ready", false) && at(c, "state").contains("running")) {
        hasRunning = true;
      }
    }
  }
  if (reason == "Completed" && hasRunning) {
    reason = "Running";
  }
  if (!str(pod, "metadata.deletionTimestamp").empty()) {
    reason = str(pod, "status.reason") == "NodeLost" ? "Unknown" : "Terminating";
  }
  return reason;
}

json toTable(const ResourceType& type, const std::vector<json>& objects,
             const std::string& includeObject, double now) {
  json table = {{"kind", "Table"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", json::object()}};
  json columns = json::array();
  for (const auto& c : columnsOf(type)) {
    json column = {{"name", c.name}, {"type", c.type}, {"format", c.format},
                   {"description", c.name}, {"priority", c.priority}};
    columns.push_back(column);
  }
  table["columnDefinitions"] = columns;
  json rows = json::array();
  for (const auto& o : objects) {
    json row = {{"cells", cellsOf(type, o, now)}};
    if (includeObject == "Object") {
      row["object"] = o;
    } else if (includeObject != "None") {
      row["object"] = {{"kind", "PartialObjectMetadata"},
                       {"apiVersion", "meta.k8s.io/v1"},
                       {"metadata", o.value("metadata", json::object())}};
    }
    rows.push_back(row);
  }
  table["rows"] = rows;
  return table;
}

}  // namespace agora::kube
