// High availability with real processes: a real ZooKeeper server, three masters electing a
// leader, agents and schedulers following the election.

#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/http.hpp"
#include "common/process.hpp"

#include <algorithm>
#include <functional>
#include <thread>
#include "tests/support/ha_cluster.hpp"
#include "tests/support/network_namespace.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/test_scheduler.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

constexpr const char* kSleepForever = "exec sleep 1000";  // ok: the task's own command

TEST(HaTest, OneLeaderAndANewOneSoonAfterItIsKilled) {
  HaClusterOptions options;
  options.agents = 1;
  HaCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << cluster.dir();
  EXPECT_EQ(cluster.countLeaders(), 1);
  int old = cluster.leader();
  ASSERT_GE(old, 0);
  std::string oldId = cluster.leaderState()->value("id", "");

  auto killed = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(cluster.masterProcess(old), SIGKILL), 0);
  ASSERT_TRUE(waitUntil(
      [&] {
        auto state = cluster.leaderState();
        return state.ok() && state->value("id", "") != oldId;
      },
      seconds(20)));
  Duration took = std::chrono::steady_clock::now() - killed;
  // The session timeout (2s) plus 2s: the election itself is quick.
  EXPECT_LT(took, seconds(4)) << formatDuration(took);
  EXPECT_EQ(cluster.countLeaders(), 1);
  // The agent found the new leader by itself.
  EXPECT_TRUE(cluster.waitForLeaderState([](const json& s) { return s["agents"].size() == 1; }));
}

TEST(HaTest, APausedLeaderDoesNotActWhenItResumes) {
  HaClusterOptions options;
  options.agents = 1;
  HaCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << cluster.dir();
  int old = cluster.leader();
  ASSERT_GE(old, 0);
  pid_t paused = cluster.masterProcess(old);
  std::string oldId = cluster.leaderState()->value("id", "");
  ASSERT_EQ(::kill(paused, SIGSTOP), 0);
  // Another master leads once the paused one's session has expired.
  ASSERT_TRUE(waitUntil(
      [&] {
        for (int i = 0; i < cluster.masters(); ++i) {
          if (i == old) {
            continue;
          }
          auto r = httpGet(cluster.masterHttp(i), "/state", seconds(1));
          if (r && r->status == 200 && json::parse(r->body).value("leader", false)) {
            return true;
          }
        }
        return false;
      },
      seconds(20)));
  ::kill(paused, SIGCONT);
  // Resumed, it notices it slept through its session and exits without acting as leader.
  EXPECT_TRUE(waitUntil([&] { return !processAlive(paused); }, seconds(10)));
  EXPECT_EQ(cluster.countLeaders(), 1);
  auto state = cluster.leaderState();
  ASSERT_TRUE(state.ok());
  EXPECT_NE(state->value("id", ""), oldId);
  EXPECT_TRUE(cluster.waitForLeaderState([](const json& s) { return s["agents"].size() == 1; }));
}

