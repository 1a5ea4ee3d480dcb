// Services on a real local cluster (`agora up`) driven by the real kubectl: the service proxy
// the kube framework runs on every agent serves ClusterIPs, NodePorts and load-balancer
// addresses, balancing over the ready pods; traffic stays on loopback.

#include <gtest/gtest.h>

#include <csignal>

#include <map>
#include <set>
#include <thread>

#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/process.hpp"
#include "tests/support/kube_cluster.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

std::string example(const std::string& path) {
  return std::string(AGORA_SOURCE_DIR) + "/examples/kube/" + path;
}

// The body of GET http://address/path, or "" when nothing answers.
std::string fetch(const std::string& address, const std::string& path = "/") {
  auto response = httpGet(address, path, seconds(3));
  if (!response || response->status != 200) return "";
  std::string body = response->body;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body;
}

// Who answers `count` requests to `address`, and how often.
std::map<std::string, int> answers(const std::string& address, int count) {
  std::map<std::string, int> seen;
  for (int i = 0; i < count; ++i) ++seen[fetch(address)];
  return seen;
}

std::set<std::string> podNames(KubeCluster& k, const std::string& app) {
  std::set<std::string> names;
  json pods = k.json({"get", "pods", "-l", "app=" + app});
  for (const auto& p : pods.value("items", json::array())) {
    if (!p["metadata"].contains("deletionTimestamp")) names.insert(p["metadata"].value("name", ""));
  }
  return names;
}

std::set<std::string> endpointIps(KubeCluster& k, const std::string& service) {
  std::set<std::string> ips;
  json e = k.json({"get", "endpoints", service});
  for (const auto& subset : e.value("subsets", json::array())) {
    for (const auto& a : subset.value("addresses", json::array())) ips.insert(a.value("ip", ""));
  }
  return ips;
}

// Applies `pod` (written to `file`) and waits for it to finish: its last phase ("" when it did
// not finish within a minute, "apply failed: ..." when kubectl refused it).
std::string runToEnd(KubeCluster& k, const json& pod, const std::string& file) {
  if (!writeFileAtomic(file, pod.dump()).ok()) return "cannot write " + file;
  auto created = k.kubectl({"apply", "-f", file});
  if (created.exitCode != 0) return "apply failed: " + created.output;
  std::string name = pod["metadata"].value("name", "");
  std::string phase;
  waitUntil(
      [&] {
        phase = k.json({"get", "pod", name})["status"].value("phase", "");
        return phase == "Succeeded" || phase == "Failed";
      },
      seconds(60));
  return phase;
}

