// The master as a state machine: a fake transport, a manual clock, no sockets.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/manual_loop.hpp"
#include "common/resources.hpp"
#include "master/allocator/hierarchical_allocator.hpp"
#include "master/master.hpp"
#include "tests/support/fake_transport.hpp"

namespace agora::master {
namespace {

using agora::testing::FakeTransport;

class MasterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MasterOptions options;
    options.info.set_id("M");
    options.info.set_endpoint("tcp://127.0.0.1:1");
    options.allocationInterval = seconds(1);
    options.agentPingTimeout = seconds(1);
    options.maxAgentPingTimeouts = 3;
    options.frameworkHeartbeatInterval = seconds(1);
    options.maxFrameworkHeartbeatMisses = 3;
    master_ = std::make_unique<Master>(
        options, loop_, transport_,
        std::make_unique<HierarchicalAllocator>([this] { return loop_.now(); }), registry_);
    startRecovered();
  }

  void startRecovered() {
    std::optional<RegistryState> recovered;
    registry_.recover([&](Result<RegistryState> state) { recovered = *state; });
    loop_.runUntilIdle();
    master_->start(*recovered);
  }

  void deliver(const std::string& from, const AgentCall& call) {
    Envelope e;
    *e.mutable_agent_call() = call;
    master_->receive(from, std::move(e));
    loop_.runUntilIdle();
  }

  void deliver(const std::string& from, const SchedulerCall& call) {
    Envelope e;
    *e.mutable_scheduler_call() = call;
    master_->receive(from, std::move(e));
    loop_.runUntilIdle();
  }

  std::vector<AgentEvent> agentEvents(const std::string& connection) {
    std::vector<AgentEvent> out;
    for (Envelope& e : transport_.take(connection)) {
      EXPECT_TRUE(e.has_agent_event());
      out.push_back(e.agent_event());
    }
    return out;
  }

  std::vector<SchedulerEvent> schedulerEvents(const std::string& connection) {
    std::vector<SchedulerEvent> out;
    for (Envelope& e : transport_.take(connection)) {
      EXPECT_TRUE(e.has_scheduler_event());
      out.push_back(e.scheduler_event());
    }
    return out;
  }

  // Only the status updates sent to a framework.
  std::vector<TaskStatus> updates(const std::string& connection) {
    std::vector<TaskStatus> out;
    for (const SchedulerEvent& e : schedulerEvents(connection)) {
      if (e.has_update()) {
        out.push_back(e.update().status());
      }
    }
    return out;
  }

  std::string registerAgent(const std::string& connection, const std::string& resources) {
    AgentCall call;
    AgentInfo* info = call.mutable_register_()->mutable_agent_info();
    info->set_hostname(connection + ".example");
    info->set_address("127.0.0.1:1");
    Resources::parse(resources)->copyTo(info->mutable_resources());
    deliver(connection, call);
    for (const AgentEvent& e : agentEvents(connection)) {
      if (e.has_registered()) {
        liveAgents_[connection] = e.registered().agent_id();
        return e.registered().agent_id();
      }
    }
    ADD_FAILURE() << "agent " << connection << " not registered";
    return "";
  }

  std::string subscribe(const std::string& connection, bool partitionAware = false,
                        double failoverTimeout = 0) {
    SchedulerCall call;
    FrameworkInfo* info = call.mutable_subscribe()->mutable_framework_info();
    info->set_name("test");
    info->set_failover_timeout(failoverTimeout);
    if (partitionAware) {
      info->add_capabilities(FrameworkInfo::PARTITION_AWARE);
    }
    deliver(connection, call);
    // Takes the Subscribed event and leaves the rest (offers may follow at once).
    std::string id;
    for (auto it = transport_.sent.begin(); it != transport_.sent.end(); ++it) {
      if (it->first == connection && it->second.scheduler_event().has_subscribed()) {
        id = it->second.scheduler_event().subscribed().framework_id();
        transport_.sent.erase(it);
        break;
      }
    }
    EXPECT_FALSE(id.empty()) << "framework " << connection << " not subscribed";
    liveFrameworks_[connection] = id;
    return id;
  }

