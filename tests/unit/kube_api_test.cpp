// The kube API server's pieces, without sockets: selectors, patches, protobuf bodies, Tables,
// defaulting and validation, and the REST verbs over a store on a manual loop.

#include <gtest/gtest.h>

#include "common/manual_loop.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"
#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/patch.hpp"
#include "frameworks/k8s-like/apiserver/protobuf.hpp"
#include "frameworks/k8s-like/apiserver/selectors.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::kube {
namespace {

using nlohmann::json;

TEST(KubeSelectorsTest, LabelAndFieldSelectorsAsTheApiTakesThem) {
  json labels = {{"app", "web"}, {"tier", "front"}, {"env", "prod"}};
  auto match = [&](const std::string& text) {
    auto s = LabelSelector::parse(text);
    EXPECT_TRUE(s.ok()) << text << ": " << (s.ok() ? "" : s.error());
    return s.ok() && s->matches(labels);
  };
  EXPECT_TRUE(match(""));
  EXPECT_TRUE(match("app=web"));
  EXPECT_TRUE(match("app==web,tier!=db"));
  EXPECT_TRUE(match("env in (prod, staging),release notin (canary)"));
  EXPECT_TRUE(match("app,!legacy"));
  EXPECT_FALSE(match("app=db"));
  EXPECT_FALSE(match("env notin (prod)"));
  EXPECT_FALSE(match("legacy"));
  EXPECT_FALSE(LabelSelector::parse("app=we b!").ok());
  EXPECT_FALSE(LabelSelector::parse("env in (a").ok());

  auto object = LabelSelector::fromObject(
      {{"matchLabels", {{"app", "web"}}},
       {"matchExpressions", json::array({{{"key", "env"}, {"operator", "In"},
                                          {"values", {"prod"}}}})}});
  ASSERT_TRUE(object.ok());
  EXPECT_TRUE(object->matches(labels));
  EXPECT_EQ(object->toString(), "app=web,env in (prod)");
  EXPECT_FALSE(LabelSelector::fromObject({{"matchExpressions",
                                           json::array({{{"key", "a"}, {"operator", "Near"}}})}})
                   .ok());

  json pod = {{"metadata", {{"name", "web-1"}}}, {"spec", {{"nodeName", "n1"}}},
              {"status", {{"phase", "Running"}}}};
  auto fields = FieldSelector::parse("metadata.name=web-1,status.phase!=Pending");
  ASSERT_TRUE(fields.ok());
  EXPECT_TRUE(fields->matches(pod));
  EXPECT_EQ(fields->exactName(), "web-1");
  EXPECT_FALSE(FieldSelector::parse("spec.nodeName=n2")->matches(pod));
  EXPECT_FALSE(FieldSelector::parse("nonsense").ok());
}

TEST(KubePatchTest, MergeJsonAndStrategicPatches) {
  json deployment = {
      {"metadata", {{"labels", {{"app", "web"}, {"old", "x"}}}}},
      {"spec",
       {{"template",
         {{"spec",
           {{"containers",
             json::array({{{"name", "web"}, {"image", "v1"},
                           {"env", json::array({{{"name", "A"}, {"value", "1"}},
                                                {{"name", "B"}, {"value", "2"}}})},
                           {"ports", json::array({{{"containerPort", 80}}})}},
                          {{"name", "sidecar"}, {"image", "s1"}}})}}}}}}}};
  auto merged = applyPatch(PatchType::kMerge, deployment,
                           R"({"metadata":{"labels":{"old":null,"new":"y"}}})");
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(merged->at("metadata").at("labels"), json({{"app", "web"}, {"new", "y"}}));

  auto patched = applyPatch(PatchType::kJson, deployment,
                            R"([{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"v2"}])");
  ASSERT_TRUE(patched.ok());
  EXPECT_EQ(patched->at("spec")["template"]["spec"]["containers"][0]["image"], "v2");
  EXPECT_FALSE(applyPatch(PatchType::kJson, deployment,
                          R"([{"op":"test","path":"/metadata/labels/app","value":"db"}])")
                   .ok());

  // Strategic: containers merge by name, env by name; a $patch: delete drops one; the
  // element order directive orders the result; a null removes a field.
  auto strategic = applyPatch(
      PatchType::kStrategic, deployment,
      R"({"spec":{"template":{"spec":{
           "$setElementOrder/containers":[{"name":"sidecar"},{"name":"web"}],
           "containers":[{"name":"web","image":"v3",
                          "env":[{"name":"B","$patch":"delete"},{"name":"C","value":"3"}]},
                         {"name":"sidecar","image":"s2"}]}}},
          "metadata":{"labels":{"old":null}}})");
  ASSERT_TRUE(strategic.ok()) << strategic.error();
  const json& containers = strategic->at("spec")["template"]["spec"]["containers"];
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0]["name"], "sidecar");
  EXPECT_EQ(containers[0]["image"], "s2");
  EXPECT_EQ(containers[1]["image"], "v3");
  EXPECT_EQ(containers[1]["ports"], json::array({{{"containerPort", 80}}}));  // kept
  EXPECT_EQ(containers[1]["env"],
            json::array({{{"name", "A"}, {"value", "1"}}, {{"name", "C"}, {"value", "3"}}}));
  EXPECT_FALSE(strategic->at("metadata")["labels"].contains("old"));

  auto replaced = applyPatch(PatchType::kStrategic, deployment,
                             R"({"spec":{"template":{"spec":{"containers":[
                                  {"$patch":"replace"},{"name":"only","image":"o"}]}}}})");
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->at("spec")["template"]["spec"]["containers"].size(), 1u);
  EXPECT_FALSE(applyPatch(PatchType::kStrategic, deployment, "[1]").ok());
  EXPECT_FALSE(applyPatch(PatchType::kMerge, deployment, "{not json").ok());
  EXPECT_EQ(patchTypeOf("application/strategic-merge-patch+json; charset=utf-8"),
            PatchType::kStrategic);
}

