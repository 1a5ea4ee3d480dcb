// The hierarchical DRF allocator as a state machine: fairness, weights, quota, reservations,
// GPUs, filters, and a property test over random clusters and event orders.

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "common/manual_loop.hpp"
#include "master/allocator/hierarchical_allocator.hpp"

namespace agora::master {
namespace {

Quantities q(const std::string& text) { return *Quantities::parse(text); }
Quantities limit(const std::string& text) { return *Quantities::parseLimit(text); }

class AllocatorTest : public ::testing::Test {
 protected:
  AllocatorTest() : allocator_([this] { return loop_.now(); }) {}

  void addAgent(const std::string& id, const std::string& resources) {
    auto parsed = Resources::parse(resources);
    ASSERT_TRUE(parsed) << parsed.error();
    allocator_.addAgent(id, AgentInfo(), *parsed);
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

  // What each framework does with an offer: launch tasks of `task` while they fit, give the
  // rest back (no filter). Runs cycles until nothing more is placed; returns what each
  // framework holds.
  std::map<std::string, Quantities> runGreedy(const std::map<std::string, std::string>& tasks) {
    std::map<std::string, Quantities> held;
    for (int cycle = 0; cycle < 1000; ++cycle) {
      auto allocations = allocator_.allocate(loop_.now());
      if (allocations.empty()) {
        break;
      }
      bool placed = false;
      for (const Allocation& a : allocations) {
        Resources task = *Resources::parse(tasks.at(a.frameworkId));
        Resources left = a.resources;
        while (left.contains(task)) {
          left -= task;
          held[a.frameworkId] += Quantities::of(task);
          placed = true;
        }
        if (!left.empty()) {
          allocator_.recoverResources(a.frameworkId, a.agentId, a.role, left,
                                      placed ? std::nullopt : std::optional(hours(1)));
        }
      }
      if (!placed) {
        break;
      }
    }
    return held;
  }

  Unoffered reasonFor(const std::string& framework, const std::string& role) {
    for (const Explanation& e : allocator_.explain()) {
      if (e.frameworkId == framework && e.role == role) {
        return e.reason;
      }
    }
    ADD_FAILURE() << "no explanation for " << framework << " in " << role;
    return Unoffered::kOffered;
  }

  ManualLoop loop_;
  HierarchicalAllocator allocator_;
};

TEST_F(AllocatorTest, OffersEachAgentOnceUntilRecovered) {
  addAgent("a1", "cpus:4;mem:1024");
  addAgent("a2", "cpus:4;mem:1024");
  addFramework("f1");
  auto first = allocator_.allocate(loop_.now());
  ASSERT_EQ(first.size(), 2u);
  EXPECT_TRUE(allocator_.allocate(loop_.now()).empty());
  const Allocation& onA1 = first[0].agentId == "a1" ? first[0] : first[1];
  allocator_.recoverResources("f1", "a1", onA1.role, onA1.resources, std::nullopt);
  auto again = allocator_.allocate(loop_.now());
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].agentId, "a1");
  EXPECT_EQ(again[0].role, "*");
}

TEST_F(AllocatorTest, SharesAgentsBetweenFrameworksByDominantShare) {
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

TEST_F(AllocatorTest, DifferentDemandShapesConvergeToEqualDominantShares) {
  for (int i = 0; i < 20; ++i) {
    addAgent("a" + std::to_string(i), "cpus:8;mem:8192");
  }
  addFramework("cpu-heavy");
  addFramework("mem-heavy");
  auto held = runGreedy({{"cpu-heavy", "cpus:1;mem:128"}, {"mem-heavy", "cpus:0.125;mem:1024"}});
  Quantities total = allocator_.clusterTotal();
  double cpuShare = held["cpu-heavy"].v[0] / total.v[0];  // dominant: cpus
  double memShare = held["mem-heavy"].v[1] / total.v[1];  // dominant: mem
  EXPECT_GT(cpuShare, 0.4);
  EXPECT_GT(memShare, 0.4);
  EXPECT_NEAR(cpuShare, memShare, 0.06) << "cpu-heavy " << cpuShare << ", mem-heavy "
                                        << memShare;
}

TEST_F(AllocatorTest, WeightsTwoToOneGiveSharesTwoToOne) {
  ASSERT_TRUE(allocator_.setWeight("gold", 2));
  for (int i = 0; i < 30; ++i) {
    addAgent("a" + std::to_string(i), "cpus:1;mem:128");
  }
  addFramework("g", {"gold"});
  addFramework("s", {"silver"});
  auto held = runGreedy({{"g", "cpus:1;mem:128"}, {"s", "cpus:1;mem:128"}});
  EXPECT_NEAR(held["g"].v[0], 20, 1);
  EXPECT_NEAR(held["s"].v[0], 10, 1);
}

TEST_F(AllocatorTest, RolesAreSharedAsATree) {
  for (int i = 0; i < 40; ++i) {
    addAgent("a" + std::to_string(i), "cpus:1;mem:128");
  }
  addFramework("web", {"eng/web"});
  addFramework("batch", {"eng/batch"});
  addFramework("ops", {"ops"});
  auto held = runGreedy({{"web", "cpus:1;mem:128"},
                         {"batch", "cpus:1;mem:128"},
                         {"ops", "cpus:1;mem:128"}});
  // eng (web + batch) and ops share half and half; within eng, web and batch do.
  EXPECT_NEAR(held["ops"].v[0], 20, 1);
  EXPECT_NEAR(held["web"].v[0], 10, 1);
  EXPECT_NEAR(held["batch"].v[0], 10, 1);
  bool sawEng = false;
  for (const RoleInfo& r : allocator_.roles()) {
    if (r.name == "eng") {
      sawEng = true;
      EXPECT_NEAR(r.allocated.v[0], 20, 1);
    }
  }
  EXPECT_TRUE(sawEng);
}

TEST_F(AllocatorTest, ARoleAtItsQuotaLimitGetsNothingMore) {
  RoleQuota quota;
  quota.limit = limit("cpus:4");
  ASSERT_TRUE(allocator_.setQuota("eng", quota));
  for (int i = 0; i < 4; ++i) {
    addAgent("a" + std::to_string(i), "cpus:3;mem:1024");
  }
  addFramework("e", {"eng"});
  auto held = runGreedy({{"e", "cpus:1;mem:64"}});
  EXPECT_NEAR(held["e"].v[0], 4, 0.001);
  EXPECT_TRUE(allocator_.allocate(loop_.now()).empty());
  EXPECT_EQ(reasonFor("e", "eng"), Unoffered::kQuotaLimit);
}

TEST_F(AllocatorTest, AGuaranteeIsKeptFreeWhileOtherRolesAreBusy) {
  RoleQuota quota;
  quota.guarantee = q("cpus:4;mem:400");
  ASSERT_TRUE(allocator_.setQuota("prod", quota));
  for (int i = 0; i < 6; ++i) {
    addAgent("a" + std::to_string(i), "cpus:2;mem:200");
  }
  addFramework("dev", {"dev"});
  auto held = runGreedy({{"dev", "cpus:1;mem:100"}});
  // 12 cpus in all, 4 set aside for prod even though prod has no framework yet.
  EXPECT_NEAR(held["dev"].v[0], 8, 0.001);
  EXPECT_EQ(reasonFor("dev", "dev"), Unoffered::kHeadroom);
  addFramework("p", {"prod"});
  auto prod = runGreedy({{"p", "cpus:1;mem:100"}, {"dev", "cpus:1;mem:100"}});
  EXPECT_NEAR(prod["p"].v[0], 4, 0.001);
  EXPECT_NEAR(prod["dev"].v[0], 0, 0.001);
}

TEST_F(AllocatorTest, ReservedResourcesGoOnlyToTheirRoleAndItsChildren) {
  addAgent("a1", "cpus(eng):2;mem(eng):100;cpus:1;mem:100");
  addFramework("ops", {"ops"});
  auto allocations = allocator_.allocate(loop_.now());
  ASSERT_EQ(allocations.size(), 1u);
  EXPECT_EQ(allocations[0].resources.toString(), "cpus:1;mem:100");
  addFramework("web", {"eng/web"});
  allocations = allocator_.allocate(loop_.now());
  ASSERT_EQ(allocations.size(), 1u);
  EXPECT_EQ(allocations[0].frameworkId, "web");
  EXPECT_EQ(allocations[0].role, "eng/web");
  EXPECT_EQ(allocations[0].resources.toString(), "cpus(eng):2;mem(eng):100");
  bool sawEng = false;
  for (const RoleInfo& r : allocator_.roles()) {
    if (r.name == "eng") {
      sawEng = true;
      EXPECT_EQ(r.reserved.toString(), "cpus:2;mem:100");
    }
  }
  EXPECT_TRUE(sawEng);
}

TEST_F(AllocatorTest, GpuAgentsGoOnlyToGpuFrameworks) {
  addAgent("gpu", "cpus:4;mem:100;gpus:1");
  addFramework("plain");
  EXPECT_TRUE(allocator_.allocate(loop_.now()).empty());
  EXPECT_EQ(reasonFor("plain", "*"), Unoffered::kNoFittingAgent);
  addFramework("ml", {}, /*gpu=*/true);
  auto allocations = allocator_.allocate(loop_.now());
  ASSERT_EQ(allocations.size(), 1u);
  EXPECT_EQ(allocations[0].frameworkId, "ml");
}

TEST_F(AllocatorTest, AFrameworkThatDeclinesEverythingDoesNotStarveOthers) {
  for (int i = 0; i < 10; ++i) {
    addAgent("a" + std::to_string(i), "cpus:1;mem:128");
  }
  addFramework("decliner");
  addFramework("worker");
  std::map<std::string, int> placed;
  for (int cycle = 0; cycle < 5; ++cycle) {
    for (const Allocation& a : allocator_.allocate(loop_.now())) {
      if (a.frameworkId == "decliner") {
        allocator_.recoverResources(a.frameworkId, a.agentId, a.role, a.resources, hours(1));
      } else {
        ++placed[a.agentId];
      }
    }
  }
  EXPECT_EQ(placed.size(), 10u);
  EXPECT_EQ(reasonFor("decliner", "*"), Unoffered::kNothingFree);
}

TEST_F(AllocatorTest, FiltersExpireAndDoNotHideNewResources) {
  addAgent("a1", "cpus:4;mem:1024");
  addFramework("f1");
  auto first = allocator_.allocate(loop_.now());
  ASSERT_EQ(first.size(), 1u);
  // Uses 1 cpu, declines the rest for 10s.
  Resources rest = first[0].resources - *Resources::parse("cpus:1;mem:100");
  allocator_.recoverResources("f1", "a1", "*", rest, seconds(10));
  EXPECT_TRUE(allocator_.allocate(loop_.now()).empty());
  EXPECT_EQ(reasonFor("f1", "*"), Unoffered::kFiltered);
  // The task ends: more is free than was filtered, so it is offered at once.
  allocator_.recoverResources("f1", "a1", "*", *Resources::parse("cpus:1;mem:100"), std::nullopt);
  EXPECT_EQ(allocator_.allocate(loop_.now()).size(), 1u);
}

TEST_F(AllocatorTest, AnExpiredFilterHidesNothingFromAnAllocationOfSomeAgents) {
  addAgent("a1", "cpus:4;mem:1024");
  addFramework("f1");
  auto first = allocator_.allocate(loop_.now());
  ASSERT_EQ(first.size(), 1u);
  allocator_.recoverResources("f1", "a1", "*", first[0].resources, seconds(10));
  EXPECT_TRUE(allocator_.allocate(loop_.now(), {"a1"}).empty());
  loop_.advance(seconds(11));
  EXPECT_EQ(allocator_.allocate(loop_.now(), {"a1"}).size(), 1u);
}

TEST_F(AllocatorTest, SuppressAndReviveArePerRole) {
  addAgent("a1", "cpus:1;mem:128");
  addAgent("a2", "cpus:1;mem:128");
  addFramework("f", {"x", "y"});
  allocator_.suppress("f", {"x"});
  auto allocations = allocator_.allocate(loop_.now());
  ASSERT_EQ(allocations.size(), 2u);
  for (const Allocation& a : allocations) {
    EXPECT_EQ(a.role, "y");
  }
  EXPECT_EQ(reasonFor("f", "x"), Unoffered::kSuppressed);
  for (const Allocation& a : allocations) {
    allocator_.recoverResources("f", a.agentId, a.role, a.resources, hours(1));
  }
  allocator_.revive("f", {"x"});
  allocations = allocator_.allocate(loop_.now());
  ASSERT_EQ(allocations.size(), 2u);
  for (const Allocation& a : allocations) {
    EXPECT_EQ(a.role, "x");
  }
}

TEST_F(AllocatorTest, RemovingAFrameworkFreesWhatItHeld) {
  addAgent("a1", "cpus:4;mem:1024");
  addFramework("f1");
  ASSERT_EQ(allocator_.allocate(loop_.now()).size(), 1u);
  allocator_.removeFramework("f1");
  addFramework("f2");
  auto allocations = allocator_.allocate(loop_.now());
  ASSERT_EQ(allocations.size(), 1u);
  EXPECT_EQ(allocations[0].resources.toString(), "cpus:4;mem:1024");
}

TEST_F(AllocatorTest, TinyLeftoversAreNotOffered) {
  addAgent("a1", "cpus:0.005;mem:16");
  addFramework("f1");
  EXPECT_TRUE(allocator_.allocate(loop_.now()).empty());
}

TEST_F(AllocatorTest, InactiveFrameworksAreToldWhy) {
  addAgent("a1", "cpus:1;mem:128");
  addFramework("f1");
  allocator_.deactivateFramework("f1");
  EXPECT_TRUE(allocator_.allocate(loop_.now()).empty());
  EXPECT_EQ(reasonFor("f1", "*"), Unoffered::kInactive);
  allocator_.activateFramework("f1");
  EXPECT_EQ(allocator_.allocate(loop_.now()).size(), 1u);
  EXPECT_EQ(reasonFor("f1", "*"), Unoffered::kOffered);
}

TEST(AllocatorSettingsTest, BadRolesWeightsAndQuotasAreRefused) {
  EXPECT_TRUE(validateRole("*"));
  EXPECT_TRUE(validateRole("eng/web-1"));
  for (const char* bad : {"", "/eng", "eng/", "eng//web", "eng/..", "-x", "a b", "*/x"}) {
    EXPECT_FALSE(validateRole(bad)) << bad;
  }
  HierarchicalAllocator allocator([] { return TimePoint(); });
  EXPECT_FALSE(allocator.setWeight("eng", 0));
  EXPECT_FALSE(allocator.setWeight("eng", -1));
  EXPECT_FALSE(allocator.setWeight("bad role", 2));
  RoleQuota quota;
  quota.guarantee = q("cpus:8");
  quota.limit = limit("cpus:4");
  auto refused = allocator.setQuota("eng", quota);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("exceeds the limit"), std::string::npos);
  EXPECT_FALSE(Quantities::parse("cpus:-1"));
  EXPECT_FALSE(Quantities::parse("ports:[1-2]"));
  EXPECT_FALSE(Quantities::parse("cpus(eng):1"));
  Quantities cpusOnly = limit("cpus:4");
  EXPECT_EQ(cpusOnly.v[0], 4);
  EXPECT_TRUE(cpusOnly.isUnlimited(1));
  EXPECT_FALSE(HierarchicalAllocator::Options::parseMinAllocatable("cpus:1||mem:2"));
  auto min = HierarchicalAllocator::Options::parseMinAllocatable("cpus:1|mem:32;disk:10");
  ASSERT_TRUE(min);
  EXPECT_EQ(min->size(), 2u);
}

// Random clusters and random event orders: nothing is ever offered twice at once, and what
// the allocator counts as allocated is exactly what the test holds.
TEST(AllocatorPropertyTest, NothingIsOfferedTwiceAndTheBooksBalance) {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
    ManualLoop loop;
    HierarchicalAllocator allocator([&] { return loop.now(); });
    const std::vector<std::string> roles = {"*", "a", "a/x", "a/y", "b"};
    struct Held {
      std::string framework, agent, role;
      Resources resources;
    };
    std::map<std::string, Resources> totals;  // agent -> total
    std::map<std::string, Resources> free;    // agent -> what the test thinks is free
    std::vector<Held> held;
    std::vector<std::string> frameworks;
    int nextAgent = 0;
    int nextFramework = 0;
    auto addAgent = [&] {
      std::string id = "a" + std::to_string(nextAgent++);
      std::string text = "cpus:" + std::to_string(1 + pick(8)) +
                         ";mem:" + std::to_string(256 * (1 + pick(8))) + ";ports:[31000-31009]";
      if (pick(3) == 0) {
        text += ";cpus(" + roles[1 + pick(roles.size() - 1)] + "):2";
      }
      if (pick(5) == 0) {
        text += ";gpus:1";
      }
      Resources total = *Resources::parse(text);
      totals[id] = total;
      free[id] = total;
      allocator.addAgent(id, AgentInfo(), total);
    };
    auto addFramework = [&] {
      std::string id = "f" + std::to_string(nextFramework++);
      FrameworkInfo info;
      info.add_roles(roles[pick(roles.size())]);
      if (pick(2) == 0) {
        info.add_roles(roles[pick(roles.size())]);
      }
      if (pick(3) == 0) {
        info.add_capabilities(FrameworkInfo::GPU_RESOURCES);
      }
      allocator.addFramework(id, info, true);
      frameworks.push_back(id);
    };
    for (int i = 0; i < 6; ++i) addAgent();
    for (int i = 0; i < 3; ++i) addFramework();

    for (int step = 0; step < 400; ++step) {
      switch (pick(10)) {
        case 0:
          addAgent();
          break;
        case 1: {  // an agent goes: everything on it is gone
          if (totals.size() <= 1) break;
          auto it = std::next(totals.begin(), static_cast<long>(pick(totals.size())));
          std::string id = it->first;
          allocator.removeAgent(id);
          totals.erase(id);
          free.erase(id);
          std::erase_if(held, [&](const Held& h) { return h.agent == id; });
          break;
        }
        case 2:
          addFramework();
          break;
        case 3: {  // a framework goes
          if (frameworks.size() <= 1) break;
          size_t i = pick(frameworks.size());
          std::string id = frameworks[i];
          allocator.removeFramework(id);
          frameworks.erase(frameworks.begin() + static_cast<long>(i));
          for (const Held& h : held) {
            if (h.framework == id) free[h.agent] += h.resources;
          }
          std::erase_if(held, [&](const Held& h) { return h.framework == id; });
          break;
        }
        case 4:
        case 5: {  // something held comes back, maybe with a filter
          if (held.empty()) break;
          size_t i = pick(held.size());
          Held h = held[i];
          held.erase(held.begin() + static_cast<long>(i));
          std::optional<Duration> refuse;
          if (pick(2) == 0) refuse = seconds(static_cast<int>(1 + pick(5)));
          allocator.recoverResources(h.framework, h.agent, h.role, h.resources, refuse);
          free[h.agent] += h.resources;
          break;
        }
        case 6: {
          const std::string& f = frameworks[pick(frameworks.size())];
          if (pick(2) == 0) {
            allocator.suppress(f, {});
          } else {
            allocator.revive(f, {});
          }
          break;
        }
        case 7: {
          RoleQuota quota;
          quota.guarantee = q("cpus:" + std::to_string(pick(4)));
          quota.limit = limit("cpus:" + std::to_string(4 + pick(8)));
          const std::string& role = roles[1 + pick(roles.size() - 1)];
          if (pick(3) == 0) {
            allocator.removeQuota(role);
          } else {
            ASSERT_TRUE(allocator.setQuota(role, quota));
          }
          ASSERT_TRUE(allocator.setWeight(roles[1 + pick(roles.size() - 1)], 0.5 + pick(4)));
          break;
        }
        case 8:
          loop.advance(seconds(static_cast<int>(pick(3))));
          break;
        default: {
          std::vector<Allocation> allocations;
          if (pick(2) == 0) {
            allocations = allocator.allocate(loop.now());
          } else {
            std::set<std::string> some;
            for (const auto& [id, t] : totals) {
              if (pick(2) == 0) some.insert(id);
            }
            allocations = allocator.allocate(loop.now(), some);
          }
          for (const Allocation& a : allocations) {
            ASSERT_TRUE(free.count(a.agentId) > 0) << "seed " << seed << ": unknown agent";
            ASSERT_TRUE(free[a.agentId].contains(a.resources))
                << "seed " << seed << " step " << step << ": " << a.resources << " offered on "
                << a.agentId << " where only " << free[a.agentId] << " is free";
            ASSERT_FALSE(a.resources.empty());
            for (const Resource& r : a.resources.items()) {
              if (r.reservations_size() > 0) {
                std::string owner = reservationRole(r);
                ASSERT_TRUE(a.role == owner || a.role.rfind(owner + "/", 0) == 0)
                    << "seed " << seed << ": " << owner << "'s reservation went to " << a.role;
              }
            }
            free[a.agentId] -= a.resources;
            held.push_back(Held{a.frameworkId, a.agentId, a.role, a.resources});
          }
          break;
        }
      }
      // The books: the cluster total is every agent's total; allocated is every holding.
      Quantities total;
      for (const auto& [id, t] : totals) total += Quantities::of(t);
      Quantities allocated;
      for (const Held& h : held) allocated += Quantities::of(h.resources);
      Quantities counted;
      for (const RoleInfo& r : allocator.roles()) {
        if (r.name.find('/') == std::string::npos) counted += r.allocated;
      }
      for (size_t k = 0; k < Quantities::kKinds; ++k) {
        ASSERT_NEAR(allocator.clusterTotal().v[k], total.v[k], 0.01) << "seed " << seed;
        ASSERT_NEAR(counted.v[k], allocated.v[k], 0.01)
            << "seed " << seed << " step " << step << " kind " << Quantities::kNames[k];
      }
    }
  }
}

}  // namespace
}  // namespace agora::master
