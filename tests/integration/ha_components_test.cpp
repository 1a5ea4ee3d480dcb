// Election, detection and the ZooKeeper registry against a real ZooKeeper server.

#include <gtest/gtest.h>

#include <zookeeper/zookeeper.h>

#include <atomic>

#include "common/detector.hpp"
#include "common/zookeeper.hpp"
#include "master/contender/contender.hpp"
#include "master/registry/zookeeper_registry.hpp"
#include "tests/support/loop_thread.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/zookeeper_server.hpp"

namespace agora::testing {
namespace {

using master::ZooKeeperContender;
using master::ZooKeeperRegistry;

// One contending "master": its own session, contender, and a record of what happened.
struct Contender {
  Contender(LoopThread& thread, const std::string& servers, const std::string& id) {
    thread.sync([&] {
      zk = std::make_unique<ZooKeeperClient>(thread.loop(), servers, seconds(4));
      contender = std::make_unique<ZooKeeperContender>(thread.loop(), *zk, "/agora");
      MasterInfo info;
      info.set_id(id);
      info.set_endpoint("tcp://127.0.0.1:1/" + id);
      contender->contend(info, [this] { elected = true; },
                         [this](const std::string& why) { lost = why; });
    });
  }
  std::unique_ptr<ZooKeeperClient> zk;
  std::unique_ptr<ZooKeeperContender> contender;
  std::atomic<bool> elected{false};
  std::string lost;
};

class HaComponentsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.start().ok()); }
  ZooKeeperServer server_;
};

TEST_F(HaComponentsTest, ExactlyOneLeaderAndTheNextTakesOverInOrder) {
  LoopThread thread;
  std::vector<std::unique_ptr<Contender>> masters;
  for (const char* id : {"m1", "m2", "m3"}) {
    masters.push_back(std::make_unique<Contender>(thread, server_.address(), id));
    // Enter in order, so the election order is known.
    ASSERT_TRUE(waitUntil([&] {
      std::string node;
      thread.sync([&] { node = masters.back()->contender->node(); });
      return !node.empty();
    }, seconds(20)));
  }
  ASSERT_TRUE(waitUntil([&] { return masters[0]->elected.load(); }, seconds(20)));
  EXPECT_FALSE(masters[1]->elected);
  EXPECT_FALSE(masters[2]->elected);

  // A detector sees m1; it follows the election when m1 goes.
  auto detectorZk = std::make_unique<ZooKeeperClient>(thread.loop(), server_.address(), seconds(4));
  std::unique_ptr<ZooKeeperDetector> detector;
  std::vector<std::string> seen;
  std::string contenders;  // the last contender list heard, leader first: "m1 m2 m3"
  std::mutex seenMutex;
  thread.sync([&] {
    detector = std::make_unique<ZooKeeperDetector>(thread.loop(), *detectorZk, "/agora");
    detector->onLeaderChange([&](const MasterInfo& info) {
      std::lock_guard<std::mutex> lock(seenMutex);
      seen.push_back(info.id());
    });
    detector->onContendersChange([&](const std::vector<MasterInfo>& masters) {
      std::lock_guard<std::mutex> lock(seenMutex);
      contenders.clear();
      for (const MasterInfo& info : masters) {
        contenders += (contenders.empty() ? "" : " ") + info.id();
      }
    });
  });
  auto contendersAre = [&](const std::string& expected) {
    return waitUntil([&] {
      std::lock_guard<std::mutex> lock(seenMutex);
      return contenders == expected;
    }, seconds(20));
  };
  auto first = thread.await<std::string>([&](auto answer) {
    detector->detect([answer](Result<MasterInfo> info) { answer(info ? info->id() : ""); });
  });
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, "m1");
  EXPECT_TRUE(contendersAre("m1 m2 m3"));

  // The middle one leaving changes nothing for the others.
  thread.sync([&] { masters[1].reset(); });
  ASSERT_TRUE(waitUntil([&] {
    int children = -1;
    auto n = thread.await<int>([&](auto answer) {
      detectorZk->getChildren("/agora/masters", false,
                              [answer](int rc, std::vector<std::string> c) {
                                answer(rc == ZOK ? static_cast<int>(c.size()) : -1);
                              });
    });
    children = n.value_or(-1);
    return children == 2;
  }, seconds(20)));
  EXPECT_TRUE(masters[0]->elected);
  EXPECT_FALSE(masters[2]->elected);
  EXPECT_TRUE(contendersAre("m1 m3"));

  // The leader leaving elects m3, and the detector follows.
  thread.sync([&] { masters[0].reset(); });
  ASSERT_TRUE(waitUntil([&] { return masters[2]->elected.load(); }, seconds(20)));
  ASSERT_TRUE(waitUntil([&] {
    std::lock_guard<std::mutex> lock(seenMutex);
    return !seen.empty() && seen.back() == "m3";
  }, seconds(20)));
  EXPECT_TRUE(contendersAre("m3"));
  thread.sync([&] {
    detector.reset();
    detectorZk.reset();
    masters.clear();
  });
}

