#include "frameworks/k8s-like/apiserver/objects.hpp"

#include <cmath>
#include <map>
#include <set>

#include "frameworks/k8s-like/apiserver/selectors.hpp"
#include "frameworks/k8s-like/apiserver/validation.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

const std::set<std::string> kMetadataFields = {
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields"};

const std::set<std::string> kContainerFields = {
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources",
    "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe",
    "readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath",
    "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce",
    "tty"};

const std::set<std::string> kPodSpecFields = {
    "volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
    "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
    "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName",
    "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "securityContext",
    "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName", "tolerations",
    "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates",
    "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead",
    "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates",
    "resourceClaims", "resources"};

const std::set<std::string> kWorkloadSpecFields = {
    "replicas", "selector", "template", "strategy", "minReadySeconds", "revisionHistoryLimit",
    "paused", "progressDeadlineSeconds"};

std::set<std::string> topLevelFields(const std::string& kind) {
  std::set<std::string> fields = {"apiVersion", "kind", "metadata"};
  if (kind == "ConfigMap") {
    fields.insert({"data", "binaryData", "immutable"});
  } else if (kind == "Secret") {
    fields.insert({"data", "stringData", "type", "immutable"});
  } else if (kind == "Event") {
    fields.insert({"involvedObject", "reason", "message", "source", "firstTimestamp",
                   "lastTimestamp", "count", "type", "eventTime", "series", "action", "related",
                   "reportingComponent", "reportingInstance"});
  } else if (kind == "Endpoints") {
    fields.insert("subsets");
  } else if (kind == "EndpointSlice") {
    fields.insert({"addressType", "endpoints", "ports"});
  } else if (kind == "ServiceAccount") {
    fields.insert({"secrets", "imagePullSecrets", "automountServiceAccountToken"});
  } else {
    fields.insert({"spec", "status"});
  }
  return fields;
}

void unknownIn(const json& object, const std::set<std::string>& known, const std::string& path,
               std::vector<std::string>* out) {
  if (!object.is_object()) {
    return;
  }
  for (const auto& [name, value] : object.items()) {
    if (!known.count(name)) {
      out->push_back(path.empty() ? name : path + "." + name);
    }
  }
}

void unknownInPodSpec(const json& spec, const std::string& path, std::vector<std::string>* out) {
  unknownIn(spec, kPodSpecFields, path, out);
  for (const char* list : {"containers", "initContainers"}) {
    if (spec.is_object() && spec.contains(list) && spec[list].is_array()) {
      for (size_t i = 0; i < spec[list].size(); ++i) {
        unknownIn(spec[list][i], kContainerFields,
                  path + "." + list + "[" + std::to_string(i) + "]", out);
      }
    }
  }
}

std::string imageTag(const std::string& image) {
  size_t slash = image.rfind('/');
  size_t colon = image.rfind(':');
  if (image.find('@') != std::string::npos) {
    return "@digest";
  }
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    return "";
  }
  return image.substr(colon + 1);
}

void defaultProbe(json& probe) {
  if (!probe.is_object()) {
    return;
  }
  if (!probe.contains("timeoutSeconds")) probe["timeoutSeconds"] = 1;
  if (!probe.contains("periodSeconds")) probe["periodSeconds"] = 10;
  if (!probe.contains("successThreshold")) probe["successThreshold"] = 1;
  if (!probe.contains("failureThreshold")) probe["failureThreshold"] = 3;
  if (probe.contains("httpGet") && probe["httpGet"].is_object()) {
    if (!probe["httpGet"].contains("scheme")) probe["httpGet"]["scheme"] = "HTTP";
    if (!probe["httpGet"].contains("path")) probe["httpGet"]["path"] = "/";
  }
}

