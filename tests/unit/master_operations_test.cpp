// RESERVE, UNRESERVE, CREATE and DESTROY through the master: checked, stored in the registry
// before anyone hears of them, told to the agent, offered only to their role, and back after a
// master failover. And maintenance: windows, inverse offers, drain. No sockets: a fake
// transport and a manual clock.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/manual_loop.hpp"
#include "common/resources.hpp"
#include "master/allocator/hierarchical_allocator.hpp"
#include "master/master.hpp"
#include "tests/support/fake_transport.hpp"

namespace agora::master {
namespace {

Resource dynamic(const std::string& name, double value, const std::string& role) {
  Resource r = Resources::scalar(name, value);
  auto* reservation = r.add_reservations();
  reservation->set_type(Resource::ReservationInfo::DYNAMIC);
  reservation->set_role(role);
  return r;
}

Resource volume(double size, const std::string& role, const std::string& id) {
  Resource r = dynamic("disk", size, role);
  r.mutable_disk()->set_persistence_id(id);
  r.mutable_disk()->set_container_path("data");
  return r;
}

class MasterOperationsTest : public ::testing::Test {
 protected:
  void SetUp() override { startMaster(); }

  void startMaster() {
    MasterOptions options;
    options.info.set_id("M" + std::to_string(++masters_));
    options.allocationInterval = seconds(1);
    // The clock jumps by hours here: no peer is expected to keep up pings and heartbeats.
    options.agentPingTimeout = hours(24);
    options.frameworkHeartbeatInterval = hours(24);
    master_ = std::make_unique<Master>(
        options, loop_, transport_,
        std::make_unique<HierarchicalAllocator>([this] { return loop_.now(); }), registry_);
    std::optional<RegistryState> recovered;
    registry_.recover([&](Result<RegistryState> s) { recovered = *s; });
    loop_.runUntilIdle();
    stored_ = *recovered;
    master_->start(*recovered);
    loop_.runUntilIdle();
  }

  void deliver(const std::string& from, Envelope e) {
    master_->receive(from, std::move(e));
    loop_.runUntilIdle();
  }

  std::string registerAgent() {
    Envelope e;
    auto* info = e.mutable_agent_call()->mutable_register_()->mutable_agent_info();
    info->set_hostname("h");
    Resources::parse("cpus:4;mem:1024;disk:1000")->copyTo(info->mutable_resources());
    deliver("agent", e);
    for (Envelope& out : transport_.take("agent")) {
      if (out.agent_event().has_registered()) return out.agent_event().registered().agent_id();
    }
    return "";
  }

  std::string subscribe(const std::string& connection, const std::string& role,
                        const std::string& id = "") {
    Envelope e;
    auto* info = e.mutable_scheduler_call()->mutable_subscribe()->mutable_framework_info();
    info->set_name(connection);
    info->add_roles(role);
    info->set_id(id);
    info->set_failover_timeout(3600);
    deliver(connection, e);
    // Takes the Subscribed event and leaves the rest (offers may follow at once).
    for (auto it = transport_.sent.begin(); it != transport_.sent.end(); ++it) {
      if (it->first == connection && it->second.scheduler_event().has_subscribed()) {
        std::string id = it->second.scheduler_event().subscribed().framework_id();
        transport_.sent.erase(it);
        return id;
      }
    }
    return "";
  }

  std::vector<Offer> offers(const std::string& connection) {
    master_->allocateNow();
    loop_.runUntilIdle();
    std::vector<Offer> out = std::move(stash_[connection]);
    stash_.erase(connection);
    for (Envelope& e : transport_.take(connection)) {
      for (const Offer& o : e.scheduler_event().offers().offers()) out.push_back(o);
    }
    return out;
  }

