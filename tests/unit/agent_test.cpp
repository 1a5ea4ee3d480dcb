// The agent as a state machine: a fake master link, a fixed detector, the fake containerizer's
// in-process executors, and a manual clock.

#include <gtest/gtest.h>

#include <filesystem>

#include "common/fs.hpp"

#include <nlohmann/json.hpp>

#include "agent/agent.hpp"
#include "agent/containerizer/fake_containerizer.hpp"
#include "common/ids.hpp"
#include "common/manual_loop.hpp"
#include "tests/support/fake_transport.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::agent {
namespace {

using agora::testing::FakeTransport;

class FixedDetector final : public MasterDetector {
 public:
  explicit FixedDetector(Loop& loop) : loop_(loop) { info.set_id("M"); info.set_endpoint("e"); }
  void detect(std::function<void(Result<MasterInfo>)> callback) override {
    ++calls;
    MasterInfo copy = info;
    loop_.post([callback, copy] { callback(copy); });
  }
  void onLeaderChange(std::function<void(const MasterInfo&)> listener) override {
    listeners.push_back(std::move(listener));
  }
  // Another master leads now.
  void lead(const std::string& id, const std::string& endpoint) {
    info.set_id(id);
    info.set_endpoint(endpoint);
    for (auto& listener : listeners) {
      listener(info);
    }
  }
  MasterInfo info;
  int calls = 0;
  std::vector<std::function<void(const MasterInfo&)>> listeners;

 private:
  Loop& loop_;
};

class AgentTest : public ::testing::Test {
 protected:
  AgentTest() : detector_(loop_), fake_(loop_, seconds(10)) {
    AgentOptions options;
    options.workDir = workDir_.path();
    options.info.set_hostname("h");
    Resources::parse("cpus:4;mem:1024")->copyTo(options.info.mutable_resources());
    options.statusUpdates.retryMin = seconds(1);
    options.masterPingTimeout = seconds(5);
    agent_ = std::make_unique<Agent>(
        options, loop_, master_,
        [this](const std::string& endpoint) {
          connected_.push_back(endpoint);
          return Status();
        },
        detector_, fake_, fake_);
    fake_.setDeliver([this](const std::string& from, Envelope&& e) {
      agent_->receiveFromExecutor(from, std::move(e));
    });
    agent_->start();
    loop_.runUntilIdle();
  }

  std::vector<AgentCall> toMaster() {
    std::vector<AgentCall> out;
    for (Envelope& e : master_.take("master")) {
      out.push_back(e.agent_call());
    }
    return out;
  }

  void fromMaster(const AgentEvent& event) {
    Envelope e;
    *e.mutable_agent_event() = event;
    agent_->receiveFromMaster("e", std::move(e));
    loop_.runUntilIdle();
  }

  void registered() {
    AgentEvent e;
    e.mutable_registered()->set_agent_id("A1");
    e.mutable_registered()->mutable_master_info()->set_id("M");
    fromMaster(e);
  }

  void runTask(const std::string& id, double duration = 0) {
    AgentEvent e;
    e.mutable_run_task()->mutable_framework()->set_id("F");
    TaskInfo* t = e.mutable_run_task()->mutable_task();
    t->set_task_id(id);
    Resources::parse("cpus:1")->copyTo(t->mutable_resources());
    t->mutable_command()->set_value("true");
    if (duration > 0) {
      Label* l = t->add_labels();
      l->set_key("fake.duration");
      l->set_value(std::to_string(duration));
    }
    fromMaster(e);
  }

  void ack(const AgentCall::StatusUpdate& update) {
    AgentEvent e;
    e.mutable_status_update_ack()->set_framework_id(update.framework_id());
    e.mutable_status_update_ack()->set_task_id(update.status().task_id());
    e.mutable_status_update_ack()->set_uuid(update.status().uuid());
    fromMaster(e);
  }

  std::vector<AgentCall::Reregister> reregistrations() {
    std::vector<AgentCall::Reregister> out;
    for (const AgentCall& c : toMaster()) {
      if (c.has_reregister()) {
        out.push_back(c.reregister());
      }
    }
    return out;
  }

  std::vector<AgentCall::StatusUpdate> updates() {
    std::vector<AgentCall::StatusUpdate> out;
    for (const AgentCall& c : toMaster()) {
      if (c.has_status_update()) {
        out.push_back(c.status_update());
      }
    }
    return out;
  }

