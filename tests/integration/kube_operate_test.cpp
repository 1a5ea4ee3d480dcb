// Operating pods with the stock kubectl on `agora up`: logs, top, autoscaling.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/tls.hpp"
#include "common/http_tokens.hpp"
#include "frameworks/k8s-like/apiserver/tables.hpp"
#include "tests/support/kube_cluster.hpp"

namespace agora::testing {
namespace {

using json = nlohmann::json;

// The highest N of the "tick N" lines in `text` (-1: none).
int lastTick(const std::string& text) {
  int last = -1;
  for (size_t at = text.find("tick "); at != std::string::npos; at = text.find("tick ", at + 1)) {
    last = std::max(last, std::atoi(text.c_str() + at + 5));
  }
  return last;
}

TEST(KubeOperateTest, LogsShowAContainersOutputItsTailItsPreviousRunAndFollowIt) {
  KubeCluster k(1, "cpus:4;mem:4096");
  REQUIRE_CLUSTER(k);
  json talker = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "talker"}}},
      {"spec",
       {{"containers",
         {hostContainer("main", "echo started; echo to stderr >&2; i=0; while [ $i -lt 3000 ]; "
                                "do echo tick $i; i=$((i+1)); sleep 0.1; done"),  // ok: the pod's pace
          hostContainer("side", "echo side says hi; exec sleep 600")}}}}};  // ok: the pod's pace
  json crasher = {{"apiVersion", "v1"},
                  {"kind", "Pod"},
                  {"metadata", {{"name", "crasher"}}},
                  {"spec",
                   {{"containers",
                     {hostContainer("main", "echo run at $(date +%s%N); sleep 1; exit 3")}}}}};  // ok: the pod's pace
  std::string file = k.home() + "/pods.json";
  ASSERT_TRUE(
      writeFileAtomic(file, json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", {talker, crasher}}}
                                .dump())
          .ok());
  auto applied = k.kubectl({"apply", "-f", file});
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  ASSERT_TRUE(waitUntil(
      [&] { return k.json({"get", "pod", "talker"})["status"].value("phase", "") == "Running"; },
      seconds(60)));

  // Both of the container's streams, from its start.
  CommandResult logs;
  ASSERT_TRUE(waitUntil(
      [&] {
        logs = k.kubectl({"logs", "talker", "-c", "main"});
        return logs.exitCode == 0 && lastTick(logs.output) >= 2;
      },
      seconds(20)))
      << logs.output;
  EXPECT_EQ(logs.output.rfind("started\n", 0), 0u) << logs.output;
  EXPECT_NE(logs.output.find("to stderr\n"), std::string::npos) << logs.output;
  EXPECT_EQ(k.kubectl({"logs", "talker", "-c", "side"}).output, "side says hi\n");
  // The tail: one line.
  CommandResult tail = k.kubectl({"logs", "talker", "-c", "main", "--tail=1"});
  EXPECT_EQ(std::count(tail.output.begin(), tail.output.end(), '\n'), 1) << tail.output;
  EXPECT_EQ(tail.output.rfind("tick ", 0), 0u) << tail.output;
  // Following: what comes after is streamed until kubectl is stopped.
  int before = lastTick(k.kubectl({"logs", "talker", "-c", "main"}).output);
  CommandResult followed = k.kubectl({"logs", "-f", "talker", "-c", "main"}, "", seconds(3));
  EXPECT_EQ(followed.exitCode, -1) << "kubectl logs -f ended by itself: " << followed.output;
  EXPECT_GT(lastTick(followed.output), before + 5) << followed.output;
  // Since a moment ago: the latest ticks, not the first lines (the follow above took 3 s).
  CommandResult recent = k.kubectl({"logs", "talker", "-c", "main", "--since=2s"});
  EXPECT_EQ(recent.exitCode, 0) << recent.output;
  EXPECT_EQ(recent.output.find("started"), std::string::npos) << recent.output;
  EXPECT_GT(lastTick(recent.output), before + 5) << recent.output;
  EXPECT_LT(std::count(recent.output.begin(), recent.output.end(), '\n'), 60) << recent.output;
  // Each line after when it was written (within the second the executor notes it).
  CommandResult stamped = k.kubectl({"logs", "talker", "-c", "main", "--timestamps", "--tail=2"});
  ASSERT_EQ(stamped.exitCode, 0) << stamped.output;
  std::string first = stamped.output.substr(0, stamped.output.find('\n'));
  ASSERT_GT(first.size(), 31u) << stamped.output;
  EXPECT_EQ(first[4], '-');
  EXPECT_EQ(first[10], 'T');
  EXPECT_EQ(first.substr(29, 7), "Z tick ") << stamped.output;
  double written = kube::parseRfc3339(first.substr(0, 30));
  double now = std::chrono::duration<double>(
                   std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LT(std::abs(now - written), 5) << first;
  // A container that is not the pod's.
  CommandResult wrong = k.kubectl({"logs", "talker", "-c", "nope"});
  EXPECT_NE(wrong.exitCode, 0);
  EXPECT_NE(wrong.output.find("container nope is not valid for pod talker"), std::string::npos)
      << wrong.output;

  // A container that restarted: its last run's output and the one before.
  ASSERT_TRUE(waitUntil(
      [&] {
        json pod = k.json({"get", "pod", "crasher"});
        json statuses = pod.value("status", json::object()).value("containerStatuses", json::array());
        return !statuses.empty() && statuses[0].value("restartCount", 0) >= 1;
      },
      seconds(60)));
  CommandResult current;
  CommandResult previous;
  ASSERT_TRUE(waitUntil(
      [&] {
        current = k.kubectl({"logs", "crasher"});
        previous = k.kubectl({"logs", "crasher", "--previous"});
        return current.output.rfind("run at ", 0) == 0 && previous.output.rfind("run at ", 0) == 0;
      },
      seconds(20)))
      << current.output << previous.output;
  EXPECT_NE(current.output, previous.output);
  EXPECT_EQ(std::count(current.output.begin(), current.output.end(), '\n'), 1) << current.output;
  // A container that never restarted has no previous run.
  CommandResult none = k.kubectl({"logs", "talker", "-c", "side", "--previous"});
  EXPECT_NE(none.exitCode, 0);
  EXPECT_NE(none.output.find("previous terminated container"), std::string::npos) << none.output;
}