void defaultPodSpec(json& spec) {
  if (!spec.is_object()) {
    return;
  }
  if (!spec.contains("restartPolicy")) spec["restartPolicy"] = "Always";
  if (!spec.contains("terminationGracePeriodSeconds")) spec["terminationGracePeriodSeconds"] = 30;
  if (!spec.contains("dnsPolicy")) spec["dnsPolicy"] = "ClusterFirst";
  if (!spec.contains("schedulerName")) spec["schedulerName"] = "default-scheduler";
  if (!spec.contains("securityContext")) spec["securityContext"] = json::object();
  if (!spec.contains("enableServiceLinks")) spec["enableServiceLinks"] = true;
  for (const char* list : {"containers", "initContainers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) {
      continue;
    }
    for (auto& c : spec[list]) {
      if (!c.is_object()) {
        continue;
      }
      if (!c.contains("terminationMessagePath")) c["terminationMessagePath"] = "/dev/termination-log";
      if (!c.contains("terminationMessagePolicy")) c["terminationMessagePolicy"] = "File";
      if (!c.contains("resources")) c["resources"] = json::object();
      if (!c.contains("imagePullPolicy")) {
        std::string tag = imageTag(c.value("image", std::string()));
        c["imagePullPolicy"] = (tag.empty() || tag == "latest") ? "Always" : "IfNotPresent";
      }
      if (c.contains("ports") && c["ports"].is_array()) {
        for (auto& p : c["ports"]) {
          if (p.is_object() && !p.contains("protocol")) p["protocol"] = "TCP";
        }
      }
      for (const char* probe : {"livenessProbe", "readinessProbe", "startupProbe"}) {
        if (c.contains(probe)) defaultProbe(c[probe]);
      }
    }
  }
}

void defaultTemplate(json& object) {
  if (object.contains("spec") && object["spec"].is_object() &&
      object["spec"].contains("template") && object["spec"]["template"].is_object()) {
    json& tmpl = object["spec"]["template"];
    if (!tmpl.contains("spec")) tmpl["spec"] = json::object();
    defaultPodSpec(tmpl["spec"]);
  }
}

bool validPort(const json& v) { return v.is_number_integer() && v >= 1 && v <= 65535; }

void validateResources(const json& resources, const std::string& path,
                       std::vector<FieldCause>* causes) {
  for (const char* part : {"requests", "limits"}) {
    if (!resources.is_object() || !resources.contains(part) || !resources[part].is_object()) {
      continue;
    }
    for (const auto& [name, value] : resources[part].items()) {
      auto q = parseQuantity(value);
      std::string at = path + "." + part + "[" + name + "]";
      if (!q) {
        causes->push_back({at, value.is_string() ? value.get<std::string>() : value.dump(),
                           "quantities must match the regular expression "
                           "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"});
      } else if (*q < 0) {
        causes->push_back({at, value.dump(), "must be greater than or equal to 0"});
      }
    }
  }
}

void validatePodSpec(const json& spec, const std::string& path, std::vector<FieldCause>* causes) {
  if (!spec.is_object() || !spec.contains("containers") || !spec["containers"].is_array() ||
      spec["containers"].empty()) {
    causes->push_back({path + ".containers", "", "Required value", "FieldValueRequired"});
    return;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < spec["containers"].size(); ++i) {
    const json& c = spec["containers"][i];
    std::string at = path + ".containers[" + std::to_string(i) + "]";
    std::string name = c.is_object() ? c.value("name", std::string()) : "";
    if (name.empty()) {
      causes->push_back({at + ".name", "", "Required value", "FieldValueRequired"});
    } else if (auto why = dns1123Label(name)) {
      causes->push_back({at + ".name", name, *why});
    } else if (!names.insert(name).second) {
      causes->push_back({at + ".name", name, "Duplicate value", "FieldValueDuplicate"});
    }
    if (!c.is_object() || c.value("image", std::string()).empty()) {
      causes->push_back({at + ".image", "", "Required value", "FieldValueRequired"});
    }
    if (c.is_object() && c.contains("resources")) {
      validateResources(c["resources"], at + ".resources", causes);
    }
    if (c.is_object() && c.contains("ports") && c["ports"].is_array()) {
      for (size_t p = 0; p < c["ports"].size(); ++p) {
        const json& port = c["ports"][p];
        if (!port.is_object() || !validPort(port.value("containerPort", json()))) {
          causes->push_back({at + ".ports[" + std::to_string(p) + "].containerPort",
                             port.is_object() ? port.value("containerPort", json()).dump() : "",
                             "must be between 1 and 65535, inclusive"});
        }
      }
    }
  }
  std::string policy = spec.value("restartPolicy", std::string("Always"));
  if (policy != "Always" && policy != "OnFailure" && policy != "Never") {
    causes->push_back({path + ".restartPolicy", policy,
                       "supported values: \"Always\", \"OnFailure\", \"Never\"",
                       "FieldValueNotSupported"});
  }
}

