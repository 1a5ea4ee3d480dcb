// End-to-end launch throughput: one master, N simulated agents (fake containerizer, real
// agent state machines and real ZeroMQ connections over loopback TCP), and a scheduler on the
// SDK launching T tasks. Reports tasks/s from the first offer to the last RUNNING, and the
// offer->RUNNING latency (p50, p99) of the tasks.
//
//   agora-bench-launch --agents=100 --tasks=10000
//
// Everything runs in this process: the master on its own thread, the agents spread over
// --agent_threads event loops, the scheduler driver on its own thread.

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include <glog/logging.h>

#include "agora/scheduler.hpp"
#include "bench/sim_cluster.hpp"
#include "common/flags.hpp"
#include "common/logging.hpp"
#include "common/resources.hpp"

namespace agora::bench {

namespace {

using Clock = std::chrono::steady_clock;

class LaunchScheduler final : public Scheduler {
 public:
  LaunchScheduler(int tasks, int perAgent, double cpus, double mem)
      : total_(tasks), perAgent_(perAgent), cpus_(cpus), mem_(mem) {
    offeredAt_.resize(tasks);
    latencies_.reserve(tasks);
  }

  void offers(SchedulerDriver* driver, const std::vector<Offer>& offers) override {
    Clock::time_point now = Clock::now();
    if (!sawOffer_) {
      sawOffer_ = true;
      firstOffer_ = now;
    }
    Filters keep;
    keep.set_refuse_seconds(3600);
    for (const Offer& offer : offers) {
      Resources available(offer.resources());
      std::vector<TaskInfo> tasks;
      while (launched_ < total_ && static_cast<int>(tasks.size()) < perAgent_ &&
             available.scalar("cpus") >= cpus_ && available.scalar("mem") >= mem_) {
        TaskInfo task;
        task.set_task_id(std::to_string(launched_));
        task.set_agent_id(offer.agent_id());
        task.mutable_command()->set_value("simulated");
        *task.add_resources() = Resources::scalar("cpus", cpus_);
        *task.add_resources() = Resources::scalar("mem", mem_);
        available -= Resources(task.resources());
        offeredAt_[launched_++] = now;
        tasks.push_back(std::move(task));
      }
      if (tasks.empty()) {
        driver->decline(offer.id(), keep);
      } else {
        driver->launch(offer.id(), tasks, keep);
      }
    }
    if (launched_ == total_ && !suppressed_) {
      suppressed_ = true;
      driver->suppress();
    }
  }

  void update(SchedulerDriver*, const TaskStatus& status) override {
    if (status.state() != TASK_RUNNING) {
      if (status.state() != TASK_STARTING) {
        ++unexpected_;
      }
      return;
    }
    Clock::time_point now = Clock::now();
    int index = std::stoi(status.task_id());
    latencies_.push_back(std::chrono::duration<double, std::milli>(now - offeredAt_[index]).count());
    if (static_cast<int>(latencies_.size()) == total_) {
      std::lock_guard<std::mutex> lock(mutex_);
      lastRunning_ = now;
      done_ = true;
      changed_.notify_all();
    }
  }

  bool wait(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [this] { return done_; });
  }

  int running() const { return static_cast<int>(latencies_.size()); }
  int unexpected() const { return unexpected_; }
  double seconds() const {
    return std::chrono::duration<double>(lastRunning_ - firstOffer_).count();
  }
  double percentile(double p) {
    std::vector<double> sorted = latencies_;
    std::sort(sorted.begin(), sorted.end());
    return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
  }

 private:
  const int total_;
  const int perAgent_;
  const double cpus_;
  const double mem_;
  // Driver thread only.
  bool sawOffer_ = false;
  bool suppressed_ = false;
  int launched_ = 0;
  int unexpected_ = 0;
  std::vector<Clock::time_point> offeredAt_;
  std::vector<double> latencies_;
  Clock::time_point firstOffer_;

  std::mutex mutex_;
  std::condition_variable changed_;
  bool done_ = false;
  Clock::time_point lastRunning_;
};

}  // namespace

int run(int argc, const char* const* argv) {
  SimulatedClusterOptions clusterOptions;  // 100 agents of cpus:16;mem:65536;disk:65536
  int tasks = 10000;
  double taskCpus = 0.1;
  double taskMem = 32;
  Flags flags("agora-bench-launch [flags]",
              "Launch throughput of one master with simulated agents (see docs/PERF.md).");
  clusterOptions.addFlags(flags);
  flags.add(&tasks, "tasks", "Tasks to launch.");
  flags.add(&taskCpus, "task_cpus", "cpus of each task.");
  flags.add(&taskMem, "task_mem", "mem of each task.");
  flags.add(&clusterOptions.curve, "curve",
            "CURVE on every connection, as agora up has it (keys made for the run): the master\n"
            "admits the agents' and the scheduler's keys through its ZAP handler.");
  auto parsed = flags.parse(argc, argv);
  if (flags.helpRequested()) {
    std::cout << flags.help();
    return 0;
  }
  const int agents = clusterOptions.agents;
  const int agentThreads = clusterOptions.agentThreads;
  if (!parsed || agents < 1 || tasks < 1 || agentThreads < 1) {
    std::cerr << (parsed ? "--agents, --tasks and --agent_threads must be positive"
                         : parsed.error())
              << "\n";
    return 2;
  }
  FLAGS_minloglevel = 1;  // warnings and up: the benchmark's own output stays readable
  initLogging(argv[0], "", 0);

  SimulatedCluster cluster(clusterOptions);
  if (Status started = cluster.start(); !started) {  // a bad --agent_resources, too
    std::cerr << started.error() << "\n";
    return 1;
  }
  double registration = cluster.registrationSeconds();

  // The scheduler.
  int perAgent = (tasks + agents - 1) / agents;
  LaunchScheduler scheduler(tasks, perAgent, taskCpus, taskMem);
  FrameworkInfo framework;
  framework.set_name("bench-launch");
  // Tasks run as the benchmark's own user: agents check that the user exists.
  const passwd* me = ::getpwuid(::geteuid());
  framework.set_user(me != nullptr ? me->pw_name : "root");
  SchedulerDriverOptions driverOptions;
  driverOptions.credentials = cluster.schedulerCredentials();
  SchedulerDriver driver(&scheduler, framework, cluster.masterAddress(), driverOptions);
  driver.start();
  bool done = scheduler.wait(std::chrono::seconds(300));
  if (!done) {
    std::cerr << "only " << scheduler.running() << " of " << tasks
              << " tasks reached RUNNING in 300 s\n";
  }

  auto metric = [&](const std::string& name) { return cluster.metric(name); };
  if (done) {
    std::printf(
        "agents=%d tasks=%d agent_threads=%d: %.0f tasks/s (first offer to last RUNNING: %.3f s); "
        "offer->RUNNING latency p50 %.1f ms, p99 %.1f ms; %d agents registered in %.2f s; "
        "%.0f allocation runs, %.3f s allocating\n",
        agents, tasks, agentThreads, tasks / scheduler.seconds(), scheduler.seconds(),
        scheduler.percentile(0.5), scheduler.percentile(0.99), agents, registration,
        metric("agora_master_allocation_runs_total"),
        metric("agora_master_allocation_seconds_total"));
  }
  if (scheduler.unexpected() > 0) {
    std::printf("warning: %d tasks reported a state other than STARTING/RUNNING\n",
                scheduler.unexpected());
  }

  driver.abort();
  driver.join();
  return done ? 0 : 1;
}

}  // namespace agora::bench

int main(int argc, char** argv) { return agora::bench::run(argc, argv); }
