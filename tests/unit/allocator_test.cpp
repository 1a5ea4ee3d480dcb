#include <gtest/gtest.h>

#include "common/manual_loop.hpp"
#include "master/allocator/fair_allocator.hpp"

namespace agora::master {
namespace {

class FairAllocatorTest : public ::testing::Test {
 protected:
  FairAllocatorTest() : allocator_([this] { return loop_.now(); }) {}

  void addAgent(const std::string& id, const std::string& resources) {
    AgentInfo info;
    allocator_.addAgent(id, info, *Resources::parse(resources));
  }
  void addFramework(const std::string& id, std::vector<std::string> roles = {},
                    bool gpu = false) {
    FrameworkInfo info;
    for (const auto& r : roles) {
      info.add_roles(r);
    }
    if (gpu) {
      info.add_capabilities(FrameworkInfo::GPU_RESOURCES);
    }
    allocator_.addFramework(id, info, true);
  }

  ManualLoop loop_;
  FairAllocator allocator_;
};

TEST_F(FairAllocatorTest, OffersEachAgentOnceUntilRecovered) {
  addAgent("a1", "cpus:4;mem:1024");
  addAgent("a2", "cpus:4;mem:1024");
  addFramework("f1");
  auto first = allocator_.allocate(loop_.now());
  ASSERT_EQ(first.size(), 2u);
  EXPECT_TRUE(allocator_.allocate(loop_.now()).empty());
  allocator_.recoverResources("f1", "a1", first[0].agentId == "a1" ? first[0].resources
                                                                      : first[1].resources,
                              std::nullopt);
  auto again = allocator_.allocate(loop_.now());
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].agentId, "a1");
}

TEST_F(FairAllocatorTest, SharesAgentsBetweenFrameworksByDominantShare) {
  for (int i = 0; i < 10; ++i) {
    addAgent("a" + std::to_string(i), "cpus:1;mem:100");
  }
  addFramework("f1");
  addFramework("f2");
  std::map<std::string, int> agents;
  for (const Allocation& a : allocator_.allocate(loop_.now())) {
    ++agents[a.frameworkId];
  }
  EXPECT_EQ(agents["f1"], 5);
  EXPECT_EQ(agents["f2"], 5);
}

TEST_F(FairAllocatorTest, ReservedResourcesGoOnlyToTheirRole) {
  addAgent("a1", "cpus(eng):2;mem(eng):100;cpus:1;mem:100");
  addFramework("ops", {"ops"});
  auto allocations = allocator_.allocate(loop_.now());
  ASSERT_EQ(allocations.size(), 1u);
  EXPECT_EQ(allocations[0].resources.toString(), "cpus:1;mem:100");
  addFramework("eng", {"eng"});
  allocations = allocator_.allocate(loop_.now());
  ASSERT_EQ(allocations.size(), 1u);
  EXPECT_EQ(allocations[0].frameworkId, "eng");
  EXPECT_EQ(allocations[0].role, "eng");
  EXPECT_EQ(allocations[0].resources.toString(), "cpus(eng):2;mem(eng):100");
}

TEST_F(FairAllocatorTest, GpuAgentsGoOnlyToGpuFrameworks) {
  addAgent("gpu", "cpus:4;mem:100;gpus:1");
  addFramework("plain");
  EXPECT_TRUE(allocator_.allocate(loop_.now()).empty());
  addFramework("ml", {}, /*gpu=*/true);
  auto allocations = allocator_.allocate(loop_.now());
  ASSERT_EQ(allocations.size(), 1u);
  EXPECT_EQ(allocations[0].frameworkId, "ml");
}

TEST_F(FairAllocatorTest, FiltersExpireAndDoNotHideNewResources) {
  addAgent("a1", "cpus:4;mem:1024");
  addFramework("f1");
  auto first = allocator_.allocate(loop_.now());
  ASSERT_EQ(first.size(), 1u);
  // Uses 1 cpu, declines the rest for 10s.
  Resources rest = first[0].resources - *Resources::parse("cpus:1;mem:100");
  allocator_.recoverResources("f1", "a1", rest, seconds(10));
  EXPECT_TRUE(allocator_.allocate(loop_.now()).empty());
  // The task ends: more is free than was filtered, so it is offered at once.
  allocator_.recoverResources("f1", "a1", *Resources::parse("cpus:1;mem:100"), std::nullopt);
  EXPECT_EQ(allocator_.allocate(loop_.now()).size(), 1u);
}

TEST_F(FairAllocatorTest, AnExpiredFilterHidesNothingFromAnAllocationOfSomeAgents) {
  addAgent("a1", "cpus:4;mem:1024");
  addFramework("f1");
  auto first = allocator_.allocate(loop_.now());
  ASSERT_EQ(first.size(), 1u);
  allocator_.recoverResources("f1", "a1", first[0].resources, seconds(10));
  EXPECT_TRUE(allocator_.allocate(loop_.now(), {"a1"}).empty());
  loop_.advance(seconds(11));
  EXPECT_EQ(allocator_.allocate(loop_.now(), {"a1"}).size(), 1u);
}

TEST_F(FairAllocatorTest, RemovingAFrameworkFreesWhatItHeld) {
  addAgent("a1", "cpus:4;mem:1024");
  addFramework("f1");
  ASSERT_EQ(allocator_.allocate(loop_.now()).size(), 1u);
  allocator_.removeFramework("f1");
  addFramework("f2");
  auto allocations = allocator_.allocate(loop_.now());
  ASSERT_EQ(allocations.size(), 1u);
  EXPECT_EQ(allocations[0].resources.toString(), "cpus:4;mem:1024");
}

TEST_F(FairAllocatorTest, TinyLeftoversAreNotOffered) {
  addAgent("a1", "cpus:0.005;mem:16");
  addFramework("f1");
  EXPECT_TRUE(allocator_.allocate(loop_.now()).empty());
}

}  // namespace
}  // namespace agora::master
