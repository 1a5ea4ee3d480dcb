// A whole cluster in one thread under a manual clock: the master, ten agents with the fake
// containerizer, and a scheduler, talking through a simulated network that loses messages.
// Deterministic for a seed, and fast: minutes of cluster time run in a fraction of a second.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/agent.hpp"
#include "agent/containerizer/fake_containerizer.hpp"
#include "common/manual_loop.hpp"
#include "master/allocator/hierarchical_allocator.hpp"
#include "master/master.hpp"
#include "tests/support/sim_network.hpp"

namespace agora::testing {
namespace {

class FixedDetector final : public MasterDetector {
 public:
  explicit FixedDetector(Loop& loop) : loop_(loop) { info_.set_endpoint("sim://master"); }
  void detect(std::function<void(Result<MasterInfo>)> callback) override {
    loop_.post([callback, info = info_] { callback(info); });
  }

 private:
  Loop& loop_;
  MasterInfo info_;
};

// A scheduler as a state machine on the simulated network: it subscribes (again, until it is
// answered), heartbeats, launches `total` tasks of a few seconds each, and acknowledges every
// update. It records each task's states in the order they arrive.
class SimScheduler {
 public:
  SimScheduler(ManualLoop& loop, SimNetwork& network, int total)
      : loop_(loop), total_(total),
        transport_(network.attach("scheduler", [this](const std::string&, Envelope&& e) {
          receive(e.scheduler_event());
        })) {}

  void start() {
    subscribe();
    heartbeat();
  }

  std::map<std::string, std::vector<TaskState>> states;

 private:
  void send(SchedulerCall call) {
    call.set_framework_id(frameworkId_);
    Envelope e;
    *e.mutable_scheduler_call() = std::move(call);
    transport_.send("master", e);
  }

  void subscribe() {
    if (!frameworkId_.empty()) {
      return;
    }
    SchedulerCall call;
    call.mutable_subscribe()->mutable_framework_info()->set_name("sim");
    send(call);
    loop_.after(seconds(1), [this] { subscribe(); });
  }

  void heartbeat() {
    if (!frameworkId_.empty()) {
      SchedulerCall call;
      call.mutable_heartbeat();
      send(call);
    }
    loop_.after(seconds(1), [this] { heartbeat(); });
  }

  void receive(const SchedulerEvent& event) {
    if (event.has_subscribed()) {
      frameworkId_ = event.subscribed().framework_id();
    } else if (event.has_offers()) {
      for (const Offer& offer : event.offers().offers()) {
        launchInto(offer);
      }
    } else if (event.has_update()) {
      const TaskStatus& status = event.update().status();
      states[status.task_id()].push_back(status.state());
      if (!status.uuid().empty()) {
        SchedulerCall ack;
        ack.mutable_acknowledge()->set_agent_id(status.agent_id());
        ack.mutable_acknowledge()->set_task_id(status.task_id());
        ack.mutable_acknowledge()->set_uuid(status.uuid());
        send(ack);
      }
    }
  }

  void launchInto(const Offer& offer) {
    SchedulerCall call;
    call.mutable_accept()->add_offer_ids(offer.id());
    call.mutable_accept()->mutable_filters()->set_refuse_seconds(1);
    Operation* op = call.mutable_accept()->add_operations();
    op->set_type(Operation::LAUNCH);
    Resources available(offer.resources());
    Resources need = *Resources::parse("cpus:0.5;mem:64");
    while (launched_ < total_ && available.contains(need)) {
      TaskInfo* task = op->mutable_launch()->add_task_infos();
      task->set_task_id("t" + std::to_string(launched_));
      task->mutable_command()->set_value("simulated");
      need.copyTo(task->mutable_resources());
      Label* duration = task->add_labels();
      duration->set_key("fake.duration");
      duration->set_value(std::to_string(1 + launched_ % 5));
      available -= need;
      ++launched_;
    }
    send(call);
  }

