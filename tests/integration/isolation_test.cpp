// Agents that isolate their containers (cgroups, namespaces), end to end: limits, OOM, devices,
// private /tmp, network, usage, users, and task groups as pods. Needs root.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agora/scheduler.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "isolators/cgroups.hpp"
#include "tests/support/cgroups_root.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/sandbox.hpp"
#include "tests/support/test_scheduler.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

// Agents that isolate containers with cgroups (root only).
class ClusterIsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "cgroups isolation needs root";
    }
    root_ = "agora-it-" + std::to_string(::getpid());
    ProcessClusterOptions options;
    options.agents = 1;
    auto layout = cgroups::detectLayout();
    ASSERT_TRUE(layout) << layout.error();
    devices_ = !layout->v2;
    options.agentFlags = {std::string("--isolation=cgroups/cpu,cgroups/mem,cgroups/pids,") +
                              (devices_ ? "cgroups/devices," : "") +
                              "namespaces/pid,namespaces/mount,namespaces/uts,namespaces/ipc,"
                              "namespaces/net",
                          "--cgroups_root=" + root_, "--max_pids_per_container=64",
                          "--cgroups_enable_cfs", "--usage_interval=200ms"};
    cluster_ = std::make_unique<ProcessCluster>(options);
    ASSERT_TRUE(cluster_->start().ok()) << "see " << cluster_->dir();
  }
  void TearDown() override {
    if (cluster_ != nullptr) {
      cluster_->stop();
    }
    // Every container's cgroups went with it; the agents' root for them goes here.
    removeCgroupsRoot(root_);
  }
  std::string root_;
  bool devices_ = false;
  std::unique_ptr<ProcessCluster> cluster_;
};