  agora::testing::TempDir workDir_;
  ManualLoop loop_;
  FakeTransport master_;
  FixedDetector detector_;
  FakeContainerizer fake_;
  std::vector<std::string> connected_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentTest, RegistersThroughTheDetectedMaster) {
  EXPECT_EQ(connected_, std::vector<std::string>{"e"});
  auto calls = toMaster();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0].has_register_());
  EXPECT_EQ(calls[0].register_().agent_info().hostname(), "h");
  EXPECT_FALSE(agent_->registered());

  // No answer: it asks again, with back-off.
  loop_.advance(seconds(2));
  EXPECT_FALSE(toMaster().empty());
  registered();
  EXPECT_TRUE(agent_->registered());
  EXPECT_EQ(agent_->id(), "A1");
  loop_.advance(seconds(60));
  for (const AgentCall& c : toMaster()) {
    EXPECT_FALSE(c.has_register_()) << "registered agents stop registering";
  }
}

TEST_F(AgentTest, RunsATaskAndDeliversItsUpdatesReliably) {
  registered();
  toMaster();
  runTask("t1", /*duration=*/2);
  auto sent = updates();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].status().state(), TASK_RUNNING);
  EXPECT_EQ(sent[0].framework_id(), "F");
  EXPECT_EQ(sent[0].status().agent_id(), "A1");
  EXPECT_EQ(sent[0].status().source(), TaskStatus::SOURCE_EXECUTOR);

  // Unacknowledged, it comes again; the task's end waits behind it.
  // Retries at 1s and 3s; the task finished at 2s, which the second retry tells.
  loop_.advance(milliseconds(3500));
  sent = updates();
  ASSERT_EQ(sent.size(), 2u);
  for (const auto& u : sent) {
    EXPECT_EQ(u.status().state(), TASK_RUNNING);
  }
  EXPECT_EQ(sent[0].latest_state(), TASK_RUNNING);
  EXPECT_EQ(sent[1].latest_state(), TASK_FINISHED);
  ack(sent.back());
  sent = updates();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].status().state(), TASK_FINISHED);
  ack(sent[0]);
  loop_.advance(seconds(30));
  EXPECT_TRUE(updates().empty());
  auto state = agent_->state();
  EXPECT_EQ(state["frameworks"].size(), 0u);
  EXPECT_EQ(state["completed_executors"][0]["tasks"][0]["state"], "TASK_FINISHED");
}

TEST_F(AgentTest, KillsARunningTask) {
  registered();
  runTask("t1");
  ack(updates()[0]);
  AgentEvent kill;
  kill.mutable_kill_task()->set_framework_id("F");
  kill.mutable_kill_task()->set_task_id("t1");
  fromMaster(kill);
  auto sent = updates();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].status().state(), TASK_KILLED);
}

TEST_F(AgentTest, UnknownTaskKillIsAnsweredLost) {
  registered();
  toMaster();
  AgentEvent kill;
  kill.mutable_kill_task()->set_framework_id("F");
  kill.mutable_kill_task()->set_task_id("nope");
  fromMaster(kill);
  auto sent = updates();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].status().state(), TASK_LOST);
  EXPECT_EQ(sent[0].status().reason(), TaskStatus::REASON_TASK_UNKNOWN);
}

TEST_F(AgentTest, ShutdownFrameworkStopsItsExecutorsQuietly) {
  registered();
  runTask("t1");
  runTask("t2");
  toMaster();
  AgentEvent shutdown;
  shutdown.mutable_shutdown_framework()->set_framework_id("F");
  fromMaster(shutdown);
  loop_.advance(seconds(10));
  EXPECT_TRUE(updates().empty());  // nobody is left to tell
  EXPECT_EQ(fake_.containers(), 0u);
  EXPECT_EQ(agent_->state()["frameworks"].size(), 0u);
}

TEST_F(AgentTest, ReregistersWithItsTasksWhenTheMasterForgetsIt) {
  registered();
  runTask("t1");
  toMaster();
  AgentEvent error;
  error.mutable_error()->set_code(ERROR_UNKNOWN_AGENT);
  fromMaster(error);
  auto calls = toMaster();
  ASSERT_FALSE(calls.empty());
  ASSERT_TRUE(calls[0].has_reregister());
  EXPECT_EQ(calls[0].agent_id(), "A1");
  ASSERT_EQ(calls[0].reregister().tasks_size(), 1);
  EXPECT_EQ(calls[0].reregister().tasks(0).state(), TASK_RUNNING);
  EXPECT_EQ(calls[0].reregister().frameworks(0).id(), "F");
}

