// Requests in a version the store does not keep (conversion.hpp): converted on the way in,
// their answers (objects, lists, watch events) on the way out.

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "frameworks/k8s-like/apiserver/api_server.hpp"
#include "frameworks/k8s-like/apiserver/patch.hpp"
#include "frameworks/k8s-like/apiserver/protobuf.hpp"

namespace agora::kube {

using json = nlohmann::json;

namespace {

class ConvertingExchange : public Exchange {
 public:
  ConvertingExchange(std::shared_ptr<Exchange> inner, std::function<json(const json&)> toServed,
                     const ResourceType& stored, const ResourceType& served)
      : inner_(std::move(inner)),
        toServed_(std::move(toServed)),
        kind_(stored.kind),
        storedVersion_(stored.groupVersion()),
        servedVersion_(served.groupVersion()) {}

  void respond(HttpResponse response) override {
    if (response.contentType.find("json") != std::string::npos) {
      response.body = convertText(response.body);
    }
    inner_->respond(std::move(response));
  }
  void startStream(int status, const std::string& contentType) override {
    inner_->startStream(status, contentType);
  }
  void send(std::string chunk) override {
    // Watch events, a JSON document a line.
    std::string out;
    size_t start = 0;
    while (start < chunk.size()) {
      size_t end = chunk.find('\n', start);
      std::string line = chunk.substr(start, end == std::string::npos ? end : end - start);
      out += line.empty() ? line : convertText(line);
      if (end == std::string::npos) break;
      out += '\n';
      start = end + 1;
    }
    inner_->send(std::move(out));
  }
  void finish() override { inner_->finish(); }
  void onClose(std::function<void()> fn) override { inner_->onClose(std::move(fn)); }
  void tunnel(std::string head, std::function<void(std::string)> received) override {
    inner_->tunnel(std::move(head), std::move(received));
  }
  size_t backlog() const override { return inner_->backlog(); }

 private:
  std::string convertText(const std::string& text) const {
    json j = json::parse(text, nullptr, false);
    if (!j.is_object()) return text;
    return convert(j).dump();
  }

  json convert(const json& o) const {
    std::string kind = o.value("kind", "");
    if (kind == kind_ && o.value("apiVersion", "") == storedVersion_) return toServed_(o);
    if (kind == kind_ + "List" && o.contains("items") && o["items"].is_array()) {
      json list = o;
      list["apiVersion"] = servedVersion_;
      for (json& item : list["items"]) {
        if (!item.contains("kind")) item["kind"] = kind_;
        if (!item.contains("apiVersion")) item["apiVersion"] = storedVersion_;
        item = convert(item);
      }
      return list;
    }
    if (o.contains("type") && o.contains("object") && o["object"].is_object()) {
      json event = o;
      event["object"] = convert(o["object"]);
      return event;
    }
    return o;
  }

  std::shared_ptr<Exchange> inner_;
  std::function<json(const json&)> toServed_;
  std::string kind_;
  std::string storedVersion_;
  std::string servedVersion_;
};

std::string header(const HttpRequest& request, const std::string& name) {
  auto it = request.headers.find(name);
  return it == request.headers.end() ? "" : it->second;
}

}  // namespace

void ApiServer::serveConverted(const HttpRequest& request, Target target,
                               const Conversion& conversion, std::shared_ptr<Exchange> exchange) {
  auto converting = std::make_shared<ConvertingExchange>(std::move(exchange), conversion.toServed,
                                                         *conversion.stored, *target.type);
  target.type = conversion.stored;
  const std::string& method = request.method;
  std::string contentType = header(request, "content-type");
  HttpRequest inner = request;
  inner.headers["content-type"] = "application/json";
  if (method == "POST" || method == "PUT") {
    auto object = decodeObject(contentType, request.body);
    if (object) {
      json current = nullptr;
      if (method == "PUT") {
        ApiOutcome now = get(*target.type, target.ns, target.name);
        if (now.ok()) current = now.object;
      }
      inner.body = conversion.toStored(*object, current).dump();
      serveResource(inner, target, std::move(converting));
      return;
    }
  } else if (method == "PATCH") {
    // The patch applies to the object as the client sees it; the result is stored as an update.
    PatchType type = patchTypeOf(contentType);
    ApiOutcome current = get(*target.type, target.ns, target.name);
    if (current.ok() && type != PatchType::kUnknown && type != PatchType::kApply) {
      auto patched = applyPatch(type, conversion.toServed(current.object), request.body);
      if (patched) {
        json next = conversion.toStored(*patched, current.object);
        inner.method = "PUT";
        inner.body = next.dump();
        serveResource(inner, target, std::move(converting));
        return;
      }
    }
  }
  // Whatever cannot be converted is answered by the stored version's own checks.
  serveResource(request, target, std::move(converting));
}

}  // namespace agora::kube