// The CPU figure of `name`'s line in `kubectl top` output, in millicores (-1: no such line).
int topMillicores(const std::string& output, const std::string& name) {
  size_t at = output.find("\n" + name);
  if (at == std::string::npos) return -1;
  std::string line = output.substr(at + 1, output.find('\n', at + 1) - at - 1);
  size_t space = line.find_first_of(" \t");
  if (space == std::string::npos) return -1;
  size_t value = line.find_first_not_of(" \t", space);
  if (value == std::string::npos) return -1;
  return std::atoi(line.c_str() + value);
}

TEST(KubeOperateTest, TheAutoscalerFollowsRealCpuUsageAndTopShowsIt) {
  KubeCluster k(1, "cpus:4;mem:4096", {},
                {{"AGORA_METRICS_INTERVAL", "1secs"},
                 {"AGORA_HPA_SYNC_PERIOD", "2secs"},
                 {"AGORA_HPA_DOWNSCALE_STABILIZATION", "6secs"}});
  REQUIRE_CLUSTER(k);
  // Pods whose endpoint burns CPU for each request (a CGI script counting), behind a Service.
  json container = hostContainer(
      "burner",
      "mkdir -p www/cgi-bin && printf '#!/bin/sh\\ni=0; while [ $i -lt 40000 ]; do "
      "i=$((i+1)); done\\nprintf \"Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nburned\\\\n\"\\n' "
      "> www/cgi-bin/burn && chmod +x www/cgi-bin/burn && "
      "exec busybox httpd -f -p \"$POD_IP:8080\" -h www");
  container["env"] = {{{"name", "POD_IP"},
                       {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}}};
  json deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "burner"}}},
      {"spec",
       {{"replicas", 1},
        {"selector", {{"matchLabels", {{"app", "burner"}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", "burner"}}}}},
          {"spec", {{"containers", {container}}}}}}}}};
  json service = {{"apiVersion", "v1"},
                  {"kind", "Service"},
                  {"metadata", {{"name", "burner"}}},
                  {"spec",
                   {{"selector", {{"app", "burner"}}},
                    {"ports", {{{"port", 80}, {"targetPort", 8080}}}}}}};
  std::string file = k.home() + "/burner.json";
  ASSERT_TRUE(writeFileAtomic(file, json{{"apiVersion", "v1"},
                                          {"kind", "List"},
                                          {"items", {deployment, service}}}
                                        .dump())
                  .ok());
  auto applied = k.kubectl({"apply", "-f", file});
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  ASSERT_EQ(k.kubectl({"rollout", "status", "deployment/burner", "--timeout=60s"}).exitCode, 0);
  std::string address = k.json({"get", "svc", "burner"})["spec"].value("clusterIP", "") + ":80";
  std::string endpoint = "http://" + address + "/cgi-bin/burn";
  ASSERT_TRUE(waitUntil(
      [&] {
        auto r = httpGet(address, "/cgi-bin/burn", seconds(5));
        return r && r->body == "burned\n";
      },
      seconds(30)))
      << endpoint << " " << k.kubectl({"logs", "deployment/burner"}).output;
  // Load: two connections asking for it back to back, until the test says stop.
  std::string loadLog = k.home() + "/load.log";
  auto load = spawnChild({"/usr/bin/wrk", "-t1", "-c2", "-d300s", endpoint}, loadLog);
  ASSERT_TRUE(load.ok()) << load.error();
  struct Stop {
    pid_t pid;
    ~Stop() { stopChild(pid, seconds(5), SIGKILL); }
  } stopLoad{*load};
  // kubectl autoscale sends autoscaling/v1 (stored as v2).
  auto autoscaled = k.kubectl(
      {"autoscale", "deployment", "burner", "--cpu-percent=50", "--min=1", "--max=3"});
  ASSERT_EQ(autoscaled.exitCode, 0) << autoscaled.output;

  // kubectl top: under load the pod burns far more than its request (100m).
  CommandResult top;
  ASSERT_TRUE(waitUntil(
      [&] {
        top = k.kubectl({"top", "pods"});
        return top.exitCode == 0 && topMillicores(top.output, "burner-") > 300;
      },
      seconds(60)))
      << top.output;
  CommandResult nodes = k.kubectl({"top", "nodes"});
  EXPECT_EQ(nodes.exitCode, 0) << nodes.output;
  EXPECT_GT(topMillicores(nodes.output, k.json({"get", "nodes"})["items"][0]["metadata"].value(
                                             "name", "?")),
            300)
      << nodes.output;
  // Far above its 50% target: scaled up to the maximum, and `kubectl get hpa` says why.
  auto replicas = [&] { return k.json({"get", "deployment", "burner"})["spec"].value("replicas", 0); };
  ASSERT_TRUE(waitUntil([&] { return replicas() == 3; }, seconds(60)))
      << k.kubectl({"describe", "hpa", "burner"}).output;
  std::string table = k.kubectl({"get", "hpa", "burner"}).output;
  EXPECT_NE(table.find("%/50%"), std::string::npos) << table;
  EXPECT_EQ(table.find("<unknown>"), std::string::npos) << table;
  // No load: back to one once the scale-down window has passed, and not before it.
  stopChild(*load, seconds(5), SIGKILL);
  auto idle = std::chrono::steady_clock::now();
  ASSERT_TRUE(waitUntil([&] { return replicas() == 1; }, seconds(90)))
      << k.kubectl({"describe", "hpa", "burner"}).output;
  EXPECT_GE(std::chrono::steady_clock::now() - idle, seconds(6));
  json status = k.json({"get", "hpa", "burner"})["status"];
  EXPECT_EQ(status.value("desiredReplicas", 0), 1) << status.dump();
  EXPECT_TRUE(status.contains("lastScaleTime")) << status.dump();
  EXPECT_NE(k.kubectl({"describe", "hpa", "burner"}).output.find("SuccessfulRescale"),
            std::string::npos);
  ASSERT_EQ(k.kubectl({"delete", "hpa", "burner"}).exitCode, 0);

  // What an operator alerts on, in Prometheus text: the kube API's requests by verb and their
  // latency, the master's allocation cycles, the agent's status update round trips.
  std::string api = k.kubectl({"get", "--raw", "/metrics"}).output;
  EXPECT_NE(api.find("agora_kube_api_requests_total{verb=\"LIST\",resource=\"pods\",code=\"200\"}"),
            std::string::npos)
      << api;
  EXPECT_NE(api.find("agora_kube_api_request_duration_seconds_bucket{verb=\"GET\""),
            std::string::npos)
      << api;
  EXPECT_NE(api.find("agora_kube_objects{resource=\"horizontalpodautoscalers.autoscaling\"}"),
            std::string::npos)
      << api;
  json profile = json::parse(readFile(k.home() + "/profiles/default/profile.json").value_or("{}"),
                             nullptr, false);
  // The profile's master and agents speak HTTPS, with the profile's CA, and require a token:
  // the operator's.
  struct Forget {
    ~Forget() {
      setDefaultBearerToken("");
      setDefaultHttpTls(std::nullopt);
    }
  } forget;
  std::string keys = k.home() + "/profiles/default/credentials";
  std::string token = readFile(keys + "/operator.token").value_or("");
  setDefaultBearerToken(token.substr(0, token.find('\n')));
  auto ca = readFile(keys + "/http-ca.crt");
  ASSERT_TRUE(ca.ok()) << ca.error();
  setDefaultHttpTls(TlsClientConfig{*ca, "", ""});
  for (const json& d : profile.value("daemons", json::array())) {
    std::string role = d.value("role", "");
    if (role != "master" && role != "agent") continue;
    auto metrics = httpGet(d.value("http", ""), "/metrics", seconds(5));
    ASSERT_TRUE(metrics) << role;
    std::string wanted = role == "master" ? "agora_master_allocation_cycle_seconds_count "
                                          : "agora_agent_status_update_roundtrip_seconds_count ";
    size_t at = metrics->body.find(wanted);
    ASSERT_NE(at, std::string::npos) << metrics->body;
    EXPECT_GT(std::atoi(metrics->body.c_str() + at + wanted.size()), 0) << role;
  }
}

}  // namespace
}  // namespace agora::testing

