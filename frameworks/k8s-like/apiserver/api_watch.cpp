// The API server's reads that span objects: list (selectors, limit and continue) and watch
// (events streamed as they happen, selectors applied to each change, bookmarks, timeouts).

#include <set>

#include <glog/logging.h>

#include "frameworks/k8s-like/apiserver/api_server.hpp"
#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"

namespace agora::kube {

using nlohmann::json;

struct ApiServer::Watch {
  std::shared_ptr<Exchange> exchange;
  const ResourceType* type = nullptr;
  LabelSelector labels;
  FieldSelector fields;
  std::set<std::string> matching;  // keys of the objects the client holds as present
  bool table = false;
  std::string includeObject;
  uint64_t storeWatch = 0;
  TimerId bookmarkTimer = 0;
  TimerId timeoutTimer = 0;
  uint64_t lastVersion = 0;
};

namespace {

bool wantsTableHeader(const HttpRequest& request) {
  auto it = request.headers.find("accept");
  return it != request.headers.end() && it->second.find("as=Table") != std::string::npos;
}

std::string eventLine(const char* type, const json& object) {
  return json{{"type", type}, {"object", object}}.dump() + "\n";
}

}  // namespace

void ApiServer::serveList(const HttpRequest& request, const Target& target, Exchange& exchange) {
  const ResourceType& type = *target.type;
  auto labels = LabelSelector::parse(request.param("labelSelector"));
  auto fields = FieldSelector::parse(request.param("fieldSelector"));
  if (!labels || !fields) {
    exchange.respond(toResponse(ApiOutcome::failure(
        badRequest(!labels ? labels.error() : fields.error()))));
    return;
  }
  std::string after;
  std::string token = request.param("continue");
  if (!token.empty()) {
    auto decoded = base64Decode(token);
    json parsed = decoded ? json::parse(*decoded, nullptr, false) : json();
    if (!parsed.is_object() || !parsed.contains("k") || !parsed["k"].is_string()) {
      exchange.respond(toResponse(ApiOutcome::failure(badRequest("invalid continue token"))));
      return;
    }
    after = parsed["k"].get<std::string>();
  }
  int64_t limit = std::atoll(request.param("limit", "0").c_str());
  uint64_t version = 0;
  std::vector<Object> all = store_->list(type.keyPrefix(target.ns), &version);
  std::vector<json> items;
  std::string lastKey;
  size_t remaining = 0;
  for (const Object& o : all) {
    if (!after.empty() && o.key <= after) {
      continue;
    }
    const json& meta = o.value["metadata"];
    if (!labels->matches(meta.value("labels", json::object())) || !fields->matches(o.value)) {
      continue;
    }
    if (limit > 0 && static_cast<int64_t>(items.size()) >= limit) {
      ++remaining;
      continue;
    }
    items.push_back(present(o));
    lastKey = o.key;
  }
  json meta = {{"resourceVersion", std::to_string(version)}};
  if (remaining > 0) {
    meta["continue"] = base64Encode(json{{"k", lastKey}, {"rv", version}}.dump());
    meta["remainingItemCount"] = remaining;
  }
  json body;
  if (wantsTableHeader(request)) {
    body = toTable(type, items, request.param("includeObject"), now());
    body["metadata"] = meta;
  } else {
    body = {{"kind", type.kind + "List"}, {"apiVersion", type.groupVersion()},
            {"metadata", meta}, {"items", items}};
  }
  exchange.respond(toResponse(ApiOutcome{200, body, std::nullopt, {}}));
}

void ApiServer::serveWatch(const HttpRequest& request, const Target& target,
                           std::shared_ptr<Exchange> exchange) {
  const ResourceType& type = *target.type;
  auto labels = LabelSelector::parse(request.param("labelSelector"));
  auto fields = FieldSelector::parse(request.param("fieldSelector"));
  if (!labels || !fields) {
    exchange->respond(toResponse(ApiOutcome::failure(
        badRequest(!labels ? labels.error() : fields.error()))));
    return;
  }
  std::string rv = request.param("resourceVersion");
  bool initial = rv.empty() || rv == "0" || request.param("sendInitialEvents") == "true";
  uint64_t from = 0;
  if (!initial) {
    try {
      from = std::stoull(rv);
    } catch (...) {
      exchange->respond(toResponse(ApiOutcome::failure(
          badRequest("invalid resourceVersion \"" + rv + "\""))));
      return;
    }
  }
  auto watch = std::make_shared<Watch>();
  watch->exchange = exchange;
  watch->type = &type;
  watch->labels = *labels;
  watch->fields = *fields;
  watch->table = wantsTableHeader(request);
  watch->includeObject = request.param("includeObject");
  uint64_t id = nextWatch_++;
  watches_[id] = watch;
  exchange->startStream(200, "application/json");

  auto encode = [this, watch](const json& object) {
    return watch->table ? toTable(*watch->type, {object}, watch->includeObject, now()) : object;
  };
  auto matches = [watch](const json& object) {
    const json& meta = object["metadata"];
    return watch->labels.matches(meta.value("labels", json::object())) &&
           watch->fields.matches(object);
  };
  if (initial) {
    for (const Object& o : store_->list(type.keyPrefix(target.ns), &from)) {
      json object = present(o);
      if (matches(object)) {
        watch->matching.insert(o.key);
        exchange->send(eventLine("ADDED", encode(object)));
      }
    }
    if (request.param("sendInitialEvents") == "true") {
      json bookmark = {{"kind", type.kind},
                       {"apiVersion", type.groupVersion()},
                       {"metadata",
                        {{"resourceVersion", std::to_string(from)},
                         {"annotations", {{"k8s.io/initial-events-end", "true"}}}}}};
      exchange->send(eventLine("BOOKMARK", bookmark));
    }
  }
  if (!initial) {
    // From a version the client listed at: what matches now is what it holds, near enough
    // (a change since then arrives as MODIFIED, a deletion as DELETED either way).
    for (const Object& o : store_->list(type.keyPrefix(target.ns))) {
      if (matches(present(o))) {
        watch->matching.insert(o.key);
      }
    }
  }
  watch->lastVersion = from;
  Outcome started = store_->watch(
      type.keyPrefix(target.ns), from, [watch, encode, matches](const WatchEvent& event) {
        json object = present(event.object);
        watch->lastVersion = event.object.version;
        const std::string& key = event.object.key;
        bool held = watch->matching.count(key) > 0;
        const char* kind = nullptr;
        if (event.type == WatchEvent::kDeleted) {
          if (held || matches(object)) {
            kind = "DELETED";
            watch->matching.erase(key);
          }
        } else if (matches(object)) {
          kind = held && event.type != WatchEvent::kAdded ? "MODIFIED" : "ADDED";
          watch->matching.insert(key);
        } else if (held) {
          kind = "DELETED";  // it no longer matches: gone from the client's view
          watch->matching.erase(key);
        }
        if (kind != nullptr) {
          watch->exchange->send(eventLine(kind, encode(object)));
        }
      });
  if (started.code == StoreCode::kGone) {
    ApiError e = gone("too old resource version: " + rv + " (" +
                      std::to_string(store_->oldestWatchable()) + ")");
    e.reason = "Expired";
    exchange->send(eventLine("ERROR", e.toStatus()));
    exchange->finish();
    watches_.erase(id);
    return;
  }
  watch->storeWatch = started.object.version;
  if (request.param("allowWatchBookmarks") == "true") {
    watch->bookmarkTimer = loop_->after(options_.bookmarkEvery, [this, id] { bookmark(id); });
  }
  Duration timeout = options_.defaultWatchTimeout;
  std::string timeoutParam = request.param("timeoutSeconds");
  if (!timeoutParam.empty()) {
    timeout = seconds(std::max<int64_t>(1, std::atoll(timeoutParam.c_str())));
  }
  watch->timeoutTimer = loop_->after(timeout, [this, id] {
    auto it = watches_.find(id);
    if (it != watches_.end()) {
      it->second->timeoutTimer = 0;
      it->second->exchange->finish();
      endWatch(id);
    }
  });
  std::weak_ptr<bool> alive = alive_;
  Loop* loop = loop_;
  exchange->onClose([this, loop, alive, id] {
    loop->post([this, alive, id] {
      if (alive.lock()) {
        endWatch(id);
      }
    });
  });
}

void ApiServer::bookmark(uint64_t id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) {
    return;
  }
  Watch& watch = *it->second;
  uint64_t version = std::max(watch.lastVersion, store_->version());
  json object = {{"kind", watch.type->kind},
                 {"apiVersion", watch.type->groupVersion()},
                 {"metadata", {{"resourceVersion", std::to_string(version)}}}};
  watch.exchange->send(eventLine("BOOKMARK", object));
  watch.bookmarkTimer = loop_->after(options_.bookmarkEvery, [this, id] { bookmark(id); });
}

void ApiServer::endWatch(uint64_t id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) {
    return;
  }
  auto watch = it->second;
  watches_.erase(it);
  if (watch->storeWatch != 0) {
    store_->cancel(watch->storeWatch);
  }
  if (watch->bookmarkTimer != 0) {
    loop_->cancel(watch->bookmarkTimer);
  }
  if (watch->timeoutTimer != 0) {
    loop_->cancel(watch->timeoutTimer);
  }
}

}  // namespace agora::kube
