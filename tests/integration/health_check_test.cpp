// Health checks run by the built-in executor, end to end: real tasks serving HTTP and TCP on
// loopback, checked by the executor's probes, and killed when they fail past the threshold.

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agora/scheduler.hpp"
#include "common/http.hpp"
#include "common/net.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/test_scheduler.hpp"

namespace agora::testing {
namespace {

HealthCheck quickCheck(HealthCheck::Type type, uint32_t failures) {
  HealthCheck check;
  check.set_type(type);
  check.set_interval_seconds(0.2);
  check.set_timeout_seconds(5);
  check.set_consecutive_failures(failures);
  return check;
}

bool healthIs(const TaskStatus& s, bool healthy) {
  return s.state() == TASK_RUNNING && s.has_healthy() && s.healthy() == healthy &&
         s.reason() == TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED;
}

class HealthCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ProcessClusterOptions options;
    options.agents = 1;
    cluster_ = std::make_unique<ProcessCluster>(options);
    ASSERT_TRUE(cluster_->start().ok()) << "see " << cluster_->dir();
  }
  std::unique_ptr<ProcessCluster> cluster_;
};

TEST_F(HealthCheckTest, AnHttpCheckReportsHealthAndAFailingOneKillsTheTask) {
  int port = freeLoopbackPort();
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  // busybox's httpd serves the sandbox's www/; removing the page makes the check fail (404).
  TaskInfo web = TestScheduler::commandTask(
      "web", "mkdir -p www && echo ok > www/ready && exec busybox httpd -f -p 127.0.0.1:" +
                 std::to_string(port) + " -h www");
  HealthCheck check = quickCheck(HealthCheck::HTTP, 2);
  check.mutable_http()->set_port(static_cast<uint32_t>(port));
  check.mutable_http()->set_path("/ready");
  *web.mutable_health_check() = check;
  scheduler.launch(web);
  driver.start();

  ASSERT_TRUE(scheduler.waitForStatus("web", [](const TaskStatus& s) { return healthIs(s, true); }))
      << "see " << cluster_->dir();
  std::string sandbox;
  auto containers = httpGet(scheduler.agentAddress("web"), "/state");
  ASSERT_TRUE(containers.ok());
  // The page goes: the next checks get 404, and after two in a row the task is killed.
  auto state = nlohmann::json::parse(containers->body);
  for (const auto& f : state["frameworks"]) {
    for (const auto& e : f["executors"]) {
      if (e.value("id", "") == "web") {
        sandbox = e.value("directory", "");
      }
    }
  }
  ASSERT_FALSE(sandbox.empty()) << state.dump();
  ASSERT_EQ(::unlink((sandbox + "/www/ready").c_str()), 0);

  TaskStatus end = scheduler.waitForEnd("web");
  EXPECT_EQ(end.state(), TASK_KILLED) << end.message();
  EXPECT_EQ(end.reason(), TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED);
  EXPECT_TRUE(end.has_healthy() && !end.healthy());
  EXPECT_NE(end.message().find("failed its health check 2 times in a row"), std::string::npos)
      << end.message();
  EXPECT_NE(end.message().find("404"), std::string::npos) << end.message();
  // The framework heard it turn unhealthy before it was killed.
  EXPECT_TRUE(scheduler.waitForStatus(
      "web", [](const TaskStatus& s) { return healthIs(s, false); }, seconds(0)));
  driver.stop();
  driver.join();
}