TEST(HaTest, TasksAndFrameworksSurviveAFailover) {
  HaClusterOptions options;
  options.agents = 2;
  HaCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << cluster.dir();
  TestScheduler scheduler;
  FrameworkInfo framework = testFramework();
  framework.set_failover_timeout(60);
  SchedulerDriver driver(&scheduler, framework, cluster.zkUrl());
  scheduler.launch(TestScheduler::commandTask("long-running", kSleepForever));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("long-running", TASK_RUNNING));
  std::string frameworkId = scheduler.frameworkId();

  int old = cluster.leader();
  ASSERT_EQ(::kill(cluster.masterProcess(old), SIGKILL), 0);
  // The new leader has the framework back (it resubscribed by itself) with its running task.
  EXPECT_TRUE(cluster.waitForLeaderState([&](const json& s) {
    if (s["frameworks"].size() != 1 || s["agents"].size() != 2) {
      return false;
    }
    const json& f = s["frameworks"][0];
    return f["id"] == frameworkId && f["connected"] == true && f["tasks"].size() == 1 &&
           f["tasks"][0]["state"] == "TASK_RUNNING";
  }));
  // The CLI follows the election too.
  auto cli = runCommand({AGORA_BINARY, "tasks", "--zk=" + cluster.zkUrl()}, seconds(30));
  EXPECT_EQ(cli.exitCode, 0) << cli.output;
  EXPECT_NE(cli.output.find("long-running"), std::string::npos) << cli.output;
  // And it can still reach the task.
  driver.kill("long-running");
  EXPECT_EQ(scheduler.waitForEnd("long-running").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

TEST(HaTest, FrameworkFailoverWithinAndPastItsTimeout) {
  HaClusterOptions options;
  options.agents = 1;
  options.masterFlags = {"--framework_heartbeat_interval=200ms"};
  HaCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << cluster.dir();
  FrameworkInfo framework = testFramework();
  framework.set_failover_timeout(3);

  // The first scheduler starts a task, then goes away without tearing down.
  std::string frameworkId;
  {
    TestScheduler first;
    SchedulerDriver driver(&first, framework, cluster.zkUrl());
    first.launch(TestScheduler::commandTask("kept", kSleepForever));
    driver.start();
    ASSERT_TRUE(first.waitForState("kept", TASK_RUNNING));
    frameworkId = first.frameworkId();
    driver.stop(/*failover=*/true);
    driver.join();
  }
  ASSERT_TRUE(cluster.waitForLeaderState([](const json& s) {
    return s["frameworks"].size() == 1 && s["frameworks"][0]["connected"] == false;
  }));

  // Within the timeout a new scheduler takes over, task included.
  framework.set_id(frameworkId);
  {
    TestScheduler second;
    SchedulerDriver driver(&second, framework, cluster.zkUrl());
    driver.start();
    ASSERT_TRUE(second.waitForSubscription());
    TaskStatus kept;
    kept.set_task_id("kept");
    driver.reconcile({kept});
    EXPECT_TRUE(second.waitForState("kept", TASK_RUNNING));
    driver.stop(/*failover=*/true);
    driver.join();
  }

  // Past the timeout the framework is removed and its task killed.
  EXPECT_TRUE(cluster.waitForLeaderState(
      [](const json& s) {
        return s["frameworks"].empty() && s["agents"][0]["used_resources"]["cpus"] == 0.0;
      },
      seconds(30)));
  TestScheduler late;
  SchedulerDriver driver(&late, framework, cluster.zkUrl());
  driver.start();
  EXPECT_EQ(driver.join(), DriverStatus::kAborted);  // "framework ... has been removed"
}

TEST(HaTest, TheClusterRecoversFromAZooKeeperRestart) {
  HaClusterOptions options;
  options.agents = 1;
  HaCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << cluster.dir();
  cluster.zookeeper().stop();
  // Longer than the session timeout: the leader gives up; the masters come back as contenders.
  std::this_thread::sleep_for(seconds(3));  // ok: the outage itself, not a synchronisation
  ASSERT_TRUE(cluster.zookeeper().start().ok());
  EXPECT_TRUE(cluster.waitForLeaderState([](const json& s) { return s["agents"].size() == 1; },
                                         seconds(60)));
  EXPECT_EQ(cluster.countLeaders(), 1);
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster.zkUrl());
  scheduler.launch(TestScheduler::commandTask("after", "true"));
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("after").state(), TASK_FINISHED);
  driver.stop();
  driver.join();
}