TEST(KubeServicesTest, ClusterIpReachesReadyPodsAsTheyScaleAndTurnUnready) {
  KubeCluster k(2, "cpus:4;mem:4096");
  REQUIRE_CLUSTER(k);
  auto applied = k.kubectl({"apply", "-f", example("two-tier/backend.yaml")});
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  auto rolled = k.kubectl({"rollout", "status", "deployment/backend", "--timeout=90s"},
                          "", seconds(100));
  ASSERT_EQ(rolled.exitCode, 0) << rolled.output;

  json service = k.json({"get", "svc", "backend"});
  std::string clusterIP = service["spec"].value("clusterIP", "");
  ASSERT_FALSE(clusterIP.empty()) << service.dump();
  std::string address = clusterIP + ":80";
  // Each pod has an address of its own from the pod range, on loopback.
  json pods = k.json({"get", "pods", "-l", "app=backend"});
  std::set<std::string> podIps;
  for (const auto& p : pods["items"]) podIps.insert(p["status"].value("podIP", ""));
  EXPECT_EQ(podIps.size(), 3u) << pods.dump();

  // All three pods answer through the ClusterIP (the proxies come up with the cluster).
  std::set<std::string> three = podNames(k, "backend");
  ASSERT_EQ(three.size(), 3u);
  std::map<std::string, int> seen;
  ASSERT_TRUE(waitUntil(
      [&] {
        for (const auto& [name, n] : answers(address, 12)) seen[name] += n;
        return std::all_of(three.begin(), three.end(),
                           [&](const std::string& p) { return seen.count(p) > 0; });
      },
      seconds(30)))
      << "answers: " << json(seen).dump();
  for (const auto& [name, n] : seen) EXPECT_TRUE(three.count(name)) << name;

  // Scale to five: the new pods get traffic too.
  auto scaled = k.kubectl({"scale", "deployment/backend", "--replicas=5"});
  ASSERT_EQ(scaled.exitCode, 0) << scaled.output;
  rolled = k.kubectl({"rollout", "status", "deployment/backend", "--timeout=90s"}, "",
                     seconds(100));
  ASSERT_EQ(rolled.exitCode, 0) << rolled.output;
  std::set<std::string> five = podNames(k, "backend");
  ASSERT_EQ(five.size(), 5u);
  seen.clear();
  EXPECT_TRUE(waitUntil(
      [&] {
        for (const auto& [name, n] : answers(address, 20)) seen[name] += n;
        return std::all_of(five.begin(), five.end(),
                           [&](const std::string& p) { return seen.count(p) > 0; });
      },
      seconds(30)))
      << "answers: " << json(seen).dump();

  // One pod turns unready (its readiness probe fails): once its address leaves the Endpoints,
  // it gets no more traffic within a second.
  json victim = k.json({"get", "pods", "-l", "app=backend"})["items"][0];
  std::string victimName = victim["metadata"].value("name", "");
  std::string victimIp = victim["status"].value("podIP", "");
  EXPECT_EQ(fetch(victimIp + ":8080", "/cgi-bin/unready"), "unready");
  ASSERT_TRUE(waitUntil([&] { return endpointIps(k, "backend").count(victimIp) == 0; },
                        seconds(20)));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // ok: the one second it is allowed
  auto after = answers(address, 40);
  EXPECT_EQ(after.count(victimName), 0u) << json(after).dump();
  EXPECT_EQ(after.count(""), 0u) << "unanswered requests: " << json(after).dump();
  // Ready again: back in.
  EXPECT_EQ(fetch(victimIp + ":8080", "/cgi-bin/ready"), "ready");
  EXPECT_TRUE(waitUntil([&] { return answers(address, 10).count(victimName) > 0; }, seconds(20)));

  // The proxy's /metrics, at the address its log gives: its rule syncs and what it serves.
  auto proxies = k.kubectl({"get", "pods", "-n", "kube-system", "-o", "name"});
  size_t at = proxies.output.find("pod/kube-proxy-");
  ASSERT_NE(at, std::string::npos) << proxies.output;
  std::string proxyPod = proxies.output.substr(at + 4, proxies.output.find('\n', at) - at - 4);
  std::string log = k.kubectl({"logs", "-n", "kube-system", proxyPod}).output;
  size_t metricsAt = log.find("Metrics at http://");
  ASSERT_NE(metricsAt, std::string::npos) << log;
  std::string metricsAddress = log.substr(metricsAt + 18, log.find("/metrics", metricsAt) -
                                                              metricsAt - 18);
  auto metrics = httpGet(metricsAddress, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.error();
  for (const char* series : {"agora_kube_proxy_connections_total ",
                             "agora_kube_proxy_connections_refused_total ",
                             "agora_kube_ingress_requests_total ",
                             "agora_kube_proxy_sync_rules_seconds_bucket{le=\"+Inf\"} "}) {
    EXPECT_NE(metrics->body.find(series), std::string::npos) << series << "\n" << metrics->body;
  }
  auto value = [&](const std::string& series) {
    size_t line = metrics->body.find("\n" + series + " ");
    return line == std::string::npos
               ? -1.0
               : std::atof(metrics->body.c_str() + line + series.size() + 2);
  };
  EXPECT_GT(value("agora_kube_proxy_frontends"), 0) << metrics->body;
  EXPECT_GE(value("agora_kube_proxy_sync_rules_seconds_count"), 2) << metrics->body;
}

TEST(KubeServicesTest, NodePortsAndLoadBalancerAddressesServeOnEveryAgent) {
  KubeCluster k(2, "cpus:4;mem:4096");
  REQUIRE_CLUSTER(k);
  auto applied = k.kubectl({"apply", "-f", example("two-tier/backend.yaml")});
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  auto exposed = k.kubectl({"expose", "deployment", "backend", "--name=backend-lb",
                            "--type=LoadBalancer", "--port=8081", "--target-port=8080"});
  ASSERT_EQ(exposed.exitCode, 0) << exposed.output;
  auto rolled = k.kubectl({"rollout", "status", "deployment/backend", "--timeout=90s"}, "",
                          seconds(100));
  ASSERT_EQ(rolled.exitCode, 0) << rolled.output;
  json service = k.json({"get", "svc", "backend-lb"});
  std::string external = service["status"]["loadBalancer"]["ingress"][0].value("ip", "");
  int nodePort = service["spec"]["ports"][0].value("nodePort", 0);
  ASSERT_FALSE(external.empty()) << service.dump();
  ASSERT_GT(nodePort, 0) << service.dump();
  // kubectl shows the address and the ports as 8081:NODEPORT/TCP.
  auto table = k.kubectl({"get", "svc", "backend-lb"});
  EXPECT_NE(table.output.find(external), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("8081:" + std::to_string(nodePort) + "/TCP"), std::string::npos)
      << table.output;

  std::set<std::string> pods = podNames(k, "backend");
  auto servedBy = [&](const std::string& address) {
    std::string who;
    waitUntil([&] { return pods.count(who = fetch(address)) > 0; }, seconds(30));
    return who;
  };
  EXPECT_TRUE(pods.count(servedBy(external + ":8081"))) << "load balancer " << external;
  // The NodePort on each agent's address.
  json nodes = k.json({"get", "nodes"});
  ASSERT_EQ(nodes["items"].size(), 2u);
  for (const auto& node : nodes["items"]) {
    std::string ip;
    for (const auto& a : node["status"]["addresses"]) {
      if (a.value("type", "") == "InternalIP") ip = a.value("address", "");
    }
    EXPECT_TRUE(pods.count(servedBy(ip + ":" + std::to_string(nodePort))))
        << "node port on " << ip;
  }
  // ClientIP affinity: one client sticks to one pod.
  auto patched = k.kubectl({"patch", "svc", "backend-lb", "-p",
                            R"({"spec":{"sessionAffinity":"ClientIP"}})"});
  ASSERT_EQ(patched.exitCode, 0) << patched.output;
  EXPECT_TRUE(waitUntil([&] { return answers(external + ":8081", 12).size() == 1; }, seconds(20)));

  // The API server away: the proxies serve what they knew; back, and they follow it again.
  int kube = k.daemonPid("kube");
  ASSERT_GT(kube, 0);
  ::kill(kube, SIGTERM);
  ASSERT_TRUE(waitUntil([&] { return !processAlive(kube); }, seconds(30)));
  auto away = answers(external + ":8081", 10);
  EXPECT_EQ(away.size(), 1u) << json(away).dump();
  EXPECT_TRUE(pods.count(away.begin()->first)) << json(away).dump();
  auto again = k.agora({"up"});
  ASSERT_EQ(again.exitCode, 0) << again.output;
  ASSERT_EQ(k.kubectl({"delete", "svc", "backend-lb"}).exitCode, 0);
  EXPECT_TRUE(waitUntil([&] { return fetch(external + ":8081").empty(); }, seconds(20)));
}

TEST(KubeServicesTest, PodsResolveServicesByNameThroughTheClusterDns) {
  KubeCluster k(2, "cpus:4;mem:4096");
  REQUIRE_CLUSTER(k);
  if (!importTestImage(k, "test/busybox:1")) GTEST_SKIP() << "this machine cannot run images";
  auto applied = k.kubectl({"apply", "-f", example("two-tier/backend.yaml")});
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  auto rolled = k.kubectl({"rollout", "status", "deployment/backend", "--timeout=90s"}, "",
                          seconds(100));
  ASSERT_EQ(rolled.exitCode, 0) << rolled.output;
  // The cluster's DNS is a Service of its own.
  json dns = k.json({"get", "svc", "kube-dns", "-n", "kube-system"});
  std::string nameserver = dns["spec"].value("clusterIP", "");
  ASSERT_FALSE(nameserver.empty()) << dns.dump();

  // A pod with an image of its own: its resolver points at the cluster's DNS, with the search
  // path, so the short name and the full one both reach the backend.
  std::set<std::string> backends = podNames(k, "backend");
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "client"}}},
      {"spec",
       {{"restartPolicy", "Never"},
        {"containers",
         {{{"name", "client"},
           {"image", "test/busybox:1"},
           {"command",
            {"/bin/sh", "-c",
             "set -x; grep -q 'nameserver " + nameserver + "' /etc/resolv.conf && "
             "grep -q 'search default.svc.cluster.local svc.cluster.local cluster.local' "
             "/etc/resolv.conf && "
             "nslookup backend.default.svc.cluster.local | grep -q Address && "
             "wget -qO- http://backend.default.svc.cluster.local/ | grep -q backend- && "
             "wget -qO- http://backend/ | grep -q backend-"}}}}}}}};
  // The service proxy's rules for the new Services' addresses follow the API within a sync or
  // two, later on a loaded machine: the pod starts once the backend and the cluster's DNS
  // answer at their Service addresses.
  std::string backendIP = k.json({"get", "svc", "backend"})["spec"].value("clusterIP", "");
  std::string query = "busybox nslookup backend.default.svc.cluster.local " + nameserver;
  std::string answered;
  std::string looked;
  ASSERT_TRUE(waitUntil(
      [&] {
        answered = fetch(backendIP + ":80");
        looked = runCommand({"/bin/sh", "-c", query}, seconds(5)).output;
        return answered.find("backend-") != std::string::npos &&
               looked.find(backendIP) != std::string::npos;
      },
      seconds(30)))
      << "the backend answered '" << answered << "'; the DNS: " << looked;
  std::string file = k.home() + "/client.json";
  EXPECT_EQ(runToEnd(k, pod, file), "Succeeded") << k.kubectl({"describe", "pod", "client"}).output
                                                 << k.kubectl({"logs", "client"}).output;

  // From the host too, through the kube-dns Service's address.
  CommandResult lookedUp = runCommand({"/bin/sh", "-c", query}, seconds(10));
  EXPECT_NE(lookedUp.output.find(k.json({"get", "svc", "backend"})["spec"].value("clusterIP", "-")),
            std::string::npos)
      << lookedUp.output;
}

