#pragma once

// Errors as the Kubernetes API returns them: a `Status` object with an HTTP code, a reason and
// a message worded as kube-apiserver words it, so that kubectl prints them as users know them
// (`Error from server (NotFound): pods "web" not found`).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace agora::kube {

// One field that failed validation: "metadata.name", its value, why.
struct FieldCause {
  std::string field;
  std::string value;
  std::string detail;
  std::string type = "FieldValueInvalid";  // or FieldValueRequired, FieldValueNotSupported...
};

struct ApiError {
  int code = 500;
  std::string reason = "InternalError";
  std::string message;
  std::string kind;      // details.kind ("pods")
  std::string name;      // details.name
  std::vector<FieldCause> causes;

  // The Status object for the response body.
  nlohmann::json toStatus() const;
};

// `resource` is the plural lower-case name ("pods"), `kind` the kind ("Pod").
ApiError notFound(const std::string& resource, const std::string& name);
ApiError alreadyExists(const std::string& resource, const std::string& name);
ApiError conflict(const std::string& resource, const std::string& name);
ApiError invalid(const std::string& kind, const std::string& name, std::vector<FieldCause> causes);
ApiError badRequest(const std::string& message);
ApiError gone(const std::string& message);
ApiError unauthorized();
ApiError methodNotAllowed(const std::string& message);
// A path the server does not serve.
ApiError notServed();

}  // namespace agora::kube
