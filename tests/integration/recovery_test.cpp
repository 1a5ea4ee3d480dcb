// Agent recovery, end to end: a real master and agent, the agent killed with SIGKILL while its
// tasks run, and a new agent on the same work directory taking them back.

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/checkpoint.hpp"
#include "agora/scheduler.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/process.hpp"
#include "isolators/cgroups.hpp"
#include "tests/support/cgroups_root.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/test_scheduler.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

// A task that runs until `gate` exists, then finishes.
TaskInfo gatedTask(const std::string& id, const std::string& gate) {
  const std::string waitForGate = "while [ ! -e " + gate + " ]; do sleep 0.05; done";  // ok: polls
  return TestScheduler::commandTask(id, waitForGate + "; echo released", "cpus:0.1;mem:32");
}

std::string agentIdOf(const ProcessCluster& cluster) {
  auto state = cluster.masterState();
  if (!state || (*state)["agents"].empty()) {
    return "";
  }
  return (*state)["agents"][0].value("id", "");
}

void touch(const std::string& path) { std::ofstream(path) << "go\n"; }

class RecoveryTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    isolated_ = GetParam();
    ProcessClusterOptions options;
    options.agents = 1;
    options.agentResources = "cpus:8;mem:4096;disk:1024";
    if (isolated_) {
      if (::geteuid() != 0) {
        GTEST_SKIP() << "cgroups isolation needs root";
      }
      root_ = "agora-rt-" + std::to_string(::getpid());
      options.agentFlags = {
          "--isolation=cgroups/cpu,cgroups/mem,cgroups/pids,namespaces/pid,"
          "namespaces/mount,namespaces/uts,namespaces/ipc",
          "--cgroups_root=" + root_};
    }
    cluster_ = std::make_unique<ProcessCluster>(options);
    ASSERT_TRUE(cluster_->start().ok()) << "see " << cluster_->dir();
  }
  void TearDown() override {
    if (cluster_ != nullptr) {
      cluster_->stop();
    }
    removeCgroupsRoot(root_);
  }

  // Where tasks wait for their gates: in the agent's work directory, which a container with a
  // private /tmp still sees.
  std::string gatesDir() {
    std::string dir = cluster_->agentWorkDir(0) + "/gates";
    EXPECT_TRUE(makeDirectories(dir).ok());
    return dir;
  }

  bool isolated_ = false;
  std::string root_;
  std::unique_ptr<ProcessCluster> cluster_;
};

TEST_P(RecoveryTest, TasksRunOnThroughAnAgentKilledAndRestarted) {
  const int kTasks = 20;
  std::string gates = gatesDir();
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  for (int i = 0; i < kTasks; ++i) {
    // The first half may finish while the agent is down; the rest after it is back.
    std::string gate = gates + (i < kTasks / 2 ? "/early" : "/late");
    scheduler.launch(gatedTask("t" + std::to_string(i), gate));
  }
  driver.start();
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_TRUE(scheduler.waitForState("t" + std::to_string(i), TASK_RUNNING))
        << "t" << i << "; see " << cluster_->dir();
  }
  std::string agentId = agentIdOf(*cluster_);
  ASSERT_FALSE(agentId.empty());

  cluster_->killAgent(0);
  // While no agent runs, half the tasks end: their executors report it to nobody yet.
  touch(gates + "/early");
  // Their sandboxes' stdout says when each one saw its gate and ended.
  std::string stdouts = cluster_->agentWorkDir(0) + "/frameworks/*/executors/*/runs/*/stdout";
  ASSERT_TRUE(waitUntil(
      [&] {
        auto released =
            runCommand({"/bin/sh", "-c", "grep -l released " + stdouts + " | wc -l"}, seconds(5));
        return std::atoi(released.output.c_str()) == kTasks / 2;
      },
      seconds(20)));
  for (int i = 0; i < kTasks; ++i) {
    EXPECT_EQ(scheduler.states("t" + std::to_string(i)).back(), TASK_RUNNING) << i;
  }

  ASSERT_TRUE(cluster_->restartAgent(0).ok());
  // The updates made while the agent was away arrive now, from the same agent.
  for (int i = 0; i < kTasks / 2; ++i) {
    TaskStatus end = scheduler.waitForEnd("t" + std::to_string(i));
    EXPECT_EQ(end.state(), TASK_FINISHED)
        << "t" << i << ": " << end.message() << "; see " << cluster_->agentLog(0);
  }
  EXPECT_EQ(agentIdOf(*cluster_), agentId);
  // The other half still run, in executors the new agent took back.
  for (int i = kTasks / 2; i < kTasks; ++i) {
    EXPECT_EQ(scheduler.states("t" + std::to_string(i)).back(), TASK_RUNNING) << i;
  }
  touch(gates + "/late");
  for (int i = kTasks / 2; i < kTasks; ++i) {
    TaskStatus end = scheduler.waitForEnd("t" + std::to_string(i));
    EXPECT_EQ(end.state(), TASK_FINISHED) << "t" << i << ": " << end.message();
  }
  // Nothing but RUNNING before the end, and one end each: no task was lost on the way.
  for (int i = 0; i < kTasks; ++i) {
    std::vector<TaskState> states = scheduler.states("t" + std::to_string(i));
    for (size_t k = 0; k + 1 < states.size(); ++k) {
      EXPECT_TRUE(states[k] == TASK_STARTING || states[k] == TASK_RUNNING)
          << "t" << i << " was " << TaskState_Name(states[k]);
    }
  }
  driver.stop();
  driver.join();
}