void validateWorkload(const json& object, std::vector<FieldCause>* causes) {
  const json spec = object.value("spec", json::object());
  if (spec.contains("replicas") &&
      (!spec["replicas"].is_number_integer() || spec["replicas"].get<int64_t>() < 0)) {
    causes->push_back({"spec.replicas", spec["replicas"].dump(),
                       "must be greater than or equal to 0"});
  }
  if (!spec.contains("selector") || !spec["selector"].is_object() || spec["selector"].empty()) {
    causes->push_back({"spec.selector", "", "Required value", "FieldValueRequired"});
  } else {
    auto selector = LabelSelector::fromObject(spec["selector"]);
    json labels = spec.value("template", json::object())
                      .value("metadata", json::object())
                      .value("labels", json::object());
    if (!selector) {
      causes->push_back({"spec.selector", spec["selector"].dump(), selector.error()});
    } else if (selector->empty()) {
      causes->push_back({"spec.selector", spec["selector"].dump(),
                         "empty selector is invalid for deployment"});
    } else if (!selector->matches(labels)) {
      causes->push_back({"spec.template.metadata.labels", labels.dump(),
                         "`selector` does not match template `labels`"});
    }
  }
  validatePodSpec(spec.value("template", json::object()).value("spec", json::object()),
                  "spec.template.spec", causes);
  if (object.value("kind", "") == "Deployment" && spec.contains("strategy")) {
    std::string type = spec["strategy"].value("type", std::string("RollingUpdate"));
    if (type != "RollingUpdate" && type != "Recreate") {
      causes->push_back({"spec.strategy.type", type,
                         "supported values: \"Recreate\", \"RollingUpdate\"",
                         "FieldValueNotSupported"});
    } else if (type == "Recreate" && spec["strategy"].contains("rollingUpdate")) {
      causes->push_back({"spec.strategy.rollingUpdate", "",
                         "may not be specified when strategy `type` is 'Recreate'",
                         "FieldValueForbidden"});
    }
  }
}

void validateService(const json& object, std::vector<FieldCause>* causes) {
  const json spec = object.value("spec", json::object());
  std::string type = spec.value("type", std::string("ClusterIP"));
  static const std::set<std::string> kTypes = {"ClusterIP", "NodePort", "LoadBalancer",
                                               "ExternalName"};
  if (!kTypes.count(type)) {
    causes->push_back({"spec.type", type,
                       "supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", "
                       "\"NodePort\"",
                       "FieldValueNotSupported"});
  }
  if (type == "ExternalName" && spec.value("externalName", std::string()).empty()) {
    causes->push_back({"spec.externalName", "", "Required value", "FieldValueRequired"});
  }
  if (spec.contains("ports") && spec["ports"].is_array()) {
    for (size_t i = 0; i < spec["ports"].size(); ++i) {
      const json& p = spec["ports"][i];
      if (!p.is_object() || !validPort(p.value("port", json()))) {
        causes->push_back({"spec.ports[" + std::to_string(i) + "].port",
                           p.is_object() ? p.value("port", json()).dump() : "",
                           "must be between 1 and 65535, inclusive"});
      }
    }
  } else if (type != "ExternalName" && spec.value("clusterIP", std::string()) != "None") {
    causes->push_back({"spec.ports", "", "Required value", "FieldValueRequired"});
  }
}

