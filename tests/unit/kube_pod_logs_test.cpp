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

TEST(PodLogsTest, SinceAndTimestampsComeFromWhenTheOutputGrew) {
  // "a\n" by 100.5, "bb\n" by 101.5, "ccc\n" by 103.5, "dd" (no end yet) not noted.
  std::string text = "a\nbb\nccc\ndd";
  auto times = parseOutputTimes("100.5 2\n101.5 5\n103.5 9\ngarbage\n");
  ASSERT_EQ(times.size(), 3u);
  EXPECT_EQ(times[2].size, 9);
  EXPECT_EQ(text.substr(sinceOffset(text, times, 0)), text);
  EXPECT_EQ(text.substr(sinceOffset(text, times, 101)), "bb\nccc\ndd");
  EXPECT_EQ(text.substr(sinceOffset(text, times, 102)), "ccc\ndd");
  EXPECT_EQ(text.substr(sinceOffset(text, times, 200)), "dd");
  // A note in the middle of a line: the line is older than the cutoff, and left out.
  EXPECT_EQ(text.substr(sinceOffset(text, {{100, 3}}, 101)), "ccc\ndd");

  EXPECT_EQ(withTimestamps("a\nbb\n", 0, times, 999),
            "1970-01-01T00:01:40.500000000Z a\n1970-01-01T00:01:41.500000000Z bb\n");
  // From an offset, and past the notes: `now`.
  EXPECT_EQ(withTimestamps("ccc\ndd", 5, times, 200.25),
            "1970-01-01T00:01:43.500000000Z ccc\n1970-01-01T00:03:20.250000000Z dd");

  // The query: sinceSeconds from now, or sinceTime, not both; timestamps.
  auto since = logRequest(pod({"main"}), {{"sinceSeconds", "60"}, {"timestamps", "true"}},
                          "h:1", 1000);
  ASSERT_TRUE(since.ok()) << since.error();
  EXPECT_DOUBLE_EQ(since->since.value_or(0), 940);
  EXPECT_TRUE(since->timestamps);
  auto at = logRequest(pod({"main"}), {{"sinceTime", "2026-11-30T02:00:00Z"}}, "h:1", 0);
  ASSERT_TRUE(at.ok()) << at.error();
  EXPECT_DOUBLE_EQ(at->since.value_or(0), 1796004000);
  EXPECT_FALSE(logRequest(pod({"main"}), {{"sinceTime", "yesterday"}}, "h:1").ok());
  EXPECT_FALSE(logRequest(pod({"main"}), {{"sinceSeconds", "5"}, {"sinceTime",
                                           "2026-11-30T02:00:00Z"}}, "h:1").ok());
}

}  // namespace
}  // namespace agora::kube
