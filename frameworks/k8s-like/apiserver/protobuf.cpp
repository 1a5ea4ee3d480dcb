#include "frameworks/k8s-like/apiserver/protobuf.hpp"

#include <map>
#include <set>
#include <vector>

#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

enum class Kind {
  kString,
  kBytes,        // base64 in JSON
  kInt,
  kBool,
  kMessage,
  kStringMap,    // map<string, string>
  kBytesMap,     // map<string, bytes>
  kQuantityMap,  // map<string, Quantity>
  kTime,
  kQuantity,
  kIntOrString,
  kIgnored,      // a status the server resets on create anyway
};

struct Field {
  int number;
  const char* name;
  Kind kind;
  bool repeated = false;
  const char* message = nullptr;
};

using Schema = std::vector<Field>;

const std::map<std::string, Schema>& schemas() {
  using K = Kind;
  static const std::map<std::string, Schema> all = {
      {"ObjectMeta",
       {{1, "name", K::kString}, {2, "generateName", K::kString},
        {3, "namespace", K::kString}, {4, "selfLink", K::kString}, {5, "uid", K::kString},
        {6, "resourceVersion", K::kString}, {7, "generation", K::kInt},
        {8, "creationTimestamp", K::kTime}, {9, "deletionTimestamp", K::kTime},
        {10, "deletionGracePeriodSeconds", K::kInt}, {11, "labels", K::kStringMap},
        {12, "annotations", K::kStringMap},
        {13, "ownerReferences", K::kMessage, true, "OwnerReference"},
        {14, "finalizers", K::kString, true}}},
      {"OwnerReference",
       {{1, "kind", K::kString}, {3, "name", K::kString}, {4, "uid", K::kString},
        {5, "apiVersion", K::kString}, {6, "controller", K::kBool},
        {7, "blockOwnerDeletion", K::kBool}}},
      {"Namespace",
       {{1, "metadata", K::kMessage, false, "ObjectMeta"},
        {2, "spec", K::kMessage, false, "NamespaceSpec"}, {3, "status", K::kIgnored}}},
      {"NamespaceSpec", {{1, "finalizers", K::kString, true}}},
      // What `kubectl auth can-i` sends (authorization.k8s.io/v1).
      {"SelfSubjectAccessReview",
       {{1, "metadata", K::kMessage, false, "ObjectMeta"},
        {2, "spec", K::kMessage, false, "SelfSubjectAccessReviewSpec"},
        {3, "status", K::kIgnored}}},
      {"SelfSubjectAccessReviewSpec",
       {{1, "resourceAttributes", K::kMessage, false, "ResourceAttributes"},
        {2, "nonResourceAttributes", K::kMessage, false, "NonResourceAttributes"}}},
      {"ResourceAttributes",
       {{1, "namespace", K::kString}, {2, "verb", K::kString}, {3, "group", K::kString},
        {4, "version", K::kString}, {5, "resource", K::kString},
        {6, "subresource", K::kString}, {7, "name", K::kString},
        {8, "fieldSelector", K::kIgnored}, {9, "labelSelector", K::kIgnored}}},
      {"NonResourceAttributes", {{1, "path", K::kString}, {2, "verb", K::kString}}},
      {"ConfigMap",
       {{1, "metadata", K::kMessage, false, "ObjectMeta"}, {2, "data", K::kStringMap},
        {3, "binaryData", K::kBytesMap}, {4, "immutable", K::kBool}}},
      {"Secret",
       {{1, "metadata", K::kMessage, false, "ObjectMeta"}, {2, "data", K::kBytesMap},
        {3, "type", K::kString}, {4, "stringData", K::kStringMap},
        {5, "immutable", K::kBool}}},
      {"Pod",
       {{1, "metadata", K::kMessage, false, "ObjectMeta"},
        {2, "spec", K::kMessage, false, "PodSpec"}, {3, "status", K::kIgnored}}},
      {"PodTemplateSpec",
       {{1, "metadata", K::kMessage, false, "ObjectMeta"},
        {2, "spec", K::kMessage, false, "PodSpec"}}},
      {"PodSpec",
       {{2, "containers", K::kMessage, true, "Container"},
        {3, "restartPolicy", K::kString},
        {4, "terminationGracePeriodSeconds", K::kInt},
        {5, "activeDeadlineSeconds", K::kInt},
        {6, "dnsPolicy", K::kString},
        {7, "nodeSelector", K::kStringMap},
        {8, "serviceAccountName", K::kString},
        {10, "nodeName", K::kString},
        {11, "hostNetwork", K::kBool},
        {14, "securityContext", K::kMessage, false, "Empty"},
        {16, "hostname", K::kString},
        {17, "subdomain", K::kString},
        {19, "schedulerName", K::kString},
        {20, "initContainers", K::kMessage, true, "Container"},
        {21, "automountServiceAccountToken", K::kBool},
        {24, "priorityClassName", K::kString},
        {25, "priority", K::kInt},
        {30, "enableServiceLinks", K::kBool}}},
      {"Empty", {}},
      {"Container",
       {{1, "name", K::kString}, {2, "image", K::kString}, {3, "command", K::kString, true},
        {4, "args", K::kString, true}, {5, "workingDir", K::kString},
        {6, "ports", K::kMessage, true, "ContainerPort"},
        {7, "env", K::kMessage, true, "EnvVar"},
        {8, "resources", K::kMessage, false, "ResourceRequirements"},
        {13, "terminationMessagePath", K::kString}, {14, "imagePullPolicy", K::kString},
        {16, "stdin", K::kBool}, {17, "stdinOnce", K::kBool}, {18, "tty", K::kBool},
        {20, "terminationMessagePolicy", K::kString}, {24, "restartPolicy", K::kString}}},
      {"ContainerPort",
       {{1, "name", K::kString}, {2, "hostPort", K::kInt}, {3, "containerPort", K::kInt},
        {4, "protocol", K::kString}, {5, "hostIP", K::kString}}},
      {"EnvVar", {{1, "name", K::kString}, {2, "value", K::kString}}},
      {"ResourceRequirements", {{1, "limits", K::kQuantityMap}, {2, "requests", K::kQuantityMap}}},
      {"LabelSelector",
       {{1, "matchLabels", K::kStringMap},
        {2, "matchExpressions", K::kMessage, true, "LabelSelectorRequirement"}}},
      {"LabelSelectorRequirement",
       {{1, "key", K::kString}, {2, "operator", K::kString}, {3, "values", K::kString, true}}},
      {"Deployment",
       {{1, "metadata", K::kMessage, false, "ObjectMeta"},
        {2, "spec", K::kMessage, false, "DeploymentSpec"}, {3, "status", K::kIgnored}}},
      {"DeploymentSpec",
       {{1, "replicas", K::kInt}, {2, "selector", K::kMessage, false, "LabelSelector"},
        {3, "template", K::kMessage, false, "PodTemplateSpec"},
        {4, "strategy", K::kMessage, false, "DeploymentStrategy"},
        {5, "minReadySeconds", K::kInt}, {6, "revisionHistoryLimit", K::kInt},
        {7, "paused", K::kBool}, {9, "progressDeadlineSeconds", K::kInt}}},
      {"DeploymentStrategy",
       {{1, "type", K::kString},
        {2, "rollingUpdate", K::kMessage, false, "RollingUpdateDeployment"}}},
      {"RollingUpdateDeployment",
       {{1, "maxUnavailable", K::kIntOrString}, {2, "maxSurge", K::kIntOrString}}},
      {"ReplicaSet",
       {{1, "metadata", K::kMessage, false, "ObjectMeta"},
        {2, "spec", K::kMessage, false, "ReplicaSetSpec"}, {3, "status", K::kIgnored}}},
      {"ReplicaSetSpec",
       {{1, "replicas", K::kInt}, {2, "selector", K::kMessage, false, "LabelSelector"},
        {3, "template", K::kMessage, false, "PodTemplateSpec"},
        {4, "minReadySeconds", K::kInt}}},
      {"Service",
       {{1, "metadata", K::kMessage, false, "ObjectMeta"},
        {2, "spec", K::kMessage, false, "ServiceSpec"}, {3, "status", K::kIgnored}}},
      {"ServiceSpec",
       {{1, "ports", K::kMessage, true, "ServicePort"}, {2, "selector", K::kStringMap},
        {3, "clusterIP", K::kString}, {4, "type", K::kString},
        {5, "externalIPs", K::kString, true}, {7, "sessionAffinity", K::kString},
        {8, "loadBalancerIP", K::kString}, {10, "externalName", K::kString},
        {11, "externalTrafficPolicy", K::kString}, {13, "publishNotReadyAddresses", K::kBool},
        {17, "ipFamilyPolicy", K::kString}, {18, "clusterIPs", K::kString, true},
        {19, "ipFamilies", K::kString, true}, {22, "internalTrafficPolicy", K::kString}}},
      {"ServicePort",
       {{1, "name", K::kString}, {2, "protocol", K::kString}, {3, "port", K::kInt},
        {4, "targetPort", K::kIntOrString}, {5, "nodePort", K::kInt},
        {6, "appProtocol", K::kString}}},
      {"HorizontalPodAutoscaler",
       {{1, "metadata", K::kMessage, false, "ObjectMeta"},
        {2, "spec", K::kMessage, false, "HorizontalPodAutoscalerSpec"},
        {3, "status", K::kIgnored}}},
      // autoscaling/v1 (kubectl autoscale), a message of its own.
      {"HorizontalPodAutoscaler@autoscaling/v1",
       {{1, "metadata", K::kMessage, false, "ObjectMeta"},
        {2, "spec", K::kMessage, false, "HorizontalPodAutoscalerSpecV1"},
        {3, "status", K::kIgnored}}},
      {"HorizontalPodAutoscalerSpecV1",
       {{1, "scaleTargetRef", K::kMessage, false, "CrossVersionObjectReference"},
        {2, "minReplicas", K::kInt}, {3, "maxReplicas", K::kInt},
        {4, "targetCPUUtilizationPercentage", K::kInt}}},
      {"HorizontalPodAutoscalerSpec",
       {{1, "scaleTargetRef", K::kMessage, false, "CrossVersionObjectReference"},
        {2, "minReplicas", K::kInt}, {3, "maxReplicas", K::kInt},
        {4, "metrics", K::kMessage, true, "MetricSpec"}}},
      {"CrossVersionObjectReference",
       {{1, "kind", K::kString}, {2, "name", K::kString}, {3, "apiVersion", K::kString}}},
      {"MetricSpec",
       {{1, "type", K::kString}, {4, "resource", K::kMessage, false, "ResourceMetricSource"}}},
      {"ResourceMetricSource",
       {{1, "name", K::kString}, {2, "target", K::kMessage, false, "MetricTarget"}}},
      {"MetricTarget",
       {{1, "type", K::kString}, {2, "value", K::kQuantity}, {3, "averageValue", K::kQuantity},
        {4, "averageUtilization", K::kInt}}},
  };
  return all;
}

