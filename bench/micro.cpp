// Google Benchmark micro-benchmarks of the hot paths of a launch: resource arithmetic,
// envelope encoding and decoding, and one allocation cycle over many agents.

#include <benchmark/benchmark.h>

#include "common/envelope.hpp"
#include "common/manual_loop.hpp"
#include "common/resources.hpp"
#include "master/allocator/hierarchical_allocator.hpp"

namespace agora {
namespace {

void BM_ResourcesSubtractAndContain(benchmark::State& state) {
  Resources agent = *Resources::parse("cpus:16;mem:65536;disk:65536;ports:[31000-32000]");
  Resources task = *Resources::parse("cpus:0.1;mem:32");
  for (auto _ : state) {
    Resources left = agent;
    for (int i = 0; i < 100 && left.contains(task); ++i) {
      left -= task;
    }
    benchmark::DoNotOptimize(left);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_ResourcesSubtractAndContain);

void BM_EnvelopeRoundTrip(benchmark::State& state) {
  Envelope e;
  auto* run = e.mutable_agent_event()->mutable_run_task();
  run->mutable_framework()->set_id("5a3c6f0e-6f7b-4b5e-9d7e-0c4d2d1b9a77-0000");
  run->mutable_framework()->set_name("bench");
  TaskInfo* task = run->mutable_task();
  task->set_task_id("task-000001");
  task->set_agent_id("5a3c6f0e-6f7b-4b5e-9d7e-0c4d2d1b9a77-S12");
  task->mutable_command()->set_value("sleep 10");
  *task->add_resources() = Resources::scalar("cpus", 0.1);
  *task->add_resources() = Resources::scalar("mem", 32);
  for (auto _ : state) {
    std::string bytes = encodeEnvelope(e);
    auto decoded = decodeEnvelope(bytes.data(), bytes.size());
    benchmark::DoNotOptimize(decoded);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EnvelopeRoundTrip);

void BM_AllocateAllAgents(benchmark::State& state) {
  const int agents = static_cast<int>(state.range(0));
  const int frameworks = static_cast<int>(state.range(1));
  ManualLoop loop;
  master::HierarchicalAllocator allocator([&] { return loop.now(); });
  Resources total = *Resources::parse("cpus:16;mem:65536;disk:65536");
  for (int i = 0; i < agents; ++i) {
    allocator.addAgent("a" + std::to_string(i), AgentInfo(), total);
  }
  for (int f = 0; f < frameworks; ++f) {
    allocator.addFramework("f" + std::to_string(f), FrameworkInfo(), true);
  }
  for (auto _ : state) {
    auto allocations = allocator.allocate(loop.now());
    state.PauseTiming();
    for (const auto& a : allocations) {
      allocator.recoverResources(a.frameworkId, a.agentId, a.role, a.resources, std::nullopt);
    }
    state.ResumeTiming();
  }
}
BENCHMARK(BM_AllocateAllAgents)->Args({1000, 1})->Args({1000, 10})->Args({10000, 10})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace agora

BENCHMARK_MAIN();
