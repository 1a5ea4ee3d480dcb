// agora up / status / stop / delete / profile: a whole local cluster, minikube-style.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "cli/profile.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/ids.hpp"
#include "common/process.hpp"

namespace agora::cli {

namespace {

using Clock = std::chrono::steady_clock;

// The last lines of a log, to show why a daemon did not come up.
std::string tail(const std::string& path, size_t lines) {
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
      return Error("it " + describeWaitStatus(status) + "; its log ends with:\n" + tail(log, 15));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Error("it did not start in time; its log ends with:\n" + tail(log, 15));
}

void stopDaemon(const DaemonRecord& d, Clock::duration patience) {
  if (!isOurDaemon(d.pid, d.role)) {
    return;
  }
  ::kill(d.pid, SIGTERM);
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
  // Agents first: they stop their executors; then the master.
  for (const DaemonRecord& d : profile.daemons) {
    if (d.role == "agent") {
      stopDaemon(d, std::chrono::seconds(15));
    }
  }
  for (const DaemonRecord& d : profile.daemons) {
    if (d.role == "master") {
      stopDaemon(d, std::chrono::seconds(10));
    }
  }
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

// Parses --profile for a verb that works on an existing profile and loads it. Returns an exit
// code, or -1 to go on.
int parseProfileVerb(const std::string& verb, const std::string& summary, int argc,
                     const char* const* argv, std::string* name, Profile* profile) {
  *name = "default";
  Flags flags("agora " + verb + " [--profile=NAME]", summary);
  flags.add(name, "profile", "Name of the local cluster.");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  auto loaded = loadProfile(*name);
  if (!loaded) {
    std::cerr << "agora " << verb << ": " << loaded.error() << "\n";
    return 1;
  }
  *profile = *loaded;
  return -1;
}

}  // namespace

int upCommand(int argc, const char* const* argv) {
  std::string profileName = "default";
  int agents = 2;
  std::string ip = "127.0.0.1";
  int port = 5050;
  std::string agentResources;
  std::string containerizer = "posix";
  Duration timeout = seconds(60);
  Flags flags("agora up [flags]",
              "Starts a local cluster in the background: a master and --agents agents on this\n"
              "machine, with their work directories and logs in the profile directory\n"
              "($AGORA_HOME/profiles/<profile>, AGORA_HOME defaulting to ~/.agora). Returns\n"
              "once every agent has registered.");
  flags.add(&profileName, "profile", "Name of the local cluster.");
  flags.add(&agents, "agents", "How many agents to start.");
  flags.add(&ip, "ip", "IP address the daemons listen on.");
  flags.add(&port, "port", "The master's HTTP port (0 picks a free one).");
  flags.add(&agentResources, "agent_resources",
            "--resources for each agent (default: detected, shared by all agents).");
  flags.add(&containerizer, "containerizer", "posix, or fake for simulated tasks.");
  flags.add(&timeout, "timeout", "How long to wait for the cluster to come up.");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  if (agents < 0 || agents > 1000) {
    std::cerr << "agora up: --agents must be between 0 and 1000\n";
    return 2;
  }
  if (Status s = validateId(profileName, "profile name"); !s) {
    std::cerr << "agora up: " << s.error() << "\n";
    return 2;
  }

  if (auto existing = loadProfile(profileName); existing && anyRunning(*existing)) {
    std::cout << "Profile '" << profileName << "' is already up; master at http://"
              << existing->master()->http << " (agora status, agora stop)\n";
    return 0;
  }

  std::string self = selfExecutable();
  Profile profile;
  profile.name = profileName;
  profile.dir = profileDir(profileName);
  auto deadline = Clock::now() + timeout;

  auto fail = [&](const std::string& what) {
    std::cerr << "agora up: " << what << "\n";
    stopProfile(profile);
    return 1;
  };

  DaemonRecord master;
  master.role = "master";
  master.dir = profile.dir + "/master";
  master.log = master.dir + "/master.log";
  if (Status s = makeDirectories(master.dir); !s) {
    std::cerr << "agora up: " << s.error() << "\n";
    return 1;
  }
  (void)removeAll(master.dir + "/info.json");
  auto masterPid = startDaemon({self, "master", "--ip=" + ip, "--port=" + std::to_string(port),
                                "--info_file=" + master.dir + "/info.json"},
                               master.log);
  if (!masterPid) {
    return fail(masterPid.error());
  }
  master.pid = *masterPid;
  profile.daemons.push_back(master);
  auto masterInfo = waitForInfoFile(master.dir + "/info.json", *masterPid, master.log, deadline);
  if (!masterInfo) {
    std::string hint = masterInfo.error().find("Address already in use") != std::string::npos
                           ? "\n(port " + std::to_string(port) +
                                 " is taken: pick another with --port, or --port=0 for any)"
                           : "";
    return fail("the master did not come up: " + masterInfo.error() + hint);
  }
  profile.daemons[0].http = masterInfo->value("http", "");
  std::string masterHttp = profile.daemons[0].http;

  for (int i = 1; i <= agents; ++i) {
    DaemonRecord agent;
    agent.role = "agent";
    agent.dir = profile.dir + "/agent-" + std::to_string(i);
    agent.log = agent.dir + "/agent.log";
    if (Status s = makeDirectories(agent.dir); !s) {
      return fail(s.error());
    }
    (void)removeAll(agent.dir + "/info.json");
    std::vector<std::string> args = {self,
                                     "agent",
                                     "--master=" + masterHttp,
                                     "--work_dir=" + agent.dir + "/work",
                                     "--ip=" + ip,
                                     "--port=0",
                                     "--hostname=" + localHostname() + "-agent-" +
                                         std::to_string(i),
                                     "--containerizer=" + containerizer,
                                     "--info_file=" + agent.dir + "/info.json"};
    if (!agentResources.empty()) {
      args.push_back("--resources=" + agentResources);
    }
    auto pid = startDaemon(args, agent.log);
    if (!pid) {
      return fail(pid.error());
    }
    agent.pid = *pid;
    profile.daemons.push_back(agent);
  }
  for (size_t i = 1; i < profile.daemons.size(); ++i) {
    DaemonRecord& agent = profile.daemons[i];
    auto info = waitForInfoFile(agent.dir + "/info.json", agent.pid, agent.log, deadline);
    if (!info) {
      return fail("agent " + std::to_string(i) + " did not come up: " + info.error());
    }
    agent.http = info->value("http", "");
  }
  if (Status s = saveProfile(profile); !s) {
    return fail(s.error());
  }

  // Up means every agent has registered.
  size_t registered = 0;
  while (Clock::now() < deadline) {
    auto state = httpGet(masterHttp, "/state", seconds(2));
    if (state && state->status == 200) {
      auto j = nlohmann::json::parse(state->body, nullptr, false);
      if (!j.is_discarded()) {
        registered = j.value("agents", nlohmann::json::array()).size();
        if (registered >= static_cast<size_t>(agents)) {
          break;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (registered < static_cast<size_t>(agents)) {
    return fail(std::to_string(registered) + " of " + std::to_string(agents) +
                " agents registered in time; see the logs in " + profile.dir);
  }

  std::cout << "Agora is up (profile '" << profileName << "'):\n"
            << "  master    http://" << masterHttp << "   log " << master.log << "\n";
  for (size_t i = 1; i < profile.daemons.size(); ++i) {
    std::cout << "  agent " << i << (i < 10 ? "   " : "  ") << "http://" << profile.daemons[i].http
              << "   log " << profile.daemons[i].log << "\n";
  }
  std::cout << "\nTry:  agora run --command='echo hello from $AGORA_TASK_ID' --count=3\n"
            << "      agora agents;  agora tasks;  agora status;  agora stop\n";
  return 0;
}

int statusCommand(int argc, const char* const* argv) {
  std::string profileName;
  Profile loaded;
  int rc = parseProfileVerb("status",
                            "Shows whether the local cluster's processes are running and the "
                            "master answers.\nExits 0 when everything runs.",
                            argc, argv, &profileName, &loaded);
  if (rc >= 0) {
    return rc;
  }
  const Profile* profile = &loaded;
  bool allUp = true;
  std::cout << "Profile '" << profileName << "' (" << profile->dir << "):\n";
  int agentNumber = 0;
  for (const DaemonRecord& d : profile->daemons) {
    bool running = isOurDaemon(d.pid, d.role);
    std::string health = "";
    if (running) {
      auto r = httpGet(d.http, "/health", seconds(2));
      health = r && r->status == 200 ? "healthy" : "not answering";
      allUp &= r && r->status == 200;
    } else {
      allUp = false;
    }
    std::string name = d.role == "master" ? "master" : "agent " + std::to_string(++agentNumber);
    std::cout << "  " << name << std::string(10 - std::min<size_t>(9, name.size()), ' ')
              << (running ? "running" : "stopped") << "  pid " << d.pid << "  http://" << d.http
              << (health.empty() ? "" : "  " + health) << "\n";
  }
  return allUp ? 0 : 1;
}

int stopCommand(int argc, const char* const* argv) {
  std::string profileName;
  Profile profile;
  int rc = parseProfileVerb(
      "stop", "Stops the local cluster: agents first (they stop their tasks), then the master.",
      argc, argv, &profileName, &profile);
  if (rc >= 0) {
    return rc;
  }
  stopProfile(profile);
  std::cout << "Stopped profile '" << profileName << "'.\n";
  return 0;
}

int deleteCommand(int argc, const char* const* argv) {
  std::string profileName = "default";
  Flags flags("agora delete [--profile=NAME]",
              "Stops the local cluster and deletes its profile directory (work dirs and logs).");
  flags.add(&profileName, "profile", "Name of the local cluster.");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  if (Status s = validateId(profileName, "profile name"); !s) {
    std::cerr << "agora delete: " << s.error() << "\n";
    return 2;
  }
  if (auto profile = loadProfile(profileName)) {
    stopProfile(*profile);
  }
  std::string dir = profileDir(profileName);
  if (!pathExists(dir)) {
    std::cerr << "agora delete: no profile '" << profileName << "'\n";
    return 1;
  }
  if (Status s = removeAll(dir); !s) {
    std::cerr << "agora delete: " << s.error() << "\n";
    return 1;
  }
  std::cout << "Deleted profile '" << profileName << "'.\n";
  return 0;
}

int profileCommand(int argc, const char* const* argv) {
  Flags flags("agora profile list", "Lists the local cluster profiles and whether they run.");
  std::vector<std::string> words;
  int rc = parseFlags(flags, argc, argv, &words);
  if (rc >= 0) {
    return rc;
  }
  if (words.size() != 1 || words[0] != "list") {
    std::cerr << "agora profile: expected 'agora profile list'\n";
    return 2;
  }
  for (const std::string& name : listProfiles()) {
    auto p = loadProfile(name);
    bool running = p && anyRunning(*p);
    std::cout << name << "\t" << (running ? "running" : "stopped") << "\t"
              << (p && p->master() ? "http://" + p->master()->http : "") << "\n";
  }
  return 0;
}

}  // namespace agora::cli