// Go fields that are not pointers: the encoder writes them even when zero, and zero there means
// "not set" (JSON leaves them out).
bool zeroMeansAbsent(const std::string& message, const std::string& field) {
  static const std::set<std::string> fields = {
      "ObjectMeta.generation",        "ContainerPort.hostPort",
      "ContainerPort.containerPort",  "Container.stdin",
      "Container.stdinOnce",          "Container.tty",
      "PodSpec.hostNetwork",          "DeploymentSpec.minReadySeconds",
      "DeploymentSpec.paused",        "ReplicaSetSpec.minReadySeconds",
      "ServicePort.port",             "ServicePort.nodePort",
      "ServiceSpec.publishNotReadyAddresses", "HorizontalPodAutoscalerSpec.maxReplicas",
      "HorizontalPodAutoscalerSpecV1.maxReplicas"};
  return fields.count(message + "." + field) > 0;
}

class Reader {
 public:
  Reader(const std::string& bytes, size_t begin, size_t end)
      : data_(bytes), pos_(begin), end_(end) {}

  bool done() const { return pos_ >= end_; }

  Result<uint64_t> varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= end_) {
        return Error("truncated varint");
      }
      uint8_t byte = static_cast<uint8_t>(data_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        return value;
      }
    }
    return Error("varint too long");
  }

  // A length-delimited field's extent.
  Result<std::pair<size_t, size_t>> span() {
    auto length = varint();
    if (!length) {
      return Error(length.error());
    }
    if (*length > end_ - pos_) {
      return Error("truncated field");
    }
    size_t begin = pos_;
    pos_ += *length;
    return std::make_pair(begin, pos_);
  }

  Status skip(int wireType) {
    switch (wireType) {
      case 0: {
        auto v = varint();
        return v ? ok() : Status(Error(v.error()));
      }
      case 1: pos_ += 8; break;
      case 5: pos_ += 4; break;
      case 2: {
        auto s = span();
        return s ? ok() : Status(Error(s.error()));
      }
      default: return Error("unknown wire type " + std::to_string(wireType));
    }
    return pos_ <= end_ ? ok() : Status(Error("truncated field"));
  }

  const std::string& data() const { return data_; }

 private:
  const std::string& data_;
  size_t pos_;
  size_t end_;
};