namespace agora::testing {
namespace {

// The Events section of `kubectl describe WHAT [-l SELECTOR]`.
std::string eventsOf(KubeCluster& k, const std::string& what, const std::string& selector = "") {
  std::vector<std::string> args = {"describe", what};
  if (!selector.empty()) args.insert(args.end(), {"-l", selector});
  std::string out = k.kubectl(args).output;
  size_t at = out.find("\nEvents:");
  return at == std::string::npos ? "" : out.substr(at);
}

TEST(KubeOperateTest, DescribeShowsWhatEachControllerDidAsEvents) {
  KubeCluster k(1, "cpus:4;mem:4096", {}, {{"AGORA_HPA_SYNC_PERIOD", "1secs"}});
  REQUIRE_CLUSTER(k);
  json steady = hostContainer("main", "exec sleep 600");  // ok: the pod's pace
  json crashing = hostContainer("main", "exit 1");
  auto deployment = [](const std::string& name, const json& container) {
    return json{{"apiVersion", "apps/v1"},
                {"kind", "Deployment"},
                {"metadata", {{"name", name}}},
                {"spec",
                 {{"replicas", 1},
                  {"selector", {{"matchLabels", {{"app", name}}}}},
                  {"template",
                   {{"metadata", {{"labels", {{"app", name}}}}},
                    {"spec", {{"containers", {container}}}}}}}}};
  };
  json service = {{"apiVersion", "v1"},
                  {"kind", "Service"},
                  {"metadata", {{"name", "web"}}},
                  {"spec",
                   {{"type", "LoadBalancer"},
                    {"selector", {{"app", "web"}}},
                    {"ports", {{{"port", 80}}}}}}};
  json hpa = {{"apiVersion", "autoscaling/v2"},
              {"kind", "HorizontalPodAutoscaler"},
              {"metadata", {{"name", "ghost"}}},
              {"spec",
               {{"scaleTargetRef",
                 {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "ghost"}}},
                {"minReplicas", 1},
                {"maxReplicas", 3}}}};
  std::string file = k.home() + "/all.json";
  ASSERT_TRUE(writeFileAtomic(file, json{{"apiVersion", "v1"},
                                          {"kind", "List"},
                                          {"items", {deployment("web", steady),
                                                     deployment("crash", crashing), service,
                                                     hpa}}}
                                        .dump())
                  .ok());
  auto applied = k.kubectl({"apply", "-f", file});
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  ASSERT_EQ(k.kubectl({"rollout", "status", "deployment/web", "--timeout=60s"}).exitCode, 0);

