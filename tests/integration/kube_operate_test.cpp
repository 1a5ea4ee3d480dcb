// Operating pods with the stock kubectl on `agora up`: logs.

#include <algorithm>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "tests/support/kube_cluster.hpp"

namespace agora::testing {
namespace {

using json = nlohmann::json;

#define REQUIRE_CLUSTER(cluster)                                               \
  if (!KubeCluster::haveKubectl()) GTEST_SKIP() << "no kubectl on the PATH";   \
  ASSERT_TRUE((cluster).up()) << (cluster).upOutput()

json hostContainer(const std::string& name, const std::string& script) {
  return {{"name", name},
          {"image", "agora/host"},
          {"command", {"/bin/sh", "-c", script}},
          {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "32Mi"}}}}}};
}

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
                                "do echo tick $i; i=$((i+1)); sleep 0.1; done"),
          hostContainer("side", "echo side says hi; exec sleep 600")}}}}};
  json crasher = {{"apiVersion", "v1"},
                  {"kind", "Pod"},
                  {"metadata", {{"name", "crasher"}}},
                  {"spec",
                   {{"containers",
                     {hostContainer("main", "echo run at $(date +%s%N); sleep 1; exit 3")}}}}};
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

}  // namespace
}  // namespace agora::testing
