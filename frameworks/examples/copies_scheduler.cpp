// The SDK tutorial's example: a framework that runs N copies of a shell command.
//
//   agora-example-copies --master=127.0.0.1:5050 --count=10 --command='echo hello'
//
// It shows the whole life of a framework on Agora:
//   1. describe the framework (FrameworkInfo) and start a SchedulerDriver;
//   2. receive offers and launch tasks into them, or decline what it cannot use;
//   3. follow each task through its status updates (the driver acknowledges them);
//   4. suppress offers once everything is launched, and stop when every task has ended.
// docs/sdk.md walks through it line by line.

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "agora/scheduler.hpp"

namespace {

// Every callback runs on the driver's thread, one at a time; the mutex only guards what
// main() reads from its own thread.
class CopiesScheduler : public agora::Scheduler {
 public:
  CopiesScheduler(std::string command, int count, double cpus, double mem)
      : command_(std::move(command)), count_(count), cpus_(cpus), mem_(mem) {}

  void subscribed(agora::SchedulerDriver* driver, const std::string& frameworkId,
                  const agora::MasterInfo& master) override {
    std::cout << "Subscribed as framework " << frameworkId << std::endl;
  }

  // Offers arrive in batches, one per agent. Pack as many tasks into each as fit.
  void offers(agora::SchedulerDriver* driver, const std::vector<agora::Offer>& offers) override {
    for (const agora::Offer& offer : offers) {
      double cpus = scalar(offer, "cpus");
      double mem = scalar(offer, "mem");
      std::vector<agora::TaskInfo> tasks;
      while (launched_ < count_ && cpus >= cpus_ && mem >= mem_) {
        tasks.push_back(makeTask(launched_++, offer.agent_id()));
        cpus -= cpus_;
        mem -= mem_;
      }
      if (tasks.empty()) {
        // Not interested: don't offer this agent's resources to us again for a while.
        agora::Filters filters;
        filters.set_refuse_seconds(launched_ < count_ ? 1 : 3600);
        driver->decline(offer.id(), filters);
      } else {
        // Whatever of the offer the tasks do not use goes back to the master.
        driver->launch(offer.id(), tasks);
      }
    }
    if (launched_ == count_ && !suppressed_) {
      // Everything is launched: stop the master from sending us offers.
      suppressed_ = true;
      driver->suppress();
    }
  }

  // Each task goes STAGING -> STARTING -> RUNNING -> FINISHED (or FAILED, KILLED, ...).
  // With implicit acknowledgements (the default) the driver acknowledges each update when this
  // returns; until then the agent keeps resending it.
  void update(agora::SchedulerDriver* driver, const agora::TaskStatus& status) override {
    if (!agora::isTerminalState(status.state())) {
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++ended_;
    if (status.state() == agora::TASK_FINISHED) {
      ++finished_;
    } else {
      std::cout << "Task " << status.task_id() << " ended "
                << agora::TaskState_Name(status.state()) << ": " << status.message()
                << std::endl;
    }
    if (ended_ == count_) {
      done_.notify_all();
    }
  }

  void error(agora::SchedulerDriver* driver, const std::string& message) override {
    std::cerr << "Error: " << message << std::endl;
    std::lock_guard<std::mutex> lock(mutex_);
    failed_ = true;
    done_.notify_all();
  }

  // Blocks until every task has ended (or the driver failed); returns how many finished.
  int wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return ended_ == count_ || failed_; });
    return failed_ ? -1 : finished_;
  }

 private:
  static double scalar(const agora::Offer& offer, const std::string& name) {
    double total = 0;
    for (const agora::Resource& r : offer.resources()) {
      if (r.name() == name && r.type() == agora::Resource::SCALAR) {
        total += r.scalar();
      }
    }
    return total;
  }

  agora::TaskInfo makeTask(int index, const std::string& agentId) const {
    agora::TaskInfo task;
    task.set_task_id("copy-" + std::to_string(index));  // unique within the framework
    task.set_name("copy " + std::to_string(index));
    task.set_agent_id(agentId);
    task.mutable_command()->set_value(command_);        // runs under /bin/sh -c
    for (auto [name, value] : {std::pair{"cpus", cpus_}, std::pair{"mem", mem_}}) {
      agora::Resource* r = task.add_resources();
      r->set_name(name);
      r->set_type(agora::Resource::SCALAR);
      r->set_scalar(value);
    }
    return task;
  }

  const std::string command_;
  const int count_;
  const double cpus_;
  const double mem_;
  int launched_ = 0;        // driver thread only
  bool suppressed_ = false; // driver thread only

  std::mutex mutex_;
  std::condition_variable done_;
  int ended_ = 0;
  int finished_ = 0;
  bool failed_ = false;
};

// --name=value flags, kept minimal on purpose.
std::string flag(int argc, char** argv, const std::string& name, const std::string& fallback) {
  std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind(prefix, 0) == 0) {
      return arg.substr(prefix.size());
    }
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help") {
      std::cout << "Usage: agora-example-copies --master=HOST:PORT [--count=N] "
                   "[--command=CMD] [--cpus=X] [--mem=MB]\n";
      return 0;
    }
  }
  std::string master = flag(argc, argv, "master", "127.0.0.1:5050");
  int count = std::atoi(flag(argc, argv, "count", "10").c_str());
  std::string command = flag(argc, argv, "command", "echo hello from $AGORA_TASK_ID");
  double cpus = std::atof(flag(argc, argv, "cpus", "0.1").c_str());
  double mem = std::atof(flag(argc, argv, "mem", "32").c_str());
  if (count < 1 || cpus <= 0 || mem <= 0) {
    std::cerr << "--count, --cpus and --mem must be positive\n";
    return 2;
  }

  // 1. Who we are. The master gives us a framework id when we subscribe.
  agora::FrameworkInfo framework;
  framework.set_name("example-copies");
  framework.set_user(std::getenv("USER") ? std::getenv("USER") : "root");
  framework.add_roles("*");

  CopiesScheduler scheduler(command, count, cpus, mem);
  agora::SchedulerDriverOptions options;
  options.masterTimeout = std::chrono::seconds(30);  // give up if no master answers
  agora::SchedulerDriver driver(&scheduler, framework, master, options);

  // 2-3. The driver runs on its own thread; callbacks start arriving.
  driver.start();
  int finished = scheduler.wait();

  // 4. Done: stopping without failover tears the framework down on the master.
  driver.stop();
  driver.join();
  if (finished < 0) {
    return 1;
  }
  std::cout << finished << " of " << count << " tasks finished" << std::endl;
  return finished == count ? 0 : 1;
}
