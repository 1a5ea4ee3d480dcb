// The API server's discovery documents: /version, /api, /apis (also aggregated, when asked
// for), the per-group-version resource lists, and the OpenAPI documents kubectl reads.

#include "frameworks/k8s-like/apiserver/api_server.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

HttpResponse jsonResponse(const json& body, int code = 200) {
  return HttpResponse::jsonBody(body.dump(), code);
}

}  // namespace

void ApiServer::serveDiscovery(const HttpRequest& request, Exchange& exchange) {
  if (request.method != "GET") {
    exchange.respond(toResponse(ApiOutcome::failure(methodNotAllowed(
        "the server does not allow this method on the requested resource"))));
    return;
  }
  const std::string& path = request.path;
  std::vector<std::string> parts = pathSegments(path);
  json body;
  // Aggregated discovery, when the client asks for it (kubectl does, then falls back).
  auto accept = request.headers.find("accept");
  if (parts.size() == 1 && (parts[0] == "api" || parts[0] == "apis") &&
      accept != request.headers.end() &&
      accept->second.find("as=APIGroupDiscoveryList") != std::string::npos) {
    std::string version =
        accept->second.find("g=apidiscovery.k8s.io;v=v2;") != std::string::npos ||
                accept->second.find("v=v2;g=apidiscovery.k8s.io") != std::string::npos
            ? "v2" : "v2beta1";
    HttpResponse r = jsonResponse(aggregatedDiscovery(parts[0] == "api", version));
    r.contentType = "application/json;g=apidiscovery.k8s.io;v=" + version +
                    ";as=APIGroupDiscoveryList";
    exchange.respond(std::move(r));
    return;
  }
  if (path == "/version" || path == "/version/") {
    body = versionInfo();
  } else if (parts.size() == 1 && parts[0] == "api") {
    body = coreVersions(options_.advertise);
  } else if (parts.size() == 2 && parts[0] == "api") {
    body = resourceList("", parts[1]);
  } else if (parts.size() == 1 && parts[0] == "apis") {
    body = groupList();
  } else if (parts.size() == 2 && parts[0] == "apis") {
    body = group(parts[1]);
  } else if (parts.size() == 3 && parts[0] == "apis") {
    body = resourceList(parts[1], parts[2]);
  } else if (parts.size() == 2 && parts[0] == "openapi" && parts[1] == "v2") {
    // An OpenAPI v2 document without definitions: kubectl then validates client-side only
    // what it knows of the kinds (from its own types), as against an older server. It asks
    // for gnostic's protobuf form, which is written here by hand.
    auto accept = request.headers.find("accept");
    if (accept != request.headers.end() && accept->second.find("protobuf") != std::string::npos) {
      static const std::string kTitle = "Kubernetes (Agora)";
      static const std::string kVersion = "v1.32.0";
      std::string info;
      info += '\x0a';
      info += static_cast<char>(kTitle.size());
      info += kTitle;
      info += '\x12';
      info += static_cast<char>(kVersion.size());
      info += kVersion;
      std::string doc = std::string("\x0a\x03" "2.0", 5);
      doc += '\x12';
      doc += static_cast<char>(info.size());
      doc += info;
      HttpResponse r;
      r.contentType = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
      r.body = doc;
      exchange.respond(std::move(r));
      return;
    }
    body = {{"swagger", "2.0"},
            {"info", {{"title", "Kubernetes (Agora)"}, {"version", "v1.32.0"}}},
            {"paths", json::object()}};
  } else if (parts.size() == 2 && parts[0] == "openapi" && parts[1] == "v3") {
    body = openapiRoot();
  } else if (parts.size() > 2 && parts[0] == "openapi" && parts[1] == "v3") {
    body = openapiDocument(path.substr(std::string("/openapi/v3/").size()));
  }
  if (body.is_null()) {
    exchange.respond(toResponse(ApiOutcome::failure(notServed())));
    return;
  }
  exchange.respond(jsonResponse(body));
}

}  // namespace agora::kube
