#include "cli/local_cluster.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli/commands.hpp"
#include "common/fs.hpp"
#include "common/net.hpp"
#include "common/process.hpp"
#include "frameworks/k8s-like/proxy/kernel_rules.hpp"

namespace agora::cli {

// The last lines of a log, to show why a daemon did not come up.
std::string logTail(const std::string& path, size_t lines) {
  auto text = readFile(path);
  if (!text) {
    return "";
  }
  std::vector<std::string> all;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    all.push_back(line);
  }
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += "    " + all[i] + "\n";
  }
  return out;
}

// Is `pid` still the agora daemon we started (and not a stranger that reused its pid)?
bool isOurDaemon(int pid, const std::string& role) {
  if (!processAlive(pid)) {
    return false;
  }
  auto cmdline = readFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmdline) {
    return false;
  }
  std::string text = *cmdline;
  std::replace(text.begin(), text.end(), '\0', ' ');
  if (role == "zookeeper") {
    return text.find("org.apache.zookeeper.server") != std::string::npos;
  }
  return (text + " ").find(" " + role + " ") != std::string::npos;
}

Result<nlohmann::json> waitForInfoFile(const std::string& path, pid_t pid,
                                       const std::string& log, Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    if (auto text = readFile(path)) {
      auto j = nlohmann::json::parse(*text, nullptr, false);
      if (!j.is_discarded()) {
        return j;
      }
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return Error("it " + describeWaitStatus(status) + "; its log ends with:\n" + logTail(log, 15));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Error("it did not start in time; its log ends with:\n" + logTail(log, 15));
}

void stopDaemon(const DaemonRecord& d, Clock::duration patience) {
  if (!isOurDaemon(d.pid, d.role)) {
    return;
  }
  // An agent on SIGTERM leaves its containers running for the next agent; SIGUSR1 stops them.
  ::kill(d.pid, d.role == "agent" ? SIGUSR1 : SIGTERM);
  auto deadline = Clock::now() + patience;
  while (Clock::now() < deadline && processAlive(d.pid)) {
    ::waitpid(d.pid, nullptr, WNOHANG);  // reaps it when it is our own child
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (processAlive(d.pid)) {
    std::cerr << "  " << d.role << " (pid " << d.pid << ") did not stop; killing it\n";
    ::kill(d.pid, SIGKILL);
  }
}

void stopProfile(const Profile& profile) {
  // Batch jobs' drivers first: their jobs wait for `agora batch resume`.
  detachBatchDrivers(profile.name);
  // Then the kube framework (it fails over: its pods are the agents' to stop); agents next:
  // they stop their executors; then the masters; then ZooKeeper.
  for (const char* role : {"kube", "agent", "master", "zookeeper"}) {
    for (const DaemonRecord& d : profile.daemons) {
      if (d.role == role) {
        stopDaemon(d, std::chrono::seconds(role == std::string("agent") ? 15 : 10));
      }
    }
  }
  // The kube framework's service proxies remove their kernel rules as they stop; those killed
  // before they could leave them behind, removed here.
  kube::KernelRules::collectStale();
}

bool anyRunning(const Profile& profile) {
  for (const DaemonRecord& d : profile.daemons) {
    if (isOurDaemon(d.pid, d.role)) {
      return true;
    }
  }
  return false;
}

Result<pid_t> startDaemon(const std::vector<std::string>& args, const std::string& log) {
  SpawnOptions spawn;
  spawn.argv = args;
  spawn.env = currentEnvironment();
  spawn.stdoutPath = log;
  spawn.stderrPath = log;
  spawn.newSession = true;
  return spawnProcess(spawn);
}

namespace {

constexpr const char* kZooKeeperScript = "/usr/share/zookeeper/bin/zkServer.sh";

}  // namespace

Result<DaemonRecord> startZooKeeper(const std::string& dir, int* port, Clock::time_point deadline) {
  if (!pathExists(kZooKeeperScript)) {
    return Error("ZooKeeper is not installed (apt-get install zookeeper)");
  }
  DaemonRecord zk;
  zk.role = "zookeeper";
  zk.dir = dir;
  zk.log = dir + "/zookeeper.log";
  if (Status made = makeDirectories(dir + "/data"); !made) {
    return Error(made.error());
  }
  *port = freeLoopbackPort();
  std::string config = dir + "/zoo.cfg";
  Status written = writeFileAtomic(
      config, "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir=" + dir + "/data" +
                  "\nclientPort=" + std::to_string(*port) +
                  "\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                  "4lw.commands.whitelist=ruok,srvr\n");
  if (!written) {
    return Error(written.error());
  }
  SpawnOptions spawn;
  spawn.argv = {kZooKeeperScript, "start-foreground", config};
  spawn.env = currentEnvironment();
  spawn.env["ZOO_LOG_DIR"] = dir;
  spawn.env["ZOOCFGDIR"] = dir;
  spawn.stdoutPath = zk.log;
  spawn.stderrPath = zk.log;
  spawn.newSession = true;
  auto pid = spawnProcess(spawn);
  if (!pid) {
    return Error(pid.error());
  }
  zk.pid = *pid;
  zk.http = "127.0.0.1:" + std::to_string(*port);
  while (Clock::now() < deadline) {
    if (zooKeeperServes(*port)) {
      return zk;
    }
    int status = 0;
    if (::waitpid(*pid, &status, WNOHANG) == *pid) {
      return Error("ZooKeeper " + describeWaitStatus(status) + "; its log ends with:\n" +
                   logTail(zk.log, 15));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(*pid, SIGKILL);
  return Error("ZooKeeper did not start in time; see " + zk.log);
}

}  // namespace agora::cli
