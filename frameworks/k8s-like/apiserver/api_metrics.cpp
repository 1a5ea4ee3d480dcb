// The API server's /metrics: each request counted by verb, resource and code, timed to its
// answer (a watch to its first byte) by verb; open watches; stored objects by resource.

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "common/histogram.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"

namespace agora::kube {

struct ApiRequestMetrics {
  std::mutex mutex;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests;  // verb, resource, code
  std::map<std::string, Histogram> latency;                                 // by verb
};

namespace {

// Kubernetes' verbs, from the method and the path's shape.
std::pair<std::string, std::string> verbAndResource(const HttpRequest& request) {
  std::vector<std::string> parts = pathSegments(request.path);
  size_t base = !parts.empty() && parts[0] == "api" ? 2 : !parts.empty() && parts[0] == "apis" ? 3 : 0;
  std::vector<std::string> rest;
  if (base > 0 && parts.size() > base) rest.assign(parts.begin() + static_cast<long>(base), parts.end());
  if (rest.size() >= 3 && rest[0] == "namespaces") rest.erase(rest.begin(), rest.begin() + 2);
  std::string resource = rest.empty() ? "" : rest[0];
  bool item = rest.size() >= 2;
  const std::string& m = request.method;
  std::string verb = m;
  if (m == "GET") {
    std::string watch = request.param("watch");
    verb = watch == "true" || watch == "1" ? "WATCH" : item || rest.empty() ? "GET" : "LIST";
    if (rest.size() >= 3 && rest[2] == "log") verb = "CONNECT";
  } else if (m == "DELETE") {
    verb = item ? "DELETE" : "DELETECOLLECTION";
  }
  return {verb, resource};
}

class TimingExchange : public Exchange {
 public:
  TimingExchange(std::shared_ptr<ApiRequestMetrics> metrics, const HttpRequest& request,
                 std::shared_ptr<Exchange> inner)
      : metrics_(std::move(metrics)),
        inner_(std::move(inner)),
        start_(std::chrono::steady_clock::now()) {
    std::tie(verb_, resource_) = verbAndResource(request);
  }
  void respond(HttpResponse response) override {
    record(response.status);
    inner_->respond(std::move(response));
  }
  void startStream(int status, const std::string& contentType) override {
    record(status);
    inner_->startStream(status, contentType);
  }
  void send(std::string chunk) override { inner_->send(std::move(chunk)); }
  void finish() override { inner_->finish(); }
  void onClose(std::function<void()> fn) override { inner_->onClose(std::move(fn)); }
  void tunnel(std::string head, std::function<void(std::string)> received) override {
    record(101);
    inner_->tunnel(std::move(head), std::move(received));
  }
  size_t backlog() const override { return inner_->backlog(); }

 private:
  void record(int code) {
    if (recorded_.exchange(true)) return;
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::lock_guard<std::mutex> lock(metrics_->mutex);
    ++metrics_->requests[{verb_, resource_, code}];
    metrics_->latency[verb_].observe(seconds);
  }

  std::shared_ptr<ApiRequestMetrics> metrics_;
  std::shared_ptr<Exchange> inner_;
  std::chrono::steady_clock::time_point start_;
  std::string verb_;
  std::string resource_;
  std::atomic<bool> recorded_{false};
};

}  // namespace

std::shared_ptr<ApiRequestMetrics> ApiServer::newRequestMetrics() {
  return std::make_shared<ApiRequestMetrics>();
}

std::shared_ptr<Exchange> ApiServer::timeRequest(const std::shared_ptr<ApiRequestMetrics>& metrics,
                                                 const HttpRequest& request,
                                                 std::shared_ptr<Exchange> exchange) {
  return std::make_shared<TimingExchange>(metrics, request, std::move(exchange));
}

std::string ApiServer::metricsText() const {
  std::ostringstream out;
  {
    std::lock_guard<std::mutex> lock(requestMetrics_->mutex);
    out << "# HELP agora_kube_api_requests_total API requests, by verb, resource and code.\n"
        << "# TYPE agora_kube_api_requests_total counter\n";
    for (const auto& [key, n] : requestMetrics_->requests) {
      const auto& [verb, resource, code] = key;
      out << "agora_kube_api_requests_total{verb=\"" << verb << "\",resource=\"" << resource
          << "\",code=\"" << code << "\"} " << n << "\n";
    }
    out << "# HELP agora_kube_api_request_duration_seconds Time to answer (a watch: to its "
           "first byte), by verb.\n"
        << "# TYPE agora_kube_api_request_duration_seconds histogram\n";
    for (const auto& [verb, histogram] : requestMetrics_->latency) {
      histogram.write(out, "agora_kube_api_request_duration_seconds", "verb=\"" + verb + "\"");
    }
  }
  out << "# HELP agora_kube_api_watches Watches open now.\n"
      << "# TYPE agora_kube_api_watches gauge\n"
      << "agora_kube_api_watches " << watches_.size() << "\n";
  out << "# HELP agora_kube_objects Objects stored, by resource.\n"
      << "# TYPE agora_kube_objects gauge\n";
  for (const ResourceType& type : resourceTypes()) {
    if (!type.stored || !type.storageVersion) continue;
    out << "agora_kube_objects{resource=\"" << type.qualified() << "\"} "
        << list(type, "").size() << "\n";
  }
  return out.str();
}

}  // namespace agora::kube
