// cgroups layout detection and container operations over fake cgroup trees (v1 and v2); the
// real v1 hierarchy of this machine is exercised by tests/integration/cgroups_test.cpp.

#include <gtest/gtest.h>

#include "isolators/cgroups.hpp"
#include "isolators/device_bpf.hpp"
#include "common/fs.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::cgroups {
namespace {

const char* kV1Mountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
const char* kV1Self =
    "9:name=systemd:/\n8:pids:/\n6:freezer:/\n5:devices:/\n4:memory:/process_api/abc\n"
    "2:cpuacct:/\n1:cpu:/\n0::/\n";

TEST(CgroupsLayoutTest, V1WithAnAlmostEmptyV2Tree) {
  auto layout = parseLayout(kV1Mountinfo, kV1Self, "hugetlb");
  ASSERT_TRUE(layout) << layout.error();
  EXPECT_FALSE(layout->v2);
  EXPECT_EQ(layout->v1Mounts.at("memory"), "/sys/fs/cgroup/memory");
  EXPECT_EQ(layout->v1Paths.at("memory"), "/process_api/abc");
  EXPECT_EQ(layout->v1Paths.at("cpu"), "/");
  Container c(*layout, "agora", "c1");
  EXPECT_EQ(c.path("memory"), "/sys/fs/cgroup/memory/process_api/abc/agora/c1");
  EXPECT_EQ(c.path("cpu"), "/sys/fs/cgroup/cpu/agora/c1");
  Container rooted(*layout, "/agora", "c1");  // --cgroups_root from the top
  EXPECT_EQ(rooted.path("memory"), "/sys/fs/cgroup/memory/agora/c1");
}

TEST(CgroupsLayoutTest, PureV2AndACgroupNamespaceRoot) {
  const char* mountinfo = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
  auto layout = parseLayout(mountinfo, "0::/system.slice/agora-agent.service\n",
                            "cpuset cpu io memory hugetlb pids rdma misc");
  ASSERT_TRUE(layout) << layout.error();
  EXPECT_TRUE(layout->v2);
  Container c(*layout, "agora", "c1");
  EXPECT_EQ(c.path(""), "/sys/fs/cgroup/system.slice/agora-agent.service/agora/c1");

  // Seen from inside a container, the mount's root is our own cgroup.
  const char* nested = "30 25 0:26 /kube/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
  layout = parseLayout(nested, "0::/kube/pod1/agent\n", "cpu memory pids");
  ASSERT_TRUE(layout);
  EXPECT_EQ(layout->v2Path, "/agent");
}

TEST(CgroupsLayoutTest, MissingControllersAreAClearError) {
  auto layout = parseLayout("41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/\n",
                            "io hugetlb");
  ASSERT_FALSE(layout);
  EXPECT_NE(layout.error().find("'cpu'"), std::string::npos) << layout.error();
}

// A fake v2 tree: the files the kernel would have, empty.
void touch(const std::string& path, const std::string& content = "") {
  ASSERT_TRUE(writeFileAtomic(path, content).ok()) << path;
}

TEST(CgroupsContainerTest, V2LimitsAndStatsOnAFakeTree) {
  agora::testing::TempDir root;
  Layout layout;
  layout.v2 = true;
  layout.v2Mount = root.path();
  layout.v2Path = "/agent.slice";
  ASSERT_TRUE(makeDirectories(root.path() + "/agent.slice/agora/c1").ok());
  touch(root.path() + "/cgroup.subtree_control");
  touch(root.path() + "/agent.slice/cgroup.subtree_control");
  touch(root.path() + "/agent.slice/agora/cgroup.subtree_control");
  std::string dir = root.path() + "/agent.slice/agora/c1";
  for (const char* f : {"cpu.weight", "cpu.max", "memory.max", "pids.max", "cgroup.procs"}) {
    touch(dir + "/" + f);
  }
  Container c(layout, "agora", "c1");
  ASSERT_TRUE(c.create().ok());
  EXPECT_EQ(*readFile(root.path() + "/agent.slice/agora/cgroup.subtree_control"), "+pids");
  ASSERT_TRUE(c.setCpus(1.5, true).ok());
  EXPECT_EQ(*readFile(dir + "/cpu.weight"), "59");
  EXPECT_EQ(*readFile(dir + "/cpu.max"), "150000 100000");
  ASSERT_TRUE(c.setCpus(0.25, false).ok());
  EXPECT_EQ(*readFile(dir + "/cpu.max"), "max 100000");
  ASSERT_TRUE(c.setMemoryLimit(64 << 20).ok());
  EXPECT_EQ(*readFile(dir + "/memory.max"), "67108864");
  ASSERT_TRUE(c.setPidsLimit(100).ok());
  EXPECT_EQ(*readFile(dir + "/pids.max"), "100");

  touch(dir + "/cpu.stat", "usage_usec 3500000\nuser_usec 3000000\nsystem_usec 500000\n"
                           "nr_periods 10\nnr_throttled 4\nthrottled_usec 250000\n");
  touch(dir + "/memory.current", "1048576\n");
  touch(dir + "/memory.stat", "anon 786432\nfile 262144\n");
  touch(dir + "/memory.max", "67108864\n");
  touch(dir + "/pids.current", "3\n");
  touch(dir + "/memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n");
  touch(dir + "/cgroup.procs", "12\n13\n14\n");
  auto stats = c.stats();
  ASSERT_TRUE(stats) << stats.error();
  EXPECT_DOUBLE_EQ(stats->userSeconds, 3);
  EXPECT_DOUBLE_EQ(stats->systemSeconds, 0.5);
  EXPECT_EQ(stats->throttledPeriods, 4u);
  EXPECT_DOUBLE_EQ(stats->throttledSeconds, 0.25);
  EXPECT_EQ(stats->memoryBytes, 1048576u);
  EXPECT_EQ(stats->rssBytes, 786432u);
  EXPECT_EQ(stats->memoryLimitBytes, 67108864u);
  EXPECT_EQ(stats->processes, 3u);
  EXPECT_EQ(stats->oomKills, 1u);
  EXPECT_DOUBLE_EQ(stats->cpusLimit, 0);  // "max": no hard limit
  EXPECT_EQ(c.processes(), (std::vector<pid_t>{12, 13, 14}));
  ASSERT_TRUE(c.setCpus(1.5, true).ok());
  EXPECT_DOUBLE_EQ(c.stats()->cpusLimit, 1.5);
}

TEST(CgroupsContainerTest, OnV2TheAgentMovesIntoALeafOfItsOwnCgroup) {
  agora::testing::TempDir root;
  Layout layout;
  layout.v2 = true;
  layout.v2Mount = root.path();
  layout.v2Path = "/agent.slice";
  ASSERT_TRUE(makeDirectories(root.path() + "/agent.slice/agora-agent").ok());
  touch(root.path() + "/agent.slice/agora-agent/cgroup.procs");
  ASSERT_TRUE(leaveOwnCgroupForALeaf(layout, "agora", 4242).ok());
  EXPECT_EQ(*readFile(root.path() + "/agent.slice/agora-agent/cgroup.procs"), "4242");
  // Nothing to do at the root, on v1, or for an absolute containers root.
  layout.v2Path = "/";
  EXPECT_TRUE(leaveOwnCgroupForALeaf(layout, "agora", 1).ok());
  layout.v2Path = "/agent.slice";
  EXPECT_TRUE(leaveOwnCgroupForALeaf(layout, "/agora", 1).ok());
  EXPECT_EQ(*readFile(root.path() + "/agent.slice/agora-agent/cgroup.procs"), "4242");
}

TEST(CgroupsContainerTest, V1LimitsOnAFakeTree) {
  agora::testing::TempDir root;
  auto layout = parseLayout(kV1Mountinfo, kV1Self, "");
  ASSERT_TRUE(layout);
  for (auto& [controller, mount] : layout->v1Mounts) {
    mount = root.path() + "/" + controller;
  }
  Container c(*layout, "agora", "c1");
  ASSERT_TRUE(c.create().ok());
  touch(c.path("cpu") + "/cpu.shares");
  touch(c.path("cpu") + "/cpu.cfs_period_us");
  touch(c.path("cpu") + "/cpu.cfs_quota_us");
  touch(c.path("memory") + "/memory.limit_in_bytes");
  ASSERT_TRUE(c.setCpus(2, true).ok());
  EXPECT_EQ(*readFile(c.path("cpu") + "/cpu.shares"), "2048");
  EXPECT_EQ(*readFile(c.path("cpu") + "/cpu.cfs_quota_us"), "200000");
  ASSERT_TRUE(c.setMemoryLimit(1 << 30).ok());
  EXPECT_EQ(*readFile(c.path("memory") + "/memory.limit_in_bytes"), "1073741824");
  EXPECT_TRUE(pathExists(root.path() + "/memory/process_api/abc/agora/c1"));
}

TEST(CgroupsParseTest, KeyValues) {
  auto m = parseKeyValues("user 12\nsystem 3\n");
  EXPECT_EQ(m["user"], 12u);
  EXPECT_EQ(m["system"], 3u);
  EXPECT_TRUE(parseKeyValues("").empty());
}

TEST(DeviceRulesTest, ParseAndCompileToABpfProgram) {
  auto rule = parseDeviceRule("c 195:* rw");
  ASSERT_TRUE(rule.ok()) << rule.error();
  EXPECT_EQ(rule->type, 'c');
  EXPECT_EQ(rule->major, 195);
  EXPECT_EQ(rule->minor, -1);
  EXPECT_EQ(rule->access, static_cast<uint32_t>(BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE));
  EXPECT_EQ(parseDeviceRule("a")->type, 'a');
  for (const char* bad : {"x 1:3 rwm", "c 1 rwm", "c 1:3 rwx", "c a:3 r", "c 1:3"}) {
    EXPECT_FALSE(parseDeviceRule(bad).ok()) << bad;
  }
  // Seven instructions to read the request, a block per rule, two to deny the rest.
  auto none = deviceProgram({});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->size(), 9u);
  auto program = deviceProgram({"c 1:3 rwm", "c 136:* rw"});
  ASSERT_TRUE(program.ok());
  // "c 1:3 rwm": type, major, minor tests, then allow (3 + 2); "c 136:* rw": type, major,
  // the access test (3), then allow (2 + 3 + 2).
  EXPECT_EQ(program->size(), 7u + 5u + 7u + 2u);
  // The first rule's tests jump past its block, to the second rule.
  EXPECT_EQ((*program)[7].off, 4);
  EXPECT_EQ((*program)[8].off, 3);
  EXPECT_EQ((*program)[9].off, 2);
  EXPECT_FALSE(deviceProgram({"c 1:3 rwm", "nonsense"}).ok());
}

}  // namespace
}  // namespace agora::cgroups