  // Offers sent to `connection` (after running an allocation).
  std::vector<Offer> offers(const std::string& connection) {
    master_->allocateNow();
    loop_.runUntilIdle();
    std::vector<Offer> out;
    for (const SchedulerEvent& e : schedulerEvents(connection)) {
      for (const Offer& o : e.offers().offers()) {
        out.push_back(o);
      }
    }
    return out;
  }

  static TaskInfo task(const std::string& id, const std::string& resources,
                       const std::string& command = "true") {
    TaskInfo t;
    t.set_task_id(id);
    t.set_name(id);
    Resources::parse(resources)->copyTo(t.mutable_resources());
    t.mutable_command()->set_value(command);
    return t;
  }

  void launch(const std::string& connection, const std::string& frameworkId,
              const std::vector<std::string>& offerIds, const std::vector<TaskInfo>& tasks) {
    SchedulerCall call;
    call.set_framework_id(frameworkId);
    auto* accept = call.mutable_accept();
    for (const std::string& id : offerIds) {
      accept->add_offer_ids(id);
    }
    Operation* op = accept->add_operations();
    op->set_type(Operation::LAUNCH);
    for (const TaskInfo& t : tasks) {
      *op->mutable_launch()->add_task_infos() = t;
    }
    deliver(connection, call);
  }

  void update(const std::string& agentConnection, const std::string& agentId,
              const std::string& frameworkId, const std::string& taskId, TaskState state,
              const std::string& uuid) {
    AgentCall call;
    call.set_agent_id(agentId);
    auto* u = call.mutable_status_update();
    u->set_framework_id(frameworkId);
    u->mutable_status()->set_task_id(taskId);
    u->mutable_status()->set_state(state);
    u->mutable_status()->set_uuid(uuid);
    u->set_latest_state(state);
    deliver(agentConnection, call);
  }

  nlohmann::json state() { return master_->state(); }

  // Moves the clock second by second, every agent answering its pings and every framework
  // sending its heartbeats (tests that want silence call loop_.advance()).
  void advanceLive(int secs) {
    for (int i = 0; i < secs; ++i) {
      loop_.advance(seconds(1));
      for (const auto& [connection, agentId] : liveAgents_) {
        AgentCall pong;
        pong.set_agent_id(agentId);
        pong.mutable_pong()->set_master_id("M");
        deliver(connection, pong);
      }
      for (const auto& [connection, frameworkId] : liveFrameworks_) {
        SchedulerCall heartbeat;
        heartbeat.set_framework_id(frameworkId);
        heartbeat.mutable_heartbeat();
        deliver(connection, heartbeat);
      }
    }
  }

  std::map<std::string, std::string> liveAgents_;      // connection -> agent id
  std::map<std::string, std::string> liveFrameworks_;  // connection -> framework id

  ManualLoop loop_;
  FakeTransport transport_;
  InMemoryRegistry registry_{loop_};
  std::unique_ptr<Master> master_;
};

const std::string kUuid1(16, '\1');
const std::string kUuid2(16, '\2');

TEST_F(MasterTest, RegistersAgentsAndAnswersRetriedRegistrationsAlike) {
  std::string id = registerAgent("a1", "cpus:4;mem:1024");
  EXPECT_EQ(id, "M-S0");
  EXPECT_EQ(registerAgent("a1", "cpus:4;mem:1024"), id);  // a retry, not a second agent
  EXPECT_EQ(registerAgent("a2", "cpus:2;mem:512"), "M-S1");
  EXPECT_EQ(state()["agents"].size(), 2u);
}

