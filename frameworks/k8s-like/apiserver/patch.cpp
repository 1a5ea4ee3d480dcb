#include "frameworks/k8s-like/apiserver/patch.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace agora::kube {

using nlohmann::json;

namespace {

constexpr const char* kSetOrder = "$setElementOrder/";
constexpr const char* kDeleteFromPrimitive = "$deleteFromPrimitiveList/";

// The merge key of a list field of the built-in types, by the field's name and where it is
// ("ports" of a container are keyed by containerPort, of a Service by port). Empty: the list is
// replaced as a whole.
std::string mergeKey(const std::string& field, const std::string& path) {
  static const std::map<std::string, std::string> keys = {
      {"containers", "name"},       {"initContainers", "name"},
      {"ephemeralContainers", "name"}, {"env", "name"},
      {"volumes", "name"},          {"volumeMounts", "mountPath"},
      {"volumeDevices", "devicePath"}, {"imagePullSecrets", "name"},
      {"hostAliases", "ip"},        {"conditions", "type"},
      {"ownerReferences", "uid"},   {"topologySpreadConstraints", "topologyKey"},
      {"resourceClaims", "name"},   {"readinessGates", "conditionType"},
      {"containerStatuses", "name"}, {"initContainerStatuses", "name"},
  };
  if (field == "ports") {
    return path.find("ontainers") != std::string::npos ? "containerPort" : "port";
  }
  auto it = keys.find(field);
  return it == keys.end() ? "" : it->second;
}

// Lists of strings that merge as sets (metadata.finalizers).
bool mergesAsSet(const std::string& field) { return field == "finalizers"; }

Status mergeMap(json& target, const json& patch, const std::string& path);

bool sameKey(const json& a, const json& b, const std::string& key) {
  return a.is_object() && b.is_object() && a.contains(key) && b.contains(key) && a[key] == b[key];
}

Status mergeList(json& target, const json& patch, const std::string& field,
                 const std::string& path) {
  std::string key = mergeKey(field, path);
  if (!patch.is_array()) {
    return Error("the patch's " + path + " is not a list");
  }
  if (mergesAsSet(field) && target.is_array()) {
    for (const auto& v : patch) {
      if (std::find(target.begin(), target.end(), v) == target.end()) {
        target.push_back(v);
      }
    }
    return ok();
  }
  if (key.empty() || !target.is_array()) {
    // Replaced whole; directives inside elements have no meaning here.
    json copy = json::array();
    for (const auto& item : patch) {
      if (item.is_object() && item.contains("$patch")) {
        continue;
      }
      copy.push_back(item);
    }
    target = copy;
    return ok();
  }
  for (const auto& item : patch) {
    if (item.is_object() && item.value("$patch", "") == "replace") {
      json copy = json::array();
      for (const auto& other : patch) {
        if (!(other.is_object() && other.contains("$patch"))) {
          copy.push_back(other);
        }
      }
      target = copy;
      return ok();
    }
  }
  for (const auto& item : patch) {
    if (!item.is_object() || !item.contains(key)) {
      return Error("the patch's " + path + " has an element without its merge key '" + key +
                   "'");
    }
    auto it = std::find_if(target.begin(), target.end(),
                           [&](const json& t) { return sameKey(t, item, key); });
    std::string directive = item.value("$patch", "");
    if (directive == "delete") {
      if (it != target.end()) {
        target.erase(it);
      }
      continue;
    }
    if (it == target.end()) {
      json fresh = json::object();
      if (Status s = mergeMap(fresh, item, path); !s) {
        return s;
      }
      target.push_back(fresh);
    } else if (Status s = mergeMap(*it, item, path); !s) {
      return s;
    }
  }
  return ok();
}

// Orders `list` as `order` says (elements named there first, in its order; others after).
void applyOrder(json& list, const json& order, const std::string& key) {
  if (!list.is_array() || !order.is_array()) {
    return;
  }
  json sorted = json::array();
  std::vector<bool> used(list.size(), false);
  for (const auto& wanted : order) {
    for (size_t i = 0; i < list.size(); ++i) {
      bool match = key.empty() ? list[i] == wanted
                               : (wanted.is_object() && sameKey(list[i], wanted, key));
      if (!used[i] && match) {
        sorted.push_back(list[i]);
        used[i] = true;
        break;
      }
    }
  }
  for (size_t i = 0; i < list.size(); ++i) {
    if (!used[i]) {
      sorted.push_back(list[i]);
    }
  }
  list = sorted;
}

Status mergeMap(json& target, const json& patch, const std::string& path) {
  if (!patch.is_object()) {
    target = patch;
    return ok();
  }
  std::string directive = patch.value("$patch", "");
  if (directive == "replace") {
    json copy = patch;
    copy.erase("$patch");
    target = copy;
    return ok();
  }
  if (directive == "delete") {
    target = json::object();
    return ok();
  }
  if (!directive.empty()) {
    return Error("unknown patch directive '" + directive + "' at " + path);
  }
  if (!target.is_object()) {
    target = json::object();
  }
  if (patch.contains("$retainKeys") && patch["$retainKeys"].is_array()) {
    std::set<std::string> keep;
    for (const auto& k : patch["$retainKeys"]) {
      if (k.is_string()) {
        keep.insert(k.get<std::string>());
      }
    }
    for (auto it = target.begin(); it != target.end();) {
      if (!keep.count(it.key())) {
        it = target.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& [name, value] : patch.items()) {
    if (name == "$retainKeys" || name.rfind(kSetOrder, 0) == 0) {
      continue;
    }
    if (name.rfind(kDeleteFromPrimitive, 0) == 0) {
      std::string field = name.substr(std::string(kDeleteFromPrimitive).size());
      if (target.contains(field) && target[field].is_array() && value.is_array()) {
        json& list = target[field];
        for (const auto& v : value) {
          list.erase(std::remove(list.begin(), list.end(), v), list.end());
        }
      }
      continue;
    }
    std::string childPath = path.empty() ? name : path + "." + name;
    if (value.is_null()) {
      target.erase(name);
    } else if (value.is_object()) {
      if (Status s = mergeMap(target[name], value, childPath); !s) {
        return s;
      }
      if (value.value("$patch", "") == "delete") {
        target.erase(name);
      }
    } else if (value.is_array()) {
      json& field = target[name];
      if (Status s = mergeList(field, value, name, childPath); !s) {
        return s;
      }
    } else {
      target[name] = value;
    }
  }
  for (const auto& [name, value] : patch.items()) {
    if (name.rfind(kSetOrder, 0) == 0) {
      std::string field = name.substr(std::string(kSetOrder).size());
      if (target.contains(field)) {
        applyOrder(target[field], value, mergeKey(field, path + "." + field));
      }
    }
  }
  return ok();
}

}  // namespace

PatchType patchTypeOf(const std::string& contentType) {
  std::string type = contentType.substr(0, contentType.find(';'));
  if (type == "application/merge-patch+json") return PatchType::kMerge;
  if (type == "application/json-patch+json") return PatchType::kJson;
  if (type == "application/strategic-merge-patch+json") return PatchType::kStrategic;
  if (type == "application/apply-patch+yaml") return PatchType::kApply;
  return PatchType::kUnknown;
}

Result<json> strategicMerge(const json& original, const json& patch) {
  if (!patch.is_object()) {
    return Error("a strategic merge patch must be a JSON object");
  }
  json merged = original;
  if (Status s = mergeMap(merged, patch, ""); !s) {
    return Error(s.error());
  }
  return merged;
}

Result<json> applyPatch(PatchType type, const json& original, const std::string& text) {
  json patch = json::parse(text, nullptr, false);
  if (patch.is_discarded()) {
    return Error("the patch is not valid JSON");
  }
  switch (type) {
    case PatchType::kMerge: {
      if (!patch.is_object()) {
        return Error("a merge patch must be a JSON object");
      }
      json merged = original;
      merged.merge_patch(patch);
      return merged;
    }
    case PatchType::kJson: {
      if (!patch.is_array()) {
        return Error("a JSON patch must be a list of operations");
      }
      try {
        return original.patch(patch);
      } catch (const json::exception& e) {
        return Error(std::string("the JSON patch does not apply: ") + e.what());
      }
    }
    case PatchType::kStrategic:
      return strategicMerge(original, patch);
    default:
      return Error("unsupported patch type");
  }
}

}  // namespace agora::kube
