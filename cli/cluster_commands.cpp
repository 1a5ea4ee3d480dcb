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
#include "frameworks/k8s-like/apiserver/kubeconfig.hpp"
#include "cli/daemon.hpp"
#include "cli/local_cluster.hpp"
#include "cli/profile.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/ids.hpp"
#include "common/process.hpp"

namespace agora::cli {

namespace {

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
    if (running && d.role == "master") {
      auto r = httpGet(d.http, "/state", seconds(2));
      bool answers = r && r->status == 200;
      auto j = answers ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
      health = !answers ? "not answering"
               : !j.is_discarded() && j.value("leader", false) ? "leading"
                                                                : "standing by";
      allUp &= answers;
    } else if (running && d.role == "agent") {
      auto r = httpGet(d.http, "/health", seconds(2));
      health = r && r->status == 200 ? "healthy" : "not answering";
      allUp &= r && r->status == 200;
    } else if (!running) {
      allUp = false;
    }
    std::string name = d.role == "agent" ? "agent " + std::to_string(++agentNumber) : d.role;
    std::cout << "  " << name << std::string(10 - std::min<size_t>(9, name.size()), ' ')
              << (running ? "running" : "stopped") << "  pid " << d.pid << "  "
              << (d.role == "zookeeper" ? "" : d.role == "kube" ? "https://" : "http://")
              << d.http
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
    // Its kubeconfig context goes too, as minikube's does.
    for (const DaemonRecord& d : profile->daemons) {
      if (d.role != "kube") continue;
      std::string path, context;
      for (const std::string& arg : d.args) {
        if (arg.rfind("--kubeconfig=", 0) == 0) path = arg.substr(13);
        if (arg.rfind("--context=", 0) == 0) context = arg.substr(10);
      }
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