// One agent runs a task of a partition-aware framework and one of a plain framework; `cut`
// makes the agent unreachable past the masters' ping timeout, `heal` brings it back. The
// partition-aware framework sees UNREACHABLE then RUNNING again; the other sees LOST, and its
// task is killed when the agent returns.
void expectUnreachableThenBack(const HaCluster& cluster, const std::function<Status()>& cut,
                               const std::function<Status()>& heal) {
  FrameworkInfo aware = testFramework("aware");
  aware.add_capabilities(FrameworkInfo::PARTITION_AWARE);
  TestScheduler awareScheduler;
  SchedulerDriver awareDriver(&awareScheduler, aware, cluster.zkUrl());
  awareScheduler.launch(TestScheduler::commandTask("aware-task", kSleepForever));
  awareDriver.start();
  TestScheduler plainScheduler;
  SchedulerDriver plainDriver(&plainScheduler, testFramework("plain"), cluster.zkUrl());
  plainScheduler.launch(TestScheduler::commandTask("plain-task", kSleepForever));
  plainDriver.start();
  ASSERT_TRUE(awareScheduler.waitForState("aware-task", TASK_RUNNING));
  ASSERT_TRUE(plainScheduler.waitForState("plain-task", TASK_RUNNING));

  ASSERT_TRUE(cut().ok());
  EXPECT_TRUE(awareScheduler.waitForState("aware-task", TASK_UNREACHABLE, seconds(20)));
  EXPECT_TRUE(plainScheduler.waitForState("plain-task", TASK_LOST, seconds(20)));
  ASSERT_TRUE(heal().ok());

  // Back: the partition-aware framework hears its task runs; the other one's task is killed.
  EXPECT_TRUE(waitUntil(
      [&] {
        auto states = awareScheduler.states("aware-task");
        return !states.empty() && states.back() == TASK_RUNNING &&
               std::find(states.begin(), states.end(), TASK_UNREACHABLE) != states.end();
      },
      seconds(30)));
  EXPECT_TRUE(plainScheduler.waitForState("plain-task", TASK_KILLED, seconds(30)));
  EXPECT_TRUE(cluster.waitForLeaderState([](const json& s) {
    return s["agents"].size() == 1 && s["agents"][0]["used_resources"]["cpus"] == 0.1;
  }));
  awareDriver.stop();
  plainDriver.stop();
  awareDriver.join();
  plainDriver.join();
}

TEST(HaTest, PartitionedAgentComesBackUnreachableToRunningOrLostToKilled) {
  if (!NetworkNamespace::available()) {
    GTEST_SKIP() << "needs root and iproute2 for network namespaces";
  }
  NetworkNamespace ns;
  ASSERT_TRUE(ns.create().ok());
  HaClusterOptions options;
  options.agents = 0;
  options.masterIp = ns.hostIp();
  options.masterFlags = {"--agent_ping_timeout=300ms", "--max_agent_ping_timeouts=3"};
  HaCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << cluster.dir();

  // The agent lives in the namespace; the only way out is the veth pair.
  TempDir agentDir;
  auto agent = spawnChild(ns.exec({AGORA_BINARY, "agent", "--master=" + cluster.masterHttp(0),
                                   "--ip=" + ns.innerIp(), "--port=0",
                                   "--work_dir=" + agentDir.path() + "/work",
                                   "--resources=cpus:4;mem:4096", "--hostname=partitioned",
                                   "--recovery_timeout=60secs"}),
                          agentDir.path() + "/agent.log", {}, SIGUSR1);
  ASSERT_TRUE(agent.ok());
  struct StopAgent {
    pid_t pid;
    ~StopAgent() { stopChild(pid, seconds(15), SIGUSR1); }
  } stopAgent{*agent};
  ASSERT_TRUE(cluster.waitForLeaderState([](const json& s) { return s["agents"].size() == 1; }))
      << "see " << agentDir.path() << "/agent.log";

  expectUnreachableThenBack(
      cluster, [&] { return ns.cut(); }, [&] { return ns.heal(); });
}

TEST(HaTest, PausedAgentComesBackUnreachableToRunningOrLostToKilled) {
  HaClusterOptions options;
  options.agents = 1;
  options.masterFlags = {"--agent_ping_timeout=300ms", "--max_agent_ping_timeouts=3"};
  HaCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << cluster.dir();
  pid_t agent = cluster.agentPid(0);
  bool paused = false;
  struct Resume {
    pid_t pid;
    bool* paused;
    ~Resume() {
      if (*paused) {
        ::kill(pid, SIGCONT);
      }
    }
  } resume{agent, &paused};

  expectUnreachableThenBack(
      cluster,
      [&]() -> Status {
        paused = ::kill(agent, SIGSTOP) == 0;
        return paused ? Status() : Error("cannot stop the agent");
      },
      [&]() -> Status {
        paused = false;
        return ::kill(agent, SIGCONT) == 0 ? Status() : Error("cannot resume the agent");
      });
}

}  // namespace
}  // namespace agora::testing
