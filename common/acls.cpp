#include "common/acls.hpp"

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/yaml_json.hpp"

namespace agora {

namespace {

using nlohmann::json;

struct ActionSpec {
  AclAction action;
  const char* name;
  const char* objects;  // the rule's object list ("" for none)
};

constexpr ActionSpec kActions[kAclActions] = {
    {AclAction::kRegisterAgents, "register_agents", ""},
    {AclAction::kRegisterFrameworks, "register_frameworks", "roles"},
    {AclAction::kRunTasks, "run_tasks", "users"},
    {AclAction::kReserveResources, "reserve_resources", "roles"},
    {AclAction::kCreateVolumes, "create_volumes", "roles"},
    {AclAction::kSetQuota, "set_quota", "roles"},
    {AclAction::kSetWeights, "set_weights", "roles"},
    {AclAction::kDrainAgents, "drain_agents", "machines"},
    {AclAction::kViewState, "view_state", ""},
};

Result<bool> parseBool(const json& value, const std::string& where) {
  if (value.is_boolean()) {
    return value.get<bool>();
  }
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (s == "true") return true;
    if (s == "false") return false;
  }
  return Error(where + " must be true or false");
}

Result<std::vector<std::string>> parseNames(const json& value, const std::string& where) {
  std::vector<std::string> names;
  if (value.is_string()) {
    names.push_back(value.get<std::string>());  // one name for a list of one
  } else if (value.is_array()) {
    for (const json& item : value) {
      if (!item.is_string()) {
        return Error(where + " must be a list of names");
      }
      names.push_back(item.get<std::string>());
    }
  } else {
    return Error(where + " must be a list of names");
  }
  if (names.empty()) {
    return Error(where + " is empty: it would match nothing (say ANY for everything)");
  }
  return names;
}

bool matchesName(const std::vector<std::string>& patterns, const std::string& name,
                 bool hierarchical) {
  for (const std::string& pattern : patterns) {
    if (pattern == "ANY" || pattern == name) {
      return true;
    }
    if (hierarchical && pattern.size() > 2 && pattern.compare(pattern.size() - 2, 2, "/*") == 0 &&
        name.size() > pattern.size() - 1 &&
        name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0) {
      return true;  // "a/*" matches "a/b" and "a/b/c"
    }
  }
  return false;
}

}  // namespace

const char* aclActionName(AclAction action) {
  return kActions[static_cast<size_t>(action)].name;
}

Result<Acls> Acls::parse(const std::string& text) {
  auto document = parseYamlOrJson(text);
  if (!document) {
    return Error(document.error());
  }
  const json& j = *document;
  if (!j.is_object()) {
    return Error("the ACLs must be a map of actions to rules");
  }
  Acls acls;
  acls.enabled_ = true;
  acls.permissive_ = false;
  for (const auto& [key, value] : j.items()) {
    if (key == "permissive") {
      auto permissive = parseBool(value, "'permissive'");
      if (!permissive) return Error(permissive.error());
      acls.permissive_ = *permissive;
      continue;
    }
    const ActionSpec* spec = nullptr;
    for (const ActionSpec& candidate : kActions) {
      if (key == candidate.name) spec = &candidate;
    }
    if (spec == nullptr) {
      std::string known;
      for (const ActionSpec& candidate : kActions) {
        known += std::string(known.empty() ? "" : ", ") + candidate.name;
      }
      return Error("unknown action '" + key + "' (known: permissive, " + known + ")");
    }
    if (value.is_null()) {
      continue;  // "action:" with no rules
    }
    if (!value.is_array()) {
      return Error("'" + key + "' must be a list of rules");
    }
    std::vector<Rule>& rules = acls.rules_[static_cast<size_t>(spec->action)];
    size_t number = 0;
    for (const json& item : value) {
      std::string where = "'" + key + "' rule " + std::to_string(++number);
      if (!item.is_object()) {
        return Error(where + " must be a map (principals, " +
                     (*spec->objects != '\0' ? std::string(spec->objects) + ", " : "") +
                     "allow)");
      }
      Rule rule;
      bool hasPrincipals = false;
      for (const auto& [field, fieldValue] : item.items()) {
        if (field == "principals") {
          auto names = parseNames(fieldValue, where + ": 'principals'");
          if (!names) return Error(names.error());
          rule.principals = std::move(names).value();
          hasPrincipals = true;
        } else if (field == "allow") {
          auto allow = parseBool(fieldValue, where + ": 'allow'");
          if (!allow) return Error(allow.error());
          rule.allow = *allow;
        } else if (*spec->objects != '\0' && field == spec->objects) {
          auto names = parseNames(fieldValue, where + ": '" + field + "'");
          if (!names) return Error(names.error());
          rule.objects = std::move(names).value();
        } else {
          return Error(where + ": unknown field '" + field + "'" +
                       (*spec->objects != '\0'
                            ? " (a rule has principals, " + std::string(spec->objects) +
                                  " and allow)"
                            : " (a rule has principals and allow)"));
        }
      }
      if (!hasPrincipals) {
        return Error(where + " names no 'principals' (say [ANY] for everyone)");
      }
      rules.push_back(std::move(rule));
    }
  }
  return acls;
}

Result<Acls> Acls::load(const std::string& path) {
  auto text = readFile(path);
  if (!text) {
    return Error(text.error());
  }
  auto acls = parse(*text);
  if (!acls) {
    return Error(path + ": " + acls.error());
  }
  return acls;
}

bool Acls::allows(AclAction action, const std::string& principal,
                  const std::string& object) const {
  if (!enabled_) {
    return true;
  }
  const ActionSpec& spec = kActions[static_cast<size_t>(action)];
  bool hierarchical = std::string(spec.objects) == "roles";
  for (const Rule& rule : rules_[static_cast<size_t>(action)]) {
    if (!matchesName(rule.principals, principal, false)) {
      continue;
    }
    if (!rule.objects.empty() && !matchesName(rule.objects, object, hierarchical)) {
      continue;
    }
    return rule.allow;
  }
  return permissive_;
}

}  // namespace agora