TEST_F(ClusterIsolationTest, OnlyTheStandardDevicesAreUsable) {
  if (!devices_) {
    GTEST_SKIP() << "device isolation is for cgroups v1";
  }
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask(
      "devices", "echo zero=$(head -c 3 /dev/zero | wc -c); "
                 "mknod ./mem c 1 1 2>/dev/null && echo mknod=yes || echo mknod=no"));
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("devices").state(), TASK_FINISHED);
  EXPECT_EQ(waitForSandboxFile(scheduler.agentAddress("devices"), "devices", "stdout"),
            "zero=3\nmknod=no\n");
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, ATaskPastItsMemoryFailsWithTheMemoryReasonInItsOwnCgroup) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask("where", "cat /proc/self/cgroup"));
  scheduler.launch(TestScheduler::commandTask(
      "hog", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}", "cpus:1;mem:32"));
  driver.start();
  TaskStatus where = scheduler.waitForEnd("where");
  EXPECT_EQ(where.state(), TASK_FINISHED) << where.message();
  std::string cgroup = waitForSandboxFile(scheduler.agentAddress("where"), "where", "stdout");
  EXPECT_NE(cgroup.find(root_ + "/"), std::string::npos) << cgroup;
  TaskStatus hog = scheduler.waitForEnd("hog", seconds(60));
  EXPECT_EQ(hog.state(), TASK_FAILED);
  EXPECT_EQ(hog.reason(), TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY) << hog.message();
  EXPECT_NE(hog.message().find("memory limit"), std::string::npos) << hog.message();
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, AContainerSeesOnlyItsOwnProcessesAndHostname) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  // Its processes: the executor, the task's shell and ls; the host has many more.
  scheduler.launch(TestScheduler::commandTask(
      "inside", "echo procs=$(ls /proc | grep -c '^[0-9]') host=$(hostname) end"));
  driver.start();
  TaskStatus inside = scheduler.waitForEnd("inside");
  EXPECT_EQ(inside.state(), TASK_FINISHED) << inside.message();
  std::string out = waitForSandboxFile(scheduler.agentAddress("inside"), "inside", "stdout");
  int procs = std::atoi(out.substr(out.find("procs=") + 6).c_str());
  EXPECT_GT(procs, 0) << out;
  EXPECT_LT(procs, 10) << out;
  EXPECT_NE(out.find("host=inside end"), std::string::npos) << out;
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, ATaskCannotLoadAModuleMountOrGainPrivileges) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  // As root: a module that is garbage fails with EPERM from the filter (unconfined, the kernel
  // itself would refuse it as a bad module, with another error); no mount, no user namespace.
  scheduler.launch(TestScheduler::commandTask(
      "confined",
      "head -c 512 /dev/urandom > garbage.ko; "
      "busybox insmod ./garbage.ko 2>&1 | grep -q 'Operation not permitted' && echo insmod=denied; "
      "mkdir -p m; mount -t tmpfs none m 2>/dev/null && echo mount=yes || echo mount=no; "
      "unshare -U true 2>/dev/null && echo userns=yes || echo userns=no; "
      "grep -E '^(NoNewPrivs|Seccomp|CapBnd):' /proc/self/status | tr -d ' \t'"));
  driver.start();
  TaskStatus confined = scheduler.waitForEnd("confined");
  EXPECT_EQ(confined.state(), TASK_FINISHED) << confined.message();
  std::string out = waitForSandboxFile(scheduler.agentAddress("confined"), "confined", "stdout");
  EXPECT_EQ(out.substr(0, out.find("CapBnd")), "insmod=denied\nmount=no\nuserns=no\n") << out;
  EXPECT_NE(out.find("NoNewPrivs:1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Seccomp:2\n"), std::string::npos) << out;
  size_t at = out.find("CapBnd:");
  ASSERT_NE(at, std::string::npos) << out;
  uint64_t bounding = std::stoull(out.substr(at + 7, 16), nullptr, 16);
  EXPECT_EQ(bounding & (1ull << 21), 0u) << "CAP_SYS_ADMIN is in " << out;
  EXPECT_EQ(bounding & (1ull << 16), 0u) << "CAP_SYS_MODULE is in " << out;
  EXPECT_NE(bounding & (1ull << 0), 0u) << "CAP_CHOWN is not in " << out;
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, EachContainerHasAPrivateTmpInItsSandbox) {
  // Something in the host's /tmp that no container may see.
  std::string marker = "/tmp/agora-host-only-" + std::to_string(::getpid());
  std::string mine = "agora-container-only-" + std::to_string(::getpid());
  ASSERT_TRUE(writeFileAtomic(marker, "host\n").ok());
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask(
      "tmp", "test ! -e " + marker + " && echo mine > /tmp/" + mine +
                 " && echo TMPDIR=$TMPDIR && ls -ld /tmp | cut -c1-10"));
  driver.start();
  TaskStatus end = scheduler.waitForEnd("tmp");
  ::unlink(marker.c_str());
  EXPECT_EQ(end.state(), TASK_FINISHED) << end.message();
  std::string out = waitForSandboxFile(scheduler.agentAddress("tmp"), "tmp", "stdout");
  EXPECT_EQ(out, "TMPDIR=/tmp\ndrwxrwxrwt\n");
  // The container's /tmp is its sandbox's tmp/, and nothing of it reached the host's /tmp.
  EXPECT_EQ(readFile(sandboxOf(scheduler.agentAddress("tmp"), "tmp") + "/tmp/" + mine)
                .value_or(""),
            "mine\n");
  EXPECT_FALSE(pathExists("/tmp/" + mine));
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, AContainerHasANetworkOfItsOwnWithALoopback) {
  // A server on the host's loopback, which the container's own loopback does not reach.
  int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(server, 4), 0);
  socklen_t length = sizeof(addr);
  ::getsockname(server, reinterpret_cast<sockaddr*>(&addr), &length);
  std::string port = std::to_string(ntohs(addr.sin_port));

  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask(
      "netns", "echo links=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ,); "
               "busybox nc -w 2 127.0.0.1 " + port + " </dev/null && echo host=reached || "
               "echo host=unreachable"));
  driver.start();
  TaskStatus end = scheduler.waitForEnd("netns");
  ::close(server);
  EXPECT_EQ(end.state(), TASK_FINISHED) << end.message();
  EXPECT_EQ(waitForSandboxFile(scheduler.agentAddress("netns"), "netns", "stdout"),
            "links=lo,\nhost=unreachable\n");
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, UsageOfARunningContainerIsOnTheAgentsContainersEndpoint) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask("idle", "exec tail -f /dev/null", "cpus:0.5;mem:64"));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("idle", TASK_RUNNING));
  json container;
  ASSERT_TRUE(waitUntil([&] {
    auto r = httpGet(scheduler.agentAddress("idle"), "/containers");
    if (!r || r->status != 200) return false;
    for (const json& c : json::parse(r->body)) {
      if (c.value("executor_id", "") == "idle" && c.contains("statistics") &&
          c["statistics"].value("processes", 0) >= 2) {
        container = c;
        return true;
      }
    }
    return false;
  }, seconds(20))) << container.dump();
  EXPECT_EQ(container["statistics"]["mem_limit_bytes"].get<uint64_t>(), (64u + 32u) << 20);
  EXPECT_GT(container["statistics"]["mem_total_bytes"].get<uint64_t>(), 0u);
  // The master shows it with the task, as the agent last reported it.
  json task;
  EXPECT_TRUE(cluster_->waitForState([&](const json& state) {
    for (const json& f : state["frameworks"]) {
      for (const json& t : f["tasks"]) {
        if (t.value("id", "") == "idle" && t.contains("statistics")) {
          task = t;
          return true;
        }
      }
    }
    return false;
  }));
  EXPECT_EQ(task["statistics"].value("mem_limit_bytes", uint64_t{0}), (64u + 32u) << 20)
      << task.dump();
  EXPECT_GE(task["statistics"].value("processes", uint64_t{0}), 2u) << task.dump();
  driver.kill("idle");
  EXPECT_EQ(scheduler.waitForEnd("idle").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, BusyTasksAreHeldToTheirCpusByTheCfsQuota) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  const char* twoLoops = "while :; do :; done & while :; do :; done";  // ok: busy on purpose
  const char* oneLoop = "while :; do :; done";
  scheduler.launch(TestScheduler::commandTask("big", twoLoops, "cpus:1.5;mem:64"));
  scheduler.launch(TestScheduler::commandTask("small", oneLoop, "cpus:0.5;mem:64"));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("big", TASK_RUNNING));
  ASSERT_TRUE(scheduler.waitForState("small", TASK_RUNNING));
  std::string agent = scheduler.agentAddress("big");
  struct Cpu {
    double seconds = 0;
    uint64_t throttled = 0;
    double limit = 0;
  };
  auto cpu = [&](const std::string& executor) {
    Cpu out;
    auto r = httpGet(agent, "/containers");
    if (r && r->status == 200) {
      for (const json& c : json::parse(r->body)) {
        if (c.value("executor_id", "") == executor && c.contains("statistics")) {
          const json& st = c["statistics"];
          out.seconds = st.value("cpus_user_time_secs", 0.0) + st.value("cpus_system_time_secs", 0.0);
          out.throttled = st.value("cpus_nr_throttled", uint64_t{0});
          out.limit = st.value("cpus_limit", 0.0);
        }
      }
    }
    return out;
  };
  // The quota the kernel enforces is the task's cpus.
  auto started = std::chrono::steady_clock::now();
  Cpu big0 = cpu("big");
  Cpu small0 = cpu("small");
  EXPECT_NEAR(big0.limit, 1.5, 0.01);
  EXPECT_NEAR(small0.limit, 0.5, 0.01);
  // Usage over about two seconds, from the cgroups' own accounting. Other tests may share
  // the two cores, so only the ceilings are certain; below them the tasks get what is left.
  waitUntil([] { return false; }, seconds(2));
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  Cpu big1 = cpu("big");
  Cpu small1 = cpu("small");
  double bigRate = (big1.seconds - big0.seconds) / elapsed;
  double smallRate = (small1.seconds - small0.seconds) / elapsed;
  EXPECT_LE(bigRate, 1.5 * 1.1) << bigRate;
  EXPECT_LE(smallRate, 0.5 * 1.1) << smallRate;
  EXPECT_GT(smallRate, 0.0) << smallRate;
  if (smallRate > 0.45) {
    // It ran up to its quota, so the kernel held it back.
    EXPECT_GT(small1.throttled, small0.throttled);
  }
  driver.kill("big");
  driver.kill("small");
  EXPECT_EQ(scheduler.waitForEnd("big").state(), TASK_KILLED);
  EXPECT_EQ(scheduler.waitForEnd("small").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, TasksRunAsTheirFrameworksUser) {
  TestScheduler scheduler;
  FrameworkInfo info = testFramework();
  info.set_user("nobody");
  SchedulerDriver driver(&scheduler, info, cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask("who", "echo user=$(id -un) && touch mine"));
  driver.start();
  TaskStatus who = scheduler.waitForEnd("who");
  EXPECT_EQ(who.state(), TASK_FINISHED) << who.message();
  EXPECT_EQ(waitForSandboxFile(scheduler.agentAddress("who"), "who", "stdout"), "user=nobody\n");
  driver.stop();
  driver.join();

  TestScheduler strangers;
  info.set_user("no-such-user-here");
  SchedulerDriver other(&strangers, info, cluster_->masterHttp());
  strangers.launch(TestScheduler::commandTask("ghost", "true"));
  other.start();
  TaskStatus ghost = strangers.waitForEnd("ghost");
  EXPECT_EQ(ghost.state(), TASK_FAILED);
  EXPECT_NE(ghost.message().find("user 'no-such-user-here' does not exist"), std::string::npos)
      << ghost.message();
  other.stop();
  other.join();
}