TEST_F(MasterTest, RefusesAgentsWithInvalidResources) {
  AgentCall call;
  AgentInfo* info = call.mutable_register_()->mutable_agent_info();
  info->set_hostname("h");
  Resource* r = info->add_resources();
  r->set_name("cpus");
  r->set_scalar(-3);
  deliver("a1", call);
  auto events = agentEvents("a1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].error().code(), ERROR_INVALID);
  EXPECT_EQ(state()["agents"].size(), 0u);
}

TEST_F(MasterTest, OffersAnAgentsResourcesToASubscribedFramework) {
  std::string agentId = registerAgent("a1", "cpus:4;mem:1024");
  subscribe("s1");
  auto offered = offers("s1");
  ASSERT_EQ(offered.size(), 1u);
  EXPECT_EQ(offered[0].agent_id(), agentId);
  EXPECT_EQ(Resources(offered[0].resources()).toString(), "cpus:4;mem:1024");
  // Outstanding offers are not offered twice.
  EXPECT_TRUE(offers("s1").empty());
}

TEST_F(MasterTest, LaunchForwardsUpdatesAndRelaysAcknowledgements) {
  std::string agentId = registerAgent("a1", "cpus:4;mem:1024");
  std::string frameworkId = subscribe("s1");
  auto offered = offers("s1");
  ASSERT_EQ(offered.size(), 1u);

  launch("s1", frameworkId, {offered[0].id()}, {task("t1", "cpus:1;mem:128")});
  auto toAgent = agentEvents("a1");
  ASSERT_EQ(toAgent.size(), 1u);
  ASSERT_TRUE(toAgent[0].has_run_task());
  EXPECT_EQ(toAgent[0].run_task().task().task_id(), "t1");
  EXPECT_EQ(toAgent[0].run_task().framework().id(), frameworkId);
  EXPECT_EQ(state()["frameworks"][0]["tasks"][0]["state"], "TASK_STAGING");

  update("a1", agentId, frameworkId, "t1", TASK_RUNNING, kUuid1);
  auto toScheduler = schedulerEvents("s1");
  ASSERT_EQ(toScheduler.size(), 1u);
  EXPECT_EQ(toScheduler[0].update().status().state(), TASK_RUNNING);
  EXPECT_EQ(toScheduler[0].update().status().agent_id(), agentId);
  EXPECT_EQ(toScheduler[0].update().status().uuid(), kUuid1);

  SchedulerCall ack;
  ack.set_framework_id(frameworkId);
  ack.mutable_acknowledge()->set_agent_id(agentId);
  ack.mutable_acknowledge()->set_task_id("t1");
  ack.mutable_acknowledge()->set_uuid(kUuid1);
  deliver("s1", ack);
  toAgent = agentEvents("a1");
  ASSERT_EQ(toAgent.size(), 1u);
  EXPECT_EQ(toAgent[0].status_update_ack().uuid(), kUuid1);
  EXPECT_EQ(toAgent[0].status_update_ack().task_id(), "t1");

  // The unused part of the offer came back and is offered again after the default filter.
  advanceLive(6);
  offered = offers("s1");
  ASSERT_EQ(offered.size(), 1u);
  EXPECT_EQ(Resources(offered[0].resources()).toString(), "cpus:3;mem:896");

  // A finished task gives its resources back and leaves the active list once acknowledged.
  update("a1", agentId, frameworkId, "t1", TASK_FINISHED, kUuid2);
  EXPECT_EQ(updates("s1").size(), 1u);  // (and an offer of what the task freed)
  ack.mutable_acknowledge()->set_uuid(kUuid2);
  deliver("s1", ack);
  EXPECT_EQ(state()["frameworks"][0]["tasks"].size(), 0u);
  EXPECT_EQ(state()["frameworks"][0]["completed_tasks"][0]["state"], "TASK_FINISHED");
  EXPECT_EQ(state()["agents"][0]["used_resources"]["cpus"], 0.0);
}

TEST_F(MasterTest, TaskAskingForMoreThanItsOfferIsAnError) {
  registerAgent("a1", "cpus:1;mem:128");
  std::string frameworkId = subscribe("s1");
  auto offered = offers("s1");
  ASSERT_EQ(offered.size(), 1u);
  launch("s1", frameworkId, {offered[0].id()},
         {task("big", "cpus:2;mem:64"), task("fits", "cpus:1;mem:64"),
          task("fits", "cpus:0.1;mem:1"), task("bad/id", "cpus:0.1"), task("nocmd", "cpus:0.1", "")});
  std::map<std::string, TaskStatus> statuses;
  for (const SchedulerEvent& e : schedulerEvents("s1")) {
    statuses[e.update().status().task_id()] = e.update().status();
  }
  EXPECT_EQ(statuses["big"].state(), TASK_ERROR);
  EXPECT_EQ(statuses["big"].reason(), TaskStatus::REASON_TASK_INVALID);
  EXPECT_NE(statuses["big"].message().find("more resources"), std::string::npos);
  EXPECT_EQ(statuses["fits"].state(), TASK_ERROR);  // the second "fits": a duplicate id
  EXPECT_EQ(statuses["bad/id"].state(), TASK_ERROR);
  EXPECT_EQ(statuses["nocmd"].state(), TASK_ERROR);
  auto toAgent = agentEvents("a1");
  ASSERT_EQ(toAgent.size(), 1u);  // only the first "fits" runs
  EXPECT_EQ(toAgent[0].run_task().task().task_id(), "fits");
  EXPECT_NE(master_->metricsText().find("agora_master_tasks_invalid_total 4"), std::string::npos);
}

TEST_F(MasterTest, LaunchOnAnOfferThatIsGoneIsDroppedOrLost) {
  registerAgent("a1", "cpus:1;mem:128");
  std::string frameworkId = subscribe("s1");
  launch("s1", frameworkId, {"no-such-offer"}, {task("t1", "cpus:0.1")});
  auto events = updates("s1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state(), TASK_LOST);
  EXPECT_EQ(events[0].reason(), TaskStatus::REASON_INVALID_OFFERS);
  EXPECT_TRUE(agentEvents("a1").empty());

  std::string aware = subscribe("s2", /*partitionAware=*/true);
  launch("s2", aware, {"no-such-offer"}, {task("t1", "cpus:0.1")});
  events = updates("s2");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state(), TASK_DROPPED);
}

TEST_F(MasterTest, DeclineFiltersTheAgentUntilRefuseSecondsOrRevive) {
  std::string agentId = registerAgent("a1", "cpus:1;mem:128");
  std::string frameworkId = subscribe("s1");
  auto offered = offers("s1");
  ASSERT_EQ(offered.size(), 1u);
  SchedulerCall decline;
  decline.set_framework_id(frameworkId);
  decline.mutable_decline()->add_offer_ids(offered[0].id());
  decline.mutable_decline()->mutable_filters()->set_refuse_seconds(10);
  deliver("s1", decline);
  EXPECT_TRUE(offers("s1").empty());
  advanceLive(5);
  EXPECT_TRUE(offers("s1").empty());
  advanceLive(6);
  offered = offers("s1");
  ASSERT_EQ(offered.size(), 1u);

  decline.mutable_decline()->set_offer_ids(0, offered[0].id());
  deliver("s1", decline);
  EXPECT_TRUE(offers("s1").empty());
  SchedulerCall revive;
  revive.set_framework_id(frameworkId);
  revive.mutable_revive();
  deliver("s1", revive);
  EXPECT_EQ(offers("s1").size(), 1u);
}

TEST_F(MasterTest, SuppressedFrameworksGetNoOffers) {
  std::string agentId = registerAgent("a1", "cpus:1;mem:128");
  // Suppressed from the start.
  SchedulerCall call;
  call.mutable_subscribe()->mutable_framework_info()->set_name("quiet");
  call.mutable_subscribe()->add_suppressed_roles("*");
  deliver("s1", call);
  std::vector<SchedulerEvent> events = schedulerEvents("s1");
  ASSERT_EQ(events.size(), 1u);
  std::string frameworkId = events[0].subscribed().framework_id();
  liveFrameworks_["s1"] = frameworkId;
  advanceLive(3);
  EXPECT_TRUE(offers("s1").empty());

  // Revived, it gets the offer; suppressed again, what it gives back stays away.
  SchedulerCall revive;
  revive.set_framework_id(frameworkId);
  revive.mutable_revive();
  deliver("s1", revive);
  auto offered = offers("s1");
  ASSERT_EQ(offered.size(), 1u);
  SchedulerCall suppress;
  suppress.set_framework_id(frameworkId);
  suppress.mutable_suppress();
  deliver("s1", suppress);
  SchedulerCall decline;
  decline.set_framework_id(frameworkId);
  decline.mutable_decline()->add_offer_ids(offered[0].id());
  decline.mutable_decline()->mutable_filters()->set_refuse_seconds(0);
  deliver("s1", decline);
  advanceLive(3);
  EXPECT_TRUE(offers("s1").empty());
}

TEST_F(MasterTest, AgentMissingPingsIsRemovedWithItsTasksAndOffers) {
  std::string a1 = registerAgent("a1", "cpus:2;mem:256");
  std::string a2 = registerAgent("a2", "cpus:2;mem:256");
  std::string frameworkId = subscribe("s1");
  auto offered = offers("s1");
  ASSERT_EQ(offered.size(), 2u);
  const Offer& on1 = offered[0].agent_id() == a1 ? offered[0] : offered[1];
  launch("s1", frameworkId, {on1.id()}, {task("t1", "cpus:1;mem:64")});
  update("a1", a1, frameworkId, "t1", TASK_RUNNING, kUuid1);
  schedulerEvents("s1");

  // a2 answers every ping; a1 never does.
  liveAgents_.erase("a1");
  advanceLive(4);
  auto events = schedulerEvents("s1");
  bool lost = false;
  bool agentLost = false;
  bool rescinded = false;
  for (const SchedulerEvent& e : events) {
    if (e.has_update() && e.update().status().task_id() == "t1") {
      lost = e.update().status().state() == TASK_LOST &&
             e.update().status().reason() == TaskStatus::REASON_AGENT_REMOVED;
    }
    agentLost |= e.has_failure() && e.failure().agent_id() == a1;
    rescinded |= e.has_rescind();
  }
  EXPECT_TRUE(lost);
  EXPECT_TRUE(agentLost);
  EXPECT_FALSE(rescinded);  // a1's offer was used; a2's is still good
  ASSERT_EQ(state()["agents"].size(), 1u);
  EXPECT_EQ(state()["agents"][0]["id"], a2);
  EXPECT_EQ(state()["unreachable_agents"][0]["id"], a1);

  // The lost agent's messages are refused, so it re-registers.
  update("a1", a1, frameworkId, "t1", TASK_FINISHED, kUuid2);
  auto toA1 = agentEvents("a1");
  ASSERT_FALSE(toA1.empty());
  EXPECT_EQ(toA1.back().error().code(), ERROR_UNKNOWN_AGENT);
}

TEST_F(MasterTest, RescindsOffersOfARemovedAgent) {
  std::string a1 = registerAgent("a1", "cpus:2;mem:256");
  std::string frameworkId = subscribe("s1");
  auto offered = offers("s1");
  ASSERT_EQ(offered.size(), 1u);
  liveAgents_.clear();
  advanceLive(4);  // a1 never pongs
  bool rescinded = false;
  for (const SchedulerEvent& e : schedulerEvents("s1")) {
    rescinded |= e.has_rescind() && e.rescind().offer_id() == offered[0].id();
  }
  EXPECT_TRUE(rescinded);
  // Accepting the rescinded offer now fails cleanly.
  launch("s1", frameworkId, {offered[0].id()}, {task("t1", "cpus:1")});
  auto events = updates("s1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason(), TaskStatus::REASON_INVALID_OFFERS);
}

TEST_F(MasterTest, UnknownPeersGetClearErrorsAndChangeNothing) {
  AgentCall pong;
  pong.set_agent_id("nobody");
  pong.mutable_pong()->set_master_id("M");
  deliver("x", pong);
  auto toX = agentEvents("x");
  ASSERT_EQ(toX.size(), 1u);
  EXPECT_EQ(toX[0].error().code(), ERROR_UNKNOWN_AGENT);

  SchedulerCall kill;
  kill.set_framework_id("nobody");
  kill.mutable_kill()->set_task_id("t");
  deliver("y", kill);
  auto toY = schedulerEvents("y");
  ASSERT_EQ(toY.size(), 1u);
  EXPECT_EQ(toY[0].error().code(), ERROR_NOT_SUBSCRIBED);

  // A framework's calls are only taken from the connection that subscribed it.
  std::string frameworkId = subscribe("s1");
  kill.set_framework_id(frameworkId);
  deliver("intruder", kill);
  EXPECT_EQ(schedulerEvents("intruder")[0].error().code(), ERROR_NOT_SUBSCRIBED);
  EXPECT_TRUE(schedulerEvents("s1").empty());

  std::string metrics = master_->metricsText();
  EXPECT_NE(metrics.find("reason=\"unknown_agent\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("reason=\"not_subscribed\"} 2"), std::string::npos) << metrics;
  EXPECT_EQ(state()["agents"].size(), 0u);
}

TEST_F(MasterTest, InvalidSubscriptionsAreRefused) {
  SchedulerCall call;
  call.mutable_subscribe()->mutable_framework_info()->set_name("");
  deliver("s1", call);
  EXPECT_EQ(schedulerEvents("s1")[0].error().code(), ERROR_INVALID);
  call.mutable_subscribe()->mutable_framework_info()->set_name("x");
  call.mutable_subscribe()->mutable_framework_info()->add_roles("bad role");
  deliver("s1", call);
  EXPECT_EQ(schedulerEvents("s1")[0].error().code(), ERROR_INVALID);
  EXPECT_EQ(state()["frameworks"].size(), 0u);
}

TEST_F(MasterTest, KillIsForwardedToTheTasksAgent) {
  std::string agentId = registerAgent("a1", "cpus:1;mem:128");
  std::string frameworkId = subscribe("s1");
  auto offered = offers("s1");
  launch("s1", frameworkId, {offered[0].id()}, {task("t1", "cpus:1")});
  agentEvents("a1");
  SchedulerCall kill;
  kill.set_framework_id(frameworkId);
  kill.mutable_kill()->set_task_id("t1");
  deliver("s1", kill);
  auto toAgent = agentEvents("a1");
  ASSERT_EQ(toAgent.size(), 1u);
  EXPECT_EQ(toAgent[0].kill_task().task_id(), "t1");
  EXPECT_EQ(toAgent[0].kill_task().framework_id(), frameworkId);

  kill.mutable_kill()->set_task_id("unknown");
  deliver("s1", kill);
  auto events = updates("s1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state(), TASK_LOST);
}

TEST_F(MasterTest, ReconcilesImplicitlyAndExplicitly) {
  std::string agentId = registerAgent("a1", "cpus:2;mem:128");
  std::string frameworkId = subscribe("s1");
  auto offered = offers("s1");
  launch("s1", frameworkId, {offered[0].id()}, {task("t1", "cpus:1"), task("t2", "cpus:1")});
  update("a1", agentId, frameworkId, "t1", TASK_RUNNING, kUuid1);
  schedulerEvents("s1");

  SchedulerCall reconcile;
  reconcile.set_framework_id(frameworkId);
  reconcile.mutable_reconcile();
  deliver("s1", reconcile);
  std::map<std::string, TaskState> states;
  for (const TaskStatus& status : updates("s1")) {
    EXPECT_TRUE(status.uuid().empty());
    EXPECT_EQ(status.reason(), TaskStatus::REASON_RECONCILIATION);
    states[status.task_id()] = status.state();
  }
  EXPECT_EQ(states["t1"], TASK_RUNNING);
  EXPECT_EQ(states["t2"], TASK_STAGING);

  auto* t = reconcile.mutable_reconcile()->add_tasks();
  t->set_task_id("t9");
  deliver("s1", reconcile);
  auto events = updates("s1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].task_id(), "t9");
  EXPECT_EQ(events[0].state(), TASK_LOST);
}

TEST_F(MasterTest, SilentFrameworkWithoutFailoverTimeoutIsRemoved) {
  std::string agentId = registerAgent("a1", "cpus:2;mem:128");
  std::string frameworkId = subscribe("s1");
  auto offered = offers("s1");
  launch("s1", frameworkId, {offered[0].id()}, {task("t1", "cpus:1")});
  agentEvents("a1");
  liveFrameworks_.clear();
  advanceLive(5);  // only the framework goes silent
  bool shutdown = false;
  for (const AgentEvent& e : agentEvents("a1")) {
    shutdown |= e.has_shutdown_framework() && e.shutdown_framework().framework_id() == frameworkId;
  }
  EXPECT_TRUE(shutdown);
  EXPECT_EQ(state()["frameworks"].size(), 0u);
  EXPECT_EQ(state()["completed_frameworks"][0]["completed_tasks"][0]["state"], "TASK_KILLED");
  EXPECT_EQ(state()["agents"][0]["used_resources"]["cpus"], 0.0);

  // The framework cannot come back under its old id.
  SchedulerCall call;
  call.mutable_subscribe()->mutable_framework_info()->set_name("test");
  call.mutable_subscribe()->mutable_framework_info()->set_id(frameworkId);
  deliver("s1", call);
  EXPECT_EQ(schedulerEvents("s1").back().error().code(), ERROR_FRAMEWORK_REMOVED);
}

TEST_F(MasterTest, FrameworkWithFailoverTimeoutCanResubscribe) {
  std::string agentId = registerAgent("a1", "cpus:2;mem:128");
  std::string frameworkId = subscribe("s1", false, /*failoverTimeout=*/60);
  auto offered = offers("s1");
  launch("s1", frameworkId, {offered[0].id()}, {task("t1", "cpus:1")});
  liveFrameworks_.clear();
  advanceLive(10);  // silent: disconnected, not removed
  EXPECT_EQ(state()["frameworks"][0]["connected"], false);

  SchedulerCall call;
  call.mutable_subscribe()->mutable_framework_info()->set_name("test");
  call.mutable_subscribe()->mutable_framework_info()->set_id(frameworkId);
  deliver("s2", call);  // a new scheduler process
  auto events = schedulerEvents("s2");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].subscribed().framework_id(), frameworkId);
  EXPECT_EQ(state()["frameworks"][0]["connected"], true);
  EXPECT_EQ(state()["frameworks"][0]["tasks"].size(), 1u);
  // The agent holding its task is told, so that it resends unacknowledged updates now.
  bool told = false;
  for (const AgentEvent& e : agentEvents("a1")) {
    told |= e.has_update_framework() && e.update_framework().framework_info().id() == frameworkId;
  }
  EXPECT_TRUE(told);
}

TEST_F(MasterTest, ReregisteringAgentBringsItsTasksToANewMaster) {
  AgentCall call;
  call.set_agent_id("OLD-S3");
  auto* reg = call.mutable_reregister();
  reg->mutable_agent_info()->set_hostname("h");
  Resources::parse("cpus:4;mem:512")->copyTo(reg->mutable_agent_info()->mutable_resources());
  FrameworkInfo* f = reg->add_frameworks();
  f->set_id("OLD-0000");
  f->set_name("before");
  Task* t = reg->add_tasks();
  t->set_task_id("t1");
  t->set_framework_id("OLD-0000");
  t->set_state(TASK_RUNNING);
  Resources::parse("cpus:1;mem:64")->copyTo(t->mutable_resources());
  deliver("a1", call);
  auto events = agentEvents("a1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].registered().agent_id(), "OLD-S3");
  auto s = state();
  ASSERT_EQ(s["frameworks"].size(), 1u);
  EXPECT_EQ(s["frameworks"][0]["id"], "OLD-0000");
  EXPECT_EQ(s["frameworks"][0]["connected"], false);
  EXPECT_EQ(s["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");
  EXPECT_EQ(s["agents"][0]["used_resources"]["cpus"], 1.0);

  // The framework resubscribes with its id and gets its task back.
  SchedulerCall sub;
  sub.mutable_subscribe()->mutable_framework_info()->set_name("before");
  sub.mutable_subscribe()->mutable_framework_info()->set_id("OLD-0000");
  deliver("s1", sub);
  auto events2 = schedulerEvents("s1");
  ASSERT_EQ(events2.size(), 2u);
  EXPECT_EQ(events2[0].subscribed().framework_id(), "OLD-0000");
  ASSERT_EQ(events2[1].offers().offers_size(), 1);
  std::vector<Offer> offered = {events2[1].offers().offers(0)};
  EXPECT_EQ(Resources(offered[0].resources()).toString(), "cpus:3;mem:448");
}

TEST_F(MasterTest, TaskTheReregisteringAgentLacksIsLost) {
  std::string agentId = registerAgent("a1", "cpus:2;mem:128");
  std::string frameworkId = subscribe("s1");
  auto offered = offers("s1");
  launch("s1", frameworkId, {offered[0].id()}, {task("kept", "cpus:1"), task("lost", "cpus:1")});
  update("a1", agentId, frameworkId, "kept", TASK_RUNNING, kUuid1);
  updates("s1");

  // The agent comes back over a new connection knowing only "kept": the launch of "lost"
  // vanished with the old connection.
  AgentCall call;
  call.set_agent_id(agentId);
  auto* reg = call.mutable_reregister();
  reg->mutable_agent_info()->set_hostname("h");
  Resources::parse("cpus:2;mem:128")->copyTo(reg->mutable_agent_info()->mutable_resources());
  Task* t = reg->add_tasks();
  t->set_task_id("kept");
  t->set_framework_id(frameworkId);
  t->set_state(TASK_RUNNING);
  deliver("a1-again", call);
  auto events = updates("s1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].task_id(), "lost");
  EXPECT_EQ(events[0].state(), TASK_LOST);
  auto s = state();
  ASSERT_EQ(s["frameworks"][0]["tasks"].size(), 1u);
  EXPECT_EQ(s["frameworks"][0]["tasks"][0]["id"], "kept");
  EXPECT_EQ(s["agents"][0]["used_resources"]["cpus"], 1.0);
}

TEST_F(MasterTest, TaskGroupsLaunchTogetherOrNotAtAll) {
  std::string agentId = registerAgent("a1", "cpus:2;mem:128");
  std::string frameworkId = subscribe("s1");
  auto offered = offers("s1");
  SchedulerCall call;
  call.set_framework_id(frameworkId);
  call.mutable_accept()->add_offer_ids(offered[0].id());
  Operation* op = call.mutable_accept()->add_operations();
  op->set_type(Operation::LAUNCH_GROUP);
  op->mutable_launch_group()->mutable_executor()->set_executor_id("pod-1");
  *op->mutable_launch_group()->mutable_task_group()->add_tasks() = task("a", "cpus:1");
  *op->mutable_launch_group()->mutable_task_group()->add_tasks() = task("b", "cpus:1.5");
  deliver("s1", call);
  auto events = updates("s1");
  ASSERT_EQ(events.size(), 2u);  // both refused: together they do not fit
  EXPECT_EQ(events[0].state(), TASK_ERROR);
  EXPECT_EQ(events[1].state(), TASK_ERROR);
  EXPECT_TRUE(agentEvents("a1").empty());

  advanceLive(6);
  agentEvents("a1");  // the pings
  offered = offers("s1");
  ASSERT_EQ(offered.size(), 1u);
  call.mutable_accept()->set_offer_ids(0, offered[0].id());
  op = call.mutable_accept()->mutable_operations(0);
  Resources::parse("cpus:1")->copyTo(
      op->mutable_launch_group()->mutable_task_group()->mutable_tasks(1)->mutable_resources());
  deliver("s1", call);
  auto toAgent = agentEvents("a1");
  ASSERT_EQ(toAgent.size(), 1u);
  EXPECT_EQ(toAgent[0].run_task_group().task_group().tasks_size(), 2);
  EXPECT_EQ(toAgent[0].run_task_group().executor().executor_id(), "pod-1");
  EXPECT_EQ(state()["frameworks"][0]["tasks"].size(), 2u);
}

TEST_F(MasterTest, MalformedStatusUpdatesAreDropped) {
  std::string agentId = registerAgent("a1", "cpus:1;mem:128");
  std::string frameworkId = subscribe("s1");
  update("a1", agentId, frameworkId, "t1", TASK_RUNNING, "short-uuid");
  update("a1", agentId, frameworkId, "t1", static_cast<TaskState>(99), kUuid1);
  EXPECT_TRUE(updates("s1").empty());
  EXPECT_NE(master_->metricsText().find("reason=\"malformed\"} 2"), std::string::npos);
}

}  // namespace
}  // namespace agora::master