// Kubernetes' protobuf: "k8s\0", then runtime.Unknown{typeMeta{apiVersion, kind}, raw}.
std::string field(int number, const std::string& bytes) {
  std::string out;
  out += static_cast<char>((number << 3) | 2);
  out += static_cast<char>(bytes.size());
  return out + bytes;
}
std::string varintBytes(uint64_t v) {
  std::string out;
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    out += static_cast<char>(byte | (v ? 0x80 : 0));
  } while (v);
  return out;
}
std::string varint(int number, int value) {
  return varintBytes(static_cast<uint64_t>(number) << 3) +
         varintBytes(static_cast<uint64_t>(value));
}

TEST(KubeProtobufTest, TheBodiesTypedKubectlCommandsSend) {
  // A ConfigMap: metadata{name}, data{a: b}.
  std::string raw = field(1, field(1, "settings")) + field(2, field(1, "a") + field(2, "b"));
  std::string body = std::string("k8s\0", 4) +
                     field(1, field(1, "v1") + field(2, "ConfigMap")) + field(2, raw);
  auto object = decodeProtobuf(body);
  ASSERT_TRUE(object.ok()) << object.error();
  EXPECT_EQ((*object)["metadata"]["name"], "settings");
  EXPECT_EQ((*object)["data"]["a"], "b");
  EXPECT_EQ((*object)["kind"], "ConfigMap");

  // A Deployment with replicas 2 and a container's port; unset non-pointer fields (written as
  // zero) are left out.
  std::string container = field(1, "web") + field(2, "nginx") +
                          field(6, varint(3, 80)) + varint(16, 0);
  std::string podSpec = field(2, container);
  std::string spec = varint(1, 2) + field(3, field(2, podSpec)) + varint(5, 0);
  raw = field(1, field(1, "web")) + field(2, spec);
  body = std::string("k8s\0", 4) + field(1, field(1, "apps/v1") + field(2, "Deployment")) +
         field(2, raw);
  object = decodeProtobuf(body);
  ASSERT_TRUE(object.ok()) << object.error();
  EXPECT_EQ((*object)["spec"]["replicas"], 2);
  EXPECT_FALSE((*object)["spec"].contains("minReadySeconds"));
  const json& c = (*object)["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["image"], "nginx");
  EXPECT_EQ(c["ports"][0]["containerPort"], 80);
  EXPECT_FALSE(c.contains("stdin"));

  // A field it does not know, set: refused, not dropped.
  raw = field(1, field(1, "x")) + field(9, "something");
  body = std::string("k8s\0", 4) + field(1, field(1, "v1") + field(2, "ConfigMap")) +
         field(2, raw);
  auto refused = decodeProtobuf(body);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("field 9 of ConfigMap"), std::string::npos) << refused.error();
  EXPECT_FALSE(decodeProtobuf("not protobuf").ok());
  EXPECT_FALSE(decodeProtobuf(std::string("k8s\0\x0a\x7f", 6)).ok());  // truncated
}

