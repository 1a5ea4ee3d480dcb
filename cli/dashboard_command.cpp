// agora dashboard [--url] [--kube]: the dashboard's address, opened in a browser when there is
// one to open it in. The master serves the cluster's page at /; the kube framework serves its
// own at /dashboard/ on its API server, reading the API with the kubeconfig's token (which the
// printed address carries after '#', so it never reaches a server's log).

#include <unistd.h>

#include <iostream>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "cli/profile.hpp"
#include "common/detector.hpp"
#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/http_tokens.hpp"
#include "common/process.hpp"

namespace agora::cli {

namespace {

// The address of the profile's kube dashboard, with its token.
Result<std::string> kubeDashboard(const std::string& profileName) {
  auto profile = loadProfile(profileName);
  if (!profile) return Error(profile.error());
  for (const DaemonRecord& d : profile->daemons) {
    if (d.role != "kube") continue;
    std::string dataDir;
    for (const std::string& arg : d.args) {
      if (arg.rfind("--data_dir=", 0) == 0) dataDir = arg.substr(11);
    }
    std::string token = readFile(dataDir + "/token").value_or("");
    while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
    return "https://" + d.http + "/dashboard/" + (token.empty() ? "" : "#token=" + token);
  }
  return Error("profile '" + profileName + "' runs no kube framework (agora up starts one "
               "unless given --kube=false)");
}

}  // namespace

int dashboardCommand(int argc, const char* const* argv) {
  std::string master;
  std::string zk;
  std::string profile = "default";
  bool urlOnly = false;
  bool kube = false;
  Flags flags("agora dashboard [--url] [--kube] [--profile=NAME]",
              "Opens the dashboard in a browser (or prints its address with --url, or when there "
              "is no browser to open): the master's view of the cluster, or with --kube the kube "
              "framework's view of namespaces, deployments, pods and services.");
  flags.add(&urlOnly, "url", "Print the address instead of opening it.");
  flags.add(&kube, "kube", "The kube framework's dashboard (its address carries the token).");
  flags.add(&master, "master", "The master's HTTP address (default: the profile's master).");
  flags.add(&zk, "zk", "Follow the leader elected in ZooKeeper, e.g. zk://host:2181/agora.");
  flags.add(&profile, "profile", "The local cluster to ask when --master is not given.");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) return rc;
  std::string url;
  if (kube) {
    auto found = kubeDashboard(profile);
    if (!found) {
      std::cerr << "agora dashboard: " << found.error() << "\n";
      return 1;
    }
    url = *found;
  } else {
    auto resolved = resolveMaster(master, zk, profile);
    if (!resolved) {
      std::cerr << "agora dashboard: " << resolved.error() << "\n";
      return 1;
    }
    std::string address = *resolved;
    if (address.rfind("zk://", 0) == 0) {
      auto leader = findLeader(address, seconds(10));
      if (!leader) {
        std::cerr << "agora dashboard: " << leader.error() << "\n";
        return 1;
      }
      address = leader->ip() + ":" + std::to_string(leader->http_port());
    }
    auto health = httpGet(address, "/health", seconds(5));
    if (!health || health->status != 200) {
      std::cerr << "agora dashboard: the master at " << address
                << " does not answer (agora status says what runs)\n";
      return 1;
    }
    HttpAddress where = parseHttpAddress(address);
    url = (where.tls ? "https://" : "http://") + where.hostPort + "/";
    if (!defaultBearerToken().empty()) {
      url += "#token=" + defaultBearerToken();  // the page reads the API with it
    }
  }
  const char* display = std::getenv("DISPLAY");
  const char* wayland = std::getenv("WAYLAND_DISPLAY");
  bool canOpen = ((display != nullptr && *display != '\0') ||
                  (wayland != nullptr && *wayland != '\0')) &&
                 pathExists("/usr/bin/xdg-open");
  if (urlOnly || !canOpen) {
    std::cout << url << "\n";
    return 0;
  }
  std::cout << "Opening " << url.substr(0, url.find('#')) << " in your browser\n";
  SpawnOptions open;
  open.argv = {"/usr/bin/xdg-open", url};
  open.env = currentEnvironment();
  open.newSession = true;
  auto pid = spawnProcess(open);
  if (!pid) {
    std::cerr << "agora dashboard: " << pid.error() << "; the address is " << url << "\n";
    return 1;
  }
  return 0;
}

}  // namespace agora::cli
