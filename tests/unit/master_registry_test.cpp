// The master with a registry (HA): what it must record before it acts, and how it comes back
// after a failover. A registry whose writes the test holds or fails, a manual clock, no sockets.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <sstream>

#include "common/manual_loop.hpp"
#include "common/resources.hpp"
#include "master/allocator/hierarchical_allocator.hpp"
#include "master/master.hpp"
#include "tests/support/fake_transport.hpp"

namespace agora::master {
namespace {

// A registry whose writes wait until the test lets them through (or fails them).
class ControlledRegistry final : public BatchingRegistry {
 public:
  explicit ControlledRegistry(Loop& loop, RegistryState initial = {})
      : BatchingRegistry(loop), stored(std::move(initial)) {}
  std::string describe() const override { return "controlled"; }

  void release(Status result = Status()) {
    auto pending = std::move(waiting);
    waiting.clear();
    for (auto& [next, done] : pending) {
      if (result) {
        stored = next;
      }
      done(result);
    }
  }

  RegistryState stored;
  std::vector<std::pair<RegistryState, std::function<void(Status)>>> waiting;
  bool hold = true;

 protected:
  void load(std::function<void(Result<RegistryState>)> done) override {
    loop_.post([this, done] { done(stored); });
  }
  void store(const RegistryState& next, const std::vector<registry::Operation>&,
             std::function<void(Status)> done) override {
    if (hold) {
      waiting.emplace_back(next, std::move(done));
      return;
    }
    stored = next;
    loop_.post([done] { done(Status()); });
  }
};

class MasterRegistryTest : public ::testing::Test {
 protected:
  void start(RegistryState initial = {}) {
    registry_ = std::make_unique<ControlledRegistry>(loop_, std::move(initial));
    MasterOptions options;
    options.info.set_id("M2");
    options.agentPingTimeout = seconds(1);
    options.maxAgentPingTimeouts = 3;
    options.frameworkHeartbeatInterval = seconds(1);
    options.agentReregisterTimeout = seconds(30);
    options.onFatal = [this](const std::string& why) { fatal_ = why; };
    master_ = std::make_unique<Master>(
        options, loop_, transport_,
        std::make_unique<HierarchicalAllocator>([this] { return loop_.now(); }), *registry_);
    std::optional<RegistryState> recovered;
    registry_->recover([&](Result<RegistryState> s) { recovered = *s; });
    loop_.runUntilIdle();
    master_->start(*recovered);
    loop_.runUntilIdle();
  }

  void deliver(const std::string& from, Envelope e) {
    master_->receive(from, std::move(e));
    loop_.runUntilIdle();
  }

  Envelope registration(const std::string& hostname) {
    Envelope e;
    AgentInfo* info = e.mutable_agent_call()->mutable_register_()->mutable_agent_info();
    info->set_hostname(hostname);
    Resources::parse("cpus:2;mem:256")->copyTo(info->mutable_resources());
    return e;
  }

  Envelope reregistration(const std::string& agentId, const std::string& frameworkId,
                          const std::string& taskId) {
    Envelope e;
    e.mutable_agent_call()->set_agent_id(agentId);
    auto* reg = e.mutable_agent_call()->mutable_reregister();
    reg->mutable_agent_info()->set_hostname("h");
    Resources::parse("cpus:2;mem:256")->copyTo(reg->mutable_agent_info()->mutable_resources());
    Task* t = reg->add_tasks();
    t->set_task_id(taskId);
    t->set_framework_id(frameworkId);
    t->set_state(TASK_RUNNING);
    Resources::parse("cpus:1")->copyTo(t->mutable_resources());
    return e;
  }

  // The value of gauge `name` in /metrics.
  double metric(const std::string& name) {
    std::istringstream lines(master_->metricsText());
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind(name + " ", 0) == 0) {
        return std::stod(line.substr(name.size() + 1));
      }
    }
    ADD_FAILURE() << "no metric " << name;
    return -1;
  }

  ManualLoop loop_;
  agora::testing::FakeTransport transport_;
  std::unique_ptr<ControlledRegistry> registry_;
  std::unique_ptr<Master> master_;
  std::string fatal_;
};

