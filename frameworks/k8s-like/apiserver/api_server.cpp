#include "frameworks/k8s-like/apiserver/api_server.hpp"

#include <random>

#include <glog/logging.h>

#include "common/ids.hpp"
#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/patch.hpp"
#include "frameworks/k8s-like/apiserver/conversion.hpp"
#include "frameworks/k8s-like/apiserver/protobuf.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"
#include "frameworks/k8s-like/apiserver/validation.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

HttpResponse jsonResponse(const json& body, int code = 200) {
  return HttpResponse::jsonBody(body.dump(), code);
}

std::string randomSuffix() {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  static std::mt19937_64 random{std::random_device{}()};
  std::string out;
  for (int i = 0; i < 5; ++i) {
    out += kAlphabet[random() % (sizeof(kAlphabet) - 1)];
  }
  return out;
}

// The request's object, from JSON or Kubernetes' protobuf.
Result<json> parseBody(const HttpRequest& request) {
  auto contentType = request.headers.find("content-type");
  return decodeObject(contentType == request.headers.end() ? "" : contentType->second,
                      request.body);
}

ApiError unreadable(const std::string& message) {
  ApiError e = badRequest(message);
  if (message.find("sent as protobuf") != std::string::npos ||
      message.find("protobuf body") != std::string::npos) {
    e.code = 415;
    e.reason = "UnsupportedMediaType";
  }
  return e;
}

bool wantsTable(const HttpRequest& request) {
  auto it = request.headers.find("accept");
  return it != request.headers.end() && it->second.find("as=Table") != std::string::npos;
}

// Status values keep only what the kind's status starts as on create.
void resetStatus(const ResourceType& type, json& object) {
  const std::string& k = type.kind;
  if (k == "Pod") {
    std::string qos = "BestEffort";
    object["status"] = {{"phase", "Pending"}, {"qosClass", qos}};
  } else if (k == "Deployment" || k == "ReplicaSet" || k == "HorizontalPodAutoscaler" ||
             k == "Ingress") {
    object["status"] = json::object();
  } else if (k == "Service") {
    object["status"] = {{"loadBalancer", json::object()}};
  }
}

uint64_t parseVersion(const std::string& text, bool* ok) {
  *ok = true;
  if (text.empty()) {
    return 0;
  }
  try {
    size_t used = 0;
    uint64_t v = std::stoull(text, &used);
    *ok = used == text.size();
    return v;
  } catch (...) {
    *ok = false;
    return 0;
  }
}

ApiError storeError(const Outcome& outcome, const ResourceType& type, const std::string& name) {
  switch (outcome.code) {
    case StoreCode::kNotFound: return notFound(type.qualified(), name);
    case StoreCode::kAlreadyExists: return alreadyExists(type.qualified(), name);
    case StoreCode::kConflict: return conflict(type.qualified(), name);
    case StoreCode::kGone: return gone(outcome.message);
    default: {
      ApiError e;
      e.message = "storage error: " + outcome.message;
      return e;
    }
  }
}

ApiError forbidden(const std::string& message) {
  ApiError e;
  e.code = 403;
  e.reason = "Forbidden";
  e.message = message;
  return e;
}

}  // namespace

HttpResponse toResponse(const ApiOutcome& outcome) {
  HttpResponse response;
  if (outcome.error) {
    response = jsonResponse(outcome.error->toStatus(), outcome.error->code);
  } else {
    response = jsonResponse(outcome.object, outcome.code);
  }
  for (const auto& w : outcome.warnings) {
    response.headers.emplace_back("Warning", "299 - \"" + w + "\"");
  }
  return response;
}

ApiServer::ApiServer(Loop* loop, Store* store, ApiServerOptions options)
    : loop_(loop), store_(store), options_(std::move(options)),
      requestMetrics_(newRequestMetrics()) {
  conversions_[findResource("autoscaling", "v1", "horizontalpodautoscalers")] = {
      findResource("autoscaling", "v2", "horizontalpodautoscalers"), hpaV1ToV2, hpaV2ToV1};
}

ApiServer::~ApiServer() {
  *alive_ = false;
  for (auto& [id, watch] : watches_) {
    (void)watch;
  }
  while (!watches_.empty()) {
    endWatch(watches_.begin()->first);
  }
}