TEST(KubeServicesTest, ConfigMapsAndSecretsAreFilesInPods) {
  KubeCluster k(1, "cpus:4;mem:4096");
  REQUIRE_CLUSTER(k);
  if (!importTestImage(k, "test/busybox:1")) GTEST_SKIP() << "this machine cannot run images";
  ASSERT_EQ(k.kubectl({"create", "configmap", "settings", "--from-literal=greeting=hello",
                       "--from-literal=level=3"})
                .exitCode,
            0);
  ASSERT_EQ(k.kubectl({"create", "secret", "generic", "db", "--from-literal=password=pw-1"})
                .exitCode,
            0);
  // Settings from the ConfigMap as env and as files (all keys; one item renamed), the password
  // as a file on memory, of mode 0400 by default; an optional volume of a missing ConfigMap is
  // no error. The container runs confined (no new privileges, the seccomp filter).
  std::string check =
      "test \"$GREETING\" = hello && "
      "test \"$(cat /etc/settings/greeting)\" = hello && "
      "test \"$(cat /etc/settings/level)\" = 3 && "
      "test \"$(cat /etc/renamed/the-level)\" = 3 && ! test -e /etc/renamed/greeting && "
      "test \"$(cat /etc/db/password)\" = pw-1 && "
      "test \"$(stat -c %a /etc/db/password)\" = 400 && "
      "grep -q ' /etc/db/password tmpfs ' /proc/mounts && "
      "grep -q 'NoNewPrivs:.1' /proc/self/status && grep -q 'Seccomp:.2' /proc/self/status && "
      "test \"$(cat /etc/one-file.txt)\" = hello";
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "reader"}}},
      {"spec",
       {{"restartPolicy", "Never"},
        {"volumes",
         {{{"name", "settings"}, {"configMap", {{"name", "settings"}}}},
          {{"name", "renamed"},
           {"configMap", {{"name", "settings"}, {"items", {{{"key", "level"}, {"path", "the-level"}}}}}}},
          {{"name", "db"}, {"secret", {{"secretName", "db"}}}},
          {{"name", "maybe"}, {"configMap", {{"name", "absent"}, {"optional", true}}}}}},
        {"containers",
         {{{"name", "reader"},
           {"image", "test/busybox:1"},
           {"command", {"/bin/sh", "-c", check}},
           {"env", {{{"name", "GREETING"},
                     {"valueFrom", {{"configMapKeyRef", {{"name", "settings"}, {"key", "greeting"}}}}}}}},
           {"volumeMounts",
            {{{"name", "settings"}, {"mountPath", "/etc/settings"}},
             {{"name", "renamed"}, {"mountPath", "/etc/renamed"}},
             {{"name", "db"}, {"mountPath", "/etc/db"}, {"readOnly", true}},
             {{"name", "settings"}, {"mountPath", "/etc/one-file.txt"}, {"subPath", "greeting"}},
             {{"name", "maybe"}, {"mountPath", "/etc/maybe"}}}}}}}}}};
  std::string file = k.home() + "/reader.json";
  EXPECT_EQ(runToEnd(k, pod, file), "Succeeded") << k.kubectl({"describe", "pod", "reader"}).output;
  // A Deployment reading its settings from the ConfigMap (env and file) and its password from
  // the Secret (file): its pod is ready once the file says `changed`, which it comes to say
  // when the ConfigMap does, while the container runs on (its environment stays).
  json container = pod["spec"]["containers"][0];
  container["command"] = {"/bin/sh", "-c",
                          "test \"$GREETING\" = hello && test \"$(cat /etc/db/password)\" = pw-1 "
                          "&& exec sleep 3600"};  // ok: the pod's command, not a wait
  container["readinessProbe"] = {
      {"exec", {{"command", {"/bin/sh", "-c", "test \"$(cat /etc/settings/greeting)\" = changed"}}}},
      {"periodSeconds", 1}};
  json deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "settled"}}},
      {"spec",
       {{"replicas", 1},
        {"selector", {{"matchLabels", {{"app", "settled"}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", "settled"}}}}},
          {"spec", {{"volumes", pod["spec"]["volumes"]}, {"containers", json::array({container})}}}}}}}};
  ASSERT_TRUE(writeFileAtomic(file, deployment.dump()).ok());
  auto created = k.kubectl({"apply", "-f", file});
  ASSERT_EQ(created.exitCode, 0) << created.output;
  auto podOf = [&] { return k.json({"get", "pods", "-l", "app=settled"})["items"]; };
  ASSERT_TRUE(waitUntil(
      [&] {
        json items = podOf();
        return items.size() == 1 && items[0]["status"].value("phase", "") == "Running";
      },
      seconds(60)));
  EXPECT_EQ(k.json({"get", "deployment", "settled"})["status"].value("readyReplicas", 0), 0);
  auto patched = k.kubectl({"patch", "configmap", "settings", "-p", R"({"data":{"greeting":"changed"}})"});
  ASSERT_EQ(patched.exitCode, 0) << patched.output;
  EXPECT_TRUE(waitUntil(
      [&] { return k.json({"get", "deployment", "settled"})["status"].value("readyReplicas", 0) == 1; },
      seconds(30)))
      << k.kubectl({"describe", "pods", "-l", "app=settled"}).output;
  json items = podOf();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["status"]["containerStatuses"][0].value("restartCount", -1), 0);
  ASSERT_EQ(k.kubectl({"delete", "deployment", "settled"}).exitCode, 0);
  // The files were in memory, and are gone with the pods' executors.
  EXPECT_TRUE(waitUntil(
      [&] {
        return runCommand({"/bin/sh", "-c", "grep -rl pw-1 /dev/shm/agora-files 2>/dev/null"},
                          seconds(5))
            .output.empty();
      },
      seconds(30)));
}