TEST_F(AgentTest, LooksForTheMasterAgainWhenPingsStop) {
  registered();
  int before = detector_.calls;
  loop_.advance(seconds(7));
  EXPECT_GT(detector_.calls, before);
  bool reregistered = false;
  for (const AgentCall& c : toMaster()) {
    reregistered |= c.has_reregister();
  }
  EXPECT_TRUE(reregistered);
}

TEST_F(AgentTest, AfterALeaderChangeReregistersAtOnceOnlyOverAConnectionAlreadyUp) {
  registered();
  runTask("t1");
  toMaster();
  // A new leader it is not connected to: it waits a random moment (up to 500 ms), so that
  // thousands of agents do not all connect at once.
  detector_.lead("M2", "e2");
  loop_.runUntilIdle();
  EXPECT_TRUE(reregistrations().empty());
  loop_.advance(milliseconds(501));
  EXPECT_EQ(reregistrations().size(), 1u);
  EXPECT_EQ(connected_.back(), "e2");
  AgentEvent again;
  again.mutable_registered()->set_agent_id("A1");
  again.mutable_registered()->mutable_master_info()->set_id("M2");
  fromMaster(again);

  // A standby it already holds a connection to: at once.
  agent_->setAlreadyConnected([](const std::string& endpoint) { return endpoint == "e3"; });
  detector_.lead("M3", "e3");
  loop_.runUntilIdle();
  auto calls = reregistrations();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].tasks_size(), 1);
  EXPECT_EQ(connected_.back(), "e3");
}

TEST_F(AgentTest, IgnoresTasksBeforeRegistrationAndStrayExecutors) {
  runTask("t1");
  EXPECT_EQ(fake_.containers(), 0u);
  Envelope stray;
  stray.mutable_executor_call()->mutable_heartbeat();
  agent_->receiveFromExecutor("no-such-container", std::move(stray));
  EXPECT_EQ(agent_->metricsText().find("agora_agent_invalid_messages_total 0"),
            std::string::npos);
}

TEST_F(AgentTest, VolumesLiveInTheWorkDirAndAreLinkedIntoSandboxes) {
  registered();
  Resource volume = Resources::scalar("disk", 64);
  auto* reservation = volume.add_reservations();
  reservation->set_type(Resource::ReservationInfo::DYNAMIC);
  reservation->set_role("eng/db");
  volume.mutable_disk()->set_persistence_id("pg-1");
  volume.mutable_disk()->set_container_path("state/data");
  AgentEvent update;
  *update.mutable_update_resources()->add_checkpointed() = volume;
  fromMaster(update);
  const std::string dir = workDir_.path() + "/volumes/roles/eng/db/pg-1";
  ASSERT_TRUE(pathExists(dir));

  AgentEvent run;
  run.mutable_run_task()->mutable_framework()->set_id("F");
  TaskInfo* t = run.mutable_run_task()->mutable_task();
  t->set_task_id("t1");
  t->mutable_command()->set_value("true");
  *t->add_resources() = volume;
  fromMaster(run);
  // The sandbox sees the volume at its container path; what is written there is the volume's.
  std::string sandbox = workDir_.path() + "/frameworks/F/executors/t1/runs";
  std::vector<std::string> runs;
  for (const auto& entry : std::filesystem::directory_iterator(sandbox)) {
    runs.push_back(entry.path().string());
  }
  ASSERT_EQ(runs.size(), 1u);
  std::string link = runs.front() + "/state/data";
  ASSERT_TRUE(writeFileAtomic(link + "/file", "kept").ok());
  EXPECT_EQ(*readFile(dir + "/file"), "kept");

  // A bad id never makes a path outside the volumes directory.
  AgentEvent bad;
  Resource evil = volume;
  evil.mutable_disk()->set_persistence_id("../../escape");
  *bad.mutable_update_resources()->add_checkpointed() = evil;
  fromMaster(bad);
  EXPECT_FALSE(pathExists(workDir_.path() + "/volumes/escape"));
  EXPECT_FALSE(pathExists(workDir_.path() + "/escape"));

  // DESTROY deletes it.
  AgentEvent destroy;
  *destroy.mutable_update_resources()->add_destroyed_volumes() = volume;
  fromMaster(destroy);
  EXPECT_FALSE(pathExists(dir));
}

}  // namespace
}  // namespace agora::agent