ApiHandler ApiServer::handler() {
  Loop* loop = loop_;
  std::weak_ptr<bool> alive = alive_;
  return [this, loop, alive](HttpRequest request, std::shared_ptr<Exchange> exchange) {
    loop->post([this, alive, request = std::move(request), exchange]() {
      if (!alive.lock()) {
        return;
      }
      handle(request, exchange);
    });
  };
}

json ApiServer::present(const Object& stored) {
  json object = stored.value;
  object["metadata"]["resourceVersion"] = std::to_string(stored.version);
  return object;
}

void ApiServer::connect(const std::string& plural, const std::string& subresource,
                        Connector handler) {
  connectors_[plural + "/" + subresource] = std::move(handler);
}

void ApiServer::provide(const ResourceType& type, Provider provider) {
  providers_[&type] = std::move(provider);
}

void ApiServer::serveProvided(const HttpRequest& request, const Target& target,
                              const Provider& provider, Exchange& exchange) {
  if (request.method != "GET" || !target.subresource.empty() || request.param("watch") == "true" ||
      request.param("watch") == "1") {
    exchange.respond(toResponse(ApiOutcome::failure(
        methodNotAllowed(target.type->qualified() + " can only be read (get and list)"))));
    return;
  }
  std::optional<LabelSelector> selector;
  if (std::string text = request.param("labelSelector"); !text.empty()) {
    auto parsed = LabelSelector::parse(text);
    if (!parsed) {
      exchange.respond(toResponse(ApiOutcome::failure(badRequest(parsed.error()))));
      return;
    }
    selector = std::move(*parsed);
  }
  json items = json::array();
  for (json& item : provider(target.ns)) {
    const json meta = item.value("metadata", json::object());
    if (!target.name.empty()) {
      if (meta.value("name", "") != target.name) continue;
      exchange.respond(HttpResponse::jsonBody(item.dump()));
      return;
    }
    if (selector && !selector->matches(meta.value("labels", json::object()))) continue;
    items.push_back(std::move(item));
  }
  if (!target.name.empty()) {
    exchange.respond(toResponse(ApiOutcome::failure(notFound(target.type->qualified(), target.name))));
    return;
  }
  json list = {{"kind", target.type->kind + "List"},
               {"apiVersion", target.type->groupVersion()},
               {"metadata", json::object()},
               {"items", std::move(items)}};
  exchange.respond(HttpResponse::jsonBody(list.dump()));
}

void ApiServer::bootstrap() {
  const ResourceType* ns = findResource("", "v1", "namespaces");
  for (const char* name : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    if (!store_->get(ns->key("", name)).ok()) {
      json object = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
      ApiOutcome created = create(*ns, "", object);
      LOG_IF(ERROR, !created.ok()) << "Cannot make namespace " << name << ": "
                                   << created.error->message;
    }
  }
}

void ApiServer::handle(const HttpRequest& request, std::shared_ptr<Exchange> timed) {
  auto exchange = timeRequest(requestMetrics_, request, std::move(timed));
  // An object of the wrong shape (a name that is a number, a list where a map belongs) is the
  // client's error; it must not take the server down.
  try {
    route(request, exchange);
  } catch (const std::exception& e) {
    LOG(WARNING) << request.method << " " << request.path << ": " << e.what();
    exchange->respond(toResponse(ApiOutcome::failure(
        badRequest(std::string("the object is not of the expected shape: ") + e.what()))));
  }
}