  ManualLoop& loop_;
  int total_;
  Transport& transport_;
  std::string frameworkId_;
  int launched_ = 0;
};

struct SimAgent {
  std::unique_ptr<FixedDetector> detector;
  std::unique_ptr<agent::FakeContainerizer> containerizer;
  std::unique_ptr<agent::Agent> agent;
};

// Runs the simulation and returns the scheduler's record of states, and how many messages the
// network lost.
std::pair<std::map<std::string, std::vector<TaskState>>, uint64_t> simulate(uint64_t seed,
                                                                          double dropRate,
                                                                          int tasks) {
  ManualLoop loop;
  SimNetwork network(loop, seed);
  // Status updates and their acknowledgements may be lost: the protocol resends them.
  network.setDropRate(dropRate, [](const Envelope& e) {
    return (e.has_agent_call() && e.agent_call().has_status_update()) ||
           (e.has_scheduler_event() && e.scheduler_event().has_update()) ||
           (e.has_scheduler_call() && e.scheduler_call().has_acknowledge()) ||
           (e.has_agent_event() && e.agent_event().has_status_update_ack());
  });

  master::MasterOptions options;
  options.info.set_id("M");
  std::unique_ptr<master::Master> master;
  Transport& masterLink = network.attach("master", [&](const std::string& from, Envelope&& e) {
    master->receive(from, std::move(e));
  });
  master::InMemoryRegistry registry(loop);
  master = std::make_unique<master::Master>(
      options, loop, masterLink,
      std::make_unique<master::HierarchicalAllocator>([&loop] { return loop.now(); }), registry);
  registry.recover([&](Result<master::RegistryState> state) { master->start(*state); });
  loop.runUntilIdle();

  std::vector<SimAgent> agents(10);
  for (size_t i = 0; i < agents.size(); ++i) {
    SimAgent& a = agents[i];
    std::string name = "agent-" + std::to_string(i);
    a.detector = std::make_unique<FixedDetector>(loop);
    a.containerizer = std::make_unique<agent::FakeContainerizer>(loop, Duration::max());
    agent::AgentOptions agentOptions;
    agentOptions.info.set_hostname(name);
    Resources::parse("cpus:4;mem:1024")->copyTo(agentOptions.info.mutable_resources());
    // Retried often enough that 30 simulated minutes see every update through heavy loss.
    agentOptions.statusUpdates.retryMin = seconds(1);
    agentOptions.statusUpdates.retryMax = seconds(10);
    agent::Agent* self = nullptr;
    Transport& link = network.attach(name, [&a](const std::string& from, Envelope&& e) {
      a.agent->receiveFromMaster(from, std::move(e));
    });
    a.agent = std::make_unique<agent::Agent>(
        agentOptions, loop, link, [](const std::string&) { return Status(); }, *a.detector,
        *a.containerizer, *a.containerizer);
    self = a.agent.get();
    a.containerizer->setDeliver([self](const std::string& from, Envelope&& e) {
      self->receiveFromExecutor(from, std::move(e));
    });
    self->start();
  }

  SimScheduler scheduler(loop, network, tasks);
  scheduler.start();
  for (int minute = 0; minute < 30; ++minute) {
    loop.advance(minutes(1));
    size_t finished = 0;
    for (const auto& [id, states] : scheduler.states) {
      finished += !states.empty() && states.back() == TASK_FINISHED ? 1 : 0;
    }
    if (finished == static_cast<size_t>(tasks)) {
      break;
    }
  }
  if (std::getenv("AGORA_SIM_DEBUG")) {  // the master's view at the end, to see what stalled
    std::cerr << master->state().dump(1) << "\n" << master->metricsText();
  }
  return {scheduler.states, network.dropped()};
}

TEST(SimulatedClusterTest, EveryTaskFinishesAndUpdatesArriveInOrderDespiteLoss) {
  auto [states, dropped] = simulate(/*seed=*/1, /*dropRate=*/0.3, /*tasks=*/300);
  EXPECT_GT(dropped, 100u);  // the network did lose a good share
  ASSERT_EQ(states.size(), 300u);
  for (const auto& [id, seen] : states) {
    // At least once, in order: RUNNING (perhaps repeated), then FINISHED (perhaps repeated).
    ASSERT_FALSE(seen.empty()) << id;
    EXPECT_EQ(seen.front(), TASK_RUNNING) << id;
    EXPECT_EQ(seen.back(), TASK_FINISHED) << id;
    bool finished = false;
    for (TaskState s : seen) {
      EXPECT_TRUE(s == TASK_RUNNING || s == TASK_FINISHED) << id << " " << TaskState_Name(s);
      EXPECT_FALSE(finished && s == TASK_RUNNING) << id << ": RUNNING after FINISHED";
      finished |= s == TASK_FINISHED;
    }
  }
}

TEST(SimulatedClusterTest, SameSeedSameRun) {
  auto first = simulate(7, 0.2, 100);
  auto second = simulate(7, 0.2, 100);
  EXPECT_EQ(first.first, second.first);
  EXPECT_EQ(first.second, second.second);
}

}  // namespace
}  // namespace agora::testing
