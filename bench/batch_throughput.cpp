// Short-task throughput of the batch framework: one job of T tasks of D ms each, on N simulated
// agents (a real master and allocator, real agent state machines and connections; the tasks
// run no process and finish after D ms). The framework is frameworks/batch as `agora batch`
// runs it: the JobRunner packs offers with pending tasks, and declines and suppresses as it
// does on a real cluster.
//
//   agora-bench-batch --agents=20 --tasks=100000 --task_ms=10
//
// Reports tasks/s from the driver's start to the job's end, and the share of the agents' task
// slots that sat idle while tasks waited: 1 - (T x D) / (slots x makespan), where an agent has
// as many slots as its cpus hold tasks. That share is the scheduling overhead: the time from a
// task's end to the next task's start on its slot, and the start and end of the run. The same
// formula is used for Slurm in bench/batch_vs_slurm.sh.

#include <pwd.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <thread>

#include <glog/logging.h>

#include "agora/scheduler.hpp"
#include "bench/sim_cluster.hpp"
#include "common/flags.hpp"
#include "common/logging.hpp"
#include "frameworks/batch/batch_scheduler.hpp"
#include "frameworks/batch/job.hpp"

namespace agora::bench {

int run(int argc, const char* const* argv) {
  SimulatedClusterOptions clusterOptions;
  clusterOptions.agents = 20;
  clusterOptions.agentResources = "cpus:8;mem:16384;disk:65536";
  int tasks = 100000;
  int taskMs = 10;
  double taskCpus = 1;
  Flags flags("agora-bench-batch [flags]",
              "Short-task throughput of the batch framework on simulated agents (docs/PERF.md).");
  clusterOptions.addFlags(flags);
  flags.add(&tasks, "tasks", "Tasks in the job's one stage.");
  flags.add(&taskMs, "task_ms", "How long each task runs, in milliseconds.");
  flags.add(&taskCpus, "task_cpus", "cpus of each task (an agent's slots: its cpus / this).");
  auto parsed = flags.parse(argc, argv);
  if (flags.helpRequested()) {
    std::cout << flags.help();
    return 0;
  }
  const int agents = clusterOptions.agents;
  if (!parsed || agents < 1 || tasks < 1 || taskMs < 1 || clusterOptions.agentThreads < 1 || !(taskCpus > 0)) {
    std::cerr << (parsed ? "--agents, --tasks, --task_ms, --agent_threads and --task_cpus must "
                           "be positive"
                         : parsed.error())
              << "\n";
    return 2;
  }
  auto resources = Resources::parse(clusterOptions.agentResources);
  if (!resources) {
    std::cerr << resources.error() << "\n";
    return 2;
  }
  FLAGS_minloglevel = 1;  // warnings and up: the benchmark's own output stays readable
  initLogging(argv[0], "", 0);

  auto job = batch::parseJob("name: bench\nstages:\n  - name: work\n    tasks: " +
                             std::to_string(tasks) + "\n    command: 'true'\n    resources: cpus:" +
                             std::to_string(taskCpus) + ";mem:32\n    retries: 0\n");
  if (!job) {
    std::cerr << job.error() << "\n";
    return 2;
  }
  clusterOptions.taskDuration = std::chrono::milliseconds(taskMs);
  SimulatedCluster cluster(clusterOptions);
  if (Status started = cluster.start(); !started) {
    std::cerr << started.error() << "\n";
    return 1;
  }

  batch::BatchScheduler scheduler(*job);
  FrameworkInfo framework;
  framework.set_name("bench-batch");
  // Tasks run as the benchmark's own user: agents check that the user exists.
  const passwd* me = ::getpwuid(::geteuid());
  framework.set_user(me != nullptr ? me->pw_name : "root");
  framework.add_roles("*");
  SchedulerDriverOptions driverOptions;
  driverOptions.credentials = cluster.schedulerCredentials();
  SchedulerDriver driver(&scheduler, framework, cluster.masterAddress(), driverOptions);
  auto begin = std::chrono::steady_clock::now();
  driver.start();
  bool over = false;
  while (!over && std::chrono::steady_clock::now() - begin < std::chrono::minutes(30)) {
    over = scheduler.waitOver(std::chrono::milliseconds(200));
    scheduler.tick(&driver);
    (void)scheduler.takeEvents();
  }
  double makespan =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  int rc = 0;
  if (!scheduler.succeeded()) {
    std::cerr << "the job did not finish: " << scheduler.failure() << "\n";
    rc = 1;
  } else {
    double slots = agents * std::floor(resources->scalar("cpus") / taskCpus + 1e-9);
    double busy = tasks * (taskMs / 1000.0);
    std::printf(
        "agents=%d slots=%.0f tasks=%d task_ms=%d: %.0f tasks/s (%.2f s; ideal %.2f s); "
        "idle while tasks waited %.1f%%; %.0f allocation runs, %.2f s allocating\n",
        agents, slots, tasks, taskMs, tasks / makespan, makespan, busy / slots,
        100.0 * (1 - busy / (slots * makespan)), cluster.metric("agora_master_allocation_runs_total"),
        cluster.metric("agora_master_allocation_seconds_total"));
  }
  driver.abort();
  driver.join();
  return rc;
}

}  // namespace agora::bench

int main(int argc, char** argv) { return agora::bench::run(argc, argv); }