Result<json> decodeMessage(const std::string& bytes, size_t begin, size_t end,
                           const std::string& message);

// {1: key, 2: value} entries of a map field.
Result<std::pair<std::string, std::pair<size_t, size_t>>> mapEntry(const std::string& bytes,
                                                                  size_t begin, size_t end) {
  Reader r(bytes, begin, end);
  std::string key;
  std::pair<size_t, size_t> value{0, 0};
  while (!r.done()) {
    auto tag = r.varint();
    if (!tag) return Error(tag.error());
    int number = static_cast<int>(*tag >> 3);
    int wire = static_cast<int>(*tag & 7);
    if (wire != 2) {
      return Error("a map entry field is not length-delimited");
    }
    auto s = r.span();
    if (!s) return Error(s.error());
    if (number == 1) {
      key = bytes.substr(s->first, s->second - s->first);
    } else if (number == 2) {
      value = *s;
    }
  }
  return std::make_pair(key, value);
}

Result<json> decodeSmall(const std::string& bytes, size_t begin, size_t end, Kind kind) {
  Reader r(bytes, begin, end);
  int64_t seconds = 0;
  int64_t intValue = 0;
  int64_t type = 0;
  std::string text;
  while (!r.done()) {
    auto tag = r.varint();
    if (!tag) return Error(tag.error());
    int number = static_cast<int>(*tag >> 3);
    int wire = static_cast<int>(*tag & 7);
    if (wire == 0) {
      auto v = r.varint();
      if (!v) return Error(v.error());
      if (kind == Kind::kTime && number == 1) seconds = static_cast<int64_t>(*v);
      if (kind == Kind::kIntOrString && number == 1) type = static_cast<int64_t>(*v);
      if (kind == Kind::kIntOrString && number == 2) intValue = static_cast<int32_t>(*v);
    } else if (wire == 2) {
      auto s = r.span();
      if (!s) return Error(s.error());
      if (number == (kind == Kind::kIntOrString ? 3 : 1)) {
        text = bytes.substr(s->first, s->second - s->first);
      }
    } else if (Status skipped = r.skip(wire); !skipped) {
      return Error(skipped.error());
    }
  }
  if (kind == Kind::kTime) {
    return seconds == 0 ? json(nullptr) : json(rfc3339(static_cast<double>(seconds)));
  }
  if (kind == Kind::kQuantity) {
    return json(text);
  }
  return type == 1 ? json(text) : json(intValue);
}

