// Master failover at scale: a real ZooKeeper server, two `agora master --zk` processes, N
// simulated agents (real agent state machines with the fake containerizer, each with its own
// ZeroMQ connection, spread over a few agent-host processes), and a scheduler keeping T tasks
// running; agents hold idle connections to the standby master, as `agora agent` does. Then the
// leading master is killed (SIGKILL) and the benchmark reports:
//   (a) time from the kill to a new leader elected (the ZooKeeper session's expiry and the
//       election), and how long it then took to recover the registry;
//   (b) time from the election to every agent re-registered and offers flowing to the scheduler
//       again (the master's own timestamps, from its /metrics);
//   the new leader's resident memory with the whole cluster back.
// AGORA_BENCH_NO_STANDBY_CONNECTIONS=1: agents connect to the new leader only once it leads.
//
//   agora-bench-failover --agents=10000 --tasks=100000
//
// (`--role=agents` is the agent-host process this program starts for itself.)

#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <iostream>
#include <mutex>
#include <thread>

#include <glog/logging.h>
#include <zmq.hpp>

#include "agent/agent.hpp"
#include "agent/containerizer/fake_containerizer.hpp"
#include "agora/scheduler.hpp"
#include "cli/commands.hpp"
#include "cli/local_cluster.hpp"
#include "common/curve.hpp"
#include "common/detector.hpp"
#include "common/event_loop.hpp"
#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/ids.hpp"
#include "common/logging.hpp"
#include "common/net.hpp"
#include "common/process.hpp"
#include "common/zmq_transport.hpp"
#include "common/zookeeper.hpp"

