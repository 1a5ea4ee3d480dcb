#include "frameworks/k8s-like/scheduler/pod_logs.hpp"

#include <gtest/gtest.h>

namespace agora::kube {
namespace {

using json = nlohmann::json;

json pod(std::vector<std::string> containers, const std::string& node = "node-1") {
  json list = json::array();
  for (const std::string& c : containers) list.push_back({{"name", c}, {"image", "x"}});
  return {{"metadata", {{"name", "p"}, {"uid", "u-1"}}},
          {"spec", {{"containers", list}, {"nodeName", node}}}};
}

TEST(PodLogsTest, TheLastLinesOfALog) {
  EXPECT_EQ(lastLines("a\nb\nc\n", 2), "b\nc\n");
  EXPECT_EQ(lastLines("a\nb\nc", 1), "c");  // a last line still being written counts
  EXPECT_EQ(lastLines("a\nb\n", 5), "a\nb\n");
  EXPECT_EQ(lastLines("a\nb\n", 0), "");
  EXPECT_EQ(lastLines("", 3), "");
}

TEST(PodLogsTest, ARequestNamesOneOfThePodsContainers) {
  auto one = logRequest(pod({"main"}), {{"follow", "true"}, {"tailLines", "10"}}, "127.0.0.1:5051");
  ASSERT_TRUE(one.ok()) << one.error();
  EXPECT_EQ(one->container, "main");
  EXPECT_EQ(one->taskId, "u-1.main");
  EXPECT_TRUE(one->follow);
  EXPECT_FALSE(one->previous);
  EXPECT_EQ(one->tailLines.value_or(-1), 10);
  EXPECT_FALSE(one->limitBytes.has_value());
  // Two containers: the request must say which.
  auto which = logRequest(pod({"a", "b"}), {}, "127.0.0.1:5051");
  ASSERT_FALSE(which.ok());
  EXPECT_EQ(which.error(), "a container name must be specified for pod p, choose one of: [a b]");
  EXPECT_TRUE(logRequest(pod({"a", "b"}), {{"container", "b"}}, "h:1").ok());
  EXPECT_FALSE(logRequest(pod({"a"}), {{"container", "c"}}, "h:1").ok());
  // Bad numbers, and a pod not on a node yet.
  EXPECT_FALSE(logRequest(pod({"a"}), {{"tailLines", "-1"}}, "h:1").ok());
  EXPECT_FALSE(logRequest(pod({"a"}), {{"limitBytes", "ten"}}, "h:1").ok());
  EXPECT_FALSE(logRequest(pod({"a"}, ""), {}, "h:1").ok());
  EXPECT_FALSE(logRequest(pod({"a"}), {}, "").ok());
}

}  // namespace
}  // namespace agora::kube
