// The kube framework driven by the real kubectl, against a real local cluster (`agora up`):
// the commands users type, with the output they expect.

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>

#include <unistd.h>

#include <csignal>

#include "common/fs.hpp"
#include "common/process.hpp"
#include "tests/support/kube_cluster.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

std::string examplePath() { return std::string(AGORA_SOURCE_DIR) + "/examples/kube/deployment.yaml"; }

// Pods of the deployment `app`, by name, with their phase and readiness.
std::map<std::string, bool> readyPods(KubeCluster& k, const std::string& app) {
  std::map<std::string, bool> out;
  json pods = k.json({"get", "pods", "-l", "app=" + app});
  for (const auto& p : pods.value("items", json::array())) {
    if (p["metadata"].contains("deletionTimestamp")) continue;
    bool ready = false;
    for (const auto& c : p["status"].value("conditions", json::array())) {
      if (c.value("type", "") == "Ready") ready = c.value("status", "") == "True";
    }
    out[p["metadata"].value("name", "")] = ready;
  }
  return out;
}

bool allReady(KubeCluster& k, const std::string& app, size_t n) {
  auto pods = readyPods(k, app);
  return pods.size() == n &&
         std::all_of(pods.begin(), pods.end(), [](const auto& p) { return p.second; });
}

TEST(KubectlTest, ADeploymentIsAppliedRolledScaledUndoneAndDeleted) {
  KubeCluster k;
  REQUIRE_CLUSTER(k);
  auto r = k.kubectl({"get", "nodes"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "Ready")) << r.output;
  r = k.kubectl({"get", "namespaces"});
  for (const char* ns : {"default", "kube-system", "kube-public"}) {
    EXPECT_TRUE(contains(r.output, ns)) << r.output;
  }

  // apply: created, then unchanged.
  r = k.kubectl({"apply", "-f", examplePath()});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "deployment.apps/hello created")) << r.output;
  r = k.kubectl({"apply", "-f", examplePath()});
  EXPECT_TRUE(contains(r.output, "deployment.apps/hello unchanged")) << r.output;
  r = k.kubectl({"rollout", "status", "deployment/hello", "--timeout=60s"});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "successfully rolled out")) << r.output;

  r = k.kubectl({"get", "deployments"});
  EXPECT_TRUE(contains(r.output, "NAME    READY   UP-TO-DATE   AVAILABLE   AGE")) << r.output;
  EXPECT_TRUE(contains(r.output, "hello   3/3     3            3")) << r.output;
  r = k.kubectl({"get", "all"});
  for (const char* what : {"pod/hello-", "deployment.apps/hello", "replicaset.apps/hello-"}) {
    EXPECT_TRUE(contains(r.output, what)) << r.output;
  }
  r = k.kubectl({"get", "pods", "-o", "wide"});
  EXPECT_TRUE(contains(r.output, "NAME") && contains(r.output, "READY") &&
              contains(r.output, "STATUS") && contains(r.output, "RESTARTS") &&
              contains(r.output, "IP") && contains(r.output, "NODE"))
      << r.output;
  EXPECT_TRUE(contains(r.output, "1/1     Running")) << r.output;
  auto pods = readyPods(k, "hello");
  ASSERT_EQ(pods.size(), 3u);
  std::string pod = pods.begin()->first;
  json one = k.json({"get", "pod", pod});
  EXPECT_EQ(one["status"].value("phase", ""), "Running") << one.dump();
  EXPECT_FALSE(one["spec"].value("nodeName", "").empty());
  r = k.kubectl({"get", "pod", pod, "-o", "wide"});
  EXPECT_TRUE(contains(r.output, "NODE") && contains(r.output, one["spec"].value("nodeName", "")))
      << r.output;
  r = k.kubectl({"get", "pod", pod, "-o", "yaml"});
  EXPECT_TRUE(contains(r.output, "kind: Pod")) << r.output;
  r = k.kubectl({"describe", "pod", pod});
  EXPECT_TRUE(contains(r.output, "Successfully assigned default/" + pod)) << r.output;
  r = k.kubectl({"describe", "deployment", "hello"});
  EXPECT_TRUE(contains(r.output, "Scaled up replica set hello-")) << r.output;

  // A watch sees what happens next.
  std::string watchLog = k.home() + "/watch.log";
  auto watcher = spawnChild({"/usr/bin/env", "KUBECONFIG=" + k.kubeconfig(),
                             KubeCluster::kubectlBinary(""), "get", "pods", "--watch",
                             "--output-watch-events"},
                            watchLog);
  ASSERT_TRUE(watcher.ok());

  // A changed template rolls, within maxSurge 1 and maxUnavailable 0: a new image where this
  // machine can run images (imported into the cluster's store with `agora image import`),
  // a changed environment otherwise.
  std::string changed = k.home() + "/deployment.yaml";
  std::string text = readFile(examplePath()).value();
  bool imaged = importTestImage(k, "hello:v2");
  if (imaged) {
    text.replace(text.find("image: agora/host"), 17, "image: hello:v2");
    for (const std::string ready : {"touch ready", "\"-e\", \"ready\""}) {
      std::string absolute = ready;
      absolute.replace(absolute.find("ready"), 5, "/tmp/ready");
      text.replace(text.find(ready), ready.size(), absolute);
    }
  } else {
    text.replace(text.find("hello from Agora"), 16, "hello again");
  }
  ASSERT_TRUE(writeFileAtomic(changed, text).ok());
  r = k.kubectl({"apply", "-f", changed});
  EXPECT_TRUE(contains(r.output, "deployment.apps/hello configured")) << r.output;
  r = k.kubectl({"rollout", "status", "deployment/hello", "--timeout=90s"});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  json events = k.json({"get", "events", "--field-selector", "involvedObject.name=hello"});
  std::vector<json> scaling;
  for (const auto& e : events.value("items", json::array())) {
    if (e.value("reason", "") == "ScalingReplicaSet") scaling.push_back(e);
  }
  std::sort(scaling.begin(), scaling.end(), [](const json& a, const json& b) {
    return std::stoll(a["metadata"].value("resourceVersion", "0")) <
           std::stoll(b["metadata"].value("resourceVersion", "0"));
  });
  std::map<std::string, int> sizes;  // replica set -> replicas, replayed from the events
  int most = 0;
  for (const auto& e : scaling) {
    std::string m = e.value("message", "");  // "Scaled up replica set X to N from M"
    size_t set = m.find("replica set ") + 12;
    size_t to = m.find(" to ", set);
    std::string name = m.substr(set, to - set);
    sizes[name] = std::atoi(m.substr(to + 4).c_str());
    int total = 0;
    for (const auto& [n, s] : sizes) total += s;
    most = std::max(most, total);
  }
  EXPECT_GE(scaling.size(), 5u);
  if (imaged) {
    EXPECT_EQ(k.kubectl({"get", "pods", "-l", "app=hello", "-o",
                         "jsonpath={.items[*].spec.containers[0].image}"})
                  .output,
              "hello:v2 hello:v2 hello:v2");
  }
  std::cout << (imaged ? "rolled to the image hello:v2\n" : "rolled a changed environment\n");
  EXPECT_LE(most, 4) << "more than replicas + maxSurge pods at once";
  EXPECT_TRUE(allReady(k, "hello", 3));

  // A field taken out of the file is taken out of the object.
  const std::string labels = "  labels:\n    app: hello\nspec";
  text.replace(text.find(labels), labels.size(), "spec");
  ASSERT_TRUE(writeFileAtomic(changed, text).ok());
  r = k.kubectl({"apply", "-f", changed});
  EXPECT_TRUE(contains(r.output, "configured")) << r.output;
  EXPECT_EQ(k.kubectl({"get", "deployment", "hello", "-o", "jsonpath={.metadata.labels}"}).output,
            "");

  // A deleted pod is replaced by its ReplicaSet.
  pods = readyPods(k, "hello");
  pod = pods.begin()->first;
  r = k.kubectl({"delete", "pod", pod});
  EXPECT_TRUE(contains(r.output, "pod \"" + pod + "\" deleted")) << r.output;
  EXPECT_TRUE(waitUntil(
      [&] { return allReady(k, "hello", 3) && !readyPods(k, "hello").count(pod); },
      seconds(60)));

  r = k.kubectl({"scale", "deployment", "hello", "--replicas=2"});
  EXPECT_TRUE(contains(r.output, "deployment.apps/hello scaled")) << r.output;
  EXPECT_TRUE(waitUntil([&] { return allReady(k, "hello", 2); }, seconds(60)));

  r = k.kubectl({"rollout", "history", "deployment/hello"});
  EXPECT_TRUE(contains(r.output, "REVISION") && contains(r.output, "1 ") &&
              contains(r.output, "2 "))
      << r.output;
  r = k.kubectl({"rollout", "undo", "deployment/hello"});
  EXPECT_TRUE(contains(r.output, "rolled back")) << r.output;
  r = k.kubectl({"rollout", "status", "deployment/hello", "--timeout=90s"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_EQ(k.kubectl({"get", "deployment", "hello", "-o",
                       "jsonpath={.spec.template.spec.containers[0].image} "
                       "{.spec.template.spec.containers[0].env[0].value}"})
                .output,
            "agora/host hello from Agora");

  // Deleting the deployment takes its ReplicaSets and pods with it.
  r = k.kubectl({"delete", "deployment", "hello"});
  EXPECT_TRUE(contains(r.output, "deployment.apps \"hello\" deleted")) << r.output;
  EXPECT_TRUE(waitUntil(
      [&] {
        return k.kubectl({"get", "rs,pods", "-l", "app=hello", "-o", "name"}).output.empty();
      },
      seconds(60)));
  stopChild(*watcher, seconds(5));
  std::string watched = readFile(watchLog).value_or("");
  EXPECT_TRUE(contains(watched, "ADDED") && contains(watched, "MODIFIED") &&
              contains(watched, "DELETED"))
      << watched;
}

TEST(KubectlTest, UsersSeeAndChangeOnlyWhatTheirRolesAllow) {
  TempDir dir;
  ASSERT_TRUE(writeFileAtomic(dir.path() + "/users.yaml", R"(
users:
  - {name: alice, token: alice-token-0123456789, groups: [team-a]}
  - {name: bob, token: bob-token-0123456789}
bindings:
  - {group: team-a, namespace: team-a, role: edit}
  - {user: bob, namespace: team-a, role: view}
)").ok());
  KubeCluster k(1, "cpus:2;mem:2048", {"--kube_users=" + dir.path() + "/users.yaml"});
  REQUIRE_CLUSTER(k);
  for (const char* ns : {"team-a", "team-b"}) {
    ASSERT_EQ(k.kubectl({"create", "namespace", ns}).exitCode, 0);  // the administrator
  }
  auto as = [&](const std::string& user, std::vector<std::string> args) {
    args.insert(args.begin(), "--token=" + user + "-token-0123456789");
    return k.kubectl(args);
  };
  // kubectl auth can-i asks the API (SelfSubjectAccessReview): yes exits 0, no exits 1.
  auto canI = [&](const std::string& user, const std::vector<std::string>& what) {
    std::vector<std::string> args = {"auth", "can-i"};
    args.insert(args.end(), what.begin(), what.end());
    CommandResult r = as(user, args);
    std::string out = r.output;  // its answer is the last line (after any warning)
    while (!out.empty() && out.back() == '\n') out.pop_back();
    out = out.substr(out.rfind('\n') + 1);
    return std::to_string(r.exitCode) + " " + out.substr(0, out.find(" - "));  // no its reason
  };
  EXPECT_EQ(canI("alice", {"create", "deployments", "-n", "team-a"}), "0 yes");
  EXPECT_EQ(canI("alice", {"delete", "pods", "-n", "team-a"}), "0 yes");
  EXPECT_EQ(canI("alice", {"create", "deployments", "-n", "team-b"}), "1 no");
  EXPECT_EQ(canI("alice", {"list", "nodes"}), "1 no");
  EXPECT_EQ(canI("bob", {"list", "pods", "-n", "team-a"}), "0 yes");
  EXPECT_EQ(canI("bob", {"create", "pods", "-n", "team-a"}), "1 no");
  EXPECT_EQ(canI("bob", {"get", "secrets", "-n", "team-a"}), "1 no");  // view reads no Secrets
  EXPECT_EQ(canI("bob", {"create", "pods/exec", "-n", "team-a"}), "1 no");

  // And the API holds them to it.
  EXPECT_EQ(as("alice", {"create", "configmap", "settings", "-n", "team-a"}).exitCode, 0);
  CommandResult other = as("alice", {"create", "configmap", "settings", "-n", "team-b"});
  EXPECT_NE(other.exitCode, 0);
  EXPECT_NE(other.output.find("configmaps is forbidden"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("User \"alice\" cannot create resource \"configmaps\" in API "
                              "group \"\" in the namespace \"team-b\""),
            std::string::npos)
      << other.output;
  CommandResult read = as("bob", {"get", "configmap", "settings", "-n", "team-a"});
  EXPECT_EQ(read.exitCode, 0) << read.output;
  CommandResult write = as("bob", {"delete", "configmap", "settings", "-n", "team-a"});
  EXPECT_NE(write.exitCode, 0);
  EXPECT_NE(write.output.find("Forbidden"), std::string::npos) << write.output;
  CommandResult nodes = as("alice", {"get", "nodes"});
  EXPECT_NE(nodes.exitCode, 0);
  EXPECT_NE(nodes.output.find("at the cluster scope"), std::string::npos) << nodes.output;
  CommandResult stranger = as("mallory", {"get", "pods"});
  EXPECT_NE(stranger.exitCode, 0);
  EXPECT_NE(stranger.output.find("Unauthorized"), std::string::npos) << stranger.output;
  // The configmap bob could not delete is still there; the administrator sees everything.
  EXPECT_EQ(k.kubectl({"get", "configmap", "settings", "-n", "team-a"}).exitCode, 0);
  CommandResult admin = k.kubectl({"auth", "can-i", "delete", "nodes"});
  EXPECT_EQ(admin.exitCode, 0) << admin.output;
}

TEST(KubectlTest, NamespacesConfigMapsSecretsAndDeleteAll) {
  KubeCluster k(1);
  REQUIRE_CLUSTER(k);
  auto r = k.kubectl({"create", "namespace", "team"});
  EXPECT_TRUE(contains(r.output, "namespace/team created")) << r.output;
  r = k.kubectl({"-n", "team", "create", "configmap", "settings", "--from-literal=color=blue"});
  EXPECT_TRUE(contains(r.output, "configmap/settings created")) << r.output;
  r = k.kubectl({"-n", "team", "create", "secret", "generic", "pw", "--from-literal=pw=hunter2"});
  EXPECT_TRUE(contains(r.output, "secret/pw created")) << r.output;
  r = k.kubectl({"-n", "team", "get", "configmaps"});
  EXPECT_TRUE(contains(r.output, "settings   1")) << r.output;
  r = k.kubectl({"-n", "team", "get", "secrets"});
  EXPECT_TRUE(contains(r.output, "pw     Opaque   1")) << r.output;
  EXPECT_EQ(k.kubectl({"-n", "team", "get", "secret", "pw", "-o", "jsonpath={.data.pw}"}).output,
            "aHVudGVyMg==");
  r = k.kubectl({"get", "configmaps"});
  EXPECT_TRUE(contains(r.output, "No resources found in default namespace")) << r.output;
  r = k.kubectl({"-n", "team", "delete", "configmaps", "--all"});
  EXPECT_TRUE(contains(r.output, "configmap \"settings\" deleted")) << r.output;
  r = k.kubectl({"delete", "namespace", "team"});
  EXPECT_TRUE(contains(r.output, "namespace \"team\" deleted")) << r.output;
  r = k.kubectl({"get", "namespace", "team"});
  EXPECT_TRUE(contains(r.output, "NotFound")) << r.output;
  r = k.kubectl({"-n", "team", "get", "secrets", "-o", "name"});
  EXPECT_EQ(r.output.find("secret/"), std::string::npos) << r.output;
}

TEST(KubectlTest, CrashLoopsReadinessAndUnschedulablePods) {
  KubeCluster k(1, "cpus:2;mem:2048");
  REQUIRE_CLUSTER(k);
  std::string file = k.home() + "/pods.yaml";
  ASSERT_TRUE(writeFileAtomic(file, R"(apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  containers:
  - {name: c, image: agora/host, command: ["sh", "-c", "exit 3"]}
---
apiVersion: v1
kind: Pod
metadata: {name: gated}
spec:
  containers:
  - name: c
    image: agora/host
    command: ["sh", "-c", "sleep 3; touch ready; sleep 3600"]  # // ok: the pod's own command
    readinessProbe:
      exec: {command: ["test", "-e", "ready"]}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: huge}
spec:
  containers:
  - name: c
    image: agora/host
    command: ["sleep", "3600"]
    resources: {requests: {cpu: "16"}}
)")
                  .ok());
  auto r = k.kubectl({"apply", "-f", file});
  ASSERT_EQ(r.exitCode, 0) << r.output;

  // Readiness gates READY: Running but 0/1 until the probe passes.
  EXPECT_TRUE(waitUntil([&] {
    return contains(k.kubectl({"get", "pod", "gated"}).output, "0/1     Running");
  }, seconds(30)));
  EXPECT_TRUE(waitUntil([&] {
    return contains(k.kubectl({"get", "pod", "gated"}).output, "1/1     Running");
  }, seconds(30)));

  // Too big for any agent: Pending, and says why.
  EXPECT_TRUE(waitUntil([&] {
    return contains(k.kubectl({"describe", "pod", "huge"}).output,
                    "0/1 nodes are available: 1 Insufficient cpu.");
  }, seconds(30)));
  EXPECT_EQ(k.kubectl({"get", "pod", "huge", "-o", "jsonpath={.status.phase}"}).output,
            "Pending");
  EXPECT_EQ(k.kubectl({"get", "pod", "huge", "-o",
                       "jsonpath={.status.conditions[0].reason}"}).output,
            "Unschedulable");

  // A crashing container: CrashLoopBackOff, restarted after growing delays (10 s, then 20 s).
  EXPECT_TRUE(waitUntil([&] {
    return contains(k.kubectl({"get", "pod", "crash"}).output, "CrashLoopBackOff");
  }, seconds(30)));
  std::string waitingFor;
  EXPECT_TRUE(waitUntil([&] {
    waitingFor = k.kubectl({"get", "pod", "crash", "-o",
                            "jsonpath={.status.containerStatuses[0].state.waiting.message}"})
                     .output;
    return contains(waitingFor, "back-off 20");
  }, seconds(40))) << waitingFor;
  EXPECT_EQ(k.kubectl({"get", "pod", "crash", "-o",
                       "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}"})
                .output,
            "3");
  r = k.kubectl({"delete", "-f", file, "--wait=true"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
}

TEST(KubectlTest, BadInputGetsKubernetesStyleErrorsAndStoresNothing) {
  KubeCluster k(1);
  REQUIRE_CLUSTER(k);
  std::string dir = k.home();
  auto write = [&](const std::string& name, const std::string& text) {
    EXPECT_TRUE(writeFileAtomic(dir + "/" + name, text).ok());
    return dir + "/" + name;
  };
  auto r = k.kubectl({"apply", "-f", write("bad.yaml", "apiVersion: v1\nkind: ConfigMap\n"
                                                       "metadata: {name: x\n")});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "error converting YAML to JSON")) << r.output;
  r = k.kubectl({"apply", "-f", write("kind.yaml", "apiVersion: v1\nkind: Gizmo\n"
                                                   "metadata: {name: x}\n")});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "no matches for kind \"Gizmo\"")) << r.output;
  r = k.kubectl({"create", "configmap", "Bad_Name", "--from-literal=a=b"});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "is invalid: metadata.name: Invalid value: \"Bad_Name\"")) << r.output;
  r = k.kubectl({"apply", "-f", write("field.yaml", "apiVersion: v1\nkind: ConfigMap\n"
                                                    "metadata: {name: x, bogus: 1}\n")});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "unknown field \"metadata.bogus\"")) << r.output;

  // A stale resourceVersion: 409 Conflict.
  r = k.kubectl({"create", "configmap", "cm", "--from-literal=a=1"});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  std::string stale = k.kubectl({"get", "configmap", "cm", "-o", "json"}).output;
  r = k.kubectl({"patch", "configmap", "cm", "-p", "{\"data\":{\"a\":\"2\"}}"});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  r = k.kubectl({"replace", "-f", write("stale.json", stale)});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "Error from server (Conflict)")) << r.output;
  EXPECT_EQ(k.kubectl({"get", "configmap", "cm", "-o", "jsonpath={.data.a}"}).output, "2");

  // An immutable field: 422 Invalid.
  r = k.kubectl({"create", "deployment", "web", "--image=agora/host", "--", "sleep", "3600"});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  r = k.kubectl({"patch", "deployment", "web", "--type=merge", "-p",
                 R"({"spec":{"selector":{"matchLabels":{"app":"other"}},)"
                 R"("template":{"metadata":{"labels":{"app":"other"}}}}})"});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "field is immutable")) << r.output;

  // No valid token: Unauthorized, and nothing is done.
  r = k.kubectl({"--token=wrong", "create", "configmap", "sneaky", "--from-literal=a=b"});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_TRUE(contains(r.output, "Unauthorized")) << r.output;
  r = k.kubectl({"get", "configmaps", "-o", "name"});
  EXPECT_FALSE(contains(r.output, "sneaky") || contains(r.output, "/x")) << r.output;
}

