// End to end: a real master and two real agents, frameworks on the SDK, real task processes.

#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "isolators/cgroups.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/process.hpp"
#include "tests/support/cgroups_root.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/sandbox.hpp"
#include "tests/support/test_scheduler.hpp"
#include "tests/support/volume_scheduler.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

// A task that runs until it is killed.
constexpr const char* kSleepForever = "exec sleep 1000";  // ok: the task's own command

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.start().ok()) << "see " << cluster_.dir(); }

  ProcessCluster cluster_;
};

TEST_F(ClusterTest, ExampleFrameworkRuns200ShortTasksToFinished) {
  CommandResult result = runCommand({AGORA_EXAMPLE_COPIES, "--master=" + cluster_.masterHttp(),
                                     "--count=200", "--command=echo copy $AGORA_TASK_ID"},
                                    seconds(150));
  EXPECT_EQ(result.exitCode, 0) << result.output;
  EXPECT_NE(result.output.find("200 of 200 tasks finished"), std::string::npos) << result.output;

  auto state = cluster_.masterState();
  ASSERT_TRUE(state.ok());
  json frameworks = (*state)["completed_frameworks"];
  ASSERT_EQ(frameworks.size(), 1u);
  int finished = 0;
  for (const json& task : frameworks[0]["completed_tasks"]) {
    finished += task["state"] == "TASK_FINISHED" ? 1 : 0;
  }
  EXPECT_EQ(finished, 200);
  // Both agents took part, and everything was given back.
  for (const json& agent : (*state)["agents"]) {
    EXPECT_EQ(agent["used_resources"]["cpus"], 0.0);
  }
}

TEST_F(ClusterTest, TaskExitingThreeFailsWithTheCodeInItsMessage) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  scheduler.launch(TestScheduler::commandTask("exits-3", "exit 3"));
  driver.start();
  TaskStatus end = scheduler.waitForEnd("exits-3");
  EXPECT_EQ(end.state(), TASK_FAILED);
  EXPECT_NE(end.message().find("status 3"), std::string::npos) << end.message();
  EXPECT_EQ(scheduler.states("exits-3"),
            (std::vector<TaskState>{TASK_STARTING, TASK_RUNNING, TASK_FAILED}));
  driver.stop();
  driver.join();
}

TEST_F(ClusterTest, KilledTaskEndsKilledAndItsProcessIsGone) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  // The task writes its pid into its sandbox, then sleeps.
  const char* command = "echo $$ > pid; exec sleep 1000";  // ok: the task's own command
  scheduler.launch(TestScheduler::commandTask("sleeper", command));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("sleeper", TASK_RUNNING));

  std::string pidText = waitForSandboxFile(scheduler.agentAddress("sleeper"), "sleeper", "pid");
  ASSERT_FALSE(pidText.empty());
  pid_t pid = std::stoi(pidText);
  EXPECT_TRUE(processAlive(pid));

  driver.kill("sleeper");
  TaskStatus end = scheduler.waitForEnd("sleeper");
  EXPECT_EQ(end.state(), TASK_KILLED);
  EXPECT_TRUE(waitUntil([pid] { return !processAlive(pid); }, seconds(10)));
  driver.stop();
  driver.join();
}

TEST_F(ClusterTest, TaskIgnoringSigtermIsKilledAfterItsGracePeriod) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  // The shell ignores SIGTERM, and so does what it execs; it says when it does.
  const char* stubborn = "trap '' TERM; echo yes > ignoring; exec sleep 1000";  // ok: task
  TaskInfo task = TestScheduler::commandTask("stubborn", stubborn);
  task.set_kill_grace_period_seconds(0.5);
  scheduler.launch(task);
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("stubborn", TASK_RUNNING));
  ASSERT_EQ(waitForSandboxFile(scheduler.agentAddress("stubborn"), "stubborn", "ignoring"),
            "yes\n");
  driver.kill("stubborn");
  TaskStatus end = scheduler.waitForEnd("stubborn");
  EXPECT_EQ(end.state(), TASK_KILLED);
  EXPECT_NE(end.message().find("signal 9"), std::string::npos) << end.message();
  driver.stop();
  driver.join();
}

