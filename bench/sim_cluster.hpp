#pragma once

// A cluster in one process, for benchmarks: a real master (on its own thread, with the real
// allocator, HTTP API and ZeroMQ protocol port on loopback) and N simulated agents (real agent
// state machines and connections; a fake containerizer whose tasks run no process and finish
// after a set time). Schedulers on the SDK reach it at masterAddress().

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/flags.hpp"
#include "common/resources.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

namespace agora::bench {

struct SimulatedClusterOptions {
  int agents = 100;
  int agentThreads = 2;  // event loops the agents share
  std::string agentResources = "cpus:16;mem:65536;disk:65536";
  Duration taskDuration = Duration::max();  // how long a task runs; max(): until killed
  // CURVE on every connection, as agora up has it (keys made for the run).
  bool curve = false;

  // --agents, --agent_threads and --agent_resources, their defaults what these hold.
  void addFlags(Flags& flags);
};

class SimulatedCluster {
 public:
  explicit SimulatedCluster(SimulatedClusterOptions options);
  ~SimulatedCluster();
  SimulatedCluster(const SimulatedCluster&) = delete;
  SimulatedCluster& operator=(const SimulatedCluster&) = delete;

  // Starts the master and the agents, and waits (up to 120 s) until every agent registered.
  Status start();
  // The master's HTTP address, for SchedulerDriver.
  std::string masterAddress() const;
  // The scheduler's credentials file with CURVE ("" without).
  const std::string& schedulerCredentials() const;
  double registrationSeconds() const;
  // The master's /metrics text.
  std::string metricsText();
  // One value of it (0 when absent).
  double metric(const std::string& name);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora::bench