TEST_F(HaComponentsTest, ALeaderWhoseSessionExpiresLosesLeadership) {
  LoopThread thread;
  Contender leader(thread, server_.address(), "m1");
  ASSERT_TRUE(waitUntil([&] { return leader.elected.load(); }, seconds(20)));
  // ZooKeeper goes away for longer than the session: the leader must give up by itself.
  server_.stop();
  ASSERT_TRUE(waitUntil([&] {
    std::string lost;
    thread.sync([&] { lost = leader.lost; });
    return !lost.empty();
  }, seconds(20)));
  thread.sync([&] {
    leader.contender.reset();
    leader.zk.reset();
  });
}

// Runs one registry call on the loop and waits for it.
Status apply(LoopThread& thread, master::Registry& registry, registry::Operation op) {
  auto result = thread.await<Status>([&registry, op](auto answer) {
    registry.apply(op, [answer](Status s) { answer(s); });
  });
  return result.value_or(Error("no answer"));
}

Result<master::RegistryState> recover(LoopThread& thread, master::Registry& registry) {
  auto result = thread.await<Result<master::RegistryState>>([&registry](auto answer) {
    registry.recover([answer](Result<master::RegistryState> s) { answer(std::move(s)); });
  });
  return result.value_or(Result<master::RegistryState>(Error("no answer")));
}

registry::Operation admit(const std::string& id) {
  registry::Operation op;
  op.mutable_admit_agent()->set_id(id);
  op.mutable_admit_agent()->set_hostname("host-" + id);
  return op;
}

TEST_F(HaComponentsTest, RegistryRoundTripsAndFencesAStaleOwner) {
  LoopThread thread;
  std::unique_ptr<ZooKeeperClient> zk;
  std::unique_ptr<ZooKeeperRegistry> first;
  std::unique_ptr<ZooKeeperRegistry> second;
  thread.sync([&] {
    zk = std::make_unique<ZooKeeperClient>(thread.loop(), server_.address(), seconds(10));
    first = std::make_unique<ZooKeeperRegistry>(thread.loop(), *zk, "/agora", "m1");
  });
  auto state = recover(thread, *first);
  ASSERT_TRUE(state.ok()) << state.error();
  EXPECT_TRUE(state->agents.empty());

  // Many agents at once: batched, spread over shards.
  std::vector<std::shared_ptr<std::promise<Status>>> pending;
  thread.sync([&] {
    for (int i = 0; i < 2000; ++i) {
      auto p = std::make_shared<std::promise<Status>>();
      pending.push_back(p);
      first->apply(admit("agent-" + std::to_string(i)), [p](Status s) { p->set_value(s); });
    }
  });
  for (auto& p : pending) {
    auto s = p->get_future().get();
    ASSERT_TRUE(s.ok()) << s.error();
  }
  registry::Operation framework;
  framework.mutable_add_framework()->set_id("f1");
  framework.mutable_add_framework()->set_failover_timeout(120);
  ASSERT_TRUE(apply(thread, *first, framework).ok());
  registry::Operation role;
  role.mutable_set_role()->set_role("eng");
  role.mutable_set_role()->set_weight(2);
  role.mutable_set_role()->set_has_quota(true);
  (*role.mutable_set_role()->mutable_guarantee())["cpus"] = 4;
  ASSERT_TRUE(apply(thread, *first, role).ok());

  // A new owner sees everything, and the old one can no longer write.
  thread.sync([&] { second = std::make_unique<ZooKeeperRegistry>(thread.loop(), *zk, "/agora", "m2"); });
  state = recover(thread, *second);
  ASSERT_TRUE(state.ok()) << state.error();
  EXPECT_EQ(state->agents.size(), 2000u);
  EXPECT_DOUBLE_EQ(state->frameworks.at("f1").info().failover_timeout(), 120);
  ASSERT_EQ(state->roles.count("eng"), 1u);
  EXPECT_DOUBLE_EQ(state->roles.at("eng").weight(), 2);
  EXPECT_DOUBLE_EQ(state->roles.at("eng").guarantee().at("cpus"), 4);
  Status stale = apply(thread, *first, admit("late"));
  ASSERT_FALSE(stale.ok());
  EXPECT_NE(stale.error().find("no longer owns"), std::string::npos) << stale.error();
  EXPECT_TRUE(apply(thread, *second, admit("fresh")).ok());
  thread.sync([&] {
    first.reset();
    second.reset();
  });

  // Corrupt one shard: the next owner refuses to start on it.
  int shard = ZooKeeperRegistry::shardOf("fresh", 64);
  char name[8];
  std::snprintf(name, sizeof(name), "%03d", shard);
  auto rc = thread.await<int>([&](auto answer) {
    zk->set(std::string("/agora/registry/agents/") + name, "garbage", -1,
            [answer](int rc, ZkStat) { answer(rc); });
  });
  ASSERT_EQ(rc.value_or(-1), ZOK);
  std::unique_ptr<ZooKeeperRegistry> third;
  thread.sync([&] { third = std::make_unique<ZooKeeperRegistry>(thread.loop(), *zk, "/agora", "m3"); });
  state = recover(thread, *third);
  ASSERT_FALSE(state.ok());
  EXPECT_NE(state.error().find(name), std::string::npos) << state.error();
  thread.sync([&] {
    third.reset();
    zk.reset();
  });
}

}  // namespace
}  // namespace agora::testing
