#include "frameworks/k8s-like/apiserver/kinds.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace agora::kube {

using nlohmann::json;

namespace {

std::vector<ResourceType> makeTypes() {
  std::vector<ResourceType> types;
  auto add = [&](std::string group, std::string version, std::string kind, std::string plural,
                 bool namespaced, std::vector<std::string> shortNames,
                 std::vector<std::string> categories, bool status, bool scale,
                 bool generation) {
    ResourceType t;
    t.group = std::move(group);
    t.version = std::move(version);
    t.singular = kind;
    for (char& c : t.singular) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    t.kind = std::move(kind);
    t.plural = std::move(plural);
    t.namespaced = namespaced;
    t.shortNames = std::move(shortNames);
    t.categories = std::move(categories);
    t.hasStatus = status;
    t.hasScale = scale;
    t.hasGeneration = generation;
    types.push_back(std::move(t));
  };
  add("", "v1", "Namespace", "namespaces", false, {"ns"}, {}, true, false, false);
  add("", "v1", "Node", "nodes", false, {"no"}, {}, true, false, false);
  add("", "v1", "Pod", "pods", true, {"po"}, {"all"}, true, false, false);
  add("", "v1", "ConfigMap", "configmaps", true, {"cm"}, {}, false, false, false);
  add("", "v1", "Secret", "secrets", true, {}, {}, false, false, false);
  add("", "v1", "Event", "events", true, {"ev"}, {}, false, false, false);
  add("", "v1", "Service", "services", true, {"svc"}, {"all"}, true, false, false);
  add("", "v1", "Endpoints", "endpoints", true, {"ep"}, {}, false, false, false);
  add("", "v1", "ServiceAccount", "serviceaccounts", true, {"sa"}, {}, false, false, false);
  add("apps", "v1", "Deployment", "deployments", true, {"deploy"}, {"all"}, true, true, true);
  add("apps", "v1", "ReplicaSet", "replicasets", true, {"rs"}, {"all"}, true, true, true);
  add("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true,
      {"hpa"}, {"all"}, true, false, false);
  // Stored as v2 (conversion.hpp); what `kubectl autoscale` sends.
  add("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true,
      {"hpa"}, {"all"}, true, false, false);
  types.back().storageVersion = false;
  add("networking.k8s.io", "v1", "Ingress", "ingresses", true, {"ing"}, {}, true, false, true);
  add("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, {}, {}, false, false,
      false);
  // Computed from the agents' measurements, never stored (controllers/pod_metrics.hpp).
  add("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", true, {}, {}, false, false, false);
  add("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", false, {}, {}, false, false, false);
  types[types.size() - 2].stored = false;
  types.back().stored = false;
  return types;
}

json patchOperation(const ResourceType& t) {
  return {{"x-kubernetes-group-version-kind",
           {{"group", t.group}, {"version", t.version}, {"kind", t.kind}}},
          {"parameters",
           json::array({{{"name", "fieldValidation"}, {"in", "query"},
                         {"schema", {{"type", "string"}}}},
                        {{"name", "dryRun"}, {"in", "query"}, {"schema", {{"type", "string"}}}},
                        {{"name", "fieldManager"}, {"in", "query"},
                         {"schema", {{"type", "string"}}}}})},
          // No strategic-merge schema is published: kubectl then computes apply's patches
          // from its own knowledge of the built-in types.
          {"requestBody",
           {{"content",
             {{"application/json-patch+json", {{"schema", json::object()}}},
              {"application/merge-patch+json", {{"schema", json::object()}}}}}}},
          {"responses", {{"200", {{"description", "OK"}}}}}};
}

std::string docPath(const ResourceType& t) {
  return t.group.empty() ? "api/" + t.version : "apis/" + t.group + "/" + t.version;
}

}  // namespace

std::string ResourceType::keyPrefix(const std::string& ns) const {
  std::string prefix = (stored ? plural : qualified()) + "/";
  if (namespaced && !ns.empty()) {
    prefix += ns + "/";
  }
  return prefix;
}

