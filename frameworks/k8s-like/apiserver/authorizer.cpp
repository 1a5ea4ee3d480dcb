#include "frameworks/k8s-like/apiserver/authorizer.hpp"

#include <set>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/http_tokens.hpp"
#include "common/yaml_json.hpp"

namespace agora::kube {

namespace {

using nlohmann::json;

bool isRead(const std::string& verb) {
  return verb == "get" || verb == "list" || verb == "watch";
}

Result<std::string> stringOf(const json& j, const char* field, const std::string& where,
                             bool required) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (required) return Error(where + ": '" + field + "' is required");
    return std::string();
  }
  if (!it->is_string()) return Error(where + ": '" + field + "' must be a string");
  return it->get<std::string>();
}

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

Result<KubeAuthorizer> KubeAuthorizer::parse(const std::string& text) {
  auto document = parseYamlOrJson(text);
  if (!document) return Error(document.error());
  const json& j = *document;
  if (!j.is_object()) return Error("expected a map with 'users' and 'bindings'");
  for (const auto& [key, value] : j.items()) {
    if (key != "users" && key != "bindings") {
      return Error("unknown field '" + key + "' (users, bindings)");
    }
  }
  KubeAuthorizer out;
  std::set<std::string> tokens;
  const json users = j.value("users", json::array());
  if (!users.is_array()) return Error("'users' must be a list");
  size_t number = 0;
  for (const json& u : users) {
    std::string where = "users[" + std::to_string(number++) + "]";
    if (!u.is_object()) return Error(where + " must be a map (name, token, groups, admin)");
    for (const auto& [key, value] : u.items()) {
      if (key != "name" && key != "token" && key != "groups" && key != "admin") {
        return Error(where + ": unknown field '" + key + "' (name, token, groups, admin)");
      }
    }
    auto name = stringOf(u, "name", where, true);
    if (!name) return Error(name.error());
    auto token = stringOf(u, "token", where + " (" + *name + ")", true);
    if (!token) return Error(token.error());
    if (token->size() < 16) {
      return Error(where + " (" + *name + "): the token is shorter than 16 characters");
    }
    if (!tokens.insert(*token).second) return Error(where + ": a token is listed twice");
    KubeUser user;
    user.name = *name;
    if (u.contains("groups")) {
      if (!u["groups"].is_array()) return Error(where + ": 'groups' must be a list");
      for (const json& g : u["groups"]) {
        if (!g.is_string()) return Error(where + ": 'groups' must be names");
        user.groups.push_back(g.get<std::string>());
      }
    }
    if (u.contains("admin")) {
      const json& admin = u["admin"];
      if (admin.is_boolean()) {
        user.admin = admin.get<bool>();
      } else if (admin.is_string() && (admin == "true" || admin == "false")) {
        user.admin = admin == "true";
      } else {
        return Error(where + ": 'admin' must be true or false");
      }
    }
    out.tokens_.push_back({*token, user});
  }
  const json bindings = j.value("bindings", json::array());
  if (!bindings.is_array()) return Error("'bindings' must be a list");
  number = 0;
  for (const json& b : bindings) {
    std::string where = "bindings[" + std::to_string(number++) + "]";
    if (!b.is_object()) return Error(where + " must be a map (user or group, namespace, role)");
    for (const auto& [key, value] : b.items()) {
      if (key != "user" && key != "group" && key != "namespace" && key != "role") {
        return Error(where + ": unknown field '" + key + "' (user, group, namespace, role)");
      }
    }
    Binding binding;
    auto user = stringOf(b, "user", where, false);
    auto group = stringOf(b, "group", where, false);
    auto ns = stringOf(b, "namespace", where, true);
    auto role = stringOf(b, "role", where, true);
    for (const auto* r : {&user, &group, &ns, &role}) {
      if (!*r) return Error(r->error());
    }
    if (user->empty() == group->empty()) {
      return Error(where + ": name a 'user' or a 'group' (one of them)");
    }
    if (*role != "view" && *role != "edit") {
      return Error(where + ": 'role' must be view or edit, not '" + *role + "'");
    }
    binding.user = *user;
    binding.group = *group;
    binding.ns = *ns;
    binding.edit = *role == "edit";
    out.bindings_.push_back(binding);
  }
  return out;
}

Result<KubeAuthorizer> KubeAuthorizer::load(const std::string& path) {
  auto text = readFile(path);
  if (!text) return Error(text.error());
  auto parsed = parse(*text);
  if (!parsed) return Error(path + ": " + parsed.error());
  return parsed;
}

