// Authentication and authorisation of the kube API's requests, and SelfSubjectAccessReview
// (what `kubectl auth can-i` asks).

#include <nlohmann/json.hpp>

#include "common/http_tokens.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"
#include "frameworks/k8s-like/apiserver/protobuf.hpp"

namespace agora::kube {

using nlohmann::json;

std::optional<KubeUser> ApiServer::authenticate(const HttpRequest& request) const {
  if (options_.token.empty() && !options_.users) {
    return KubeUser{"admin", {"system:masters"}, true};  // an API without authentication
  }
  auto header = request.headers.find("authorization");
  if (header == request.headers.end() || header->second.rfind("Bearer ", 0) != 0) {
    return std::nullopt;
  }
  std::string token = header->second.substr(7);
  if (!options_.token.empty() && sameSecret(token, options_.token)) {
    return KubeUser{"admin", {"system:masters"}, true};
  }
  return options_.users ? options_.users->authenticate(token) : std::nullopt;
}

bool ApiServer::authorize(const HttpRequest& request, const KubeUser& user, Exchange& exchange) {
  std::string watch = request.param("watch");
  AccessAttributes asked =
      accessAttributes(request.method, request.path, watch == "true" || watch == "1");
  auto decide = [&](const AccessAttributes& a, std::string* why) {
    if (user.admin) {
      *why = "an administrator";
      return true;
    }
    return options_.users && options_.users->allows(user, a, why);
  };
  if (asked.group == "authorization.k8s.io" && asked.resource == "selfsubjectaccessreviews" &&
      asked.verb == "create") {
    auto contentType = request.headers.find("content-type");
    auto decoded = decodeObject(
        contentType == request.headers.end() ? "application/json" : contentType->second,
        request.body);
    json review = decoded ? *decoded : json();
    if (!review.is_object() || !review.contains("spec") || !review["spec"].is_object()) {
      exchange.respond(toResponse(ApiOutcome::failure(
          badRequest("a SelfSubjectAccessReview needs a spec with resourceAttributes or "
                     "nonResourceAttributes"))));
      return false;
    }
    const json& spec = review["spec"];
    AccessAttributes a;
    auto field = [](const json& j, const char* name) {
      auto it = j.find(name);
      return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (spec.contains("nonResourceAttributes") && spec["nonResourceAttributes"].is_object()) {
      const json& n = spec["nonResourceAttributes"];
      a.resourceRequest = false;
      a.path = field(n, "path");
      a.verb = field(n, "verb");
    } else {
      const json r = spec.value("resourceAttributes", json::object());
      if (!r.is_object()) {
        exchange.respond(toResponse(
            ApiOutcome::failure(badRequest("spec.resourceAttributes must be an object"))));
        return false;
      }
      a.verb = field(r, "verb");
      a.group = field(r, "group");
      a.resource = field(r, "resource");
      a.subresource = field(r, "subresource");
      a.ns = field(r, "namespace");
      a.name = field(r, "name");
      if (a.resource == "namespaces" && !a.name.empty() && a.ns.empty()) a.ns = a.name;
    }
    std::string why;
    bool allowed = decide(a, &why);
    json answer = {{"kind", "SelfSubjectAccessReview"},
                   {"apiVersion", "authorization.k8s.io/v1"},
                   {"metadata", {{"creationTimestamp", nullptr}}},
                   {"spec", spec},
                   {"status", {{"allowed", allowed}, {"reason", why}}}};
    exchange.respond(HttpResponse::jsonBody(answer.dump(), 201));
    return false;
  }
  std::string why;
  if (decide(asked, &why)) {
    return true;
  }
  ApiError forbidden;
  forbidden.code = 403;
  forbidden.reason = "Forbidden";
  forbidden.message = forbiddenMessage(user, asked);
  forbidden.kind = asked.resource;
  forbidden.name = asked.name;
  exchange.respond(toResponse(ApiOutcome::failure(forbidden)));
  return false;
}

}  // namespace agora::kube