Result<json> decodeMessage(const std::string& bytes, size_t begin, size_t end,
                           const std::string& message) {
  auto schema = schemas().find(message);
  if (schema == schemas().end()) {
    return Error("no decoder for " + message);
  }
  json out = json::object();
  Reader r(bytes, begin, end);
  while (!r.done()) {
    auto tag = r.varint();
    if (!tag) return Error(tag.error());
    int number = static_cast<int>(*tag >> 3);
    int wire = static_cast<int>(*tag & 7);
    const Field* field = nullptr;
    for (const Field& f : schema->second) {
      if (f.number == number) {
        field = &f;
      }
    }
    if (field == nullptr) {
      // The encoder writes every non-pointer field, set or not: a zero one says nothing.
      bool zero = false;
      if (wire == 0) {
        auto v = r.varint();
        if (!v) return Error(v.error());
        zero = *v == 0;
      } else if (wire == 2) {
        auto s = r.span();
        if (!s) return Error(s.error());
        zero = s->first == s->second;
      }
      if (zero) {
        continue;
      }
      return Error("field " + std::to_string(number) + " of " + message +
                   " is not understood by this server");
    }
    if (field->kind == Kind::kIgnored) {
      if (Status skipped = r.skip(wire); !skipped) return Error(skipped.error());
      continue;
    }
    json value;
    if (wire == 0) {
      auto v = r.varint();
      if (!v) return Error(v.error());
      if (*v == 0 && zeroMeansAbsent(message, field->name)) {
        continue;
      }
      if (field->kind == Kind::kBool) {
        value = *v != 0;
      } else if (field->kind == Kind::kInt) {
        value = static_cast<int64_t>(*v);
      } else {
        return Error("field " + std::string(field->name) + " of " + message +
                     " has the wrong wire type");
      }
    } else if (wire == 2) {
      auto s = r.span();
      if (!s) return Error(s.error());
      std::string raw = bytes.substr(s->first, s->second - s->first);
      if (raw.empty() && !field->repeated &&
          (field->kind == Kind::kString || field->kind == Kind::kTime)) {
        continue;  // "" is how an unset string travels
      }
      switch (field->kind) {
        case Kind::kString: value = raw; break;
        case Kind::kBytes: value = base64Encode(raw); break;
        case Kind::kMessage: {
          auto m = decodeMessage(bytes, s->first, s->second, field->message);
          if (!m) return m;
          value = std::move(*m);
          break;
        }
        case Kind::kTime:
        case Kind::kQuantity:
        case Kind::kIntOrString: {
          auto m = decodeSmall(bytes, s->first, s->second, field->kind);
          if (!m) return m;
          value = std::move(*m);
          break;
        }
        case Kind::kStringMap:
        case Kind::kBytesMap:
        case Kind::kQuantityMap: {
          auto entry = mapEntry(bytes, s->first, s->second);
          if (!entry) return Error(entry.error());
          auto [vb, ve] = entry->second;
          json v;
          if (field->kind == Kind::kStringMap) {
            v = bytes.substr(vb, ve - vb);
          } else if (field->kind == Kind::kBytesMap) {
            v = base64Encode(bytes.substr(vb, ve - vb));
          } else {
            auto q = decodeSmall(bytes, vb, ve, Kind::kQuantity);
            if (!q) return q;
            v = *q;
          }
          if (!out.contains(field->name)) {
            out[field->name] = json::object();
          }
          out[field->name][entry->first] = v;
          continue;
        }
        default:
          return Error("field " + std::string(field->name) + " of " + message +
                       " has the wrong wire type");
      }
    } else {
      return Error("field " + std::string(field->name) + " of " + message +
                   " has the wrong wire type");
    }
    if (value.is_null()) {
      continue;
    }
    if (field->repeated) {
      if (!out.contains(field->name)) {
        out[field->name] = json::array();
      }
      out[field->name].push_back(std::move(value));
    } else {
      out[field->name] = std::move(value);
    }
  }
  return out;
}

}  // namespace