TEST_F(MasterRegistryTest, AnAgentIsAdmittedDurablyBeforeItHearsSo) {
  start();
  deliver("a1", registration("h1"));
  EXPECT_TRUE(transport_.take("a1").empty());  // the write is still in flight
  deliver("a1", registration("h1"));           // a retry meanwhile starts nothing new
  ASSERT_EQ(registry_->waiting.size(), 1u);
  registry_->release();
  loop_.runUntilIdle();
  auto sent = transport_.take("a1");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].agent_event().registered().agent_id(), "M2-S0");
  EXPECT_EQ(registry_->stored.agents.count("M2-S0"), 1u);
}

TEST_F(MasterRegistryTest, AFrameworkIsRecordedBeforeItIsSubscribed) {
  start();
  Envelope e;
  e.mutable_scheduler_call()->mutable_subscribe()->mutable_framework_info()->set_name("fw");
  e.mutable_scheduler_call()->mutable_subscribe()->mutable_framework_info()->set_failover_timeout(
      90);
  deliver("s1", e);
  EXPECT_TRUE(transport_.take("s1").empty());
  registry_->release();
  loop_.runUntilIdle();
  auto sent = transport_.take("s1");
  ASSERT_FALSE(sent.empty());
  std::string id = sent[0].scheduler_event().subscribed().framework_id();
  ASSERT_EQ(registry_->stored.frameworks.count(id), 1u);
  EXPECT_DOUBLE_EQ(registry_->stored.frameworks.at(id).info().failover_timeout(), 90);
}

TEST_F(MasterRegistryTest, AFailedRegistryWriteStopsTheMaster) {
  start();
  deliver("a1", registration("h1"));
  registry_->release(Error("the registry was written by another master"));
  loop_.runUntilIdle();
  EXPECT_NE(fatal_.find("another master"), std::string::npos);
  EXPECT_TRUE(transport_.take("a1").empty());
}

TEST_F(MasterRegistryTest, AfterAFailoverKnownAgentsComeBackWithoutAWrite) {
  RegistryState before;
  registry::Operation admit;
  admit.mutable_admit_agent()->set_id("OLD-S1");
  admit.mutable_admit_agent()->set_hostname("h");
  ASSERT_TRUE(before.apply(admit, 1).ok());
  registry::Operation framework;
  framework.mutable_add_framework()->set_id("OLD-0001");
  framework.mutable_add_framework()->set_name("fw");
  framework.mutable_add_framework()->set_failover_timeout(0);
  ASSERT_TRUE(before.apply(framework, 1).ok());
  start(before);
  auto state = master_->state();
  ASSERT_EQ(state["recovered_agents"].size(), 1u);
  ASSERT_EQ(state["frameworks"].size(), 1u);
  EXPECT_EQ(state["frameworks"][0]["connected"], false);
  const double serving = metric("agora_master_serving_timestamp_seconds");
  EXPECT_GT(serving, 0);
  EXPECT_EQ(metric("agora_master_elected_timestamp_seconds"), serving);  // not told otherwise
  EXPECT_EQ(metric("agora_master_agents_recovered_timestamp_seconds"), 0);
  loop_.advance(seconds(2));

  // While its agent has not re-registered, reconciling its task gets no answer (not LOST).
  Envelope sub;
  sub.mutable_scheduler_call()->mutable_subscribe()->mutable_framework_info()->set_name("fw");
  sub.mutable_scheduler_call()->mutable_subscribe()->mutable_framework_info()->set_id("OLD-0001");
  deliver("s1", sub);
  registry_->release();
  loop_.runUntilIdle();
  transport_.take("s1");
  Envelope reconcile;
  reconcile.mutable_scheduler_call()->set_framework_id("OLD-0001");
  reconcile.mutable_scheduler_call()->mutable_reconcile()->add_tasks()->set_task_id("t1");
  deliver("s1", reconcile);
  EXPECT_TRUE(transport_.take("s1").empty());

  deliver("a1", reregistration("OLD-S1", "OLD-0001", "t1"));
  EXPECT_TRUE(registry_->waiting.empty());  // known: nothing to write
  auto sent = transport_.take("a1");
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent[0].agent_event().registered().agent_id(), "OLD-S1");
  state = master_->state();
  EXPECT_EQ(state["recovered_agents"].size(), 0u);
  EXPECT_EQ(state["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");
  // The last agent back marks the end of the failover.
  EXPECT_NEAR(metric("agora_master_agents_recovered_timestamp_seconds"), serving + 2, 0.01);
}