TEST_F(ClusterIsolationTest, ATaskGroupIsAPodOfContainersWithTheirOwnSandboxesAndCgroups) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  ExecutorInfo pod;
  pod.set_executor_id("pod");
  // The client writes a file in the shared scratch directory and sends its content over
  // loopback; the server compares what it got with the file it sees. Each says which memory
  // cgroup it is in.
  const char* whereAmI = "grep memory /proc/self/cgroup | cut -d: -f3; ";
  scheduler.launchGroup(
      pod, {TestScheduler::commandTask(
                "server", std::string(whereAmI) +
                              "busybox nc -l -p 31555 > got && "
                              "test \"$(cat got)\" = \"$(cat $AGORA_SHARED_DIR/shared.txt)\"",
                "cpus:0.1;mem:48"),
            TestScheduler::commandTask(
                "client", std::string(whereAmI) +
                              "echo hello > $AGORA_SHARED_DIR/shared.txt; "
                              "until busybox nc 127.0.0.1 31555 < $AGORA_SHARED_DIR/shared.txt; "
                              "do :; done",
                "cpus:0.1;mem:32")});
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("server").state(), TASK_FINISHED);
  EXPECT_EQ(scheduler.waitForEnd("client").state(), TASK_FINISHED);
  std::string sandbox = sandboxOf(scheduler.agentAddress("server"), "pod");
  ASSERT_FALSE(sandbox.empty());
  // Each in a sandbox of its own, with its own output; the scratch directory between them.
  EXPECT_EQ(readFile(sandbox + "/tasks/server/got").value_or(""), "hello\n");
  EXPECT_EQ(readFile(sandbox + "/shared/shared.txt").value_or(""), "hello\n");
  std::string server = readFile(sandbox + "/tasks/server/stdout").value_or("");
  std::string client = readFile(sandbox + "/tasks/client/stdout").value_or("");
  EXPECT_NE(server.find(root_ + "/"), std::string::npos) << server;
  EXPECT_NE(server.find("/containers/server\n"), std::string::npos) << server;
  EXPECT_NE(client.find("/containers/client\n"), std::string::npos) << client;
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, ATaskInAGroupIsHeldToItsOwnMemoryAndRestartedOnFailure) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  ExecutorInfo pod;
  pod.set_executor_id("pod");
  // 200 MB would fit in the group (544 MiB) but not in the hog's own 32 MiB.
  TaskInfo hog = TestScheduler::commandTask(
      "hog", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}", "cpus:0.5;mem:32");
  hog.mutable_restart_policy()->set_mode(RestartPolicy::ON_FAILURE);
  hog.mutable_restart_policy()->set_backoff_seconds(0.1);
  hog.mutable_restart_policy()->set_max_restarts(1);
  scheduler.launchGroup(pod, {hog, TestScheduler::commandTask("steady", "exec tail -f /dev/null",
                                                              "cpus:0.1;mem:512")});
  driver.start();
  TaskStatus end = scheduler.waitForEnd("hog", seconds(60));
  EXPECT_EQ(end.state(), TASK_FAILED) << end.message();
  EXPECT_EQ(end.reason(), TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY) << end.message();
  EXPECT_EQ(end.restart_count(), 1u);
  // It was restarted once, and said so, before it failed for good.
  EXPECT_TRUE(scheduler.waitForStatus("hog", [](const TaskStatus& s) {
    return s.state() == TASK_RUNNING && s.restart_count() == 1 &&
           s.message().find("restarting") != std::string::npos &&
           s.reason() == TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY;
  }, seconds(0)));
  // The other container ran on untouched until the group went down with the hog.
  EXPECT_EQ(scheduler.waitForEnd("steady").state(), TASK_KILLED);
  for (TaskState s : scheduler.states("steady")) {
    EXPECT_TRUE(s == TASK_STARTING || s == TASK_RUNNING || s == TASK_KILLED)
        << TaskState_Name(s);
  }
  driver.stop();
  driver.join();
}

}  // namespace
}  // namespace agora::testing
