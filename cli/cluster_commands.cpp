// agora up / status / stop / delete / profile: a whole local cluster, minikube-style.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "cli/local_cluster.hpp"
#include "cli/profile.hpp"
#include "cli/table.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/ids.hpp"
#include "common/process.hpp"
#include "frameworks/k8s-like/apiserver/kubeconfig.hpp"
#include "frameworks/k8s-like/proxy/api_client.hpp"

namespace agora::cli {


// What `agora status` found, as its exit code: a bit for each part that is down (as minikube
// does), so scripts can tell which.
enum StatusBits {
  kMasterDown = 1,
  kAgentDown = 2,
  kKubeDown = 4,
  kZooKeeperDown = 8,
  kNoProfile = 64,
};

namespace {

// The kube API's /healthz over HTTPS, verified against the profile's CA.
bool kubeAnswers(const DaemonRecord& d) {
  kube::ApiClientOptions options;
  options.server = "https://" + d.http;
  options.caPem = readFile(d.dir + "/data/pki/ca.crt").value_or("");
  options.timeout = seconds(2);
  auto client = kube::ApiClient::make(options);
  if (!client) return false;
  auto answer = (*client)->get("/healthz");
  return answer && *answer == "ok";
}

std::string argValue(const DaemonRecord& d, const std::string& flag) {
  for (const std::string& arg : d.args) {
    if (arg.rfind(flag, 0) == 0) return arg.substr(flag.size());
  }
  return "";
}

}  // namespace

int statusCommand(int argc, const char* const* argv) {
  std::string profileName = "default";
  Flags flags("agora status [--profile=NAME]",
              "Shows the local cluster's parts: host, masters, agents, the kube API and its\n"
              "kubeconfig. Exits 0 when everything runs; otherwise the sum of 1 (a master is\n"
              "down), 2 (an agent is down), 4 (the kube API is down), 8 (ZooKeeper is down);\n"
              "64 when there is no such profile.");
  flags.add(&profileName, "profile", "Name of the local cluster.");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  auto loaded = loadProfile(profileName);
  if (!loaded) {
    std::cerr << "agora status: " << loaded.error() << "\n";
    return kNoProfile;
  }
  const Profile* profile = &*loaded;
  useBearerToken(true, profileName);
  int down = 0;
  char host[256] = "";
  ::gethostname(host, sizeof(host) - 1);
  std::cout << "Profile '" << profileName << "' (" << profile->dir << ")\n";
  std::cout << "  host      " << host << "\n";
  int agentNumber = 0;
  for (const DaemonRecord& d : profile->daemons) {
    bool running = isOurDaemon(d.pid, d.role);
    std::string health;
    bool healthy = running;
    if (running && d.role == "master") {
      auto r = httpGet(d.http, "/state", seconds(2));
      bool answers = r && r->status == 200;
      auto j = answers ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
      health = !answers ? "not answering"
               : !j.is_discarded() && j.value("leader", false) ? "leading"
                                                                : "standing by";
      healthy = answers;
    } else if (running && d.role == "agent") {
      auto r = httpGet(d.http, "/health", seconds(2));
      healthy = r && r->status == 200;
      health = healthy ? "healthy" : "not answering";
    } else if (running && d.role == "kube") {
      healthy = kubeAnswers(d);
      health = healthy ? "answering" : "not answering";
    }
    if (!healthy) {
      down |= d.role == "master" ? kMasterDown
              : d.role == "agent" ? kAgentDown
              : d.role == "kube"  ? kKubeDown
                                  : kZooKeeperDown;
    }
    std::string name = d.role == "agent" ? "agent " + std::to_string(++agentNumber) : d.role;
    std::cout << "  " << name << std::string(10 - std::min<size_t>(9, name.size()), ' ')
              << (running ? "running" : "stopped") << "  pid " << d.pid << "  "
              << daemonUrl(*profile, d)
              << (health.empty() ? "" : "  " + health) << "\n";
    if (d.role == "kube") {
      std::string kubeconfig = argValue(d, "--kubeconfig=");
      if (!kubeconfig.empty()) {
        std::cout << "  kubeconfig " << kubeconfig << " (context " << argValue(d, "--context=")
                  << ")\n";
      }
    }
  }
  return down;
}

int stopCommand(int argc, const char* const* argv) {
  std::string profileName = "default";
  bool all = false;
  Flags flags("agora stop [--profile=NAME] [--all]",
              "Stops the local cluster: agents first (they stop their tasks), then the master.");
  flags.add(&profileName, "profile", "Name of the local cluster.");
  flags.add(&all, "all", "Stop every profile.");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  std::vector<std::string> names = all ? listProfiles() : std::vector<std::string>{profileName};
  int failed = 0;
  for (const std::string& name : names) {
    auto profile = loadProfile(name);
    if (!profile) {
      std::cerr << "agora stop: " << profile.error() << "\n";
      failed = 1;
      continue;
    }
    std::cout << "Stopping profile '" << name << "'...\n" << std::flush;
    stopProfile(*profile);
    std::cout << "Stopped profile '" << name << "'.\n";
  }
  return failed;
}

namespace {

// Stops a profile and removes its directory and its kubeconfig context.
int deleteProfile(const std::string& profileName) {
  if (auto profile = loadProfile(profileName)) {
    std::cout << "Stopping profile '" << profileName << "'...\n" << std::flush;
    stopProfile(*profile);
    // Its kubeconfig context goes too, as minikube's does.
    for (const DaemonRecord& d : profile->daemons) {
      if (d.role != "kube") continue;
      std::string path = argValue(d, "--kubeconfig=");
      std::string context = argValue(d, "--context=");
      if (!path.empty() && !context.empty()) {
        Status removed = kube::removeFromKubeconfig(path, context);
        if (!removed) std::cerr << "agora delete: kubeconfig: " << removed.error() << "\n";
      }
    }
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

}  // namespace

int deleteCommand(int argc, const char* const* argv) {
  std::string profileName = "default";
  bool all = false;
  bool purge = false;
  Flags flags("agora delete [--profile=NAME] [--all [--purge]]",
              "Stops the local cluster and deletes its profile directory (work dirs and logs).");
  flags.add(&profileName, "profile", "Name of the local cluster.");
  flags.add(&all, "all", "Delete every profile.");
  flags.add(&purge, "purge",
            "With --all: remove all of $AGORA_HOME too (the image store included).");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  if (purge && !all) {
    std::cerr << "agora delete: --purge goes with --all\n";
    return 2;
  }
  if (!all) {
    if (Status s = validateId(profileName, "profile name"); !s) {
      std::cerr << "agora delete: " << s.error() << "\n";
      return 2;
    }
    return deleteProfile(profileName);
  }
  int failed = 0;
  for (const std::string& name : listProfiles()) failed |= deleteProfile(name);
  if (purge && failed == 0 && pathExists(agoraHome())) {
    if (Status s = removeAll(agoraHome()); !s) {
      std::cerr << "agora delete: " << s.error() << "\n";
      return 1;
    }
    std::cout << "Removed " << agoraHome() << ".\n";
  }
  return failed;
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
  // The active profile: the one the other verbs use without --profile.
  const char* env = std::getenv("AGORA_PROFILE");
  std::string active = env != nullptr && *env != '\0' ? env : "default";
  Table table({"PROFILE", "STATUS", "AGENTS", "MASTER", "KUBE API", "ACTIVE"});
  for (const std::string& name : listProfiles()) {
    auto p = loadProfile(name);
    int agents = 0;
    int running = 0;
    std::string kube;
    if (p) {
      for (const DaemonRecord& d : p->daemons) {
        bool up = isOurDaemon(d.pid, d.role);
        running += up ? 1 : 0;
        if (d.role == "agent") ++agents;
        if (d.role == "kube") kube = "https://" + d.http;
      }
    }
    std::string status = !p ? "unreadable"
                         : running == 0 ? "stopped"
                         : running == static_cast<int>(p->daemons.size()) ? "running"
                                                                          : "degraded";
    table.add({name, status, std::to_string(agents),
               p && p->master() ? daemonUrl(*p, *p->master()) : "", kube.empty() ? "-" : kube,
               name == active ? "*" : ""});
  }
  table.print(std::cout);
  return 0;
}

}  // namespace agora::cli