void validateData(const json& object, bool base64, std::vector<FieldCause>* causes) {
  for (const char* field : {"data", "binaryData", "stringData"}) {
    if (!object.contains(field)) {
      continue;
    }
    if (!object[field].is_object()) {
      causes->push_back({field, object[field].dump(), "must be a map of strings"});
      continue;
    }
    for (const auto& [key, value] : object[field].items()) {
      bool validKey = !key.empty() && key.size() <= 253 &&
                      key.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789-_.") == std::string::npos;
      if (!validKey) {
        causes->push_back({std::string(field) + "[" + key + "]", key,
                           "a valid config key must consist of alphanumeric characters, '-', "
                           "'_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex "
                           "used for validation is '[-._a-zA-Z0-9]+')"});
      }
      if (!value.is_string()) {
        causes->push_back({std::string(field) + "[" + key + "]", value.dump(),
                           "must be a string"});
      } else if ((base64 && std::string(field) == "data") ||
                 std::string(field) == "binaryData") {
        if (!base64Decode(value.get<std::string>())) {
          causes->push_back({std::string(field) + "[" + key + "]", "<value omitted>",
                             "illegal base64 data"});
        }
      }
    }
  }
}

}  // namespace

void applyDefaults(const ResourceType& type, json& object) {
  const std::string& k = type.kind;
  if (!object.contains("metadata") || !object["metadata"].is_object()) {
    object["metadata"] = json::object();
  }
  if (k == "Pod") {
    if (!object.contains("spec")) object["spec"] = json::object();
    defaultPodSpec(object["spec"]);
  } else if (k == "Deployment" || k == "ReplicaSet") {
    json& spec = object["spec"];
    if (!spec.is_object()) spec = json::object();
    if (!spec.contains("replicas")) spec["replicas"] = 1;
    if (k == "Deployment") {
      if (!spec.contains("strategy")) spec["strategy"] = json::object();
      json& strategy = spec["strategy"];
      if (!strategy.contains("type")) strategy["type"] = "RollingUpdate";
      if (strategy["type"] == "RollingUpdate") {
        if (!strategy.contains("rollingUpdate")) strategy["rollingUpdate"] = json::object();
        if (!strategy["rollingUpdate"].contains("maxSurge"))
          strategy["rollingUpdate"]["maxSurge"] = "25%";
        if (!strategy["rollingUpdate"].contains("maxUnavailable"))
          strategy["rollingUpdate"]["maxUnavailable"] = "25%";
      }
      if (!spec.contains("revisionHistoryLimit")) spec["revisionHistoryLimit"] = 10;
      if (!spec.contains("progressDeadlineSeconds")) spec["progressDeadlineSeconds"] = 600;
    }
    defaultTemplate(object);
  } else if (k == "Service") {
    json& spec = object["spec"];
    if (!spec.is_object()) spec = json::object();
    if (!spec.contains("type")) spec["type"] = "ClusterIP";
    if (!spec.contains("sessionAffinity")) spec["sessionAffinity"] = "None";
    if (spec.contains("ports") && spec["ports"].is_array()) {
      for (auto& p : spec["ports"]) {
        if (!p.is_object()) continue;
        if (!p.contains("protocol")) p["protocol"] = "TCP";
        if (!p.contains("targetPort") && p.contains("port")) p["targetPort"] = p["port"];
      }
    }
  } else if (k == "Secret") {
    if (!object.contains("type")) object["type"] = "Opaque";
  } else if (k == "Namespace") {
    if (!object.contains("spec")) object["spec"] = {{"finalizers", {"kubernetes"}}};
    if (!object.contains("status")) object["status"] = {{"phase", "Active"}};
  } else if (k == "HorizontalPodAutoscaler") {
    if (object.contains("spec") && !object["spec"].contains("minReplicas")) {
      object["spec"]["minReplicas"] = 1;
    }
  }
}

