#include "bench/sim_cluster.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <future>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "agent/agent.hpp"
#include "agent/containerizer/fake_containerizer.hpp"
#include "common/curve.hpp"
#include "common/event_loop.hpp"
#include "common/http.hpp"
#include "common/ids.hpp"
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

template <typename T>
T onLoop(EventLoop& loop, std::function<T()> fn) {
  std::promise<T> promise;
  loop.post([&] { promise.set_value(fn()); });
  return promise.get_future().get();
}

}  // namespace

struct SimulatedCluster::Impl {
  SimulatedClusterOptions options;
  zmq::context_t context{2};
  EventLoop masterLoop;
  std::unique_ptr<ZmqRouter> router;
  HttpServer http;
  uint16_t httpPort = 0;
  std::unique_ptr<master::InMemoryRegistry> registry;
  std::unique_ptr<master::Master> master;
  std::thread masterThread;
  std::vector<std::unique_ptr<EventLoop>> agentLoops;
  std::vector<SimulatedAgent> agents;
  std::vector<std::thread> agentThreads;
  std::string schedulerKeysFile;
  double registration = 0;
  bool started = false;
};

void SimulatedClusterOptions::addFlags(Flags& flags) {
  flags.add(&agents, "agents", "Simulated agents.");
  flags.add(&agentThreads, "agent_threads", "Event loops the simulated agents share.");
  flags.add(&agentResources, "agent_resources", "Resources of each simulated agent.");
}