TEST_F(ClusterTest, TaskOutputIsReadableFromTheAgentButNothingOutsideTheWorkDir) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  scheduler.launch(TestScheduler::commandTask("hello", "echo hello out; echo hello err >&2"));
  driver.start();
  ASSERT_EQ(scheduler.waitForEnd("hello").state(), TASK_FINISHED);
  std::string agent = scheduler.agentAddress("hello");
  std::string directory;
  ASSERT_TRUE(waitUntil(
      [&] {
        directory = sandboxOf(agent, "hello");
        return !directory.empty();
      },
      seconds(20)));
  auto out = httpGet(agent, "/files/read?path=" + urlEncode(directory + "/stdout"));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(json::parse(out->body)["data"], "hello out\n");
  auto err = httpGet(agent, "/files/read?path=" + urlEncode(directory + "/stderr"));
  EXPECT_EQ(json::parse(err->body)["data"], "hello err\n");
  auto size = httpGet(agent, "/files/read?offset=-1&path=" + urlEncode(directory + "/stdout"));
  EXPECT_EQ(json::parse(size->body)["offset"], 10);

  EXPECT_EQ(httpGet(agent, "/files/read?path=/etc/passwd")->status, 403);
  EXPECT_EQ(httpGet(agent, "/files/read?path=" + urlEncode(directory + "/../../../../../../../../../../../../etc/passwd"))
                ->status,
            403);
  EXPECT_EQ(httpGet(agent, "/files/read?path=" + urlEncode(directory + "/nope"))->status, 404);
  EXPECT_EQ(httpGet(agent, "/files/read?offset=x&path=" + urlEncode(directory + "/stdout"))->status,
            400);
  driver.stop();
  driver.join();
}

TEST_F(ClusterTest, ReconciliationReportsTheLatestStates) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  scheduler.launch(TestScheduler::commandTask("long", kSleepForever));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("long", TASK_RUNNING));
  size_t before = scheduler.states("long").size();
  driver.reconcile();
  ASSERT_TRUE(scheduler.waitForUpdates("long", before, seconds(10)));
  EXPECT_EQ(scheduler.states("long").back(), TASK_RUNNING);
  driver.stop();
  driver.join();
  // Tearing the framework down kills its task.
  EXPECT_TRUE(cluster_.waitForState([](const json& s) {
    for (const json& a : s["agents"]) {
      if (a["used_resources"]["cpus"] != 0.0) {
        return false;
      }
    }
    return s["frameworks"].empty();
  }));
}

TEST_F(ClusterTest, CustomExecutorRunsSeveralTasksOfItsFramework) {
  // The custom executor here is `agora executor` itself, named as a framework's own executor:
  // the agent starts it once and hands it both tasks.
  ExecutorInfo executor;
  executor.set_type(ExecutorInfo::CUSTOM);
  executor.set_executor_id("shared");
  executor.mutable_command()->set_value(std::string(AGORA_BINARY) + " executor");
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  for (const char* id : {"first", "second"}) {
    // The executor (the task's parent) is confined as the built-in executors' tasks are.
    TaskInfo task = TestScheduler::commandTask(
        id, "echo $AGORA_TASK_ID >> tasks && grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$PPID/status"
            " && grep -q '^Seccomp:[[:space:]]*2' /proc/$PPID/status");
    *task.mutable_executor() = executor;
    scheduler.launch(task);
  }
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("first").state(), TASK_FINISHED);
  EXPECT_EQ(scheduler.waitForEnd("second").state(), TASK_FINISHED);
  json state = json::parse(httpGet(scheduler.agentAddress("first"), "/state")->body);
  int executors = 0;
  for (const json& f : state["frameworks"]) {
    for (const json& e : f["executors"]) {
      executors += e["id"] == "shared" ? 1 : 0;
    }
  }
  for (const json& e : state["completed_executors"]) {
    executors += e["id"] == "shared" ? 1 : 0;
  }
  EXPECT_EQ(executors, 1);
  driver.stop();
  driver.join();
}

TEST_F(ClusterTest, TaskGroupRunsTogetherAndOneFailureTakesItDown) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  ExecutorInfo executor;
  executor.set_executor_id("pod");
  const char* failsSoon = "sleep 0.5; exit 2";  // ok: the task's own command
  scheduler.launchGroup(executor, {TestScheduler::commandTask("web", kSleepForever),
                                   TestScheduler::commandTask("sidecar", failsSoon)});
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("sidecar").state(), TASK_FAILED);
  EXPECT_EQ(scheduler.waitForEnd("web").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

TEST_F(ClusterTest, AVolumesDataOutlivesItsTaskAndComesBackToItsRole) {
  VolumeScheduler scheduler;
  FrameworkInfo info = testFramework("volumes");
  info.add_roles("db");
  SchedulerDriver driver(&scheduler, info, cluster_.masterHttp());
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("writer"), TASK_FINISHED);
  EXPECT_EQ(scheduler.waitForEnd("reader"), TASK_FINISHED);
  EXPECT_TRUE(scheduler.errors().empty());
  driver.stop();
  driver.join();
}

