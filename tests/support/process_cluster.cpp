#include "tests/support/process_cluster.hpp"

#include <fcntl.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/process.hpp"

namespace agora::testing {

bool waitUntil(const std::function<bool()>& condition, Duration timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) {
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // ok: polling with a deadline
  }
}

Result<pid_t> spawnChild(const std::vector<std::string>& argv, const std::string& log,
                         const std::map<std::string, std::string>& extraEnv, int deathSignal) {
  // Everything the child needs is built before fork: it runs only system calls after it.
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  std::map<std::string, std::string> env = currentEnvironment();
  for (const auto& [k, v] : extraEnv) {
    env[k] = v;
  }
  std::vector<std::string> envStrings;
  for (const auto& [k, v] : env) {
    envStrings.push_back(k + "=" + v);
  }
  std::vector<char*> envp;
  for (std::string& e : envStrings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    return Error("fork failed");
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, deathSignal);
    if (::getppid() != parent) {
      ::_exit(1);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0) {
      ::_exit(126);
    }
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

void stopChild(pid_t pid, Duration patience, int signal) {
  if (pid <= 0) {
    return;
  }
  ::kill(pid, SIGCONT);  // in case a test stopped it
  ::kill(pid, signal);
  bool reaped = waitUntil([pid] { return ::waitpid(pid, nullptr, WNOHANG) == pid; }, patience);
  if (!reaped) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
}

CommandResult runCommand(const std::vector<std::string>& argv, Duration timeout,
                         const std::map<std::string, std::string>& extraEnv) {
  TempDir dir;
  std::string log = dir.path() + "/output";
  CommandResult result;
  auto pid = spawnChild(argv, log, extraEnv);
  if (!pid) {
    result.output = pid.error();
    return result;
  }
  int status = 0;
  bool done = waitUntil([&] { return ::waitpid(*pid, &status, WNOHANG) == *pid; }, timeout);
  if (!done) {
    ::kill(*pid, SIGKILL);
    ::waitpid(*pid, &status, 0);
  } else if (WIFEXITED(status)) {
    result.exitCode = WEXITSTATUS(status);
  }
  result.output = readFile(log).ok() ? *readFile(log) : "";
  return result;
}

ProcessCluster::ProcessCluster(ProcessClusterOptions options) : options_(std::move(options)) {}

ProcessCluster::~ProcessCluster() { stop(); }

Status ProcessCluster::startMaster(const std::vector<std::string>& portFlags) {
  std::string info = dir_.path() + "/master.json";
  (void)removeAll(info);
  std::vector<std::string> args = {AGORA_BINARY, "master", "--info_file=" + info};
  args.insert(args.end(), portFlags.begin(), portFlags.end());
  args.insert(args.end(), options_.masterFlags.begin(), options_.masterFlags.end());
  auto pid = spawnChild(args, masterLog());
  if (!pid) {
    return Error(pid.error());
  }
  masterPid_ = *pid;
  nlohmann::json masterInfo;
  bool up = waitUntil(
      [&] {
        auto text = readFile(info);
        if (!text) {
          return false;
        }
        masterInfo = nlohmann::json::parse(*text, nullptr, false);
        return !masterInfo.is_discarded();
      },
      seconds(20));
  if (!up) {
    return Error("the master did not start; see " + masterLog());
  }
  masterHttp_ = masterInfo["http"];
  masterEndpoint_ = masterInfo["endpoint"];
  return Status();
}

Status ProcessCluster::restartMaster() {
  ::kill(masterPid_, SIGKILL);
  ::waitpid(masterPid_, nullptr, 0);
  std::string httpPort = masterHttp_.substr(masterHttp_.rfind(':') + 1);
  std::string protocolPort = masterEndpoint_.substr(masterEndpoint_.rfind(':') + 1);
  return startMaster({"--port=" + httpPort, "--protocol_port=" + protocolPort});
}

Status ProcessCluster::start() {
  Status master = startMaster({"--port=0"});
  if (!master) {
    return master;
  }

  for (int i = 0; i < options_.agents; ++i) {
    std::string agentDir = dir_.path() + "/agent-" + std::to_string(i);
    std::vector<std::string> agentArgs = {AGORA_BINARY,
                                          "agent",
                                          "--master=" + masterHttp_,
                                          "--work_dir=" + agentDir,
                                          "--port=0",
                                          "--hostname=agent-" + std::to_string(i),
                                          "--resources=" + options_.agentResources,
                                          "--recovery_timeout=30secs",
                                          "--executor_shutdown_grace_period=2secs",
                                          "--info_file=" + agentDir + ".json"};
    agentArgs.insert(agentArgs.end(), options_.agentFlags.begin(), options_.agentFlags.end());
    auto agentPid = spawnChild(agentArgs, agentDir + ".log", {}, SIGUSR1);
    if (!agentPid) {
      return Error(agentPid.error());
    }
    agentPids_.push_back(*agentPid);
    agentArgs_.push_back(agentArgs);
  }
  size_t want = static_cast<size_t>(options_.agents);
  if (!waitForState([want](const nlohmann::json& s) { return s["agents"].size() == want; })) {
    return Error("the agents did not all register; see the logs in " + dir_.path());
  }
  return Status();
}

void ProcessCluster::killAgent(size_t i, int signal) {
  pid_t pid = agentPids_.at(i);
  if (pid > 0) {
    ::kill(pid, signal);
    ::waitpid(pid, nullptr, 0);
    agentPids_[i] = -1;
  }
}

Status ProcessCluster::restartAgent(size_t i) {
  killAgent(i);
  (void)removeAll(agentWorkDir(i) + ".json");  // the new agent writes it once it is up
  auto pid = spawnChild(agentArgs_.at(i), agentLog(i), {}, SIGUSR1);
  if (!pid) {
    return Error(pid.error());
  }
  agentPids_[i] = *pid;
  // Up once it has written its info file and the master lists it at its new address.
  std::string address;
  bool registered = waitUntil(
      [&] {
        if (address.empty()) {
          auto info = readFile(agentWorkDir(i) + ".json");
          auto j = nlohmann::json::parse(info.value_or(""), nullptr, false);
          address = j.is_discarded() ? "" : j.value("http", "");
          return false;
        }
        auto state = masterState();
        if (!state) {
          return false;
        }
        for (const auto& agent : (*state)["agents"]) {
          if (agent.value("address", "") == address) {
            return true;
          }
        }
        return false;
      },
      seconds(30));
  if (!registered) {
    return Error("agent " + std::to_string(i) + " did not re-register; see " + agentLog(i));
  }
  return Status();
}

void ProcessCluster::stop() {
  for (size_t i = 0; i < agentPids_.size(); ++i) {
    if (agentPids_[i] < 0 && i < agentArgs_.size()) {
      // Killed and not restarted: its executors still run. An agent takes them back to stop
      // them.
      (void)restartAgent(i);
      waitUntil([&] { return pathExists(agentWorkDir(i) + ".json"); }, seconds(10));
    }
    stopChild(agentPids_[i], seconds(15), SIGUSR1);
  }
  agentPids_.clear();
  stopChild(masterPid_);
  masterPid_ = -1;
}

Result<nlohmann::json> ProcessCluster::masterState() const {
  auto response = httpGet(masterHttp_, "/state", seconds(5));
  if (!response) {
    return Error(response.error());
  }
  auto j = nlohmann::json::parse(response->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Error("/state is not a JSON object");
  }
  // Until its election and recovery are done, a master answers with who it is and no
  // cluster; the tests' conditions read the cluster.
  if (!j.contains("agents") || !j.contains("frameworks")) {
    return Error("the master does not lead yet");
  }
  return j;
}

bool ProcessCluster::waitForState(const std::function<bool(const nlohmann::json&)>& condition,
                                  Duration timeout) const {
  return waitUntil(
      [&] {
        auto state = masterState();
        return state.ok() && condition(*state);
      },
      timeout);
}

}  // namespace agora::testing