TEST_F(MasterRegistryTest, AgentsThatDoNotComeBackInTimeAreMarkedUnreachable) {
  RegistryState before;
  registry::Operation admit;
  admit.mutable_admit_agent()->set_id("OLD-S1");
  admit.mutable_admit_agent()->set_hostname("h");
  ASSERT_TRUE(before.apply(admit, 1).ok());
  start(before);
  registry_->hold = false;
  loop_.advance(seconds(31));
  EXPECT_TRUE(registry_->stored.agents.at("OLD-S1").unreachable());
  EXPECT_EQ(master_->state()["unreachable_agents"].size(), 1u);
  EXPECT_GT(metric("agora_master_agents_recovered_timestamp_seconds"),
            metric("agora_master_serving_timestamp_seconds"));

  // When it does come back, it is admitted again (written), its old tasks killed.
  Envelope sub;
  sub.mutable_scheduler_call()->mutable_subscribe()->mutable_framework_info()->set_name("fw");
  deliver("s1", sub);
  std::string frameworkId;
  for (Envelope& e : transport_.take("s1")) {
    if (e.scheduler_event().has_subscribed()) {
      frameworkId = e.scheduler_event().subscribed().framework_id();
    }
  }
  ASSERT_FALSE(frameworkId.empty());
  deliver("a1", reregistration("OLD-S1", frameworkId, "t1"));
  EXPECT_FALSE(registry_->stored.agents.at("OLD-S1").unreachable());
  bool killed = false;
  for (Envelope& e : transport_.take("a1")) {
    killed |= e.agent_event().has_kill_task() && e.agent_event().kill_task().task_id() == "t1";
  }
  EXPECT_TRUE(killed);
}

TEST_F(MasterRegistryTest, RoleSettingsAreStoredBeforeTheyTakeEffectAndComeBack) {
  start();
  std::optional<Status> answered;
  master_->setWeight("eng", 3, [&](Status s) { answered = s; });
  loop_.runUntilIdle();
  EXPECT_FALSE(answered.has_value());  // not until it is stored
  ASSERT_EQ(registry_->waiting.size(), 1u);
  registry_->release();
  loop_.runUntilIdle();
  ASSERT_TRUE(answered.has_value());
  EXPECT_TRUE(*answered);

  RoleQuota quota;
  quota.guarantee = *Quantities::parse("cpus:2");
  quota.limit = *Quantities::parseLimit("cpus:4");
  registry_->hold = false;
  answered.reset();
  master_->setQuota("eng", quota, [&](Status s) { answered = s; });
  loop_.runUntilIdle();
  ASSERT_TRUE(answered && *answered);
  // Bad input is refused without a write.
  size_t stored = registry_->stored.roles.size();
  master_->setWeight("eng", -2, [&](Status s) { answered = s; });
  EXPECT_FALSE(*answered);
  master_->removeQuota("ops", [&](Status s) { answered = s; });
  EXPECT_FALSE(*answered);
  EXPECT_EQ(registry_->stored.roles.size(), stored);

  // A new master (after a failover) takes the settings from the registry.
  RegistryState before = registry_->stored;
  master_.reset();
  start(before);
  auto roles = master_->roles()["roles"];
  ASSERT_EQ(roles.size(), 1u);
  EXPECT_EQ(roles[0]["name"], "eng");
  EXPECT_EQ(roles[0]["weight"], 3);
  EXPECT_EQ(roles[0]["quota"]["guarantee"]["cpus"], 2);
  EXPECT_EQ(roles[0]["quota"]["limit"]["cpus"], 4);
  EXPECT_FALSE(roles[0]["quota"]["limit"].contains("mem"));  // unlimited
}

}  // namespace
}  // namespace agora::master