std::optional<KubeUser> KubeAuthorizer::authenticate(const std::string& token) const {
  std::optional<KubeUser> found;
  for (const auto& [known, user] : tokens_) {
    if (sameSecret(known, token)) {
      found = user;
    }
  }
  return found;
}

bool KubeAuthorizer::allows(const KubeUser& user, const AccessAttributes& request,
                            std::string* why) const {
  if (user.admin) {
    if (why) *why = "an administrator";
    return true;
  }
  if (!request.resourceRequest) {
    // Discovery and the API's description: every authenticated user reads them.
    bool discovery = request.verb == "get" &&
                     (request.path == "/api" || request.path.rfind("/api/", 0) == 0 ||
                      request.path == "/apis" || request.path.rfind("/apis/", 0) == 0 ||
                      request.path == "/version" || request.path.rfind("/openapi", 0) == 0);
    if (why) *why = discovery ? "discovery is open to every user" : "only administrators";
    return discovery;
  }
  if (request.group == "authorization.k8s.io" &&
      request.resource == "selfsubjectaccessreviews" && request.verb == "create") {
    if (why) *why = "every user may ask what it may do";
    return true;
  }
  bool read = isRead(request.verb) && request.subresource != "exec" &&
              request.subresource != "attach" && request.subresource != "portforward";
  for (const Binding& b : bindings_) {
    bool subject = b.user.empty()
                       ? std::find(user.groups.begin(), user.groups.end(), b.group) !=
                             user.groups.end()
                       : b.user == user.name;
    if (!subject) continue;
    // "" is cluster-scoped, or every namespace at once: only a binding for all of them.
    bool inScope = b.ns == "*" || (!request.ns.empty() && b.ns == request.ns);
    if (!inScope) continue;
    if (!read && !b.edit) continue;
    if (request.ns.empty() && !read) continue;  // cluster-scoped writes: administrators only
    if (!b.edit && request.resource == "secrets" && request.group.empty()) continue;
    if (why) {
      *why = std::string(b.edit ? "edit" : "view") + " in " +
             (b.ns == "*" ? std::string("every namespace") : "namespace " + b.ns) + " for " +
             (b.user.empty() ? "group " + b.group : "user " + b.user);
    }
    return true;
  }
  if (why) *why = "no binding allows it";
  return false;
}

AccessAttributes accessAttributes(const std::string& method, const std::string& path,
                                  bool watch) {
  AccessAttributes a;
  std::vector<std::string> parts = segments(path);
  size_t base = 0;
  if (parts.size() >= 2 && parts[0] == "api") {
    base = 2;
  } else if (parts.size() >= 3 && parts[0] == "apis") {
    a.group = parts[1];
    base = 3;
  }
  bool reads = method == "GET" || method == "HEAD";
  if (base == 0 || parts.size() == base) {
    a.resourceRequest = false;
    a.path = path;
    a.verb = reads ? "get" : method == "POST" ? "create" : "update";
    return a;
  }
  std::vector<std::string> rest(parts.begin() + static_cast<long>(base), parts.end());
  if (rest[0] == "namespaces" && rest.size() >= 3) {
    a.ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  a.resource = rest[0];
  if (rest.size() >= 2) a.name = rest[1];
  if (rest.size() >= 3) a.subresource = rest[2];
  if (a.resource == "namespaces" && !a.name.empty() && a.ns.empty()) {
    a.ns = a.name;  // a namespace is in itself, as Kubernetes has it
  }
  if (reads) {
    a.verb = a.name.empty() ? (watch ? "watch" : "list") : (watch ? "watch" : "get");
  } else if (method == "POST") {
    a.verb = "create";
  } else if (method == "PUT") {
    a.verb = "update";
  } else if (method == "PATCH") {
    a.verb = "patch";
  } else if (method == "DELETE") {
    a.verb = a.name.empty() ? "deletecollection" : "delete";
  } else {
    a.verb = method;
  }
  return a;
}

std::string forbiddenMessage(const KubeUser& user, const AccessAttributes& a) {
  if (!a.resourceRequest) {
    return "forbidden: User \"" + user.name + "\" cannot " + a.verb + " path \"" + a.path + "\"";
  }
  std::string what = a.resource + (a.subresource.empty() ? "" : "/" + a.subresource);
  return what + (a.name.empty() ? "" : " \"" + a.name + "\"") + " is forbidden: User \"" +
         user.name + "\" cannot " + a.verb + " resource \"" + what + "\" in API group \"" +
         a.group + "\"" +
         (a.ns.empty() ? std::string(" at the cluster scope") : " in the namespace \"" + a.ns + "\"");
}

}  // namespace agora::kube