  // Accepts `offers` (one agent, one role) with `ops`; returns the scheduler's error, if any.
  std::string accept(const std::string& connection, const std::string& frameworkId,
                     const std::vector<Offer>& offers, const std::vector<Operation>& ops) {
    Envelope e;
    e.mutable_scheduler_call()->set_framework_id(frameworkId);
    auto* a = e.mutable_scheduler_call()->mutable_accept();
    for (const Offer& offer : offers) a->add_offer_ids(offer.id());
    a->mutable_filters()->set_refuse_seconds(0);
    for (const Operation& op : ops) *a->add_operations() = op;
    deliver(connection, e);
    std::string error;
    for (Envelope& out : transport_.take(connection)) {
      if (out.scheduler_event().has_error()) error = out.scheduler_event().error().message();
      for (const Offer& o : out.scheduler_event().offers().offers()) {
        stash_[connection].push_back(o);  // offers made at once stay for offers()
      }
    }
    return error;
  }

  static Operation op(Operation::Type type, std::vector<Resource> resources) {
    Operation o;
    o.set_type(type);
    for (const Resource& r : resources) {
      switch (type) {
        case Operation::RESERVE: *o.mutable_reserve()->add_resources() = r; break;
        case Operation::UNRESERVE: *o.mutable_unreserve()->add_resources() = r; break;
        case Operation::CREATE: *o.mutable_create()->add_volumes() = r; break;
        case Operation::DESTROY: *o.mutable_destroy()->add_volumes() = r; break;
        default: break;
      }
    }
    return o;
  }

  // The agent reports a task's end.
  void taskEnded(const std::string& agentId, const std::string& frameworkId,
                 const std::string& taskId, TaskState state) {
    Envelope e;
    e.mutable_agent_call()->set_agent_id(agentId);
    auto* update = e.mutable_agent_call()->mutable_status_update();
    update->set_framework_id(frameworkId);
    update->mutable_status()->set_task_id(taskId);
    update->mutable_status()->set_state(state);
    update->mutable_status()->set_uuid("0123456789abcdef");
    update->set_latest_state(state);
    deliver("agent", e);
  }

  Resources recorded(const std::string& agentId) {
    registry_.recover([&](Result<RegistryState> s) { stored_ = *s; });
    loop_.runUntilIdle();
    return Resources(stored_.agents.at(agentId).checkpointed());
  }