TEST(KubectlTest, LabelsPauseRestartCascadesServicesAndChunks) {
  KubeCluster k(1, "cpus:4;mem:4096");
  REQUIRE_CLUSTER(k);
  auto r = k.kubectl({"apply", "-f", examplePath()});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  r = k.kubectl({"rollout", "status", "deployment/hello", "--timeout=60s"});
  ASSERT_EQ(r.exitCode, 0) << r.output;

  r = k.kubectl({"label", "deployment", "hello", "tier=web"});
  EXPECT_TRUE(contains(r.output, "deployment.apps/hello labeled")) << r.output;
  r = k.kubectl({"annotate", "deployment", "hello", "owner=team-a"});
  EXPECT_TRUE(contains(r.output, "deployment.apps/hello annotated")) << r.output;
  EXPECT_EQ(k.kubectl({"get", "deployments", "-l", "tier=web", "-o", "name"}).output,
            "deployment.apps/hello\n");

  // Paused: a template change waits; resumed: it rolls. restart: a new rollout of the same.
  r = k.kubectl({"rollout", "pause", "deployment/hello"});
  EXPECT_TRUE(contains(r.output, "paused")) << r.output;
  r = k.kubectl({"set", "env", "deployment/hello", "GREETING=paused"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
  std::string paused = k.kubectl({"get", "rs", "-o", "name"}).output;
  EXPECT_EQ(std::count(paused.begin(), paused.end(), '\n'), 1) << paused;
  r = k.kubectl({"rollout", "resume", "deployment/hello"});
  EXPECT_TRUE(contains(r.output, "resumed")) << r.output;
  r = k.kubectl({"rollout", "status", "deployment/hello", "--timeout=60s"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
  r = k.kubectl({"rollout", "restart", "deployment/hello"});
  EXPECT_TRUE(contains(r.output, "restarted")) << r.output;
  r = k.kubectl({"rollout", "status", "deployment/hello", "--timeout=60s"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
  std::string sets = k.kubectl({"get", "rs", "-o", "name"}).output;
  EXPECT_EQ(std::count(sets.begin(), sets.end(), '\n'), 3) << sets;

  // Pages of one: the continue token walks them all.
  r = k.kubectl({"get", "pods", "--chunk-size=1", "-o", "name"});
  std::string paged = r.output;
  EXPECT_EQ(std::count(paged.begin(), paged.end(), '\n'), 3) << paged;

  // Services: stored, listed with their ports.
  r = k.kubectl({"expose", "deployment", "hello", "--port=80", "--target-port=8080"});
  EXPECT_TRUE(contains(r.output, "service/hello exposed")) << r.output;
  r = k.kubectl({"get", "services"});
  EXPECT_TRUE(contains(r.output, "hello") && contains(r.output, "80/TCP")) << r.output;
  // Addresses from the loopback ranges; endpoints from the ready pods.
  r = k.kubectl({"create", "service", "nodeport", "np", "--tcp=80:8080"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
  r = k.kubectl({"create", "service", "loadbalancer", "lb", "--tcp=443:8443"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
  r = k.kubectl({"get", "svc", "-o", "wide"});
  // (Each test cluster has ranges of its own: kubeNetworkEnv().)
  EXPECT_TRUE(contains(r.output, "127.96.") && contains(r.output, "80:3") &&
              contains(r.output, "127.97.") && contains(r.output, "app=hello"))
      << r.output;
  EXPECT_TRUE(waitUntil([&] {
    std::string ips = k.kubectl({"get", "endpoints", "hello", "-o",
                                 "jsonpath={.subsets[0].addresses[*].targetRef.name}"}).output;
    return std::count(ips.begin(), ips.end(), ' ') == 2;  // three pods
  }, seconds(30)));
  r = k.kubectl({"describe", "svc", "hello"});
  EXPECT_TRUE(contains(r.output, "Endpoints:") && contains(r.output, ":8080")) << r.output;

  // Orphan: the ReplicaSets stay, without their owner; foreground: the owner goes last.
  r = k.kubectl({"delete", "deployment", "hello", "--cascade=orphan"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(waitUntil([&] {
    return k.kubectl({"get", "deployment", "hello", "-o", "name"}).exitCode != 0;
  }, seconds(30)));
  json orphans = k.json({"get", "rs"});
  ASSERT_EQ(orphans.value("items", json::array()).size(), 3u) << orphans.dump();
  for (const auto& rs : orphans["items"]) {
    EXPECT_TRUE(rs["metadata"].value("ownerReferences", json::array()).empty()) << rs.dump();
  }
  std::string name = orphans["items"][0]["metadata"].value("name", "");
  r = k.kubectl({"delete", "rs", "--all", "--cascade=foreground"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(waitUntil([&] {
    return k.kubectl({"get", "rs,pods", "-o", "name"}).output.empty();
  }, seconds(60)));

  r = k.kubectl({"run", "one", "--image=agora/host", "--restart=Never", "--", "true"});
  EXPECT_TRUE(contains(r.output, "pod/one created")) << r.output;
  EXPECT_TRUE(waitUntil([&] {
    return contains(k.kubectl({"get", "pod", "one"}).output, "Completed");
  }, seconds(30)));
}

TEST(KubectlTest, PodsKeepRunningAcrossARestartOfTheKubeFramework) {
  KubeCluster k(1);
  REQUIRE_CLUSTER(k);
  auto r = k.kubectl({"apply", "-f", examplePath()});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  r = k.kubectl({"rollout", "status", "deployment/hello", "--timeout=60s"});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  std::string before =
      k.kubectl({"get", "pods", "-o", "jsonpath={.items[*].metadata.uid}"}).output;

  // Stop `agora kube` alone; `agora up` starts it again.
  int pid = k.daemonPid("kube");
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGTERM);
  ASSERT_TRUE(waitUntil([&] { return !processAlive(pid); }, seconds(30)));
  r = k.agora({"up"});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "Restarted kube")) << r.output;
  EXPECT_TRUE(waitUntil([&] { return allReady(k, "hello", 3); }, seconds(60)));
  EXPECT_EQ(k.kubectl({"get", "pods", "-o", "jsonpath={.items[*].metadata.uid}"}).output, before);
  r = k.kubectl({"get", "pods"});
  EXPECT_FALSE(contains(r.output, "Terminating")) << r.output;
}

TEST(KubectlTest, APodHeldBackByItsRolesQuotaSaysSo) {
  KubeCluster k(1);
  REQUIRE_CLUSTER(k);
  // Once the framework has nothing to place it declines its offers and asks for no more; then
  // the role's quota is capped below what the pod asks.
  ASSERT_TRUE(waitUntil([&] {
    return contains(k.agora({"roles", "--why"}).output, "suppressed");
  }, seconds(30))) << k.agora({"roles", "--why"}).output;
  auto r = k.agora({"quota", "set", "kube", "--limit=cpus:0.5"});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  std::string file = k.home() + "/big.yaml";
  ASSERT_TRUE(writeFileAtomic(file, "apiVersion: v1\nkind: Pod\nmetadata: {name: big}\nspec:\n"
                                    "  containers:\n  - {name: c, image: agora/host, "
                                    "command: [sleep, \"100\"], "
                                    "resources: {requests: {cpu: \"1\"}}}\n")
                  .ok());
  r = k.kubectl({"apply", "-f", file});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  std::string described;
  EXPECT_TRUE(waitUntil([&] {
    described = k.kubectl({"describe", "pod", "big"}).output;
    return contains(described, "quota limit");
  }, seconds(30))) << described;
  EXPECT_EQ(k.kubectl({"get", "pod", "big", "-o", "jsonpath={.status.phase}"}).output, "Pending");
}

TEST(KubectlTest, OlderAndNewerKubectlWork) {
  KubeCluster k(1);
  REQUIRE_CLUSTER(k);
  for (const std::string version : {"1.27", "1.33"}) {
    if (!KubeCluster::haveKubectl(version)) {
      ADD_FAILURE() << "kubectl." << version << " is missing";
      continue;
    }
    std::string name = "cm-" + version.substr(2);
    auto r = k.kubectl({"get", "nodes"}, version);
    EXPECT_TRUE(contains(r.output, "Ready")) << version << ": " << r.output;
    r = k.kubectl({"create", "configmap", name, "--from-literal=a=b"}, version);
    EXPECT_TRUE(contains(r.output, "created")) << version << ": " << r.output;
    r = k.kubectl({"apply", "-f", examplePath()}, version);
    EXPECT_EQ(r.exitCode, 0) << version << ": " << r.output;
    r = k.kubectl({"rollout", "status", "deployment/hello", "--timeout=60s"}, version);
    EXPECT_TRUE(contains(r.output, "successfully rolled out")) << version << ": " << r.output;
    r = k.kubectl({"get", "pods"}, version);
    EXPECT_TRUE(contains(r.output, "Running")) << version << ": " << r.output;
    r = k.kubectl({"delete", "deployment", "hello"}, version);
    EXPECT_TRUE(contains(r.output, "deleted")) << version << ": " << r.output;
    r = k.kubectl({"delete", "configmap", name}, version);
    EXPECT_TRUE(contains(r.output, "deleted")) << version << ": " << r.output;
  }
}

}  // namespace
}  // namespace agora::testing