std::vector<FieldCause> validateObject(const ResourceType& type, const json& object) {
  const std::string& k = type.kind;
  std::vector<FieldCause> causes =
      validateMetadata(object.value("metadata", json::object()),
                       k == "Namespace" || k == "Service");
  if (k == "Pod") {
    validatePodSpec(object.value("spec", json::object()), "spec", &causes);
  } else if (k == "Deployment" || k == "ReplicaSet") {
    validateWorkload(object, &causes);
  } else if (k == "Service") {
    validateService(object, &causes);
  } else if (k == "ConfigMap") {
    validateData(object, false, &causes);
  } else if (k == "Secret") {
    validateData(object, true, &causes);
    if (object.value("type", "") == "kubernetes.io/tls") {
      for (const char* key : {"tls.crt", "tls.key"}) {
        if (!object.value("data", json::object()).contains(key)) {
          causes.push_back({std::string("data[") + key + "]", "", "Required value",
                            "FieldValueRequired"});
        }
      }
    }
  } else if (k == "HorizontalPodAutoscaler") {
    const json spec = object.value("spec", json::object());
    if (!spec.contains("maxReplicas")) {
      causes.push_back({"spec.maxReplicas", "", "Required value", "FieldValueRequired"});
    }
    if (!spec.contains("scaleTargetRef")) {
      causes.push_back({"spec.scaleTargetRef", "", "Required value", "FieldValueRequired"});
    }
  }
  return causes;
}

std::vector<FieldCause> validateUpdate(const ResourceType& type, const json& current,
                                       const json& next) {
  std::vector<FieldCause> causes;
  const std::string& k = type.kind;
  auto spec = [](const json& o, const char* field) {
    return o.value("spec", json::object()).value(field, json());
  };
  if ((k == "Deployment" || k == "ReplicaSet") &&
      spec(current, "selector") != spec(next, "selector")) {
    causes.push_back({"spec.selector", spec(next, "selector").dump(), "field is immutable"});
  }
  if (k == "Pod") {
    auto stripped = [](json s) {
      for (const char* list : {"containers", "initContainers"}) {
        if (s.contains(list) && s[list].is_array()) {
          for (auto& c : s[list]) c.erase("image");
        }
      }
      s.erase("activeDeadlineSeconds");
      s.erase("tolerations");
      s.erase("terminationGracePeriodSeconds");
      return s;
    };
    if (stripped(current.value("spec", json::object())) !=
        stripped(next.value("spec", json::object()))) {
      causes.push_back({"spec", "", "pod updates may not change fields other than "
                                    "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                                    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
                                    "additions to existing tolerations),"
                                    "`spec.terminationGracePeriodSeconds` (allow it to be set "
                                    "to 1 if it was previously negative)",
                        "FieldValueForbidden"});
    }
  }
  if ((k == "ConfigMap" || k == "Secret") && current.value("immutable", false)) {
    if (current.value("data", json()) != next.value("data", json()) ||
        current.value("binaryData", json()) != next.value("binaryData", json())) {
      causes.push_back({"data", "", "field is immutable when `immutable` is set",
                        "FieldValueForbidden"});
    }
    if (!next.value("immutable", false)) {
      causes.push_back({"immutable", "false", "field is immutable when `immutable` is set",
                        "FieldValueForbidden"});
    }
  }
  if (k == "Secret" && current.value("type", "") != next.value("type", "")) {
    causes.push_back({"type", next.value("type", ""), "field is immutable"});
  }
  if (k == "Service") {
    std::string was = spec(current, "clusterIP").is_string()
                          ? spec(current, "clusterIP").get<std::string>() : "";
    std::string now = spec(next, "clusterIP").is_string()
                          ? spec(next, "clusterIP").get<std::string>() : "";
    if (!was.empty() && was != now) {
      causes.push_back({"spec.clusterIP", now, "field is immutable"});
    }
  }
  return causes;
}

std::vector<std::string> unknownFields(const ResourceType& type, const json& object) {
  std::vector<std::string> out;
  unknownIn(object, topLevelFields(type.kind), "", &out);
  if (object.contains("metadata")) {
    unknownIn(object["metadata"], kMetadataFields, "metadata", &out);
  }
  const json spec = object.value("spec", json::object());
  if (type.kind == "Pod") {
    unknownInPodSpec(spec, "spec", &out);
  } else if (type.kind == "Deployment" || type.kind == "ReplicaSet") {
    unknownIn(spec, kWorkloadSpecFields, "spec", &out);
    json tmpl = spec.value("template", json::object());
    unknownIn(tmpl, {"metadata", "spec"}, "spec.template", &out);
    unknownInPodSpec(tmpl.value("spec", json::object()), "spec.template.spec", &out);
  }
  return out;
}