// curl, on loopback only (--resolve pins every name to the ingress address).
CommandResult curl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/env", "curl", "-s", "-m", "10"};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, seconds(15));
}

TEST(KubeServicesTest, ADatabaseBackedAppInFourFilesPerServiceComesUpWithOneApply) {
  if (runCommand({"/bin/sh", "-c", "test -x /usr/bin/redis-server && test -x /usr/bin/redis-cli"},
                 seconds(5))
          .exitCode != 0) {
    GTEST_SKIP() << "no redis-server (Debian's redis-server package)";
  }
  KubeCluster k(2, "cpus:4;mem:4096");
  REQUIRE_CLUSTER(k);
  // Applied in name order: the app's pods come before the database's Secret, and wait for it.
  auto applied = k.kubectl({"apply", "-f", example("counter/")});
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  for (const char* d : {"deployment/database", "deployment/counter"}) {
    auto rolled = k.kubectl({"rollout", "status", d, "--timeout=90s"}, "", seconds(100));
    ASSERT_EQ(rolled.exitCode, 0) << rolled.output << k.kubectl({"describe", "pods"}).output;
  }
  // The Secret's stringData was folded into data and is not given back.
  json secret = k.json({"get", "secret", "database"});
  EXPECT_FALSE(secret.contains("stringData")) << secret.dump();
  EXPECT_TRUE(secret["data"].contains("password")) << secret.dump();
  // The app finds the database by its DNS name (from its ConfigMap) with the password (from
  // the Secret): each visit counts, whichever replica answers.
  json service = k.json({"get", "svc", "counter"});
  std::string address = service["status"]["loadBalancer"]["ingress"][0].value("ip", "") + ":80";
  std::string first;
  ASSERT_TRUE(waitUntil([&] { return (first = fetch(address, "/cgi-bin/hits")).find("visits so far: ") == 0; },
                        seconds(30)))
      << first;
  std::string second = fetch(address, "/cgi-bin/hits");
  int a = std::atoi(first.substr(std::string("visits so far: ").size()).c_str());
  int b = std::atoi(second.substr(std::string("visits so far: ").size()).c_str());
  EXPECT_EQ(b, a + 1) << first << " / " << second;
  // The app's own Secret guards the reset.
  CommandResult refused = curl({"-X", "POST", "-H", "X-Token: wrong", "http://" + address + "/cgi-bin/reset"});
  EXPECT_EQ(refused.output, "no\n");
  CommandResult reset = curl({"-X", "POST", "-H", "X-Token: let-me-reset",
                              "http://" + address + "/cgi-bin/reset"});
  EXPECT_EQ(reset.output, "reset\n");
  EXPECT_EQ(fetch(address, "/cgi-bin/hits").rfind("visits so far: 1 (", 0), 0u);
}