  ManualLoop loop_;
  agora::testing::FakeTransport transport_;
  InMemoryRegistry registry_{loop_};
  RegistryState stored_;
  std::unique_ptr<Master> master_;
  int masters_ = 0;
  std::map<std::string, std::vector<Offer>> stash_;
};

TEST_F(MasterOperationsTest, ReservationsAndVolumesAreStoredOfferedToTheirRoleAndSurvive) {
  std::string agentId = registerAgent();
  std::string eng = subscribe("eng", "eng");
  auto engOffers = offers("eng");
  ASSERT_EQ(engOffers.size(), 1u);

  // Reserve 2 cpus and 500 disk for eng, make a 200 volume of that disk, and run a task on it.
  Operation launch;
  launch.set_type(Operation::LAUNCH);
  TaskInfo* task = launch.mutable_launch()->add_task_infos();
  task->set_task_id("t1");
  task->mutable_command()->set_value("echo > data/file");
  *task->add_resources() = dynamic("cpus", 1, "eng");
  *task->add_resources() = Resources::scalar("mem", 128);
  *task->add_resources() = volume(200, "eng", "db");
  std::string error = accept("eng", eng, engOffers,
                             {op(Operation::RESERVE, {dynamic("cpus", 2, "eng"),
                                                      dynamic("disk", 500, "eng")}),
                              op(Operation::CREATE, {volume(200, "eng", "db")}), launch});
  EXPECT_EQ(error, "");
  Resources checkpointed = recorded(agentId);
  EXPECT_EQ(checkpointed.toString(), "cpus(eng):2;disk(eng):300;disk(eng)[db]:200");

  // The agent hears of the volume before the task that uses it.
  auto toAgent = transport_.take("agent");
  ASSERT_GE(toAgent.size(), 2u);
  EXPECT_TRUE(toAgent[0].agent_event().has_update_resources());
  EXPECT_EQ(Resources(toAgent[0].agent_event().update_resources().checkpointed()).toString(),
            checkpointed.toString());
  EXPECT_TRUE(toAgent[1].agent_event().has_run_task());

  // Another role is never offered eng's reservations or its volume.
  std::string ops = subscribe("ops", "ops");
  for (const Offer& o : offers("ops")) {
    for (const Resource& r : o.resources()) {
      EXPECT_EQ(r.reservations_size(), 0) << Resources(o.resources());
    }
  }

  // The task ends: its volume (with its data) is offered back to eng.
  taskEnded(agentId, eng, "t1", TASK_FINISHED);
  engOffers = offers("eng");  // the task's resources, and what the accept left
  Resources back;
  for (const Offer& o : engOffers) back += Resources(o.resources());
  EXPECT_TRUE(back.contains(Resources(std::vector<Resource>{volume(200, "eng", "db")}))) << back;

  // Bad operations are refused whole, and nothing is stored.
  EXPECT_NE(accept("eng", eng, engOffers, {op(Operation::RESERVE, {dynamic("cpus", 1, "ops")})}),
            "");
  EXPECT_EQ(recorded(agentId).toString(), checkpointed.toString());
  engOffers = offers("eng");
  ASSERT_FALSE(engOffers.empty());
  EXPECT_NE(accept("eng", eng, engOffers, {op(Operation::CREATE, {volume(10, "eng", "db")})}),
            "");  // that id exists
  engOffers = offers("eng");
  ASSERT_FALSE(engOffers.empty());
  EXPECT_NE(accept("eng", eng, engOffers, {op(Operation::UNRESERVE, {dynamic("cpus", 9, "eng")})}),
            "");

  // A new leader takes the reservations from the registry when the agent comes back.
  master_.reset();
  transport_.sent.clear();
  stash_.clear();
  startMaster();
  Envelope again;
  again.mutable_agent_call()->set_agent_id(agentId);
  auto* reg = again.mutable_agent_call()->mutable_reregister();
  reg->mutable_agent_info()->set_hostname("h");
  Resources::parse("cpus:4;mem:1024;disk:1000")->copyTo(reg->mutable_agent_info()->mutable_resources());
  deliver("agent", again);
  bool told = false;
  for (Envelope& e : transport_.take("agent")) {
    told |= e.agent_event().has_update_resources();
  }
  EXPECT_TRUE(told);
  eng = subscribe("eng", "eng", eng);
  engOffers = offers("eng");
  ASSERT_FALSE(engOffers.empty());
  Resources offered;
  for (const Offer& o : engOffers) offered += Resources(o.resources());
  EXPECT_TRUE(offered.contains(Resources(std::vector<Resource>{volume(200, "eng", "db")})))
      << offered;
  EXPECT_DOUBLE_EQ(offered.scalar("cpus"), 4);

  // DESTROY gives the disk back to the reservation, and the agent deletes the directory.
  EXPECT_EQ(accept("eng", eng, engOffers, {op(Operation::DESTROY, {volume(200, "eng", "db")}),
                                             op(Operation::UNRESERVE, {dynamic("cpus", 2, "eng")})}),
            "");
  EXPECT_EQ(recorded(agentId).toString(), "disk(eng):500");
  bool destroyed = false;
  for (Envelope& e : transport_.take("agent")) {
    destroyed |= e.agent_event().update_resources().destroyed_volumes_size() == 1;
  }
  EXPECT_TRUE(destroyed);
}

TEST_F(MasterOperationsTest, MaintenanceWindowsInverseOffersAndDrain) {
  std::string agentId = registerAgent();
  std::string fw = subscribe("fw", "*");
  auto first = offers("fw");
  ASSERT_EQ(first.size(), 1u);
  Operation launch;
  launch.set_type(Operation::LAUNCH);
  TaskInfo* task = launch.mutable_launch()->add_task_infos();
  task->set_task_id("t1");
  task->mutable_command()->set_value("./serve");  // never runs: the agent is a fake
  *task->add_resources() = Resources::scalar("cpus", 1);
  *task->add_resources() = Resources::scalar("mem", 128);
  ASSERT_EQ(accept("fw", fw, first, {launch}), "");
  transport_.take("agent");

  // Bad input.
  std::optional<Status> answer;
  master_->scheduleMaintenance({"h"}, loop_.wallTime(), 0, [&](Status s) { answer = s; });
  EXPECT_FALSE(*answer);
  master_->drainMachine("nowhere", false, seconds(0), [&](Status s) { answer = s; });
  EXPECT_FALSE(*answer);
  master_->upMachine("nowhere", [&](Status s) { answer = s; });
  EXPECT_FALSE(*answer);

  // A window a minute from now: stored, and the framework running there is asked to move.
  stash_.clear();  // offers made before the window are rescinded when it is scheduled
  double start = loop_.wallTime() + 60;
  master_->scheduleMaintenance({"h"}, start, 3600, [&](Status s) { answer = s; });
  loop_.runUntilIdle();
  ASSERT_TRUE(answer && *answer);
  registry_.recover([&](Result<RegistryState> state) { stored_ = *state; });
  loop_.runUntilIdle();
  ASSERT_EQ(stored_.maintenance.count("h"), 1u);
  std::string inverseId;
  for (Envelope& e : transport_.take("fw")) {
    for (const InverseOffer& io : e.scheduler_event().inverse_offers().inverse_offers()) {
      inverseId = io.id();
      EXPECT_EQ(io.agent_id(), agentId);
      EXPECT_DOUBLE_EQ(io.unavailability().start(), start);
    }
    for (const Offer& o : e.scheduler_event().offers().offers()) stash_["fw"].push_back(o);
  }
  ASSERT_FALSE(inverseId.empty());
  Envelope respond;
  respond.mutable_scheduler_call()->set_framework_id(fw);
  respond.mutable_scheduler_call()->mutable_respond_inverse_offers()->add_inverse_offer_ids(
      inverseId);
  respond.mutable_scheduler_call()->mutable_respond_inverse_offers()->set_accept(true);
  deliver("fw", respond);
  auto status = master_->maintenanceStatus()["machines"];
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0]["mode"], "draining");
  EXPECT_EQ(status[0]["inverse_offers"][0]["response"], "accepted");
  // Offers on the machine carry the window meanwhile.
  for (const Offer& o : offers("fw")) {
    EXPECT_DOUBLE_EQ(o.unavailability().start(), start);
  }

