#include "tests/support/ha_cluster.hpp"

#include <signal.h>
#include <unistd.h>

#include <sstream>

#include "common/fs.hpp"
#include "common/net.hpp"
#include "common/http.hpp"
#include "tests/support/process_cluster.hpp"

namespace agora::testing {

namespace {

Result<nlohmann::json> stateOf(const std::string& address) {
  auto response = httpGet(address, "/state", seconds(2));
  if (!response || response->status != 200) {
    return Error("no answer");
  }
  auto j = nlohmann::json::parse(response->body, nullptr, false);
  if (j.is_discarded()) {
    return Error("not JSON");
  }
  return j;
}

}  // namespace

HaCluster::HaCluster(HaClusterOptions options) : options_(std::move(options)) {}

HaCluster::~HaCluster() { stop(); }

Status HaCluster::start() {
  Status zk = zookeeper_.start();
  if (!zk) {
    return zk;
  }
  std::string timeout = std::to_string(static_cast<int>(toSeconds(options_.sessionTimeout) * 1000)) + "ms";
  for (int i = 0; i < options_.masters; ++i) {
    Master m;
    m.httpPort = freeLoopbackPort();
    m.protocolPort = freeLoopbackPort();
    std::vector<std::string> args = {AGORA_BINARY,
                                     "supervise",
                                     "--",
                                     AGORA_BINARY,
                                     "master",
                                     "--ip=" + options_.masterIp,
                                     "--port=" + std::to_string(m.httpPort),
                                     "--protocol_port=" + std::to_string(m.protocolPort),
                                     "--zk=" + zkUrl(),
                                     "--zk_session_timeout=" + timeout};
    args.insert(args.end(), options_.masterFlags.begin(), options_.masterFlags.end());
    auto pid = spawnChild(args, dir_.path() + "/master-" + std::to_string(i) + ".log");
    if (!pid) {
      return Error(pid.error());
    }
    m.supervisor = *pid;
    masters_.push_back(m);
  }
  for (int i = 0; i < options_.agents; ++i) {
    std::string agentDir = dir_.path() + "/agent-" + std::to_string(i);
    std::vector<std::string> args = {AGORA_BINARY,
                                     "agent",
                                     "--master=" + zkUrl(),
                                     "--zk_session_timeout=" + timeout,
                                     "--work_dir=" + agentDir,
                                     "--port=0",
                                     "--hostname=agent-" + std::to_string(i),
                                     "--resources=" + options_.agentResources,
                                     "--recovery_timeout=60secs",
                                     "--executor_shutdown_grace_period=2secs"};
    args.insert(args.end(), options_.agentFlags.begin(), options_.agentFlags.end());
    auto pid = spawnChild(args, agentDir + ".log", {}, SIGUSR1);
    if (!pid) {
      return Error(pid.error());
    }
    agents_.push_back(*pid);
  }
  size_t want = static_cast<size_t>(options_.agents);
  if (!waitForLeaderState([want](const nlohmann::json& s) { return s["agents"].size() == want; },
                          seconds(60))) {
    return Error("no leader with every agent registered; see the logs in " + dir_.path());
  }
  return Status();
}

void HaCluster::stop() {
  for (pid_t pid : agents_) {
    stopChild(pid, seconds(15), SIGUSR1);
  }
  agents_.clear();
  for (int i = 0; i < masters(); ++i) {
    pid_t child = masterProcess(i);
    if (child > 0) {
      ::kill(child, SIGCONT);  // a test may have paused it
    }
    stopChild(masters_[i].supervisor);
  }
  masters_.clear();
  zookeeper_.stop();
}

pid_t HaCluster::masterProcess(int i) const {
  pid_t supervisor = masters_[i].supervisor;
  auto children = readFile("/proc/" + std::to_string(supervisor) + "/task/" +
                           std::to_string(supervisor) + "/children");
  if (!children) {
    return -1;
  }
  std::istringstream in(*children);
  pid_t child = -1;
  in >> child;
  return in ? child : -1;
}

int HaCluster::leader() const {
  for (int i = 0; i < masters(); ++i) {
    auto state = stateOf(masterHttp(i));
    if (state && state->value("leader", false)) {
      return i;
    }
  }
  return -1;
}

int HaCluster::countLeaders() const {
  int n = 0;
  for (int i = 0; i < masters(); ++i) {
    auto state = stateOf(masterHttp(i));
    n += state && state->value("leader", false) ? 1 : 0;
  }
  return n;
}

Result<nlohmann::json> HaCluster::leaderState() const {
  int i = leader();
  if (i < 0) {
    return Error("no leader");
  }
  return stateOf(masterHttp(i));
}

bool HaCluster::waitForLeaderState(const std::function<bool(const nlohmann::json&)>& condition,
                                   Duration timeout) const {
  return waitUntil(
      [&] {
        auto state = leaderState();
        return state.ok() && condition(*state);
      },
      timeout);
}

}  // namespace agora::testing
