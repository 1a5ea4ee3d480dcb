// Two `agora kube` instances on one ZooKeeper store (a real ZooKeeper server): one leads and
// serves, the other stands by and takes over, with every object and its resourceVersion, when
// the leader dies.

#include <csignal>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/http.hpp"
#include "common/net.hpp"
#include "common/fs.hpp"
#include "common/process.hpp"
#include "tests/support/kube_cluster.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/zookeeper_server.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

bool serving(const std::string& address) {
  auto r = httpGet(address, "/healthz", seconds(1));
  return r && r->status == 200;
}

uint64_t versionOf(const HttpResponse& r) {
  json body = json::parse(r.body, nullptr, false);
  return std::stoull(body["metadata"].value("resourceVersion", "0"));
}

TEST(KubeHaTest, AStandbyTakesOverWithTheObjectsAndTheirVersions) {
  if (!ZooKeeperServer::available()) {
    GTEST_SKIP() << "no ZooKeeper server installed";
  }
  ZooKeeperServer zk;
  ASSERT_TRUE(zk.start().ok());
  TempDir dir;
  std::string first = "127.0.0.1:" + std::to_string(freeLoopbackPort());
  std::string second = "127.0.0.1:" + std::to_string(freeLoopbackPort());
  auto start = [&](const std::string& listen, const std::string& name) {
    return spawnChild({AGORA_BINARY, "kube", "--zk=" + zk.url("/kube"),
                       "--zk_session_timeout=2secs", "--listen=" + listen,
                       "--data_dir=" + dir.path() + "/" + name, "--insecure_http"},
                      dir.path() + "/" + name + ".log");
  };
  auto leader = start(first, "first");
  ASSERT_TRUE(leader.ok());
  ASSERT_TRUE(waitUntil([&] { return serving(first); }, seconds(20)));
  auto standby = start(second, "second");
  ASSERT_TRUE(standby.ok());

  auto created = httpRequest("POST", first, "/api/v1/namespaces/default/configmaps",
                             R"({"apiVersion":"v1","kind":"ConfigMap",)"
                             R"("metadata":{"name":"settings"},"data":{"color":"blue"}})");
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(created->status, 201) << created->body;
  auto patched = httpRequest("PATCH", first, "/api/v1/namespaces/default/configmaps/settings",
                             R"({"data":{"color":"green"}})", seconds(10),
                             "application/merge-patch+json");
  ASSERT_TRUE(patched.ok());
  ASSERT_EQ(patched->status, 200) << patched->body;
  uint64_t before = versionOf(*created);
  uint64_t changed = versionOf(*patched);
  EXPECT_GT(changed, before);
  EXPECT_FALSE(serving(second)) << "the standby serves while the leader lives";

  // The leader dies: the standby leads, with the objects as they were.
  stopChild(*leader, seconds(5), SIGKILL);
  ASSERT_TRUE(waitUntil([&] { return serving(second); }, seconds(30)));
  auto got = httpGet(second, "/api/v1/namespaces/default/configmaps/settings");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->status, 200) << got->body;
  EXPECT_EQ(json::parse(got->body)["data"]["color"], "green");
  EXPECT_EQ(versionOf(*got), changed);
  auto again = httpRequest("POST", second, "/api/v1/namespaces/default/configmaps",
                           R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"more"}})");
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->status, 201) << again->body;
  EXPECT_GT(versionOf(*again), changed);
  // The default namespaces were made once, not again.
  auto namespaces = httpGet(second, "/api/v1/namespaces");
  ASSERT_TRUE(namespaces.ok());
  EXPECT_EQ(json::parse(namespaces->body)["items"].size(), 4u);

  // A watch from before the takeover: Gone, and the client lists again.
  auto watched = httpGet(second,
                         "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1"
                         "&resourceVersion=" + std::to_string(before),
                         seconds(10));
  ASSERT_TRUE(watched.ok());
  EXPECT_NE(watched->body.find("\"code\":410"), std::string::npos) << watched->body;

  // A leader that is paused past its session: the other takes over, and the paused one, when it
  // wakes, stops at once instead of acting as a second leader.
  auto comeback = start(first, "third");
  ASSERT_TRUE(comeback.ok());
  ::kill(*standby, SIGSTOP);
  ASSERT_TRUE(waitUntil([&] { return serving(first); }, seconds(30)));
  ::kill(*standby, SIGCONT);
  EXPECT_TRUE(waitUntil([&] { return !processAlive(*standby); }, seconds(30)));
  auto latest = httpGet(first, "/api/v1/namespaces/default/configmaps/more");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->status, 200) << latest->body;
  stopChild(*standby, seconds(1), SIGKILL);
  stopChild(*comeback, seconds(10));
}

// `agora up --ha`: two supervised kube instances on the profile's ZooKeeper, on one address;
// kubectl keeps working, with the same objects and pods, when the leader is killed.
TEST(KubeHaTest, AgoraUpHaKeepsKubectlWorkingWhenTheLeaderDies) {
  if (!ZooKeeperServer::available() || !KubeCluster::haveKubectl()) {
    GTEST_SKIP() << "needs a ZooKeeper server and kubectl";
  }
  KubeCluster k(1, "cpus:2;mem:2048", {"--ha"});
  ASSERT_TRUE(k.up()) << k.upOutput();
  auto r = k.kubectl({"create", "configmap", "kept", "--from-literal=a=b"});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  r = k.kubectl({"create", "deployment", "d", "--image=agora/host", "--", "sleep", "3600"});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  r = k.kubectl({"rollout", "status", "deployment/d", "--timeout=60s"});
  ASSERT_EQ(r.exitCode, 0) << r.output;
  std::string pods = k.kubectl({"get", "pods", "-o", "jsonpath={.items[*].metadata.uid}"}).output;

  // The leader is the instance that wrote info.json; kill its process (its supervisor starts it
  // again, as a standby).
  json info = json::parse(readFile(k.home() + "/profiles/default/kube/info.json").value_or("{}"),
                          nullptr, false);
  int leader = info.value("pid", 0);
  ASSERT_GT(leader, 0);
  ::kill(leader, SIGKILL);
  EXPECT_TRUE(waitUntil([&] {
    return k.kubectl({"get", "configmap", "kept", "-o", "jsonpath={.data.a}"}).output == "b";
  }, seconds(60)));
  EXPECT_EQ(k.kubectl({"get", "pods", "-o", "jsonpath={.items[*].metadata.uid}"}).output, pods);
  r = k.kubectl({"scale", "deployment", "d", "--replicas=2"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
  r = k.kubectl({"rollout", "status", "deployment/d", "--timeout=60s"});
  EXPECT_EQ(r.exitCode, 0) << r.output;
}

}  // namespace
}  // namespace agora::testing