std::string ResourceType::key(const std::string& ns, const std::string& name) const {
  return namespaced ? plural + "/" + ns + "/" + name : plural + "/" + name;
}

const std::vector<ResourceType>& resourceTypes() {
  static const std::vector<ResourceType> types = makeTypes();
  return types;
}

const ResourceType* findResource(const std::string& group, const std::string& version,
                                 const std::string& plural) {
  for (const auto& t : resourceTypes()) {
    if (t.group == group && t.version == version && (t.plural == plural || t.singular == plural)) {
      return &t;
    }
  }
  return nullptr;
}

const ResourceType* findKind(const std::string& apiVersion, const std::string& kind) {
  for (const auto& t : resourceTypes()) {
    if (t.groupVersion() == apiVersion && t.kind == kind) {
      return &t;
    }
  }
  return nullptr;
}

std::vector<std::string> pathSegments(const std::string& path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) {
      slash = path.size();
    }
    if (slash > pos) {
      parts.push_back(path.substr(pos, slash - pos));
    }
    pos = slash + 1;
  }
  return parts;
}

json versionInfo() {
  return {{"major", "1"},
          {"minor", "32"},
          {"gitVersion", "v1.32.0-agora+" AGORA_VERSION},
          {"gitCommit", "agora"},
          {"gitTreeState", "clean"},
          {"buildDate", "2026-01-01T00:00:00Z"},
          {"goVersion", "none (C++)"},
          {"compiler", "agora"},
          {"platform", "linux/amd64"}};
}