namespace agora::bench {

namespace {

using Clock = std::chrono::steady_clock;

// The wall clock in seconds, as the masters report their timestamps.
double wallSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double since(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

void raiseFileLimit() {
  struct rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = std::max<rlim_t>(limit.rlim_cur, 65536);
    limit.rlim_max = std::max(limit.rlim_max, limit.rlim_cur);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// ------------------------------------------------------------------------------------------
// The agent-host process: `count` simulated agents over `threads` event loops, each loop with a
// ZooKeeper detector of its own (shared by its agents).

int runAgentHost(const std::string& zk, int count, int first, int threads,
                 const std::string& resources, int nice, const std::string& credentialsPath) {
  raiseFileLimit();
  std::optional<Credentials> credentials;
  if (!credentialsPath.empty()) {
    auto loaded = loadCredentials(credentialsPath, CredentialsFor::kClient);
    if (!loaded) {
      std::cerr << loaded.error() << "\n";
      return 2;
    }
    credentials = *loaded;
  }
  // Before any thread starts, so that all of them inherit it.
  if (nice != 0 && ::setpriority(PRIO_PROCESS, 0, nice) != 0) {
    std::cerr << "cannot renice the agent host: " << std::strerror(errno) << "\n";
  }
  int signals = blockSignalsToFd({SIGTERM, SIGINT});
  auto url = parseZkUrl(zk);
  auto total = Resources::parse(resources);
  if (!url || !total) {
    std::cerr << "bad --zk or --agent_resources\n";
    return 2;
  }
  zmq::context_t context(2);
  context.set(zmq::ctxopt::max_sockets, 65536);
  struct Host {
    EventLoop loop;
    std::unique_ptr<ZooKeeperClient> zk;
    std::unique_ptr<ZooKeeperDetector> detector;
    std::vector<std::unique_ptr<ZmqDealer>> links;
    std::vector<std::unique_ptr<agent::FakeContainerizer>> containerizers;
    std::vector<std::unique_ptr<agent::Agent>> agents;
  };
  std::vector<std::unique_ptr<Host>> hosts;
  for (int t = 0; t < threads; ++t) {
    auto host = std::make_unique<Host>();
    host->zk = std::make_unique<ZooKeeperClient>(host->loop, url->servers, seconds(10));
    host->detector = std::make_unique<ZooKeeperDetector>(host->loop, *host->zk, url->path);
    hosts.push_back(std::move(host));
  }
  for (int i = 0; i < count; ++i) {
    Host& host = *hosts[static_cast<size_t>(i % threads)];
    auto link = std::make_unique<ZmqDealer>(context, host.loop, "A-" + uuidString(),
                                            kDefaultMaxMessageSize);
    if (credentials) {
      link->useCurve(*credentials);
    }
    auto fake = std::make_unique<agent::FakeContainerizer>(host.loop, Duration::max());
    agent::AgentOptions options;
    options.workDir = "/nonexistent";
    options.info.set_hostname("sim-" + std::to_string(first + i));
    options.info.set_address("127.0.0.1:1");
    total->copyTo(options.info.mutable_resources());
    options.executorEndpoint = "fake://";
    if (const char* jitter = std::getenv("AGORA_BENCH_JITTER_MS")) {
      options.leaderChangeJitter = milliseconds(std::atoi(jitter));
    }
    ZmqDealer* l = link.get();
    auto a = std::make_unique<agent::Agent>(
        options, host.loop, *link, [l](const std::string& e) { return l->connect(e); },
        *host.detector, *fake, *fake);
    agent::Agent* raw = a.get();
    if (std::getenv("AGORA_BENCH_NO_STANDBY_CONNECTIONS") == nullptr) {
      host.detector->onContendersChange([l](const std::vector<MasterInfo>& masters) {
        l->keepStandbyConnections(endpointsOf(masters));
      });
      a->setAlreadyConnected(
          [l](const std::string& endpoint) { return l->holdsStandbyConnection(endpoint); });
    }
    link->setHandler([raw](const std::string& from, Envelope&& e) {
      raw->receiveFromMaster(from, std::move(e));
    });
    fake->setDeliver([raw](const std::string& from, Envelope&& e) {
      raw->receiveFromExecutor(from, std::move(e));
    });
    host.loop.post([raw] { raw->start(); });
    host.links.push_back(std::move(link));
    host.containerizers.push_back(std::move(fake));
    host.agents.push_back(std::move(a));
  }
  std::vector<std::thread> running;
  for (auto& host : hosts) {
    running.emplace_back([h = host.get()] { h->loop.run(); });
  }
  // Wait for SIGTERM (the signals are blocked; the signalfd is non-blocking, so poll it).
  pollfd wait{signals, POLLIN, 0};
  while (::poll(&wait, 1, -1) < 0) {
  }
  for (auto& host : hosts) {
    host->loop.stop();
  }
  for (auto& t : running) {
    t.join();
  }
  ::_exit(0);  // skipping the orderly teardown of thousands of sockets
}

// ------------------------------------------------------------------------------------------
// The scheduler: spreads T tasks over the agents' offers, then records when offers come again.

class FailoverScheduler final : public Scheduler {
 public:
  FailoverScheduler(int tasks, int perAgent) : total_(tasks), perAgent_(perAgent) {}

  void offers(SchedulerDriver* driver, const std::vector<Offer>& offers) override {
    double now = wallSeconds();
    Filters keep;
    keep.set_refuse_seconds(3600);
    for (const Offer& offer : offers) {
      Resources available(offer.resources());
      std::vector<TaskInfo> tasks;
      while (launched_ < total_ && static_cast<int>(tasks.size()) < perAgent_ &&
             available.scalar("cpus") >= 0.1 && available.scalar("mem") >= 8) {
        TaskInfo task;
        task.set_task_id("t" + std::to_string(launched_++));
        task.set_agent_id(offer.agent_id());
        task.mutable_command()->set_value("simulated");
        *task.add_resources() = Resources::scalar("cpus", 0.1);
        *task.add_resources() = Resources::scalar("mem", 8);
        available -= Resources(task.resources());
        tasks.push_back(std::move(task));
      }
      if (tasks.empty()) {
        driver->decline(offer.id(), keep);
      } else {
        driver->launch(offer.id(), tasks, keep);
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (watching_) {
      offerTimes_.push_back(now);
    }
    changed_.notify_all();
  }

  void update(SchedulerDriver*, const TaskStatus& status) override {
    if (status.state() == TASK_RUNNING) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++running_;
      changed_.notify_all();
    }
  }

  bool waitRunning(int n, std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return running_ >= n; });
  }

  // When the first offer batch after `after` came (wall clock seconds; offers are watched
  // from markFailover()).
  std::optional<double> offerAfter(double after) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (double t : offerTimes_) {
      if (t > after) {
        return t;
      }
    }
    return std::nullopt;
  }
  void markFailover() {
    std::lock_guard<std::mutex> lock(mutex_);
    watching_ = true;
  }

  int running() {
    std::lock_guard<std::mutex> lock(mutex_);
    return running_;
  }

 private:
  const int total_;
  const int perAgent_;
  int launched_ = 0;  // driver thread

  std::mutex mutex_;
  std::condition_variable changed_;
  int running_ = 0;
  bool watching_ = false;
  std::vector<double> offerTimes_;
};

// A master's /metrics, or nothing when it does not answer.
std::optional<std::string> metrics(const std::string& address) {
  auto r = httpGet(address, "/metrics", milliseconds(500));
  if (!r || r->status != 200) {
    return std::nullopt;
  }
  return r->body;
}

std::optional<double> gauge(const std::optional<std::string>& text, const std::string& name) {
  if (!text) {
    return std::nullopt;
  }
  size_t at = text->find("\n" + name + " ");
  if (at == std::string::npos) {
    return std::nullopt;
  }
  return std::stod(text->substr(at + name.size() + 2));
}

std::optional<double> gauge(const std::string& address, const std::string& name) {
  return gauge(metrics(address), name);
}

// CPU seconds (user + system, all threads) a process has used.
double cpuSeconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) {
    return 0;
  }
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) {
      ticks += std::stod(field);
    }
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

long rssMiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6)) / 1024;
    }
  }
  return -1;
}

}  // namespace

int run(int argc, const char* const* argv) {
  std::string role = "orchestrate";
  std::string zk;
  int agents = 10000;
  int tasks = 100000;
  int hostProcesses = 4;
  int threads = 1;
  int agentNice = 10;
  int first = 0;
  int count = 0;
  std::string agentResources = "cpus:16;mem:65536";
  Duration sessionTimeout = seconds(2);
  bool curve = false;
  std::string credentials;
  Flags flags("agora-bench-failover [flags]",
              "Master failover at scale (see docs/PERF.md).");
  flags.add(&role, "role", "orchestrate (default) or agents (internal).");
  flags.add(&zk, "zk", "(agents) ZooKeeper URL.");
  flags.add(&agents, "agents", "Simulated agents.");
  flags.add(&tasks, "tasks", "Tasks kept running.");
  flags.add(&hostProcesses, "agent_processes", "Processes the simulated agents live in.");
  flags.add(&threads, "threads", "Event loops per agent process.");
  flags.add(&first, "first", "(agents) number of the first agent.");
  flags.add(&count, "count", "(agents) how many agents this process runs.");
  flags.add(&agentResources, "agent_resources", "Resources of each simulated agent.");
  flags.add(&agentNice, "agent_nice",
            "Niceness of the agent-host processes: the masters and ZooKeeper would have "
            "machines of their own, so the simulation yields the CPU to them.");
  flags.add(&sessionTimeout, "zk_session_timeout", "The masters' ZooKeeper session timeout.");
  flags.add(&curve, "curve",
            "CURVE between the agents, the scheduler and the masters, as agora up has it (keys\n"
            "made for the run).");
  flags.add(&credentials, "credentials", "(agents) the agents' CURVE credentials.");
  auto parsed = flags.parse(argc, argv);
  if (flags.helpRequested()) {
    std::cout << flags.help();
    return 0;
  }
  if (!parsed) {
    std::cerr << parsed.error() << "\n";
    return 2;
  }
  FLAGS_minloglevel = 2;
  initLogging(argv[0], "", 0);
  zkSilenceClientLog();
  if (role == "agents") {
    return runAgentHost(zk, count, first, threads, agentResources, agentNice, credentials);
  }
  raiseFileLimit();

  std::string self = selfExecutable();
  std::string agora = self.substr(0, self.rfind('/')) + "/agora";
  char dirTemplate[] = "/tmp/agora-bench-failover-XXXXXX";
  if (::mkdtemp(dirTemplate) == nullptr) {
    std::cerr << "cannot create a directory under /tmp: " << std::strerror(errno) << "\n";
    return 1;
  }
  std::string dir = dirTemplate;
  std::vector<pid_t> children;
  std::mutex childrenMutex;  // the main thread adds, the signal thread may read
  auto cleanup = [&] {
    std::lock_guard<std::mutex> lock(childrenMutex);
    for (pid_t pid : children) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (std::getenv("AGORA_BENCH_KEEP") == nullptr) {
      (void)removeAll(dir);
    } else {
      std::cerr << "kept " << dir << "\n";
    }
  };

  // Interrupted (Ctrl-C, timeout), it stops ZooKeeper, the masters and the agents it started.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGINT);
  sigaddset(&stopSignals, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
  std::thread([&cleanup, stopSignals] {
    int signal = 0;
    ::sigwait(&stopSignals, &signal);
    std::cerr << "interrupted; stopping what the benchmark started\n";
    cleanup();
    ::_exit(128 + signal);
  }).detach();

  // Starts a child whose output goes to `out`; on failure says why and cleans up.
  auto spawnChild = [&](std::vector<std::string> argv, const std::string& out) -> Result<pid_t> {
    SpawnOptions spawn;
    spawn.argv = std::move(argv);
    spawn.env = currentEnvironment();
    spawn.stdoutPath = out;
    spawn.stderrPath = out;
    auto pid = spawnProcess(spawn);
    if (!pid) {
      std::cerr << pid.error() << "\n";
      cleanup();
      return pid;
    }
    std::lock_guard<std::mutex> lock(childrenMutex);
    children.push_back(*pid);
    return pid;
  };

  auto deadline = cli::Clock::now() + std::chrono::seconds(60);
  int zkPort = 0;
  auto zkServer = cli::startZooKeeper(dir + "/zookeeper", &zkPort, deadline);
  if (!zkServer) {
    std::cerr << zkServer.error() << "\n";
    cleanup();
    return 1;
  }
  {
    std::lock_guard<std::mutex> lock(childrenMutex);
    children.push_back(zkServer->pid);
  }
  std::string zkUrl = "zk://127.0.0.1:" + std::to_string(zkPort) + "/agora";

  struct MasterProcess {
    pid_t pid;
    std::string http;
  };
  std::vector<MasterProcess> masters;
  std::string timeout = std::to_string(static_cast<int>(toSeconds(sessionTimeout) * 1000)) + "ms";
  std::string keys = dir + "/keys";
  if (curve) {
    if (Status written = cli::writeClusterCredentials(keys, {"agent", "bench"}); !written) {
      std::cerr << written.error() << "\n";
      cleanup();
      return 1;
    }
  }
  for (int i = 0; i < 2; ++i) {
    int port = freeLoopbackPort();
    std::vector<std::string> args = {agora, "master", "--port=" + std::to_string(port),
                                     "--zk=" + zkUrl, "--zk_session_timeout=" + timeout,
                                     "--log_dir=" + dir,
                                     // Its simulated agents all come from 127.0.0.1.
                                     "--registration_rate_limit=0"};
    if (curve) {
      args.push_back("--credentials=" + keys + "/master.json");
    }
    auto pid = spawnChild(args, dir + "/master-" + std::to_string(i) + ".out");
    if (!pid) {
      return 1;
    }
    masters.push_back({*pid, "127.0.0.1:" + std::to_string(port)});
    if (i == 0) {
      // The first one leads.
      while (!gauge(masters[0].http, "agora_master_elected").value_or(0)) {
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
  }

  Clock::time_point registrationStart = Clock::now();
  int perProcess = (agents + hostProcesses - 1) / hostProcesses;
  for (int p = 0; p < hostProcesses; ++p) {
    int n = std::min(perProcess, agents - p * perProcess);
    std::vector<std::string> args = {self, "--role=agents", "--zk=" + zkUrl,
                                     "--first=" + std::to_string(p * perProcess),
                                     "--count=" + std::to_string(n),
                                     "--threads=" + std::to_string(threads),
                                     "--agent_nice=" + std::to_string(agentNice),
                                     "--agent_resources=" + agentResources};
    if (curve) {
      args.push_back("--credentials=" + keys + "/agent.json");
    }
    if (!spawnChild(args, dir + "/agents-" + std::to_string(p) + ".out")) {
      return 1;
    }
  }
  while (gauge(masters[0].http, "agora_master_agents").value_or(0) < agents) {
    if (Clock::now() - registrationStart > std::chrono::seconds(300)) {
      std::cerr << "agents did not register in time\n";
      cleanup();
      return 1;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  double registration = since(registrationStart, Clock::now());

  FailoverScheduler scheduler(tasks, (tasks + agents - 1) / agents);
  FrameworkInfo framework;
  framework.set_name("bench-failover");
  // Tasks run as the benchmark's own user: agents check that the user exists.
  const passwd* me = ::getpwuid(::geteuid());
  framework.set_user(me != nullptr ? me->pw_name : "root");
  framework.set_failover_timeout(600);
  SchedulerDriverOptions driverOptions;
  if (curve) {
    driverOptions.credentials = keys + "/bench.json";
  }
  SchedulerDriver driver(&scheduler, framework, zkUrl, driverOptions);
  Clock::time_point launchStart = Clock::now();
  driver.start();
  if (!scheduler.waitRunning(tasks, std::chrono::seconds(600))) {
    std::cerr << "only " << scheduler.running() << " tasks reached RUNNING\n";
    cleanup();
    return 1;
  }
  double launch = since(launchStart, Clock::now());
  long leaderRssBefore = rssMiB(masters[0].pid);
  long standbyRssBefore = rssMiB(masters[1].pid);
  std::this_thread::sleep_for(seconds(1));  // let acknowledgements settle

  // Kill the leader; watch the standby.
  scheduler.markFailover();
  std::vector<double> cpuBefore;
  for (pid_t pid : children) {
    cpuBefore.push_back(cpuSeconds(pid));
  }
  double selfBefore = cpuSeconds(::getpid());
  // The agent-host processes come after ZooKeeper and the two masters.
  auto agentsCpu = [&] {
    double used = 0;
    for (size_t i = 3; i < children.size(); ++i) {
      used += cpuSeconds(children[i]) - cpuBefore[i];
    }
    return used;
  };
  double agentsCpuAtElection = -1;  // first seen within a scrape (100 ms) of the election
  double killed = wallSeconds();
  ::kill(masters[0].pid, SIGKILL);
  if (std::getenv("AGORA_BENCH_TRACE")) {
    // Monotonic seconds, to line up with `perf record -k mono` (perf report --time).
    std::fprintf(stderr, "  killed at %.6f (monotonic)\n",
                 toSeconds(Clock::now().time_since_epoch()));
  }
  // The standby reports when it was elected, when it served, and when the last agent in the
  // registry was back: its own clock, so a scrape delayed by a busy master does not count.
  const std::string& standby = masters[1].http;
  double elected = 0;
  double serving = 0;
  double recovered = 0;
  std::optional<double> offers;
  Clock::time_point giveUp = Clock::now() + std::chrono::seconds(300);
  while (Clock::now() < giveUp) {
    // One scrape every 100 ms: /metrics costs the master something too, and the times come
    // from its own gauges.
    auto text = metrics(standby);
    if (gauge(text, "agora_master_elected").value_or(0) == 1) {
      elected = gauge(text, "agora_master_elected_timestamp_seconds").value_or(0);
      serving = gauge(text, "agora_master_serving_timestamp_seconds").value_or(0);
      recovered = gauge(text, "agora_master_agents_recovered_timestamp_seconds").value_or(0);
      if (std::getenv("AGORA_BENCH_TRACE")) {
        std::fprintf(stderr, "  +%.2fs: %.0f agents, %.0f recovering\n", wallSeconds() - elected,
                     gauge(text, "agora_master_agents").value_or(-1),
                     gauge(text, "agora_master_agents_recovering").value_or(-1));
      }
    }
    if (elected > 0 && agentsCpuAtElection < 0) {
      agentsCpuAtElection = agentsCpu();
    }
    if (elected > 0 && !offers) {
      offers = scheduler.offerAfter(elected);
    }
    if (recovered > 0 && offers) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  if (recovered == 0 || !offers) {
    std::cerr << "the cluster did not come back within 300 s\n";
    cleanup();
    return 1;
  }
  double back = std::max(recovered, *offers);
  long leaderRss = rssMiB(masters[1].pid);
  // Where the two cores went meanwhile: the new leader, the simulated agents, the rest.
  double leaderCpu = 0;
  double agentsUsed = agentsCpu();
  double otherCpu = cpuSeconds(::getpid()) - selfBefore;
  for (size_t i = 0; i < 3; ++i) {
    double used = cpuSeconds(children[i]) - cpuBefore[i];
    if (children[i] == masters[1].pid) {
      leaderCpu = used;
    } else if (children[i] != masters[0].pid) {
      otherCpu += used;
    }
  }
  std::printf(
      "agents=%d tasks=%d session_timeout=%s: (a) kill -> new leader elected %.2f s (registry "
      "recovered %.3f s later); (b) elected -> all agents re-registered %.3f s, first offers "
      "%.3f s, both %.3f s; leader RSS %ld MiB (old leader before the kill: %ld MiB, standby "
      "%ld MiB); CPU from the kill until back: new leader %.2f s, simulated agents %.2f s "
      "(%.2f s of it before the election), ZooKeeper and this program %.2f s; setup: agents "
      "registered in %.1f s, tasks running in %.1f s\n",
      agents, tasks, formatDuration(sessionTimeout).c_str(), elected - killed, serving - elected,
      recovered - elected, *offers - elected, back - elected, leaderRss, leaderRssBefore,
      standbyRssBefore, leaderCpu, agentsUsed, agentsCpuAtElection, otherCpu, registration,
      launch);
  driver.abort();
  driver.join();
  cleanup();
  return 0;
}

}  // namespace agora::bench

int main(int argc, char** argv) { return agora::bench::run(argc, argv); }
