// Deletion as the API server does it: preconditions, graceful deletion of pods that run
// somewhere (the pod scheduler finishes it once the containers stopped), finalizers for
// Foreground and Orphan propagation (the garbage collector acts on them), namespaces that empty
// themselves first; and Events.

#include <random>

#include <glog/logging.h>

#include "common/ids.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"

namespace agora::kube {

using nlohmann::json;

namespace {

void addFinalizer(json& meta, const std::string& name) {
  if (!meta.contains("finalizers") || !meta["finalizers"].is_array()) {
    meta["finalizers"] = json::array();
  }
  for (const auto& f : meta["finalizers"]) {
    if (f == name) {
      return;
    }
  }
  meta["finalizers"].push_back(name);
}

}  // namespace

ApiOutcome ApiServer::remove(const ResourceType& type, const std::string& ns,
                             const std::string& name, const DeleteOptions& options) {
  std::string key = type.key(ns, name);
  Outcome got = store_->get(key);
  if (!got.ok()) {
    return ApiOutcome::failure(notFound(type.qualified(), name));
  }
  json object = present(got.object);
  json& meta = object["metadata"];
  if (!options.preconditionUid.empty() && options.preconditionUid != meta.value("uid", "")) {
    ApiError e = conflict(type.qualified(), name);
    e.message = "Precondition failed: UID in precondition: " + options.preconditionUid +
                ", UID in object meta: " + meta.value("uid", "");
    return ApiOutcome::failure(e);
  }
  if (!options.preconditionResourceVersion.empty() &&
      options.preconditionResourceVersion != meta.value("resourceVersion", "")) {
    ApiError e = conflict(type.qualified(), name);
    e.message = "Precondition failed: ResourceVersion in precondition: " +
                options.preconditionResourceVersion +
                ", ResourceVersion in object meta: " + meta.value("resourceVersion", "");
    return ApiOutcome::failure(e);
  }
  if (options.dryRun) {
    ApiOutcome outcome;
    outcome.object = object;
    return outcome;
  }
  bool isPod = type.kind == "Pod";
  int64_t grace = 0;
  if (isPod) {
    grace = options.gracePeriodSeconds.value_or(
        object["spec"].value("terminationGracePeriodSeconds", int64_t{30}));
  }
  if (meta.contains("deletionTimestamp")) {
    // Already going: only a pod's grace period can be cut short (--force --grace-period=0).
    if (isPod && options.gracePeriodSeconds && *options.gracePeriodSeconds == 0) {
      return finishDeletion(type, got.object, false);
    }
    ApiOutcome outcome;
    outcome.object = object;
    return outcome;
  }
  std::string policy = options.propagationPolicy.empty() ? "Background"
                                                         : options.propagationPolicy;
  if (policy != "Background" && policy != "Foreground" && policy != "Orphan") {
    return ApiOutcome::failure(invalid("DeleteOptions", "",
                                       {{"propagationPolicy", policy,
                                         "supported values: \"Orphan\", \"Background\", "
                                         "\"Foreground\"",
                                         "FieldValueNotSupported"}}));
  }
  bool graceful = false;
  if (policy == "Foreground") {
    addFinalizer(meta, "foregroundDeletion");
  } else if (policy == "Orphan") {
    addFinalizer(meta, "orphan");
  }
  if (type.kind == "Namespace") {
    graceful = true;  // its contents go first (the garbage collector empties it)
    object["status"]["phase"] = "Terminating";
  }
  if (isPod && grace > 0 && !object["spec"].value("nodeName", std::string()).empty()) {
    graceful = true;  // its containers get their grace period on their agent
    meta["deletionGracePeriodSeconds"] = grace;
  }
  bool finalizers = meta.contains("finalizers") && meta["finalizers"].is_array() &&
                    !meta["finalizers"].empty();
  if (!graceful && !finalizers) {
    return finishDeletion(type, got.object, false);
  }
  meta["deletionTimestamp"] = rfc3339(now() + static_cast<double>(grace));
  meta.erase("resourceVersion");
  Outcome stored = store_->update(key, object, got.object.version);
  if (!stored.ok()) {
    return ApiOutcome::failure(conflict(type.qualified(), name));
  }
  ApiOutcome outcome;
  outcome.object = present(stored.object);
  return outcome;
}

ApiOutcome ApiServer::finishDeletion(const ResourceType& type, const Object& stored,
                                     bool dryRun) {
  ApiOutcome outcome;
  outcome.object = present(stored);
  if (dryRun) {
    return outcome;
  }
  Outcome removed = store_->remove(stored.key);
  if (!removed.ok() && removed.code != StoreCode::kNotFound) {
    return ApiOutcome::failure(
        ApiError{500, "InternalError", "storage error: " + removed.message, type.plural,
                 outcome.object["metadata"].value("name", ""), {}});
  }
  return outcome;
}

void ApiServer::purge(const ResourceType& type, const std::string& ns, const std::string& name) {
  Outcome removed = store_->remove(type.key(ns, name));
  LOG_IF(WARNING, !removed.ok() && removed.code != StoreCode::kNotFound)
      << "Cannot remove " << type.key(ns, name) << ": " << removed.message;
}

void ApiServer::serveDeleteCollection(const HttpRequest& request, const Target& target,
                                      Exchange& exchange) {
  const ResourceType& type = *target.type;
  auto labels = LabelSelector::parse(request.param("labelSelector"));
  auto fields = FieldSelector::parse(request.param("fieldSelector"));
  if (!labels || !fields) {
    exchange.respond(toResponse(ApiOutcome::failure(
        badRequest(!labels ? labels.error() : fields.error()))));
    return;
  }
  DeleteOptions options;
  options.propagationPolicy = request.param("propagationPolicy");
  if (!request.param("gracePeriodSeconds").empty()) {
    options.gracePeriodSeconds = std::atoll(request.param("gracePeriodSeconds").c_str());
  }
  options.dryRun = request.param("dryRun") == "All";
  json items = json::array();
  for (const json& object : list(type, target.ns, &*labels)) {
    if (!fields->matches(object)) {
      continue;
    }
    const json& meta = object["metadata"];
    ApiOutcome removed =
        remove(type, meta.value("namespace", ""), meta.value("name", ""), options);
    if (removed.ok()) {
      items.push_back(removed.object);
    }
  }
  json body = {{"kind", type.kind + "List"},
               {"apiVersion", type.groupVersion()},
               {"metadata", {{"resourceVersion", std::to_string(store_->version())}}},
               {"items", items}};
  exchange.respond(toResponse(ApiOutcome{200, body, std::nullopt, {}}));
}

void ApiServer::serviceEvents(const json& before, const json& after) {
  auto address = [](const json& service) {
    if (!service.is_object()) return std::string();
    const json ingress = service.value("status", json::object())
                             .value("loadBalancer", json::object())
                             .value("ingress", json::array());
    return ingress.empty() || !ingress[0].is_object() ? std::string()
                                                      : ingress[0].value("ip", std::string());
  };
  std::string was = address(before);
  std::string is = address(after);
  if (!is.empty() && is != was) {
    recordEvent(after, "Normal", "IPAllocated", "Assigned IP [\"" + is + "\"]",
                "agora-lb-controller");
  } else if (is.empty() && !was.empty()) {
    recordEvent(after, "Normal", "IPReleased", "Released IP [\"" + was + "\"]",
                "agora-lb-controller");
  }
}

void ApiServer::recordEvent(const json& object, const std::string& type,
                            const std::string& reason, const std::string& message,
                            const std::string& component) {
  const json meta = object.value("metadata", json::object());
  std::string ns = meta.value("namespace", "default");
  if (ns.empty()) {
    ns = "default";
  }
  const ResourceType* events = findResource("", "v1", "events");
  std::string uid = meta.value("uid", "");
  std::string stamp = rfc3339(now());
  // The same thing said again about the same object counts up, as kubectl shows ("x5").
  std::string index = uid + "|" + reason + "|" + message;
  auto known = eventIndex_.find(index);
  if (known != eventIndex_.end()) {
    Outcome got = store_->get(known->second);
    if (got.ok()) {
      json next = got.object.value;
      next["count"] = next.value("count", 1) + 1;
      next["lastTimestamp"] = stamp;
      if (store_->update(known->second, next).ok()) {
        return;
      }
    }
    eventIndex_.erase(known);
  }
  // Named as the kube-apiserver names them, by the time in nanoseconds: a list, and so
  // `kubectl describe`, shows them in the order they happened.
  char suffix[20];
  static uint64_t last = 0;
  last = std::max(last + 1, static_cast<uint64_t>(now() * 1e9));
  std::snprintf(suffix, sizeof(suffix), "%016llx", static_cast<unsigned long long>(last));
  json event = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata",
       {{"name", meta.value("name", "") + "." + suffix}, {"namespace", ns}}},
      {"involvedObject",
       {{"kind", object.value("kind", "")},
        {"namespace", meta.value("namespace", "")},
        {"name", meta.value("name", "")},
        {"uid", uid},
        {"apiVersion", object.value("apiVersion", "")},
        {"resourceVersion", meta.value("resourceVersion", "")}}},
      {"reason", reason},
      {"message", message},
      {"source", {{"component", component}}},
      {"firstTimestamp", stamp},
      {"lastTimestamp", stamp},
      {"count", 1},
      {"type", type},
      {"eventTime", nullptr},
      {"reportingComponent", component},
      {"reportingInstance", ""}};
  ApiOutcome created = create(*events, ns, event);
  if (!created.ok()) {
    LOG(WARNING) << "Cannot record event " << reason << ": " << created.error->message;
    return;
  }
  if (eventIndex_.size() > 100000) {
    eventIndex_.clear();
  }
  eventIndex_[index] = events->key(ns, created.object["metadata"].value("name", ""));
}

}  // namespace agora::kube