json coreVersions(const std::string& serverAddress) {
  return {{"kind", "APIVersions"},
          {"versions", {"v1"}},
          {"serverAddressByClientCIDRs",
           json::array({{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", serverAddress}}})}};
}

json group(const std::string& name) {
  std::vector<std::string> versions;
  for (const auto& t : resourceTypes()) {
    if (t.group == name && std::find(versions.begin(), versions.end(), t.version) ==
                               versions.end()) {
      versions.push_back(t.version);
    }
  }
  if (name.empty() || versions.empty()) {
    return nullptr;
  }
  json g = {{"kind", "APIGroup"}, {"apiVersion", "v1"}, {"name", name}};
  g["versions"] = json::array();
  for (const auto& v : versions) {
    g["versions"].push_back({{"groupVersion", name + "/" + v}, {"version", v}});
  }
  g["preferredVersion"] = g["versions"][0];
  return g;
}

json groupList() {
  json list = {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", json::array()}};
  std::set<std::string> seen;
  for (const auto& t : resourceTypes()) {
    if (!t.group.empty() && seen.insert(t.group).second) {
      json g = group(t.group);
      g.erase("kind");
      g.erase("apiVersion");
      list["groups"].push_back(g);
    }
  }
  return list;
}

json resourceList(const std::string& groupName, const std::string& version) {
  json resources = json::array();
  for (const auto& t : resourceTypes()) {
    if (t.group != groupName || t.version != version) {
      continue;
    }
    json verbs = t.stored ? json{"create", "delete", "deletecollection", "get", "list", "patch",
                                 "update", "watch"}
                          : json{"get", "list"};
    json r = {{"name", t.plural},    {"singularName", t.singular}, {"namespaced", t.namespaced},
              {"kind", t.kind},      {"verbs", verbs}};
    if (!t.shortNames.empty()) {
      r["shortNames"] = t.shortNames;
    }
    if (!t.categories.empty()) {
      r["categories"] = t.categories;
    }
    resources.push_back(r);
    if (t.hasStatus) {
      resources.push_back({{"name", t.plural + "/status"},
                           {"singularName", ""},
                           {"namespaced", t.namespaced},
                           {"kind", t.kind},
                           {"verbs", {"get", "patch", "update"}}});
    }
    if (t.hasScale) {
      resources.push_back({{"name", t.plural + "/scale"},
                           {"singularName", ""},
                           {"namespaced", t.namespaced},
                           {"group", "autoscaling"},
                           {"version", "v1"},
                           {"kind", "Scale"},
                           {"verbs", {"get", "patch", "update"}}});
    }
  }
  if (resources.empty()) {
    return nullptr;
  }
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", groupName.empty() ? version : groupName + "/" + version},
          {"resources", resources}};
}

json aggregatedDiscovery(bool core, const std::string& version) {
  json items = json::array();
  std::vector<std::string> groups;
  for (const auto& t : resourceTypes()) {
    if (t.group.empty() == core &&
        std::find(groups.begin(), groups.end(), t.group) == groups.end()) {
      groups.push_back(t.group);
    }
  }
  json verbs = {"create", "delete", "deletecollection", "get", "list", "patch", "update",
                "watch"};
  for (const std::string& g : groups) {
    std::map<std::string, json> versions;
    std::vector<std::string> order;  // the first is the preferred version
    for (const auto& t : resourceTypes()) {
      if (t.group != g) continue;
      json r = {{"resource", t.plural},
                {"responseKind", {{"group", t.group}, {"version", t.version}, {"kind", t.kind}}},
                {"scope", t.namespaced ? "Namespaced" : "Cluster"},
                {"singularResource", t.singular},
                {"verbs", t.stored ? verbs : json{"get", "list"}}};
      if (!t.shortNames.empty()) r["shortNames"] = t.shortNames;
      if (!t.categories.empty()) r["categories"] = t.categories;
      json subresources = json::array();
      if (t.hasStatus) {
        subresources.push_back(
            {{"subresource", "status"},
             {"responseKind", {{"group", t.group}, {"version", t.version}, {"kind", t.kind}}},
             {"verbs", {"get", "patch", "update"}}});
      }
      if (t.hasScale) {
        subresources.push_back(
            {{"subresource", "scale"},
             {"responseKind", {{"group", "autoscaling"}, {"version", "v1"}, {"kind", "Scale"}}},
             {"verbs", {"get", "patch", "update"}}});
      }
      if (!subresources.empty()) r["subresources"] = subresources;
      if (versions.count(t.version) == 0) order.push_back(t.version);
      versions[t.version]["version"] = t.version;
      versions[t.version]["resources"].push_back(r);
      versions[t.version]["freshness"] = "Current";
    }
    json list = json::array();
    for (const std::string& v : order) list.push_back(versions[v]);
    items.push_back({{"metadata", {{"name", g}, {"creationTimestamp", nullptr}}},
                     {"versions", list}});
  }
  return {{"kind", "APIGroupDiscoveryList"},
          {"apiVersion", "apidiscovery.k8s.io/" + version},
          {"metadata", json::object()},
          {"items", items}};
}

json openapiRoot() {
  json paths = json::object();
  for (const auto& t : resourceTypes()) {
    std::string path = docPath(t);
    paths[path] = {{"serverRelativeURL", "/openapi/v3/" + path + "?hash=" AGORA_VERSION}};
  }
  return {{"paths", paths}};
}

json openapiDocument(const std::string& path) {
  json paths = json::object();
  for (const auto& t : resourceTypes()) {
    if (docPath(t) != path) {
      continue;
    }
    std::string base = "/" + path + "/";
    std::string item = t.namespaced ? base + "namespaces/{namespace}/" + t.plural + "/{name}"
                                    : base + t.plural + "/{name}";
    paths[item] = {{"patch", patchOperation(t)}};
  }
  if (paths.empty()) {
    return nullptr;
  }
  return {{"openapi", "3.0.0"},
          {"info", {{"title", "Kubernetes (Agora)"}, {"version", "v1.32.0"}}},
          {"paths", paths},
          {"components", {{"schemas", json::object()}}}};
}

}  // namespace agora::kube