void foldStringData(json& secret) {
  if (!secret.contains("stringData") || !secret["stringData"].is_object()) {
    return;
  }
  if (!secret.contains("data") || !secret["data"].is_object()) {
    secret["data"] = json::object();
  }
  for (const auto& [key, value] : secret["stringData"].items()) {
    if (value.is_string()) {
      secret["data"][key] = base64Encode(value.get<std::string>());
    }
  }
  secret.erase("stringData");
}

Result<double> parseQuantity(const std::string& text) {
  static const std::map<std::string, double> kSuffixes = {
      {"", 1},           {"m", 1e-3},        {"u", 1e-6},        {"n", 1e-9},
      {"k", 1e3},        {"M", 1e6},         {"G", 1e9},         {"T", 1e12},
      {"P", 1e15},       {"E", 1e18},        {"Ki", 1024.0},     {"Mi", 1048576.0},
      {"Gi", 1073741824.0}, {"Ti", 1099511627776.0}, {"Pi", 1125899906842624.0},
      {"Ei", 1152921504606846976.0}};
  if (text.empty()) {
    return Error("an empty quantity");
  }
  size_t end = 0;
  double number = 0;
  size_t i = 0;
  if (text[0] == '+' || text[0] == '-') {
    i = 1;
  }
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  try {
    number = std::stod(text.substr(0, i), &end);
  } catch (...) {
    return Error("quantity '" + text + "' has no number");
  }
  if (end != i) {
    return Error("quantity '" + text + "' is malformed");
  }
  std::string suffix = text.substr(i);
  if (!suffix.empty() && (suffix[0] == 'e' || suffix[0] == 'E') && suffix.size() > 1) {
    try {
      size_t used = 0;
      int exponent = std::stoi(suffix.substr(1), &used);
      if (used + 1 != suffix.size()) {
        return Error("quantity '" + text + "' is malformed");
      }
      return number * std::pow(10.0, exponent);
    } catch (...) {
      return Error("quantity '" + text + "' is malformed");
    }
  }
  auto it = kSuffixes.find(suffix);
  if (it == kSuffixes.end()) {
    return Error("quantity '" + text + "' has an unknown suffix '" + suffix + "'");
  }
  return number * it->second;
}

Result<double> parseQuantity(const json& value) {
  if (value.is_number()) {
    return value.get<double>();
  }
  if (value.is_string()) {
    return parseQuantity(value.get<std::string>());
  }
  return Error("a quantity must be a string or a number");
}

std::string base64Encode(const std::string& bytes) {
  static const char* kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  while (i + 2 < bytes.size()) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
    i += 3;
  }
  if (i + 1 == bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += "=";
  }
  return out;
}

std::optional<std::string> base64Decode(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = text[i + j];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        v[j] = 0;
        ++pad;
      } else if (pad > 0 || (v[j] = value(c)) < 0) {
        return std::nullopt;
      }
    }
    uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

std::string stringField(const json& object, const char* field) {
  return object.is_object() && object.contains(field) && object[field].is_string()
             ? object[field].get<std::string>() : "";
}

std::map<std::string, std::string> decodedData(const json& object, bool secret) {
  std::map<std::string, std::string> data;
  if (!object.is_object()) return data;
  const json stored = object.value("data", json::object());
  for (const auto& [k, v] : stored.items()) {
    if (!v.is_string()) continue;
    data[k] = secret ? base64Decode(v.get<std::string>()).value_or("") : v.get<std::string>();
  }
  if (!secret) {
    const json binary = object.value("binaryData", json::object());
    for (const auto& [k, v] : binary.items()) {
      if (v.is_string()) data[k] = base64Decode(v.get<std::string>()).value_or("");
    }
  }
  return data;
}

}  // namespace agora::kube