TEST_P(RecoveryTest, AnExecutorThatDiedWhileTheAgentWasAwayFailsItsTask) {
  std::string gates = gatesDir();
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(gatedTask("victim", gates + "/never"));
  scheduler.launch(gatedTask("survivor", gates + "/never"));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("victim", TASK_RUNNING));
  ASSERT_TRUE(scheduler.waitForState("survivor", TASK_RUNNING));

  cluster_->killAgent(0);
  // The victim's executor dies while no agent watches; the checkpoint names its process.
  auto executors = agent::checkpoint::readExecutors(cluster_->agentWorkDir(0) + "/meta");
  EXPECT_TRUE(executors.errors.empty());
  pid_t victim = 0;
  for (const auto& record : executors.records) {
    if (record.info().executor_id() == "victim") {
      victim = record.pid();
    }
  }
  ASSERT_GT(victim, 1);
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  ASSERT_TRUE(waitUntil([&] { return !processAlive(victim); }, seconds(10)));

  ASSERT_TRUE(cluster_->restartAgent(0).ok());
  TaskStatus end = scheduler.waitForEnd("victim");
  EXPECT_EQ(end.state(), TASK_FAILED);
  EXPECT_EQ(end.reason(), TaskStatus::REASON_EXECUTOR_TERMINATED);
  EXPECT_NE(end.message().find("while the agent was away"), std::string::npos) << end.message();
  // The other one was taken back: it runs on and can be killed as usual.
  EXPECT_EQ(scheduler.states("survivor").back(), TASK_RUNNING);
  driver.kill("survivor");
  EXPECT_EQ(scheduler.waitForEnd("survivor").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

TEST_P(RecoveryTest, SigtermStopsTheAgentAloneAndTheNextAgentTakesItsTasks) {
  std::string gates = gatesDir();
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(gatedTask("upgrade", gates + "/go"));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("upgrade", TASK_RUNNING));
  cluster_->killAgent(0, SIGTERM);
  auto executors = agent::checkpoint::readExecutors(cluster_->agentWorkDir(0) + "/meta");
  ASSERT_EQ(executors.records.size(), 1u);
  EXPECT_TRUE(processAlive(executors.records[0].pid()));

  ASSERT_TRUE(cluster_->restartAgent(0).ok());
  touch(gates + "/go");
  TaskStatus end = scheduler.waitForEnd("upgrade");
  EXPECT_EQ(end.state(), TASK_FINISHED) << end.message();
  // Its record goes with the executor.
  EXPECT_TRUE(waitUntil(
      [&] {
        return agent::checkpoint::readExecutors(cluster_->agentWorkDir(0) + "/meta")
            .records.empty();
      },
      seconds(10)));
  driver.stop();
  driver.join();
}

INSTANTIATE_TEST_SUITE_P(Plain, RecoveryTest, ::testing::Values(false));
INSTANTIATE_TEST_SUITE_P(Cgroups, RecoveryTest, ::testing::Values(true));

}  // namespace
}  // namespace agora::testing