TEST(ClusterDiskTest, SandboxesOfEndedExecutorsAreCollectedAfterTheGcDelay) {
  ProcessClusterOptions options;
  options.agents = 1;
  options.agentFlags = {"--gc_delay=300ms"};
  ProcessCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << "see " << cluster.dir();
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster.masterHttp());
  scheduler.launch(TestScheduler::commandTask("brief", "echo done"));
  scheduler.launch(TestScheduler::commandTask("lasting", "exec tail -f /dev/null"));
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("brief").state(), TASK_FINISHED);
  ASSERT_TRUE(scheduler.waitForState("lasting", TASK_RUNNING));
  std::string executors = cluster.agentWorkDir(0) + "/frameworks/" + scheduler.frameworkId() +
                          "/executors/";
  // The ended one's sandbox goes; the running one's stays.
  EXPECT_TRUE(waitUntil([&] { return !pathExists(executors + "brief"); }, seconds(20)));
  EXPECT_TRUE(pathExists(executors + "lasting"));
  driver.kill("lasting");
  EXPECT_EQ(scheduler.waitForEnd("lasting").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

TEST(ClusterDiskTest, ASandboxPastItsDiskIsDestroyedWithTheDiskReason) {
  ProcessClusterOptions options;
  options.agents = 1;
  options.agentFlags = {"--enforce_disk_limit", "--disk_watch_interval=100ms"};
  ProcessCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << "see " << cluster.dir();
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster.masterHttp());
  scheduler.launch(TestScheduler::commandTask(
      "filler", "head -c 5000000 /dev/urandom > junk && exec tail -f /dev/null",
      "cpus:0.1;mem:32;disk:1"));
  scheduler.launch(TestScheduler::commandTask("modest", "echo small > note", "cpus:0.1;mem:32;disk:1"));
  driver.start();
  TaskStatus filler = scheduler.waitForEnd("filler");
  EXPECT_EQ(filler.state(), TASK_FAILED);
  EXPECT_EQ(filler.reason(), TaskStatus::REASON_CONTAINER_LIMITATION_DISK) << filler.message();
  EXPECT_NE(filler.message().find("more than the 1 MiB given"), std::string::npos)
      << filler.message();
  EXPECT_EQ(scheduler.waitForEnd("modest").state(), TASK_FINISHED);
  driver.stop();
  driver.join();
}

TEST(ClusterFaultTest, AgentThatStopsAnsweringIsRemovedAndComesBack) {
  ProcessClusterOptions options;
  options.masterFlags = {"--agent_ping_timeout=200ms", "--max_agent_ping_timeouts=3"};
  options.agentFlags = {"--master_ping_timeout=1secs"};
  options.agents = 1;
  ProcessCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok());
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster.masterHttp());
  scheduler.launch(TestScheduler::commandTask("victim", kSleepForever));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("victim", TASK_RUNNING));

  ::kill(cluster.agentPid(0), SIGSTOP);
  TaskStatus end = scheduler.waitForEnd("victim", seconds(20));
  ::kill(cluster.agentPid(0), SIGCONT);
  EXPECT_EQ(end.state(), TASK_LOST);
  EXPECT_EQ(end.reason(), TaskStatus::REASON_AGENT_REMOVED);

  // Awake again, the agent re-registers; the lost task does not come back to life.
  EXPECT_TRUE(cluster.waitForState([](const json& s) {
    return s["agents"].size() == 1 && s["agents"][0]["used_resources"]["cpus"] == 0.0;
  }));
  driver.stop();
  driver.join();
}

TEST(ClusterFaultTest, MasterRestartLosesNoRunningTask) {
  ProcessClusterOptions options;
  options.agents = 1;
  options.masterFlags = {"--agent_ping_timeout=200ms", "--framework_heartbeat_interval=300ms"};
  ProcessCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok());
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster.masterHttp());
  scheduler.launch(TestScheduler::commandTask("survivor", kSleepForever));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("survivor", TASK_RUNNING));
  std::string frameworkId = scheduler.frameworkId();

  ASSERT_TRUE(cluster.restartMaster().ok());
  // The agent re-registers with its task, the scheduler subscribes again under its id.
  EXPECT_TRUE(cluster.waitForState([&](const json& s) {
    if (s["agents"].size() != 1 || s["frameworks"].size() != 1) {
      return false;
    }
    const json& f = s["frameworks"][0];
    return f["id"] == frameworkId && f["connected"] == true && f["tasks"].size() == 1 &&
           f["tasks"][0]["state"] == "TASK_RUNNING";
  }));
  EXPECT_GE(scheduler.subscriptions(), 2);

  // The new master can still reach the task.
  driver.kill("survivor");
  EXPECT_EQ(scheduler.waitForEnd("survivor").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

}  // namespace
}  // namespace agora::testing