void ApiServer::route(const HttpRequest& request, std::shared_ptr<Exchange> exchange) {
  const std::string& path = request.path;
  if (servedWithoutToken(path, *exchange)) {
    return;
  }
  std::optional<KubeUser> user = authenticate(request);
  if (!user && path != "/version") {
    exchange->respond(toResponse(ApiOutcome::failure(unauthorized())));
    return;
  }
  if (user && !authorize(request, *user, *exchange)) return;
  if (path == "/metrics") {
    HttpResponse metrics = HttpResponse::text(metricsText());
    metrics.contentType = "text/plain; version=0.0.4; charset=utf-8";
    exchange->respond(std::move(metrics));
    return;
  }
  std::vector<std::string> parts = pathSegments(path);
  size_t base = 0;
  std::string group;
  std::string version;
  if (!parts.empty() && parts[0] == "api" && parts.size() >= 2) {
    version = parts[1];
    base = 2;
  } else if (!parts.empty() && parts[0] == "apis" && parts.size() >= 3) {
    group = parts[1];
    version = parts[2];
    base = 3;
  }
  if (base == 0 || parts.size() == base) {
    serveDiscovery(request, *exchange);
    return;
  }
  std::vector<std::string> rest(parts.begin() + static_cast<long>(base), parts.end());
  Target target;
  if (rest[0] == "namespaces" && rest.size() >= 3 && findResource(group, version, rest[2])) {
    target.ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  target.type = findResource(group, version, rest[0]);
  if (target.type == nullptr || rest.size() > 3 || (!target.type->namespaced && !target.ns.empty())) {
    exchange->respond(toResponse(ApiOutcome::failure(notServed())));
    return;
  }
  if (rest.size() >= 2) {
    target.name = rest[1];
  }
  if (auto provider = providers_.find(target.type); provider != providers_.end()) {
    serveProvided(request, target, provider->second, *exchange);
    return;
  }
  if (rest.size() == 3) {
    target.subresource = rest[2];
    auto connector = connectors_.find(target.type->plural + "/" + target.subresource);
    if (connector != connectors_.end()) {
      ApiOutcome object = get(*target.type, target.ns, target.name);
      if (!object.ok()) {
        exchange->respond(toResponse(object));
        return;
      }
      connector->second(request, object.object, std::move(exchange));
      return;
    }
    bool served = (target.subresource == "status" && target.type->hasStatus) ||
                  (target.subresource == "scale" && target.type->hasScale);
    if (!served) {
      exchange->respond(toResponse(ApiOutcome::failure(notServed())));
      return;
    }
  }
  if (auto conversion = conversions_.find(target.type); conversion != conversions_.end()) {
    serveConverted(request, target, conversion->second, std::move(exchange));
    return;
  }
  serveResource(request, target, std::move(exchange));
}

void ApiServer::reply(const HttpRequest& request, const Target& target, Exchange& exchange,
                      const ApiOutcome& outcome) {
  if (outcome.ok() && wantsTable(request) && target.subresource.empty() &&
      outcome.object.value("kind", "") == target.type->kind) {
    ApiOutcome table = outcome;
    table.object = toTable(*target.type, {outcome.object}, request.param("includeObject"), now());
    exchange.respond(toResponse(table));
    return;
  }
  exchange.respond(toResponse(outcome));
}

void ApiServer::serveResource(const HttpRequest& request, const Target& target,
                              std::shared_ptr<Exchange> exchange) {
  const ResourceType& type = *target.type;
  const std::string& method = request.method;
  bool dryRun = request.param("dryRun") == "All";
  std::string fieldValidation = request.param("fieldValidation", "Warn");
  if (target.subresource == "scale") {
    serveScale(request, target, *exchange);
    return;
  }
  if (target.name.empty()) {
    if (method == "GET") {
      std::string w = request.param("watch");
      if (w == "true" || w == "1") {
        serveWatch(request, target, std::move(exchange));
      } else {
        serveList(request, target, *exchange);
      }
    } else if (method == "POST") {
      Result<json> parsed = parseBody(request);
      if (!parsed) {
        reply(request, target, *exchange, ApiOutcome::failure(unreadable(parsed.error())));
        return;
      }
      json object = std::move(*parsed);
      std::string apiVersion = object.value("apiVersion", "");
      std::string kind = object.value("kind", "");
      if (apiVersion != type.groupVersion() || kind != type.kind) {
        reply(request, target, *exchange,
              ApiOutcome::failure(badRequest(
                  "the API version in the data (" + apiVersion +
                  ") does not match the expected API version (" + type.groupVersion() + ")" +
                  (kind != type.kind ? "; the kind in the data (" + kind +
                                           ") does not match the expected kind (" + type.kind +
                                           ")"
                                     : ""))));
        return;
      }
      std::vector<std::string> unknown = unknownFields(type, object);
      ApiOutcome outcome;
      if (!unknown.empty() && fieldValidation == "Strict") {
        std::string message = "strict decoding error: ";
        for (size_t i = 0; i < unknown.size(); ++i) {
          message += (i ? ", " : "") + std::string("unknown field \"") + unknown[i] + "\"";
        }
        outcome = ApiOutcome::failure(badRequest(message));
      } else {
        outcome = create(type, target.ns, std::move(object), dryRun);
        if (fieldValidation == "Warn") {
          for (const auto& u : unknown) {
            outcome.warnings.push_back("unknown field \\\"" + u + "\\\"");
          }
        }
      }
      reply(request, target, *exchange, outcome);
    } else if (method == "DELETE") {
      serveDeleteCollection(request, target, *exchange);
    } else {
      reply(request, target, *exchange,
            ApiOutcome::failure(methodNotAllowed("the server does not allow this method on the "
                                                 "requested resource")));
    }
    return;
  }
  if (method == "GET") {
    reply(request, target, *exchange, get(type, target.ns, target.name));
  } else if (method == "PUT") {
    Result<json> parsed = parseBody(request);
    if (!parsed) {
      reply(request, target, *exchange, ApiOutcome::failure(unreadable(parsed.error())));
      return;
    }
    json object = std::move(*parsed);
    std::string bodyName = object.value("metadata", json::object()).value("name", "");
    if (bodyName != target.name) {
      reply(request, target, *exchange,
            ApiOutcome::failure(badRequest("the name of the object (" + bodyName +
                                           ") does not match the name on the URL (" +
                                           target.name + ")")));
      return;
    }
    ApiOutcome current = get(type, target.ns, target.name);
    if (!current.ok()) {
      reply(request, target, *exchange, current);
      return;
    }
    reply(request, target, *exchange,
          store(type, current.object, std::move(object), target.subresource, dryRun, false,
                fieldValidation));
  } else if (method == "PATCH") {
    servePatch(request, target, *exchange);
  } else if (method == "DELETE") {
    DeleteOptions options;
    json body = json::parse(request.body.empty() ? "{}" : request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      reply(request, target, *exchange,
            ApiOutcome::failure(badRequest("the DeleteOptions are not valid JSON")));
      return;
    }
    if (body.contains("gracePeriodSeconds") && body["gracePeriodSeconds"].is_number_integer()) {
      options.gracePeriodSeconds = body["gracePeriodSeconds"].get<int64_t>();
    } else if (!request.param("gracePeriodSeconds").empty()) {
      options.gracePeriodSeconds = std::atoll(request.param("gracePeriodSeconds").c_str());
    }
    options.propagationPolicy =
        body.value("propagationPolicy", request.param("propagationPolicy"));
    if (body.value("orphanDependents", false) || request.param("orphanDependents") == "true") {
      options.propagationPolicy = "Orphan";
    }
    json preconditions = body.value("preconditions", json::object());
    options.preconditionUid = preconditions.value("uid", "");
    options.preconditionResourceVersion = preconditions.value("resourceVersion", "");
    options.dryRun = dryRun || (body.contains("dryRun") && body["dryRun"].is_array() &&
                                !body["dryRun"].empty());
    reply(request, target, *exchange, remove(type, target.ns, target.name, options));
  } else {
    reply(request, target, *exchange,
          ApiOutcome::failure(methodNotAllowed("the server does not allow this method on the "
                                               "requested resource")));
  }
}

ApiOutcome ApiServer::get(const ResourceType& type, const std::string& ns,
                          const std::string& name) const {
  Outcome got = store_->get(type.key(ns, name));
  if (!got.ok()) {
    return ApiOutcome::failure(notFound(type.qualified(), name));
  }
  ApiOutcome outcome;
  outcome.object = present(got.object);
  return outcome;
}

std::vector<json> ApiServer::list(const ResourceType& type, const std::string& ns,
                                  const LabelSelector* selector) const {
  std::vector<json> out;
  for (const Object& o : store_->list(type.keyPrefix(ns))) {
    if (selector == nullptr ||
        selector->matches(o.value["metadata"].value("labels", json::object()))) {
      out.push_back(present(o));
    }
  }
  return out;
}

ApiOutcome ApiServer::create(const ResourceType& type, const std::string& ns, json object,
                             bool dryRun) {
  if (!object.is_object()) {
    return ApiOutcome::failure(badRequest("the object is not a JSON object"));
  }
  if (!object.contains("metadata") || !object["metadata"].is_object()) {
    object["metadata"] = json::object();
  }
  json& meta = object["metadata"];
  object["apiVersion"] = type.groupVersion();
  object["kind"] = type.kind;
  if (type.namespaced) {
    std::string given = meta.value("namespace", "");
    if (!given.empty() && given != ns) {
      return ApiOutcome::failure(badRequest("the namespace of the provided object does not match "
                                            "the namespace sent on the request"));
    }
    meta["namespace"] = ns;
    const ResourceType* nsType = findResource("", "v1", "namespaces");
    Outcome space = store_->get(nsType->key("", ns));
    if (!space.ok()) {
      return ApiOutcome::failure(notFound("namespaces", ns));
    }
    if (space.object.value["metadata"].contains("deletionTimestamp")) {
      return ApiOutcome::failure(
          forbidden(type.plural + " \"" + meta.value("name", "") + "\" is forbidden: unable to "
                    "create new content in namespace " + ns + " because it is being terminated"));
    }
  } else {
    meta.erase("namespace");
  }
  std::string name = meta.value("name", "");
  if (name.empty() && !meta.value("generateName", "").empty()) {
    name = meta.value("generateName", "") + randomSuffix();
    meta["name"] = name;
  }
  if (name.empty()) {
    return ApiOutcome::failure(invalid(type.kind, "", {{"metadata.name", "",
                                                        "name or generateName is required",
                                                        "FieldValueRequired"}}));
  }
  applyDefaults(type, object);
  if (type.kind == "Secret") {
    foldStringData(object);
  }
  std::vector<FieldCause> causes = validateObject(type, object);
  if (!causes.empty()) {
    return ApiOutcome::failure(invalid(type.kind, name, std::move(causes)));
  }
  meta["uid"] = uuidString();
  meta["creationTimestamp"] = rfc3339(now());
  for (const char* f : {"resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                        "selfLink", "managedFields"}) {
    meta.erase(f);
  }
  if (type.hasGeneration) {
    meta["generation"] = 1;
  } else {
    meta.erase("generation");
  }
  resetStatus(type, object);
  if (type.kind == "Service") {
    std::vector<FieldCause> taken =
        allocateService(options_.services, object, json(), list(type, ""));
    if (!taken.empty()) {
      return ApiOutcome::failure(invalid(type.kind, name, std::move(taken)));
    }
  }
  ApiOutcome outcome;
  outcome.code = 201;
  if (dryRun) {
    if (store_->get(type.key(ns, name)).ok()) {
      return ApiOutcome::failure(alreadyExists(type.qualified(), name));
    }
    outcome.object = object;
    return outcome;
  }
  Outcome stored = store_->create(type.key(ns, name), std::move(object));
  if (!stored.ok()) {
    return ApiOutcome::failure(storeError(stored, type, name));
  }
  outcome.object = present(stored.object);
  if (type.kind == "Service") serviceEvents(json(), outcome.object);
  return outcome;
}

ApiOutcome ApiServer::update(const ResourceType& type, const std::string& ns,
                             const std::string& name, json object,
                             const std::string& subresource, bool dryRun, bool internal) {
  ApiOutcome current = get(type, ns, name);
  if (!current.ok()) {
    return current;
  }
  return store(type, current.object, std::move(object), subresource, dryRun, internal, "Ignore");
}

ApiOutcome ApiServer::store(const ResourceType& type, const json& current, json next,
                            const std::string& subresource, bool dryRun, bool internal,
                            const std::string& fieldValidation) {
  const json& was = current["metadata"];
  std::string name = was.value("name", "");
  if (!next.is_object()) {
    return ApiOutcome::failure(badRequest("the object is not a JSON object"));
  }
  if (!next.contains("metadata") || !next["metadata"].is_object()) {
    next["metadata"] = json::object();
  }
  std::string apiVersion = next.value("apiVersion", type.groupVersion());
  std::string kind = next.value("kind", type.kind);
  if (apiVersion != type.groupVersion() || kind != type.kind) {
    return ApiOutcome::failure(badRequest("the API version in the data (" + apiVersion +
                                          ") does not match the expected API version (" +
                                          type.groupVersion() + ")"));
  }
  bool versionOk = true;
  uint64_t expected = parseVersion(next["metadata"].value("resourceVersion", ""), &versionOk);
  if (!versionOk) {
    return ApiOutcome::failure(badRequest("invalid resourceVersion \"" +
                                          next["metadata"].value("resourceVersion", "") + "\""));
  }
  std::string uid = next["metadata"].value("uid", "");
  if (!uid.empty() && uid != was.value("uid", "")) {
    ApiError e = conflict(type.qualified(), name);
    e.message = "Precondition failed: UID in precondition: " + was.value("uid", "") +
                ", UID in object meta: " + uid;
    return ApiOutcome::failure(e);
  }
  std::vector<std::string> unknown = unknownFields(type, next);
  if (!unknown.empty() && fieldValidation == "Strict") {
    std::string message = "strict decoding error: ";
    for (size_t i = 0; i < unknown.size(); ++i) {
      message += (i ? ", " : "") + std::string("unknown field \"") + unknown[i] + "\"";
    }
    return ApiOutcome::failure(badRequest(message));
  }
  json result;
  if (subresource == "status") {
    result = current;
    result["status"] = next.value("status", json::object());
  } else {
    result = std::move(next);
    result["apiVersion"] = type.groupVersion();
    result["kind"] = type.kind;
    if (type.hasStatus && !internal) {
      if (current.contains("status")) {
        result["status"] = current["status"];
      } else {
        result.erase("status");
      }
    }
    json& meta = result["metadata"];
    meta["name"] = name;
    if (type.namespaced) {
      meta["namespace"] = was.value("namespace", "");
    }
    for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"}) {
      if (was.contains(f)) {
        meta[f] = was[f];
      } else {
        meta.erase(f);
      }
    }
    meta.erase("selfLink");
    meta.erase("managedFields");
    applyDefaults(type, result);
    if (type.kind == "Secret") {
      foldStringData(result);
    }
    std::vector<FieldCause> causes = validateObject(type, result);
    if (type.kind == "Service") {
      for (auto& c : allocateService(options_.services, result, current, list(type, ""))) {
        causes.push_back(std::move(c));
      }
    }
    if (!internal) {
      for (auto& c : validateUpdate(type, current, result)) {
        causes.push_back(std::move(c));
      }
    }
    if (!causes.empty()) {
      return ApiOutcome::failure(invalid(type.kind, name, std::move(causes)));
    }
    if (type.hasGeneration && current.value("spec", json()) != result.value("spec", json())) {
      meta["generation"] = was.value("generation", 1) + 1;
    }
  }
  result["metadata"].erase("resourceVersion");
  ApiOutcome outcome;
  for (const auto& u : unknown) {
    if (fieldValidation == "Warn") {
      outcome.warnings.push_back("unknown field \\\"" + u + "\\\"");
    }
  }
  bool deleting = result["metadata"].contains("deletionTimestamp");
  json finalizers = result["metadata"].value("finalizers", json::array());
  std::string key = type.key(was.value("namespace", ""), name);
  if (dryRun) {
    outcome.object = result;
    outcome.object["metadata"]["resourceVersion"] = was.value("resourceVersion", "");
    return outcome;
  }
  Outcome stored = store_->update(key, std::move(result), expected);
  if (!stored.ok()) {
    return ApiOutcome::failure(storeError(stored, type, name));
  }
  if (deleting && (!finalizers.is_array() || finalizers.empty())) {
    return finishDeletion(type, stored.object, false);
  }
  outcome.object = present(stored.object);
  if (type.kind == "Service") serviceEvents(current, outcome.object);
  return outcome;
}

void ApiServer::servePatch(const HttpRequest& request, const Target& target, Exchange& exchange) {
  const ResourceType& type = *target.type;
  auto contentType = request.headers.find("content-type");
  PatchType patchType =
      patchTypeOf(contentType == request.headers.end() ? "" : contentType->second);
  if (patchType == PatchType::kUnknown || patchType == PatchType::kApply) {
    ApiError e;
    e.code = 415;
    e.reason = "UnsupportedMediaType";
    e.message = patchType == PatchType::kApply
                    ? "server-side apply is not supported by this server yet; use client-side "
                      "`kubectl apply` (the default)"
                    : "the body of the request was in an unknown format - accepted media types "
                      "include: application/json-patch+json, application/merge-patch+json, "
                      "application/strategic-merge-patch+json";
    reply(request, target, exchange, ApiOutcome::failure(e));
    return;
  }
  ApiOutcome current = get(type, target.ns, target.name);
  if (!current.ok()) {
    reply(request, target, exchange, current);
    return;
  }
  Result<json> patched = applyPatch(patchType, current.object, request.body);
  if (!patched) {
    ApiError e = invalid(type.kind, target.name, {});
    e.message = patched.error();
    e.code = 422;
    reply(request, target, exchange, ApiOutcome::failure(e));
    return;
  }
  json next = std::move(*patched);
  // A patch is applied to the version it read unless it names one itself.
  json patch = json::parse(request.body, nullptr, false);
  bool namesVersion = patch.is_object() && patch.contains("metadata") &&
                      patch["metadata"].is_object() &&
                      patch["metadata"].contains("resourceVersion");
  if (!namesVersion) {
    next["metadata"]["resourceVersion"] = current.object["metadata"]["resourceVersion"];
  }
  reply(request, target, exchange,
        store(type, current.object, std::move(next), target.subresource,
              request.param("dryRun") == "All", false, request.param("fieldValidation", "Warn")));
}

void ApiServer::serveScale(const HttpRequest& request, const Target& target, Exchange& exchange) {
  const ResourceType& type = *target.type;
  ApiOutcome current = get(type, target.ns, target.name);
  if (!current.ok()) {
    reply(request, target, exchange, current);
    return;
  }
  auto toScale = [&](const json& object) {
    const json& meta = object["metadata"];
    auto selector = LabelSelector::fromObject(object["spec"].value("selector", json::object()));
    return json{{"kind", "Scale"},
                {"apiVersion", "autoscaling/v1"},
                {"metadata",
                 {{"name", meta.value("name", "")},
                  {"namespace", meta.value("namespace", "")},
                  {"uid", meta.value("uid", "")},
                  {"resourceVersion", meta.value("resourceVersion", "")},
                  {"creationTimestamp", meta.value("creationTimestamp", "")}}},
                {"spec", {{"replicas", object["spec"].value("replicas", 0)}}},
                {"status",
                 {{"replicas", object.value("status", json::object()).value("replicas", 0)},
                  {"selector", selector ? selector->toString() : ""}}}};
  };
  json scale = toScale(current.object);
  if (request.method == "GET") {
    ApiOutcome out;
    out.object = scale;
    reply(request, target, exchange, out);
    return;
  }
  json next;
  if (request.method == "PUT") {
    next = json::parse(request.body, nullptr, false);
  } else if (request.method == "PATCH") {
    auto contentType = request.headers.find("content-type");
    PatchType patchType =
        patchTypeOf(contentType == request.headers.end() ? "" : contentType->second);
    Result<json> patched = applyPatch(patchType, scale, request.body);
    if (!patched) {
      reply(request, target, exchange, ApiOutcome::failure(badRequest(patched.error())));
      return;
    }
    next = *patched;
  } else {
    reply(request, target, exchange,
          ApiOutcome::failure(methodNotAllowed("the server does not allow this method on the "
                                               "requested resource")));
    return;
  }
  if (next.is_discarded() || !next.is_object() || !next.contains("spec") ||
      !next["spec"].is_object() || !next["spec"].value("replicas", json()).is_number_integer()) {
    reply(request, target, exchange,
          ApiOutcome::failure(badRequest("the Scale object has no spec.replicas")));
    return;
  }
  json object = current.object;
  object["spec"]["replicas"] = next["spec"]["replicas"];
  std::string version = next.value("metadata", json::object()).value("resourceVersion", "");
  object["metadata"]["resourceVersion"] = version;
  ApiOutcome stored = store(type, current.object, object, "", request.param("dryRun") == "All",
                            false, "Ignore");
  if (stored.ok()) {
    stored.object = toScale(stored.object);
  }
  reply(request, target, exchange, stored);
}

}  // namespace agora::kube