bool isProtobuf(const std::string& contentType) {
  return contentType.rfind("application/vnd.kubernetes.protobuf", 0) == 0;
}

Result<json> decodeProtobuf(const std::string& body) {
  static const std::string kMagic("k8s\0", 4);
  if (body.compare(0, 4, kMagic) != 0) {
    return Error("the protobuf body does not start with the Kubernetes magic bytes");
  }
  // runtime.Unknown: 1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType
  Reader r(body, 4, body.size());
  std::string apiVersion;
  std::string kind;
  std::pair<size_t, size_t> raw{0, 0};
  while (!r.done()) {
    auto tag = r.varint();
    if (!tag) return Error(tag.error());
    int number = static_cast<int>(*tag >> 3);
    int wire = static_cast<int>(*tag & 7);
    if (wire != 2) {
      if (Status skipped = r.skip(wire); !skipped) return Error(skipped.error());
      continue;
    }
    auto s = r.span();
    if (!s) return Error(s.error());
    if (number == 1) {
      Reader meta(body, s->first, s->second);
      while (!meta.done()) {
        auto t = meta.varint();
        if (!t) return Error(t.error());
        auto f = meta.span();
        if (!f) return Error(f.error());
        std::string text = body.substr(f->first, f->second - f->first);
        if ((*t >> 3) == 1) apiVersion = text;
        if ((*t >> 3) == 2) kind = text;
      }
    } else if (number == 2) {
      raw = *s;
    }
  }
  if (kind.empty()) {
    return Error("the protobuf body names no kind");
  }
  // A kind whose message differs between versions has one per version.
  std::string message = kind;
  if (schemas().count(kind + "@" + apiVersion) > 0) message = kind + "@" + apiVersion;
  auto object = decodeMessage(body, raw.first, raw.second, message);
  if (!object) {
    return Error("cannot read the " + kind + " sent as protobuf: " + object.error() +
                 "; send it as JSON (kubectl apply -f does)");
  }
  (*object)["apiVersion"] = apiVersion;
  (*object)["kind"] = kind;
  return object;
}

Result<json> decodeObject(const std::string& contentType, const std::string& body) {
  if (isProtobuf(contentType)) return decodeProtobuf(body);
  json object = json::parse(body, nullptr, false);
  if (object.is_discarded() || !object.is_object()) {
    return Error("the body of the request was in an unknown format - accepted media types "
                 "include: application/json, application/vnd.kubernetes.protobuf");
  }
  return object;
}

}  // namespace agora::kube