TEST(KubeObjectsTest, QuantitiesDefaultsValidationAndTables) {
  EXPECT_DOUBLE_EQ(*parseQuantity(std::string("500m")), 0.5);
  EXPECT_DOUBLE_EQ(*parseQuantity(std::string("128Mi")), 128.0 * 1048576);
  EXPECT_DOUBLE_EQ(*parseQuantity(std::string("2G")), 2e9);
  EXPECT_DOUBLE_EQ(*parseQuantity(std::string("1e3")), 1000);
  EXPECT_DOUBLE_EQ(*parseQuantity(json(3)), 3);
  EXPECT_FALSE(parseQuantity(std::string("12Qi")).ok());
  EXPECT_FALSE(parseQuantity(std::string("abc")).ok());
  EXPECT_EQ(base64Encode("hunter2"), "aHVudGVyMg==");
  EXPECT_EQ(*base64Decode("aHVudGVyMg=="), "hunter2");
  EXPECT_FALSE(base64Decode("a$==").has_value());

  const ResourceType& deployments = *findResource("apps", "v1", "deployments");
  json d = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"name", "web"}}},
            {"spec",
             {{"selector", {{"matchLabels", {{"app", "web"}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", "web"}}}}},
                {"spec", {{"containers", json::array({{{"name", "web"},
                                                       {"image", "nginx:1.25"}}})}}}}}}}};
  applyDefaults(deployments, d);
  EXPECT_EQ(d["spec"]["replicas"], 1);
  EXPECT_EQ(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
  EXPECT_EQ(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
  EXPECT_EQ(d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
  EXPECT_TRUE(validateObject(deployments, d).empty());

  json bad = d;
  bad["spec"]["template"]["metadata"]["labels"]["app"] = "other";
  bad["spec"]["template"]["spec"]["containers"][0].erase("image");
  auto causes = validateObject(deployments, bad);
  ASSERT_EQ(causes.size(), 2u);
  EXPECT_EQ(causes[0].field, "spec.template.metadata.labels");
  EXPECT_EQ(causes[1].field, "spec.template.spec.containers[0].image");
  json moved = d;
  moved["spec"]["selector"]["matchLabels"]["app"] = "db";
  EXPECT_EQ(validateUpdate(deployments, d, moved)[0].detail, "field is immutable");
  json typo = d;
  typo["spec"]["replica"] = 3;
  EXPECT_EQ(unknownFields(deployments, typo), std::vector<std::string>{"spec.replica"});

  EXPECT_EQ(humanDuration(45), "45s");
  EXPECT_EQ(humanDuration(192), "3m12s");
  EXPECT_EQ(humanDuration(3 * 3600), "3h");
  EXPECT_EQ(humanDuration(12 * 86400), "12d");
  EXPECT_DOUBLE_EQ(parseRfc3339("2026-11-29T17:51:07Z"), parseRfc3339(rfc3339(
                                                             parseRfc3339("2026-11-29T17:51:07Z"))));
  json pod = {{"metadata", {{"name", "p"}}},
              {"spec", {{"containers", json::array({{{"name", "c"}}})}}},
              {"status",
               {{"phase", "Running"},
                {"containerStatuses",
                 json::array({{{"name", "c"}, {"restartCount", 2}, {"ready", false},
                               {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}}}})}}}};
  EXPECT_EQ(podDisplayStatus(pod), "CrashLoopBackOff");
  json table = toTable(*findResource("", "v1", "pods"), {pod}, "", 0);
  EXPECT_EQ(table["columnDefinitions"][0]["name"], "Name");
  EXPECT_EQ(table["rows"][0]["cells"][1], "0/1");
  EXPECT_EQ(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

// An exchange that keeps what it was told.
class RecordingExchange final : public Exchange {
 public:
  void respond(HttpResponse r) override { response = std::move(r); }
  void startStream(int status, const std::string&) override { streamStatus = status; }
  void send(std::string chunk) override { chunks.push_back(std::move(chunk)); }
  void finish() override { finished = true; }
  void onClose(std::function<void()> fn) override { closed = std::move(fn); }
  void tunnel(std::string head, std::function<void(std::string)>) override {
    tunnelHead = std::move(head);
  }
  size_t backlog() const override { return 0; }
  json body() const { return json::parse(response.body, nullptr, false); }

  HttpResponse response;
  int streamStatus = 0;
  std::vector<std::string> chunks;
  bool finished = false;
  std::function<void()> closed;
  std::string tunnelHead;
};

class KubeApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = FileStore::open(dir_.path(), {});
    ASSERT_TRUE(opened.ok());
    store_ = std::move(*opened);
    api_ = std::make_unique<ApiServer>(&loop_, store_.get(), ApiServerOptions{"secret", "x"});
    api_->bootstrap();
  }

  std::shared_ptr<RecordingExchange> call(const std::string& method, const std::string& target,
                                          const std::string& body = "",
                                          const std::string& contentType = "application/json",
                                          const std::string& token = "secret") {
    HttpRequest r;
    r.method = method;
    r.target = target;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string query = target.substr(q + 1);
      size_t pos = 0;
      while (pos < query.size()) {
        size_t amp = query.find('&', pos);
        std::string pair = query.substr(pos, amp == std::string::npos ? std::string::npos
                                                                      : amp - pos);
        size_t eq = pair.find('=');
        r.query[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
        if (amp == std::string::npos) break;
        pos = amp + 1;
      }
    }
    r.headers["authorization"] = "Bearer " + token;
    r.headers["content-type"] = contentType;
    r.body = body;
    auto exchange = std::make_shared<RecordingExchange>();
    api_->handle(r, exchange);
    loop_.runUntilIdle();
    return exchange;
  }

  agora::testing::TempDir dir_;
  ManualLoop loop_;
  std::unique_ptr<FileStore> store_;
  std::unique_ptr<ApiServer> api_;
};

TEST_F(KubeApiServerTest, CrudConflictsSelectorsAndErrors) {
  const char* cm = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a",
                      "labels":{"team":"x"}},"data":{"k":"v"}})";
  auto created = call("POST", "/api/v1/namespaces/default/configmaps", cm);
  EXPECT_EQ(created->response.status, 201) << created->response.body;
  json object = created->body();
  EXPECT_FALSE(object["metadata"].value("uid", "").empty());
  EXPECT_EQ(call("POST", "/api/v1/namespaces/default/configmaps", cm)->body()["reason"],
            "AlreadyExists");
  EXPECT_EQ(call("POST", "/api/v1/namespaces/nowhere/configmaps", cm)->response.status, 404);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/a", "", "", "wrong")
                ->response.status,
            401);

  // Update at a stale version: 409; at the current one: fine.
  json next = object;
  next["data"]["k"] = "w";
  EXPECT_EQ(call("PUT", "/api/v1/namespaces/default/configmaps/a", next.dump())->response.status,
            200);
  EXPECT_EQ(call("PUT", "/api/v1/namespaces/default/configmaps/a", next.dump())->body()["reason"],
            "Conflict");

  // Invalid names: 422 with the field.
  auto invalid = call("POST", "/api/v1/namespaces/default/configmaps",
                      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}})");
  EXPECT_EQ(invalid->response.status, 422);
  EXPECT_EQ(invalid->body()["details"]["causes"][0]["field"], "metadata.name");
  // A name of the wrong type: a clear 400, and the server goes on.
  auto shape = call("POST", "/api/v1/namespaces/default/configmaps",
                    R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":5}})");
  EXPECT_GE(shape->response.status, 400);
  EXPECT_EQ(call("POST", "/api/v1/namespaces/default/configmaps", "{nope")->response.status, 400);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/gizmos")->response.status, 404);

  call("POST", "/api/v1/namespaces/default/configmaps",
       R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}})");
  // (this test's own query parsing does not decode: the selector goes as it is)
  auto listed = call("GET", "/api/v1/namespaces/default/configmaps?labelSelector=team=x");
  EXPECT_EQ(listed->body()["items"].size(), 1u);
  auto page = call("GET", "/api/v1/namespaces/default/configmaps?limit=1");
  EXPECT_EQ(page->body()["items"].size(), 1u);
  std::string token = page->body()["metadata"].value("continue", "");
  ASSERT_FALSE(token.empty());
  auto rest = call("GET", "/api/v1/namespaces/default/configmaps?limit=1&continue=" + token);
  EXPECT_EQ(rest->body()["items"][0]["metadata"]["name"], "b");

  // Merge patch; the scale subresource of a Deployment.
  auto patched = call("PATCH", "/api/v1/namespaces/default/configmaps/b",
                      R"({"data":{"x":"y"}})", "application/merge-patch+json");
  EXPECT_EQ(patched->body()["data"]["x"], "y");
  call("POST", "/apis/apps/v1/namespaces/default/deployments",
       R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
           "spec":{"selector":{"matchLabels":{"app":"web"}},
                   "template":{"metadata":{"labels":{"app":"web"}},
                               "spec":{"containers":[{"name":"c","image":"agora/host"}]}}}})");
  auto scaled = call("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale",
                     R"({"spec":{"replicas":4}})", "application/merge-patch+json");
  EXPECT_EQ(scaled->body()["kind"], "Scale");
  EXPECT_EQ(call("GET", "/apis/apps/v1/namespaces/default/deployments/web")
                ->body()["spec"]["replicas"],
            4);

  // Tables for kubectl get.
  HttpRequest table;
  auto t = std::make_shared<RecordingExchange>();
  table.method = "GET";
  table.path = "/apis/apps/v1/namespaces/default/deployments";
  table.headers["authorization"] = "Bearer secret";
  table.headers["accept"] = "application/json;as=Table;v=v1;g=meta.k8s.io";
  api_->handle(table, t);
  EXPECT_EQ(t->body()["kind"], "Table");
  EXPECT_EQ(t->body()["rows"][0]["cells"][1], "0/4");

  // Discovery.
  EXPECT_EQ(call("GET", "/api/v1")->body()["kind"], "APIResourceList");
  // apps, autoscaling, networking.k8s.io, discovery.k8s.io, metrics.k8s.io.
  EXPECT_EQ(call("GET", "/apis")->body()["groups"].size(), 5u);
  EXPECT_EQ(call("GET", "/version")->body()["major"], "1");
  // Metrics of what was asked: by verb, resource and code, and timed.
  std::string metrics = call("GET", "/metrics")->response.body;
  EXPECT_NE(metrics.find("agora_kube_api_requests_total{verb=\"PATCH\",resource=\"configmaps\","
                         "code=\"200\"}"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("agora_kube_api_request_duration_seconds_bucket{verb=\"LIST\",le=\"+Inf\"}"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("agora_kube_objects{resource=\"deployments.apps\"} 1"), std::string::npos)
      << metrics;
  EXPECT_EQ(call("GET", "/metrics", "", "application/json", "wrong")->response.status, 401);
  HttpRequest aggregated;
  auto a = std::make_shared<RecordingExchange>();
  aggregated.method = "GET";
  aggregated.path = "/apis";
  aggregated.headers["authorization"] = "Bearer secret";
  aggregated.headers["accept"] =
      "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
  api_->handle(aggregated, a);
  EXPECT_EQ(a->response.contentType,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
  json apps = a->body()["items"][0];
  EXPECT_EQ(apps["metadata"]["name"], "apps");
  EXPECT_EQ(apps["versions"][0]["resources"][0]["resource"], "deployments");
  EXPECT_EQ(apps["versions"][0]["resources"][0]["shortNames"][0], "deploy");
}

TEST_F(KubeApiServerTest, AutoscalingV1IsServedFromTheStoredV2) {
  const std::string v1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
  const std::string v2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";
  auto watch = call("GET", v1 + "?watch=true&resourceVersion=0");
  auto created = call("POST", v1,
                      R"({"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler",
                          "metadata":{"name":"web"},
                          "spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment",
                                                    "name":"web"},
                                  "minReplicas":1,"maxReplicas":5,
                                  "targetCPUUtilizationPercentage":60}})");
  ASSERT_EQ(created->response.status, 201) << created->response.body;
  EXPECT_EQ(created->body()["apiVersion"], "autoscaling/v1");
  EXPECT_EQ(created->body()["spec"]["targetCPUUtilizationPercentage"], 60);
  // Stored as v2: a CPU utilisation metric.
  json stored = call("GET", v2 + "/web")->body();
  EXPECT_EQ(stored["apiVersion"], "autoscaling/v2");
  EXPECT_EQ(stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 60);
  // A memory metric added in v2 survives a v1 patch of the CPU target.
  stored["spec"]["metrics"].push_back(
      {{"type", "Resource"},
       {"resource", {{"name", "memory"}, {"target", {{"type", "AverageValue"}, {"averageValue", "64Mi"}}}}}});
  ASSERT_EQ(call("PUT", v2 + "/web", stored.dump())->response.status, 200);
  auto patched = call("PATCH", v1 + "/web", R"({"spec":{"targetCPUUtilizationPercentage":75}})",
                      "application/merge-patch+json");
  ASSERT_EQ(patched->response.status, 200) << patched->response.body;
  EXPECT_EQ(patched->body()["spec"]["targetCPUUtilizationPercentage"], 75);
  json metrics = call("GET", v2 + "/web")->body()["spec"]["metrics"];
  ASSERT_EQ(metrics.size(), 2u) << metrics.dump();
  EXPECT_EQ(metrics[0]["resource"]["name"], "memory");
  EXPECT_EQ(metrics[1]["resource"]["target"]["averageUtilization"], 75);
  // Lists and watch events in v1 too.
  json list = call("GET", v1)->body();
  EXPECT_EQ(list["apiVersion"], "autoscaling/v1");
  EXPECT_EQ(list["items"][0]["spec"]["targetCPUUtilizationPercentage"], 75);
  ASSERT_FALSE(watch->chunks.empty());
  EXPECT_EQ(json::parse(watch->chunks[0])["object"]["apiVersion"], "autoscaling/v1");
  watch->closed();
  loop_.runUntilIdle();
}

