// Pod scheduling throughput of the kube framework, in the shape of Kubernetes' scheduler_perf
// SchedulingBasic: N simulated nodes (agents, each with one offer), P pods created through the
// API server's create path (defaulting, validation, the durable store), then the pod scheduler
// places and binds them all. Reports pods/s from the offers' arrival to the last binding
// written to the store (each binding is a durable write, fdatasync'd, plus its Event).
//
//   agora-bench-kube-scheduling --nodes=5000 --pods=10000
//
// In one process, on one loop, with a driver that accepts what the scheduler launches (the
// tasks are not run: this measures the scheduler and its API writes, as scheduler_perf does).

#include <chrono>
#include <cstdio>
#include <iostream>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/ids.hpp"
#include "common/manual_loop.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"
#include "frameworks/k8s-like/scheduler/pod_scheduler.hpp"
#include "frameworks/k8s-like/store/store.hpp"

namespace agora::bench {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

class AcceptingDriver final : public kube::ClusterDriver {
 public:
  void accept(const std::vector<std::string>&, const std::vector<Operation>& operations,
              double) override {
    for (const auto& op : operations) launched += op.launch_group().task_group().tasks_size();
  }
  void decline(const std::string&, double) override {}
  void kill(const std::string&, const std::string&) override {}
  void revive() override {}
  void suppress() override {}
  void reconcile() override {}
  uint64_t launched = 0;
};

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int run(int argc, const char* const* argv) {
  int nodes = 5000;
  int pods = 10000;
  std::string dir = "/tmp/agora-bench-kube";
  Flags flags("agora-bench-kube-scheduling [flags]",
              "Pod scheduling throughput with simulated nodes (see docs/PERF.md).");
  flags.add(&nodes, "nodes", "Simulated nodes (agents), each offering cpus:32;mem:131072.");
  flags.add(&pods, "pods", "Pods to create and schedule (cpu 100m, memory 64Mi each).");
  flags.add(&dir, "dir", "Where the store lives during the run (removed first and after).");
  if (auto parsed = flags.parse(argc, argv); !parsed) {
    std::cerr << parsed.error() << "\n";
    return 2;
  }
  (void)removeAll(dir);
  auto store = kube::FileStore::open(dir, {});
  if (!store) {
    std::cerr << store.error() << "\n";
    return 1;
  }
  ManualLoop loop;
  kube::ApiServer api(&loop, store->get(), {});
  api.bootstrap();
  AcceptingDriver driver;
  kube::PodScheduler scheduler(&api, &driver);

  // The nodes, as the master's state lists its agents.
  json state = {{"agents", json::array()}};
  for (int i = 0; i < nodes; ++i) {
    state["agents"].push_back({{"id", "agent-" + std::to_string(i)},
                               {"hostname", "node-" + std::to_string(i)},
                               {"address", "127.0.0.1:" + std::to_string(10000 + i % 50000)},
                               {"resources", {{"cpus", 32}, {"mem", 131072}}},
                               {"used_resources", json::object()},
                               {"attributes", {{"zone", "z" + std::to_string(i % 3)}}}});
  }
  auto start = Clock::now();
  scheduler.agents(state);
  loop.runUntilIdle();
  double nodeSeconds = secondsSince(start);

  // The pods, through the API server's create path.
  const kube::ResourceType& podType = *kube::findResource("", "v1", "pods");
  start = Clock::now();
  for (int i = 0; i < pods; ++i) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "pod-" + std::to_string(i)}, {"labels", {{"app", "bench"}}}}},
                {"spec",
                 {{"containers",
                   json::array({{{"name", "c"},
                                 {"image", "agora/host"},
                                 {"command", {"sleep", "3600"}},
                                 {"resources",
                                  {{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}}}}})}}}};
    kube::ApiOutcome created = api.create(podType, "default", pod);
    if (!created.ok()) {
      std::cerr << "create: " << created.error->message << "\n";
      return 1;
    }
  }
  double createSeconds = secondsSince(start);
  scheduler.start();
  loop.runUntilIdle();

  // The offers arrive: everything is placed and bound.
  std::vector<Offer> offers;
  for (int i = 0; i < nodes; ++i) {
    Offer offer;
    offer.set_id("offer-" + std::to_string(i));
    offer.set_agent_id("agent-" + std::to_string(i));
    offer.set_hostname("node-" + std::to_string(i));
    offer.set_agent_address("127.0.0.1:10000");
    Resources::parse("cpus:32;mem:131072")->copyTo(offer.mutable_resources());
    offers.push_back(offer);
  }
  start = Clock::now();
  scheduler.offers(offers);
  loop.runUntilIdle();
  double scheduleSeconds = secondsSince(start);

  size_t bound = 0;
  for (const json& pod : api.list(podType, "default")) {
    bound += pod["spec"].value("nodeName", "").empty() ? 0 : 1;
  }
  std::printf("nodes: %d registered in %.2f s\n", nodes, nodeSeconds);
  std::printf("pods: %d created through the API in %.2f s (%.0f pods/s)\n", pods, createSeconds,
              pods / createSeconds);
  std::printf("scheduled: %zu bound, %llu tasks launched, in %.2f s: %.0f pods/s\n", bound,
              static_cast<unsigned long long>(driver.launched), scheduleSeconds,
              static_cast<double>(bound) / scheduleSeconds);
  (void)removeAll(dir);
  return bound == static_cast<size_t>(pods) ? 0 : 1;
}

}  // namespace agora::bench

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_minloglevel = 1;
  return agora::bench::run(argc, argv);
}