TEST(KubeServicesTest, IngressRoutesByHostAndPathWithTlsKeepAliveAndStreaming) {
  if (runCommand({"/bin/sh", "-c", "command -v curl && command -v openssl"}, seconds(5))
          .exitCode != 0) {
    GTEST_SKIP() << "no curl or openssl";
  }
  KubeCluster k(2, "cpus:4;mem:4096");
  REQUIRE_CLUSTER(k);
  auto applied = k.kubectl({"apply", "-f", example("two-tier/")});
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  for (const char* d : {"deployment/backend", "deployment/frontend"}) {
    auto rolled = k.kubectl({"rollout", "status", d, "--timeout=90s"}, "", seconds(100));
    ASSERT_EQ(rolled.exitCode, 0) << rolled.output;
  }
  // The address shows in `kubectl get ingress`.
  std::string address;
  ASSERT_TRUE(waitUntil(
      [&] {
        json ingress = k.json({"get", "ingress", "app"});
        json lb = ingress.value("status", json::object())
                      .value("loadBalancer", json::object())
                      .value("ingress", json::array());
        address = lb.empty() ? "" : lb[0].value("ip", "");
        return !address.empty();
      },
      seconds(20)));
  EXPECT_NE(k.kubectl({"get", "ingress"}).output.find(address), std::string::npos);
  std::set<std::string> backends = podNames(k, "backend");
  std::set<std::string> frontends = podNames(k, "frontend");
  auto get = [&](const std::string& path) { return fetch(address + ":80", path); };
  // /api (a Prefix) to the backend, the rest to the frontend, which asks the backend itself.
  std::string page;
  ASSERT_TRUE(waitUntil([&] { return backends.count(page = get("/api/")) > 0; }, seconds(30)))
      << page;
  EXPECT_TRUE(backends.count(get("/api/index.html"))) << get("/api/index.html");
  std::string front = get("/index.html");
  EXPECT_EQ(front.rfind("frontend ", 0), 0u) << front;
  EXPECT_NE(front.find("backend: backend-"), std::string::npos) << front;
  // Prefix matches whole path elements: /apix is the frontend's (which has no such page).
  auto apix = httpGet(address + ":80", "/apix", seconds(3));
  ASSERT_TRUE(apix);
  EXPECT_EQ(apix->status, 404);

  // A host with TLS (a kubernetes.io/tls Secret), an Exact path before a Prefix one.
  std::string dir = k.home();
  CommandResult made = runCommand(
      {"/usr/bin/env", "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/tls.key",
       "-out", dir + "/tls.crt", "-days", "2", "-subj", "/CN=app.example.test", "-addext",
       "subjectAltName=DNS:app.example.test"},
      seconds(30));
  ASSERT_EQ(made.exitCode, 0) << made.output;
  auto secret = k.kubectl({"create", "secret", "tls", "app-tls", "--cert=" + dir + "/tls.crt",
                           "--key=" + dir + "/tls.key"});
  ASSERT_EQ(secret.exitCode, 0) << secret.output;
  json secure = {
      {"apiVersion", "networking.k8s.io/v1"},
      {"kind", "Ingress"},
      {"metadata", {{"name", "secure"}}},
      {"spec",
       {{"ingressClassName", "agora"},
        {"tls", {{{"hosts", {"app.example.test"}}, {"secretName", "app-tls"}}}},
        {"rules",
         {{{"host", "app.example.test"},
           {"http",
            {{"paths",
              {{{"path", "/cgi-bin/whoami"},
                {"pathType", "Exact"},
                {"backend", {{"service", {{"name", "backend"}, {"port", {{"number", 80}}}}}}}},
               {{"path", "/"},
                {"pathType", "Prefix"},
                {"backend",
                 {{"service", {{"name", "frontend"}, {"port", {{"name", "http"}}}}}}}}}}}}}}}}}};
  ASSERT_TRUE(writeFileAtomic(dir + "/secure.json", secure.dump()).ok());
  auto created = k.kubectl({"apply", "-f", dir + "/secure.json"});
  ASSERT_EQ(created.exitCode, 0) << created.output;
  std::vector<std::string> pin = {"--resolve", "app.example.test:443:" + address, "--resolve",
                                  "app.example.test:80:" + address, "--cacert",
                                  dir + "/tls.crt"};
  auto withPin = [&](std::vector<std::string> args) {
    args.insert(args.begin(), pin.begin(), pin.end());
    return curl(args);
  };
  // Over TLS, verified against the Secret's certificate; the backend learns the client.
  CommandResult whoami;
  ASSERT_TRUE(waitUntil(
      [&] {
        whoami = withPin({"https://app.example.test/cgi-bin/whoami"});
        return whoami.output.find("backend-") == 0;
      },
      seconds(20)))
      << whoami.output;
  EXPECT_NE(whoami.output.find(" 127.0.0.1 https"), std::string::npos) << whoami.output;
  // The host's own rules decide: the Exact path only, the rest to the frontend.
  CommandResult other = withPin({"http://app.example.test/cgi-bin/whoami/x", "-o", "/dev/null",
                                 "-w", "%{http_code}"});
  EXPECT_EQ(other.output, "404") << other.output;
  // Keep-alive: two requests, one connection.
  CommandResult twice = withPin({"-v", "https://app.example.test/cgi-bin/whoami",
                                 "https://app.example.test/cgi-bin/whoami"});
  EXPECT_NE(twice.output.find("Re-using existing connection"), std::string::npos) << twice.output;
  // A large body streams through to the backend (3 MB, more than any buffer of the proxy).
  ASSERT_TRUE(writeFileAtomic(dir + "/big", std::string(3 * 1000 * 1000, 'x')).ok());
  CommandResult counted;
  json cgiPath = {{"path", "/cgi-bin"},
                  {"pathType", "Prefix"},
                  {"backend", {{"service", {{"name", "backend"}, {"port", {{"number", 80}}}}}}}};
  json route = {{"apiVersion", "networking.k8s.io/v1"},
                {"kind", "Ingress"},
                {"metadata", {{"name", "cgi"}}},
                {"spec", {{"rules", json::array({{{"http", {{"paths", json::array({cgiPath})}}}}})}}}};
  ASSERT_TRUE(writeFileAtomic(dir + "/cgi.json", route.dump()).ok());
  ASSERT_EQ(k.kubectl({"apply", "-f", dir + "/cgi.json"}).exitCode, 0);
  EXPECT_TRUE(waitUntil(
      [&] {
        counted = curl({"--data-binary", "@" + dir + "/big", "http://" + address + "/cgi-bin/count"});
        return counted.output == "3000000\n";
      },
      seconds(20)))
      << counted.output;
}

}  // namespace
}  // namespace agora::testing