TEST_F(KubeApiServerTest, WatchesStreamChangesAndSayGoneForOldVersions) {
  auto watch = call("GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0");
  EXPECT_EQ(watch->streamStatus, 200);
  call("POST", "/api/v1/namespaces/default/configmaps",
       R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"w"}})");
  call("PATCH", "/api/v1/namespaces/default/configmaps/w", R"({"data":{"a":"b"}})",
       "application/merge-patch+json");
  call("DELETE", "/api/v1/namespaces/default/configmaps/w");
  ASSERT_EQ(watch->chunks.size(), 3u);
  EXPECT_EQ(json::parse(watch->chunks[0])["type"], "ADDED");
  EXPECT_EQ(json::parse(watch->chunks[1])["type"], "MODIFIED");
  EXPECT_EQ(json::parse(watch->chunks[2])["type"], "DELETED");
  watch->closed();  // the client goes away
  loop_.runUntilIdle();
  call("POST", "/api/v1/namespaces/default/configmaps",
       R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"after"}})");
  EXPECT_EQ(watch->chunks.size(), 3u);

  // Bookmarks when asked for.
  auto bookmarked = call("GET", "/api/v1/configmaps?watch=1&allowWatchBookmarks=true");
  loop_.advance(seconds(61));
  ASSERT_FALSE(bookmarked->chunks.empty());
  EXPECT_EQ(json::parse(bookmarked->chunks.back())["type"], "BOOKMARK");
  bookmarked->closed();
  loop_.runUntilIdle();
}

TEST_F(KubeApiServerTest, DeletionWithFinalizersAndPodsGracePeriods) {
  call("POST", "/api/v1/namespaces/default/configmaps",
       R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held",
           "finalizers":["example.com/hold"]}})");
  auto deleted = call("DELETE", "/api/v1/namespaces/default/configmaps/held");
  EXPECT_TRUE(deleted->body()["metadata"].contains("deletionTimestamp"));
  auto held = call("GET", "/api/v1/namespaces/default/configmaps/held")->body();
  ASSERT_EQ(held["kind"], "ConfigMap");  // still there: its finalizer holds it
  held["metadata"]["finalizers"] = json::array();
  call("PUT", "/api/v1/namespaces/default/configmaps/held", held.dump());
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/held")->response.status, 404);

  // A pod not yet on a node goes at once.
  call("POST", "/api/v1/namespaces/default/pods",
       R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
           "spec":{"containers":[{"name":"c","image":"agora/host","command":["true"]}]}})");
  call("DELETE", "/api/v1/namespaces/default/pods/p");
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/pods/p")->response.status, 404);
}

}  // namespace
}  // namespace agora::kube