  // The window starts: its tasks are killed, and it is offered nothing.
  loop_.advance(seconds(61));
  bool killed = false;
  for (Envelope& e : transport_.take("agent")) {
    killed |= e.agent_event().kill_task().task_id() == "t1";
  }
  EXPECT_TRUE(killed);
  EXPECT_EQ(master_->maintenanceStatus()["machines"][0]["mode"], "down");
  transport_.take("fw");
  for (const Offer& o : offers("fw")) ADD_FAILURE() << "offered while down: " << o.ShortDebugString();

  // The window ends: it is up, and offered again.
  loop_.advance(seconds(3600));
  EXPECT_TRUE(master_->maintenanceStatus()["machines"].empty());
  auto back = offers("fw");
  ASSERT_FALSE(back.empty());
  for (const Offer& o : back) {
    EXPECT_FALSE(o.has_unavailability()) << o.ShortDebugString();
  }

  // Drain without killing: no offers at once; down once its task is gone; then up.
  master_->drainMachine("h", false, seconds(0), [&](Status s) { answer = s; });
  loop_.runUntilIdle();
  ASSERT_TRUE(answer && *answer);
  EXPECT_TRUE(offers("fw").empty());
  EXPECT_EQ(master_->maintenanceStatus()["machines"][0]["mode"], "draining");
  taskEnded(agentId, fw, "t1", TASK_KILLED);
  loop_.advance(seconds(1));
  EXPECT_EQ(master_->maintenanceStatus()["machines"][0]["mode"], "down");
  EXPECT_TRUE(offers("fw").empty());
  master_->upMachine("h", [&](Status s) { answer = s; });
  loop_.runUntilIdle();
  ASSERT_TRUE(answer && *answer);
  EXPECT_FALSE(offers("fw").empty());
}

}  // namespace
}  // namespace agora::master
