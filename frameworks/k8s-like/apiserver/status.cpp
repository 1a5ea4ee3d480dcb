#include "frameworks/k8s-like/apiserver/status.hpp"

namespace agora::kube {

using nlohmann::json;

json ApiError::toStatus() const {
  json status = {{"kind", "Status"},
                 {"apiVersion", "v1"},
                 {"metadata", json::object()},
                 {"status", "Failure"},
                 {"message", message},
                 {"reason", reason},
                 {"code", code}};
  if (!kind.empty() || !name.empty() || !causes.empty()) {
    json details = json::object();
    if (!name.empty()) details["name"] = name;
    if (!kind.empty()) details["kind"] = kind;
    if (!causes.empty()) {
      json list = json::array();
      for (const FieldCause& c : causes) {
        list.push_back({{"reason", c.type},
                        {"message", c.type == "FieldValueRequired"
                                        ? "Required value" + (c.detail.empty() ? "" : ": " + c.detail)
                                        : "Invalid value: \"" + c.value + "\": " + c.detail},
                        {"field", c.field}});
      }
      details["causes"] = list;
    }
    status["details"] = details;
  }
  return status;
}

ApiError notFound(const std::string& resource, const std::string& name) {
  return {404, "NotFound", resource + " \"" + name + "\" not found", resource, name, {}};
}

ApiError alreadyExists(const std::string& resource, const std::string& name) {
  return {409, "AlreadyExists", resource + " \"" + name + "\" already exists", resource, name, {}};
}

ApiError conflict(const std::string& resource, const std::string& name) {
  return {409, "Conflict",
          "Operation cannot be fulfilled on " + resource + " \"" + name +
              "\": the object has been modified; please apply your changes to the latest "
              "version and try again",
          resource, name, {}};
}

ApiError invalid(const std::string& kind, const std::string& name,
                 std::vector<FieldCause> causes) {
  std::string message = kind + " \"" + name + "\" is invalid: ";
  std::string list;
  for (const FieldCause& c : causes) {
    std::string one = c.field + ": " +
                      (c.type == "FieldValueRequired"
                           ? "Required value" + (c.detail.empty() ? "" : ": " + c.detail)
                           : "Invalid value: \"" + c.value + "\": " + c.detail);
    list += (list.empty() ? "" : ", ") + one;
  }
  message += causes.size() > 1 ? "[" + list + "]" : list;
  return {422, "Invalid", message, kind, name, std::move(causes)};
}

ApiError badRequest(const std::string& message) { return {400, "BadRequest", message, "", "", {}}; }

ApiError gone(const std::string& message) { return {410, "Expired", message, "", "", {}}; }

ApiError unauthorized() { return {401, "Unauthorized", "Unauthorized", "", "", {}}; }

ApiError methodNotAllowed(const std::string& message) {
  return {405, "MethodNotAllowed", message, "", "", {}};
}

ApiError notServed() {
  ApiError e;
  e.code = 404;
  e.reason = "NotFound";
  e.message = "the server could not find the requested resource";
  return e;
}

}  // namespace agora::kube
