// The allocator benchmark grid, after Mesos's hierarchical allocator benchmarks: agents x
// frameworks, one full allocation cycle timed.
//
//   BM_FirstCycle/A/F      agents and frameworks added, everything free: one cycle hands
//                          every agent out.
//   BM_DeclinedCycle/A/F   every framework has declined what it was offered (a filter of an
//                          hour): one cycle finds each agent a framework that has not.
//   BM_QuotaFirstCycle/A/F the first cycle again with the frameworks spread over 100 roles,
//                          each with a quota guarantee and limit.
//   BM_AddAgents/A/F       adding A agents with F frameworks registered.
//
//   agora-bench-allocator [--benchmark_filter=...]

#include <benchmark/benchmark.h>

#include "common/manual_loop.hpp"
#include "master/allocator/hierarchical_allocator.hpp"

namespace agora::master {
namespace {

const char* const kAgentResources = "cpus:24;mem:4096;disk:4096;ports:[31000-32000]";

struct Cluster {
  explicit Cluster(int agents, int frameworks, int quotaRoles = 0)
      : allocator([this] { return loop.now(); }) {
    Resources total = *Resources::parse(kAgentResources);
    for (int r = 0; r < quotaRoles; ++r) {
      RoleQuota quota;
      // Together the guarantees take half the cluster; each role may use twice its guarantee.
      double cpus = 24.0 * agents / 2 / quotaRoles;
      quota.guarantee = *Quantities::parse("cpus:" + std::to_string(cpus));
      quota.limit = *Quantities::parseLimit("cpus:" + std::to_string(2 * cpus));
      (void)allocator.setQuota("role" + std::to_string(r), quota);
    }
    for (int f = 0; f < frameworks; ++f) {
      FrameworkInfo info;
      info.add_roles(quotaRoles > 0 ? "role" + std::to_string(f % quotaRoles) : "*");
      allocator.addFramework("framework-" + std::to_string(f), info, true);
    }
    for (int a = 0; a < agents; ++a) {
      allocator.addAgent("agent-" + std::to_string(a), AgentInfo(), total);
    }
  }

  void recover(const std::vector<Allocation>& allocations, std::optional<Duration> refuse) {
    for (const Allocation& a : allocations) {
      allocator.recoverResources(a.frameworkId, a.agentId, a.role, a.resources, refuse);
    }
  }

  ManualLoop loop;
  HierarchicalAllocator allocator;
};

// Times one full cycle per iteration, giving back what it handed out (untimed) each time.
void timeCycles(benchmark::State& state, Cluster& cluster) {
  size_t offers = 0;
  for (auto _ : state) {
    auto allocations = cluster.allocator.allocate(cluster.loop.now());
    offers = allocations.size();
    state.PauseTiming();
    cluster.recover(allocations, std::nullopt);
    state.ResumeTiming();
  }
  state.counters["offers"] = static_cast<double>(offers);
}

void BM_FirstCycle(benchmark::State& state) {
  Cluster cluster(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  timeCycles(state, cluster);
}

void BM_DeclinedCycle(benchmark::State& state) {
  Cluster cluster(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  // Every framework declines what the first cycle gave it.
  cluster.recover(cluster.allocator.allocate(cluster.loop.now()), hours(1));
  timeCycles(state, cluster);
}

void BM_QuotaFirstCycle(benchmark::State& state) {
  Cluster cluster(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), 100);
  timeCycles(state, cluster);
}

void BM_AddAgents(benchmark::State& state) {
  const int agents = static_cast<int>(state.range(0));
  Resources total = *Resources::parse(kAgentResources);
  for (auto _ : state) {
    state.PauseTiming();
    auto cluster = std::make_unique<Cluster>(0, static_cast<int>(state.range(1)));
    state.ResumeTiming();
    for (int a = 0; a < agents; ++a) {
      cluster->allocator.addAgent("agent-" + std::to_string(a), AgentInfo(), total);
    }
    state.PauseTiming();
    cluster.reset();
    state.ResumeTiming();
  }
}

void grid(benchmark::internal::Benchmark* b) {
  for (int agents : {1000, 5000, 10000, 20000, 50000}) {
    for (int frameworks : {1, 100, 1000, 3000}) {
      b->Args({agents, frameworks});
    }
  }
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_FirstCycle)->Apply(grid);
BENCHMARK(BM_DeclinedCycle)->Apply(grid);
void quotaGrid(benchmark::internal::Benchmark* b) {
  for (int agents : {1000, 5000, 10000, 20000, 50000}) {
    for (int frameworks : {100, 1000, 3000}) {
      b->Args({agents, frameworks});
    }
  }
  b->Args({20000, 2000});
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_QuotaFirstCycle)->Apply(quotaGrid);
BENCHMARK(BM_AddAgents)->Args({10000, 1000})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace agora::master

BENCHMARK_MAIN();