SimulatedCluster::SimulatedCluster(SimulatedClusterOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

Status SimulatedCluster::start() {
  Impl& s = *impl_;
  const SimulatedClusterOptions& o = s.options;
  auto resources = Resources::parse(o.agentResources);
  if (!resources) return Error(resources.error());
  // Thousands of agents, and what ZeroMQ makes for each.
  s.context.set(zmq::ctxopt::max_sockets, 65536);
  struct rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 65536) {
    limit.rlim_cur = std::min<rlim_t>(65536, limit.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }

  // The master.
  s.router = std::make_unique<ZmqRouter>(s.context, s.masterLoop, kDefaultMaxMessageSize);
  Credentials agentKeys;
  if (o.curve) {
    Credentials serverKeys;
    Credentials schedulerKeys;
    serverKeys.keys = generateCurveKeyPair();
    for (auto [c, principal] : {std::pair<Credentials*, const char*>{&agentKeys, "agent"},
                                {&schedulerKeys, "bench"}}) {
      c->principal = principal;
      c->keys = generateCurveKeyPair();
      c->serverKey = serverKeys.keys.publicKey;
      serverKeys.clients[c->keys.publicKey] = principal;
    }
    s.schedulerKeysFile = "/tmp/agora-bench-" + std::to_string(::getpid()) + ".json";
    if (Status saved = saveCredentials(s.schedulerKeysFile, schedulerKeys); !saved) return saved;
    if (Status on = s.router->useCurve(serverKeys); !on) return on;
  }
  auto endpoint = s.router->bind("tcp://127.0.0.1:*");
  if (!endpoint) return Error(endpoint.error());
  auto port = s.http.listen("127.0.0.1", 0);
  if (!port) return Error(port.error());
  s.httpPort = *port;
  master::MasterOptions options;
  options.info.set_hostname("bench");
  options.info.set_ip("127.0.0.1");
  options.info.set_endpoint(*endpoint);
  options.info.set_http_port(s.httpPort);
  s.registry = std::make_unique<master::InMemoryRegistry>(s.masterLoop);
  EventLoop& masterLoop = s.masterLoop;
  s.master = std::make_unique<master::Master>(
      options, masterLoop, *s.router,
      std::make_unique<master::HierarchicalAllocator>([&masterLoop] { return masterLoop.now(); }),
      *s.registry);
  master::Master* m = s.master.get();
  s.router->setHandler([m](const std::string& from, Envelope&& e) {
    m->receive(from, std::move(e));
  });
  master::addMasterRoutes(s.http, s.masterLoop, *m);
  s.http.serve();
  s.registry->recover([m](Result<master::RegistryState> state) { m->start(*state); });
  s.masterThread = std::thread([&masterLoop] { masterLoop.run(); });
  s.started = true;

  // The simulated agents.
  for (int i = 0; i < o.agentThreads; ++i) s.agentLoops.push_back(std::make_unique<EventLoop>());
  s.agents.resize(static_cast<size_t>(o.agents));
  MasterInfo info = onLoop<MasterInfo>(s.masterLoop, [m] { return m->info(); });
  for (int i = 0; i < o.agents; ++i) {
    EventLoop& loop = *s.agentLoops[static_cast<size_t>(i % o.agentThreads)];
    SimulatedAgent& a = s.agents[static_cast<size_t>(i)];
    a.link = std::make_unique<ZmqDealer>(s.context, loop, "A-" + uuidString(),
                                         kDefaultMaxMessageSize);
    if (o.curve) a.link->useCurve(agentKeys);
    a.detector = std::make_unique<FixedDetector>(loop, info);
    a.containerizer = std::make_unique<agent::FakeContainerizer>(loop, o.taskDuration);
    agent::AgentOptions agentOptions;
    agentOptions.workDir = "/nonexistent";  // the fake containerizer makes no sandboxes
    agentOptions.info.set_hostname("sim-" + std::to_string(i));
    agentOptions.info.set_address("127.0.0.1:1");
    resources->copyTo(agentOptions.info.mutable_resources());
    agentOptions.executorEndpoint = "fake://";
    ZmqDealer* link = a.link.get();
    a.agent = std::make_unique<agent::Agent>(
        agentOptions, loop, *a.link, [link](const std::string& e) { return link->connect(e); },
        *a.detector, *a.containerizer, *a.containerizer);
    agent::Agent* agent = a.agent.get();
    a.link->setHandler([agent](const std::string& from, Envelope&& e) {
      agent->receiveFromMaster(from, std::move(e));
    });
    a.containerizer->setDeliver([agent](const std::string& from, Envelope&& e) {
      agent->receiveFromExecutor(from, std::move(e));
    });
    loop.post([agent] { agent->start(); });
  }
  for (auto& loop : s.agentLoops) {
    s.agentThreads.emplace_back([l = loop.get()] { l->run(); });
  }
  Clock::time_point begin = Clock::now();
  while (onLoop<size_t>(s.masterLoop, [m] { return m->state()["agents"].size(); }) <
         static_cast<size_t>(o.agents)) {
    if (Clock::now() - begin > std::chrono::seconds(120)) {
      return Error("the agents did not register in 120 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  s.registration = std::chrono::duration<double>(Clock::now() - begin).count();
  return ok();
}

SimulatedCluster::~SimulatedCluster() {
  Impl& s = *impl_;
  if (!s.schedulerKeysFile.empty()) ::unlink(s.schedulerKeysFile.c_str());
  if (!s.started) return;
  for (auto& loop : s.agentLoops) loop->stop();
  for (auto& t : s.agentThreads) t.join();
  s.masterLoop.stop();
  s.masterThread.join();
  s.http.stop();
  // Sockets go before their loops and the context.
  for (auto& a : s.agents) {
    a.agent.reset();
    a.link.reset();
  }
  s.master.reset();
  s.router.reset();
}

std::string SimulatedCluster::masterAddress() const {
  return "127.0.0.1:" + std::to_string(impl_->httpPort);
}

const std::string& SimulatedCluster::schedulerCredentials() const {
  return impl_->schedulerKeysFile;
}

double SimulatedCluster::registrationSeconds() const { return impl_->registration; }

std::string SimulatedCluster::metricsText() {
  master::Master* m = impl_->master.get();
  return onLoop<std::string>(impl_->masterLoop, [m] { return m->metricsText(); });
}

double SimulatedCluster::metric(const std::string& name) {
  std::string metrics = metricsText();
  size_t at = metrics.find("\n" + name + " ");
  return at == std::string::npos ? 0.0 : std::stod(metrics.substr(at + name.size() + 2));
}

}  // namespace agora::bench
