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
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include <glog/logging.h>
#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "agent/agent.hpp"
#include "agent/containerizer/fake_containerizer.hpp"
#include "agora/scheduler.hpp"
#include "common/curve.hpp"
#include "common/event_loop.hpp"
#include "common/flags.hpp"
#include "common/http.hpp"
#include "common/ids.hpp"
#include "common/logging.hpp"
#include "common/zmq_transport.hpp"
#include "master/allocator/hierarchical_allocator.hpp"
#include "master/http.hpp"
#include "master/master.hpp"

namespace agora::bench {

namespace {

using Clock = std::chrono::steady_clock;

// Agents in the benchmark know where the master is.
class FixedDetector final : public MasterDetector {
 public:
  FixedDetector(Loop& loop, MasterInfo info) : loop_(loop), info_(std::move(info)) {}
  void detect(std::function<void(Result<MasterInfo>)> callback) override {
    loop_.post([callback = std::move(callback), info = info_] { callback(info); });
  }

 private:
  Loop& loop_;
  MasterInfo info_;
};

struct SimulatedAgent {
  std::unique_ptr<ZmqDealer> link;
  std::unique_ptr<FixedDetector> detector;
  std::unique_ptr<agent::FakeContainerizer> containerizer;
  std::unique_ptr<agent::Agent> agent;
};

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

template <typename T>
T onLoop(EventLoop& loop, std::function<T()> fn) {
  std::promise<T> promise;
  loop.post([&] { promise.set_value(fn()); });
  return promise.get_future().get();
}

}  // namespace

int run(int argc, const char* const* argv) {
  int agents = 100;
  int tasks = 10000;
  int agentThreads = 2;
  std::string agentResources = "cpus:16;mem:65536;disk:65536";
  double taskCpus = 0.1;
  double taskMem = 32;
  Flags flags("agora-bench-launch [flags]",
              "Launch throughput of one master with simulated agents (see docs/PERF.md).");
  flags.add(&agents, "agents", "Simulated agents.");
  flags.add(&tasks, "tasks", "Tasks to launch.");
  flags.add(&agentThreads, "agent_threads", "Event loops the simulated agents share.");
  flags.add(&agentResources, "agent_resources", "Resources of each simulated agent.");
  flags.add(&taskCpus, "task_cpus", "cpus of each task.");
  flags.add(&taskMem, "task_mem", "mem of each task.");
  bool curve = false;
  flags.add(&curve, "curve",
            "CURVE on every connection, as agora up has it (keys made for the run): the master\n"
            "admits the agents' and the scheduler's keys through its ZAP handler.");
  auto parsed = flags.parse(argc, argv);
  if (flags.helpRequested()) {
    std::cout << flags.help();
    return 0;
  }
  if (!parsed || agents < 1 || tasks < 1 || agentThreads < 1) {
    std::cerr << (parsed ? "--agents, --tasks and --agent_threads must be positive"
                         : parsed.error())
              << "\n";
    return 2;
  }
  auto resources = Resources::parse(agentResources);
  if (!resources) {
    std::cerr << resources.error() << "\n";
    return 2;
  }
  FLAGS_minloglevel = 1;  // warnings and up: the benchmark's own output stays readable
  initLogging(argv[0], "", 0);

  zmq::context_t context(2);
  // A thousand agents, and what ZeroMQ makes for each.
  context.set(zmq::ctxopt::max_sockets, 65536);
  struct rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 65536) {
    limit.rlim_cur = std::min<rlim_t>(65536, limit.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }

  // The master.
  EventLoop masterLoop;
  ZmqRouter router(context, masterLoop, kDefaultMaxMessageSize);
  Credentials serverKeys;
  Credentials agentKeys;
  Credentials schedulerKeys;
  std::string schedulerKeysFile;
  if (curve) {
    serverKeys.keys = generateCurveKeyPair();
    for (auto [c, principal] : {std::pair<Credentials*, const char*>{&agentKeys, "agent"},
                                {&schedulerKeys, "bench"}}) {
      c->principal = principal;
      c->keys = generateCurveKeyPair();
      c->serverKey = serverKeys.keys.publicKey;
      serverKeys.clients[c->keys.publicKey] = principal;
    }
    schedulerKeysFile = "/tmp/agora-bench-launch-" + std::to_string(::getpid()) + ".json";
    if (Status saved = saveCredentials(schedulerKeysFile, schedulerKeys); !saved) {
      std::cerr << saved.error() << "\n";
      return 1;
    }
    if (Status on = router.useCurve(serverKeys); !on) {
      std::cerr << on.error() << "\n";
      return 1;
    }
  }
  std::string endpoint = *router.bind("tcp://127.0.0.1:*");
  HttpServer http;
  uint16_t httpPort = *http.listen("127.0.0.1", 0);
  master::MasterOptions options;
  options.info.set_hostname("bench");
  options.info.set_ip("127.0.0.1");
  options.info.set_endpoint(endpoint);
  options.info.set_http_port(httpPort);
  master::InMemoryRegistry registry(masterLoop);
  master::Master master(options, masterLoop, router,
                        std::make_unique<master::HierarchicalAllocator>(
                            [&masterLoop] { return masterLoop.now(); }),
                        registry);
  router.setHandler([&master](const std::string& from, Envelope&& e) {
    master.receive(from, std::move(e));
  });
  master::addMasterRoutes(http, masterLoop, master);
  http.serve();
  registry.recover([&](Result<master::RegistryState> state) { master.start(*state); });
  std::thread masterThread([&] { masterLoop.run(); });