  // Each controller's Events, on the object it acted on, in the order they happened.
  EXPECT_NE(eventsOf(k, "deployment/web").find("ScalingReplicaSet"), std::string::npos);
  EXPECT_NE(eventsOf(k, "replicaset", "app=web").find("SuccessfulCreate"), std::string::npos);
  std::string pod;
  ASSERT_TRUE(waitUntil(
      [&] {
        pod = eventsOf(k, "pod", "app=web");
        return pod.find("Started") != std::string::npos;
      },
      seconds(20)))
      << pod;
  size_t scheduled = pod.find("Scheduled");
  size_t pulled = pod.find("Pulled");
  size_t created = pod.find("Created container main");
  size_t started = pod.find("Started container main");
  EXPECT_TRUE(scheduled < pulled && pulled < created && created < started) << pod;
  EXPECT_NE(pod.find("Container image \"agora/host\" already present"), std::string::npos);
  EXPECT_NE(eventsOf(k, "service/web").find("IPAllocated"), std::string::npos);
  std::string node = eventsOf(k, "node");
  EXPECT_NE(node.find("RegisteredNode"), std::string::npos) << node;
  EXPECT_NE(node.find("NodeReady"), std::string::npos) << node;
  std::string crash;
  EXPECT_TRUE(waitUntil(
      [&] {
        crash = eventsOf(k, "pod", "app=crash");
        return crash.find("BackOff") != std::string::npos;
      },
      seconds(30)))
      << crash;
  EXPECT_NE(crash.find("Back-off restarting failed container main"), std::string::npos);
  std::string ghost;
  EXPECT_TRUE(waitUntil(
      [&] {
        ghost = eventsOf(k, "hpa/ghost");
        return ghost.find("FailedGetScale") != std::string::npos;
      },
      seconds(20)))
      << ghost;

  // Deleting a pod stops its containers, and says so; `kubectl get events` lists them all.
  ASSERT_EQ(k.kubectl({"delete", "deployment", "web"}).exitCode, 0);
  CommandResult events;
  EXPECT_TRUE(waitUntil(
      [&] {
        events = k.kubectl({"get", "events"});
        return events.output.find("Stopping container main") != std::string::npos;
      },
      seconds(20)))
      << events.output;
  EXPECT_NE(events.output.find("Killing"), std::string::npos);
}

}  // namespace
}  // namespace agora::testing