TEST_F(HealthCheckTest, TcpAndCommandChecksAndTheirGracePeriod) {
  int port = freeLoopbackPort();
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  // Listens after a second: the grace period covers the failures before.
  TaskInfo listener = TestScheduler::commandTask(
      "listener", "sleep 1; exec busybox httpd -f -p 127.0.0.1:" +  // ok: a slow start
                      std::to_string(port));
  HealthCheck tcp = quickCheck(HealthCheck::TCP, 1);
  tcp.mutable_tcp()->set_port(static_cast<uint32_t>(port));
  tcp.set_grace_period_seconds(20);
  *listener.mutable_health_check() = tcp;
  scheduler.launch(listener);
  // Healthy while its file is there; the check runs in the sandbox, as the task does.
  TaskInfo filer = TestScheduler::commandTask("filer", "touch alive && exec tail -f /dev/null");
  HealthCheck command = quickCheck(HealthCheck::COMMAND, 3);
  command.mutable_command()->set_value("test -e alive || { echo no file; exit 1; }");
  *filer.mutable_health_check() = command;
  scheduler.launch(filer);
  // Nothing ever listens here: with no grace period one failure kills it.
  TaskInfo deaf = TestScheduler::commandTask("deaf", "exec tail -f /dev/null");
  HealthCheck nothing = quickCheck(HealthCheck::TCP, 1);
  nothing.mutable_tcp()->set_port(static_cast<uint32_t>(freeLoopbackPort()));
  *deaf.mutable_health_check() = nothing;
  scheduler.launch(deaf);
  // And a check that cannot run at all is refused at launch.
  TaskInfo broken = TestScheduler::commandTask("broken", "true");
  broken.mutable_health_check()->set_type(HealthCheck::HTTP);
  scheduler.launch(broken);
  driver.start();

  EXPECT_TRUE(
      scheduler.waitForStatus("listener", [](const TaskStatus& s) { return healthIs(s, true); }));
  EXPECT_TRUE(
      scheduler.waitForStatus("filer", [](const TaskStatus& s) { return healthIs(s, true); }));
  TaskStatus deafEnd = scheduler.waitForEnd("deaf");
  EXPECT_EQ(deafEnd.state(), TASK_KILLED);
  EXPECT_NE(deafEnd.message().find("cannot connect"), std::string::npos) << deafEnd.message();
  TaskStatus brokenEnd = scheduler.waitForEnd("broken");
  EXPECT_EQ(brokenEnd.state(), TASK_ERROR);
  EXPECT_NE(brokenEnd.message().find("needs http.port"), std::string::npos) << brokenEnd.message();
  // The listener was never reported unhealthy: its early failures fell in its grace period.
  for (const TaskStatus& s : scheduler.statuses("listener")) {
    EXPECT_FALSE(healthIs(s, false)) << s.message();
  }
  driver.kill("listener");
  driver.kill("filer");
  EXPECT_EQ(scheduler.waitForEnd("listener").state(), TASK_KILLED);
  EXPECT_EQ(scheduler.waitForEnd("filer").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

TEST_F(HealthCheckTest, TasksAreRestartedAsTheirRestartPolicySays) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  // Fails twice, then runs: ON_FAILURE starts it again until it does.
  TaskInfo flaky = TestScheduler::commandTask(
      "flaky", "echo run >> runs; [ $(wc -l < runs) -ge 3 ] && exec tail -f /dev/null; exit 1");
  flaky.mutable_restart_policy()->set_mode(RestartPolicy::ON_FAILURE);
  flaky.mutable_restart_policy()->set_backoff_seconds(0.05);
  scheduler.launch(flaky);
  // Finishes, and ALWAYS starts it again, after a long back-off: a kill then ends it at once.
  TaskInfo daily = TestScheduler::commandTask("daily", "true");
  daily.mutable_restart_policy()->set_mode(RestartPolicy::ALWAYS);
  daily.mutable_restart_policy()->set_backoff_seconds(600);
  scheduler.launch(daily);
  driver.start();

  EXPECT_TRUE(scheduler.waitForStatus("flaky", [](const TaskStatus& s) {
    return s.state() == TASK_RUNNING && s.restart_count() == 2 &&
           s.message() == "restarted (2)";
  })) << "see " << cluster_->dir();
  EXPECT_TRUE(scheduler.waitForStatus("daily", [](const TaskStatus& s) {
    return s.state() == TASK_RUNNING && s.restart_count() == 1 &&
           s.message().find("exited with status 0; restarting in 10mins") != std::string::npos;
  })) << "see " << cluster_->dir();
  driver.kill("daily");
  TaskStatus daylong = scheduler.waitForEnd("daily");
  EXPECT_EQ(daylong.state(), TASK_KILLED);
  EXPECT_EQ(daylong.message(), "Killed while waiting to restart");
  driver.kill("flaky");
  TaskStatus end = scheduler.waitForEnd("flaky");
  EXPECT_EQ(end.state(), TASK_KILLED);
  EXPECT_EQ(end.restart_count(), 2u);
  driver.stop();
  driver.join();
}

}  // namespace
}  // namespace agora::testing