  // The simulated agents.
  std::vector<std::unique_ptr<EventLoop>> agentLoops;
  for (int i = 0; i < agentThreads; ++i) {
    agentLoops.push_back(std::make_unique<EventLoop>());
  }
  std::vector<SimulatedAgent> simulated(static_cast<size_t>(agents));
  MasterInfo info = master.info();
  for (int i = 0; i < agents; ++i) {
    EventLoop& loop = *agentLoops[static_cast<size_t>(i % agentThreads)];
    SimulatedAgent& s = simulated[static_cast<size_t>(i)];
    s.link = std::make_unique<ZmqDealer>(context, loop, "A-" + uuidString(),
                                         kDefaultMaxMessageSize);
    if (curve) {
      s.link->useCurve(agentKeys);
    }
    s.detector = std::make_unique<FixedDetector>(loop, info);
    s.containerizer = std::make_unique<agent::FakeContainerizer>(loop, Duration::max());
    agent::AgentOptions agentOptions;
    agentOptions.workDir = "/nonexistent";  // the fake containerizer makes no sandboxes
    agentOptions.info.set_hostname("sim-" + std::to_string(i));
    agentOptions.info.set_address("127.0.0.1:1");
    resources->copyTo(agentOptions.info.mutable_resources());
    agentOptions.executorEndpoint = "fake://";
    ZmqDealer* link = s.link.get();
    s.agent = std::make_unique<agent::Agent>(
        agentOptions, loop, *s.link,
        [link](const std::string& e) { return link->connect(e); }, *s.detector,
        *s.containerizer, *s.containerizer);
    agent::Agent* a = s.agent.get();
    s.link->setHandler([a](const std::string& from, Envelope&& e) {
      a->receiveFromMaster(from, std::move(e));
    });
    s.containerizer->setDeliver([a](const std::string& from, Envelope&& e) {
      a->receiveFromExecutor(from, std::move(e));
    });
    loop.post([a] { a->start(); });
  }
  std::vector<std::thread> agentThreadsRunning;
  for (auto& loop : agentLoops) {
    agentThreadsRunning.emplace_back([l = loop.get()] { l->run(); });
  }

  auto registeredAgents = [&] {
    return onLoop<size_t>(masterLoop, [&] { return master.state()["agents"].size(); });
  };
  Clock::time_point registrationStart = Clock::now();
  while (registeredAgents() < static_cast<size_t>(agents)) {
    if (Clock::now() - registrationStart > std::chrono::seconds(120)) {
      std::cerr << "agents did not register in time\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double registration =
      std::chrono::duration<double>(Clock::now() - registrationStart).count();

  // The scheduler.
  int perAgent = (tasks + agents - 1) / agents;
  LaunchScheduler scheduler(tasks, perAgent, taskCpus, taskMem);
  FrameworkInfo framework;
  framework.set_name("bench-launch");
  // Tasks run as the benchmark's own user: agents check that the user exists.
  const passwd* me = ::getpwuid(::geteuid());
  framework.set_user(me != nullptr ? me->pw_name : "root");
  SchedulerDriverOptions driverOptions;
  driverOptions.credentials = schedulerKeysFile;
  SchedulerDriver driver(&scheduler, framework, "127.0.0.1:" + std::to_string(httpPort),
                         driverOptions);
  driver.start();
  bool done = scheduler.wait(std::chrono::seconds(300));
  if (!done) {
    std::cerr << "only " << scheduler.running() << " of " << tasks
              << " tasks reached RUNNING in 300 s\n";
  }

  std::string metrics = onLoop<std::string>(masterLoop, [&] { return master.metricsText(); });
  auto metric = [&](const std::string& name) {
    size_t at = metrics.find("\n" + name + " ");
    return at == std::string::npos ? 0.0 : std::stod(metrics.substr(at + name.size() + 2));
  };
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
  if (!schedulerKeysFile.empty()) {
    ::unlink(schedulerKeysFile.c_str());
  }
  for (auto& loop : agentLoops) {
    loop->stop();
  }
  for (auto& t : agentThreadsRunning) {
    t.join();
  }
  masterLoop.stop();
  masterThread.join();
  http.stop();
  // Sockets go before their loops and the context.
  for (auto& s : simulated) {
    s.agent.reset();
    s.link.reset();
  }
  return done ? 0 : 1;
}

}  // namespace agora::bench

int main(int argc, char** argv) { return agora::bench::run(argc, argv); }
