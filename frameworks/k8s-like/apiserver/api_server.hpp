#pragma once

// The Kubernetes REST API over the kube store: discovery, OpenAPI, and for every served kind
// get, list (selectors, limit/continue), watch (streamed events, bookmarks), create, update
// (409 on a stale resourceVersion), patch (merge, JSON, strategic), delete (grace periods,
// propagation through finalizers), deletecollection, /status and /scale, Tables for
// `kubectl get`, and errors as Status objects.
//
// Everything runs on the component's loop: the HTTP thread posts each request in, and the
// answer goes back through its Exchange. Controllers and the pod scheduler, on the same loop,
// change objects through the same create/update/remove so that defaulting, validation and
// resourceVersions are the same for them as for kubectl.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/loop.hpp"
#include "frameworks/k8s-like/apiserver/authorizer.hpp"
#include "frameworks/k8s-like/apiserver/http_server.hpp"
#include "frameworks/k8s-like/apiserver/kinds.hpp"
#include "frameworks/k8s-like/apiserver/selectors.hpp"
#include "frameworks/k8s-like/apiserver/services.hpp"
#include "frameworks/k8s-like/apiserver/status.hpp"
#include "frameworks/k8s-like/store/store.hpp"

namespace agora::kube {

struct ApiServerOptions {
  std::string token;      // an administrator's bearer token ("" and no users: no authentication)
  std::string advertise;  // "127.0.0.1:6443": where clients reach the server
  Duration bookmarkEvery = seconds(60);
  Duration defaultWatchTimeout = seconds(1800);
  ServiceRanges services;  // ClusterIPs, node ports, load-balancer addresses
  // More users, by token, and what they may do (authorizer.hpp; --users).
  std::shared_ptr<const KubeAuthorizer> users;
};

// An object, or why not.
struct ApiOutcome {
  int code = 200;
  nlohmann::json object;
  std::optional<ApiError> error;
  std::vector<std::string> warnings;
  bool ok() const { return !error; }
  static ApiOutcome failure(ApiError e) {
    ApiOutcome o;
    o.code = e.code;
    o.error = std::move(e);
    return o;
  }
};

struct DeleteOptions {
  std::optional<int64_t> gracePeriodSeconds;
  std::string propagationPolicy;  // Background (default), Foreground, Orphan
  std::string preconditionUid;
  std::string preconditionResourceVersion;
  bool dryRun = false;
};

struct ApiRequestMetrics;  // api_metrics.cpp

class ApiServer {
 public:
  ApiServer(Loop* loop, Store* store, ApiServerOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // The HTTP server's handler: posts each request into the loop.
  ApiHandler handler();

  // Loop thread from here on.
  // Makes the namespaces every cluster has (default, kube-system, kube-public,
  // kube-node-lease) if they are missing.
  void bootstrap();
  void handle(const HttpRequest& request, std::shared_ptr<Exchange> exchange);

  // The object API for controllers. `internal` skips the checks that only bind users (a pod's
  // immutable spec: the scheduler binds it to a node).
  ApiOutcome get(const ResourceType& type, const std::string& ns, const std::string& name) const;
  std::vector<nlohmann::json> list(const ResourceType& type, const std::string& ns,
                                   const LabelSelector* selector = nullptr) const;
  ApiOutcome create(const ResourceType& type, const std::string& ns, nlohmann::json object,
                    bool dryRun = false);
  // `subresource`: "" (the object, its status kept), "status" (only its status).
  ApiOutcome update(const ResourceType& type, const std::string& ns, const std::string& name,
                    nlohmann::json object, const std::string& subresource = "",
                    bool dryRun = false, bool internal = false);
  ApiOutcome remove(const ResourceType& type, const std::string& ns, const std::string& name,
                    const DeleteOptions& options);
  // Takes the object out of the store at once, whatever its finalizers (the last step of a
  // graceful deletion).
  void purge(const ResourceType& type, const std::string& ns, const std::string& name);

  // Records an Event about `object` (kubectl describe shows them).
  void recordEvent(const nlohmann::json& object, const std::string& type,
                   const std::string& reason, const std::string& message,
                   const std::string& component);

  // What anyone may read: /healthz, /livez, /readyz, and the dashboard's page (its data comes
  // from the API, with the token). False for every other path.
  static bool servedWithoutToken(const std::string& path, Exchange& exchange);
  // Who sent `request` (api_authz.cpp): the administrator's token, a user's, or no one.
  std::optional<KubeUser> authenticate(const HttpRequest& request) const;
  // Whether `user` may go on with `request`; otherwise it has been answered: 403, or the
  // answer to a SelfSubjectAccessReview (kubectl auth can-i).
  bool authorize(const HttpRequest& request, const KubeUser& user, Exchange& exchange);

  // Events about a Service's change: its load-balancer address assigned.
  void serviceEvents(const nlohmann::json& before, const nlohmann::json& after);

  // Serves a subresource that is not stored but reaches into the cluster ("pods", "log"):
  // `handler` gets the request with the object it names (a missing one is a 404 first), on
  // the loop, and answers on the exchange when it likes, from any thread.
  using Connector = std::function<void(const HttpRequest& request, const nlohmann::json& object,
                                       std::shared_ptr<Exchange> exchange)>;
  void connect(const std::string& plural, const std::string& subresource, Connector handler);

  // Serves a resource type that is computed, not stored (metrics.k8s.io): get and list, with
  // labelSelector; anything else is refused. `provider` gives the objects of a namespace ("":
  // all), on the loop.
  using Provider = std::function<std::vector<nlohmann::json>(const std::string& ns)>;
  void provide(const ResourceType& type, Provider provider);

  // /metrics: requests by verb and code, their latency by verb, open watches, stored objects
  // by resource (Prometheus text).
  std::string metricsText() const;

  Store* store() const { return store_; }
  Loop* loop() const { return loop_; }
  double now() const { return loop_->wallTime(); }

  // The store's value as clients see it: metadata.resourceVersion filled in.
  static nlohmann::json present(const Object& stored);

 private:
  struct Target {  // a parsed resource path
    const ResourceType* type = nullptr;
    std::string ns;
    std::string name;
    std::string subresource;
  };
  struct Watch;
  void bookmark(uint64_t watch);

  void route(const HttpRequest& request, std::shared_ptr<Exchange> exchange);
  void serveDiscovery(const HttpRequest& request, Exchange& exchange);
  void serveResource(const HttpRequest& request, const Target& target,
                     std::shared_ptr<Exchange> exchange);
  void serveList(const HttpRequest& request, const Target& target, Exchange& exchange);
  void serveWatch(const HttpRequest& request, const Target& target,
                  std::shared_ptr<Exchange> exchange);
  void servePatch(const HttpRequest& request, const Target& target, Exchange& exchange);
  void serveScale(const HttpRequest& request, const Target& target, Exchange& exchange);
  void serveDeleteCollection(const HttpRequest& request, const Target& target,
                             Exchange& exchange);
  // Answers with the outcome (a Table when asked for one).
  void reply(const HttpRequest& request, const Target& target, Exchange& exchange,
             const ApiOutcome& outcome);
  // Checks and stores a changed object (update, patch, the scale subresource).
  ApiOutcome store(const ResourceType& type, const nlohmann::json& current, nlohmann::json next,
                   const std::string& subresource, bool dryRun, bool internal,
                   const std::string& fieldValidation);
  ApiOutcome finishDeletion(const ResourceType& type, const Object& stored, bool dryRun);
  void endWatch(uint64_t id);

  Loop* loop_;
  Store* store_;
  ApiServerOptions options_;
  std::map<uint64_t, std::shared_ptr<Watch>> watches_;
  std::map<std::string, Connector> connectors_;  // "pods/log" -> its handler
  std::map<const ResourceType*, Provider> providers_;
  // Shared with the exchanges that time requests (any thread).
  std::shared_ptr<ApiRequestMetrics> requestMetrics_;
  static std::shared_ptr<ApiRequestMetrics> newRequestMetrics();
  // The exchange, wrapped so that its answer is counted and timed.
  static std::shared_ptr<Exchange> timeRequest(const std::shared_ptr<ApiRequestMetrics>& metrics,
                                               const HttpRequest& request,
                                               std::shared_ptr<Exchange> exchange);
  // A version served but not stored: requests are converted to the stored one, answers back.
  struct Conversion {
    const ResourceType* stored = nullptr;
    std::function<nlohmann::json(const nlohmann::json& served, const nlohmann::json& stored)>
        toStored;
    std::function<nlohmann::json(const nlohmann::json& stored)> toServed;
  };
  std::map<const ResourceType*, Conversion> conversions_;  // by the version served
  void serveConverted(const HttpRequest& request, Target target, const Conversion& conversion,
                      std::shared_ptr<Exchange> exchange);
  void serveProvided(const HttpRequest& request, const Target& target, const Provider& provider,
                     Exchange& exchange);
  uint64_t nextWatch_ = 1;
  // (object uid, reason, message) -> the Event's key, to count repeats.
  std::map<std::string, std::string> eventIndex_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The Status object of a failure, or the object, as a response.
HttpResponse toResponse(const ApiOutcome& outcome);

}  // namespace agora::kube
