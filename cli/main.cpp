// agora: one binary for the whole cluster. See `agora --help`.

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <glog/logging.h>

#include "cli/commands.hpp"
#include "common/zookeeper.hpp"

namespace {

struct Verb {
  const char* name;
  const char* summary;
  int (*run)(int, const char* const*);
  bool daemon = false;  // daemons set up their own logging
};

const Verb kVerbs[] = {
    {"up", "start a local cluster (a master and --agents=N agents) in a profile",
     agora::cli::upCommand},
    {"start", "the same as up (minikube's word)", agora::cli::upCommand},
    {"status", "show whether the local cluster's processes are running",
     agora::cli::statusCommand},
    {"stop", "stop the local cluster", agora::cli::stopCommand},
    {"delete", "stop the local cluster and delete its profile", agora::cli::deleteCommand},
    {"profile", "list local cluster profiles (agora profile list)", agora::cli::profileCommand},
    {"run", "run a command as N tasks on the cluster and show their output",
     agora::cli::runCommand},
    {"batch", "run a batch job: stages of parallel tasks (agora batch run JOB.yaml)",
     agora::cli::batchCommand},
    {"dashboard", "open (or print with --url) the dashboard; --kube: the kube view",
     agora::cli::dashboardCommand},
    {"ssh", "a shell (or a command) on a node's host, through its agent",
     agora::cli::sshCommand},
    {"agents", "list the agents the master knows", agora::cli::agentsCommand},
    {"frameworks", "list the frameworks the master knows", agora::cli::frameworksCommand},
    {"tasks", "list tasks", agora::cli::tasksCommand},
    {"roles", "list roles: weights, quota, allocations; --why: why frameworks got no offers",
     agora::cli::rolesCommand},
    {"weights", "list or set role weights (agora weights set eng=2)", agora::cli::weightsCommand},
    {"quota", "get, set or remove a role's quota guarantee and limit", agora::cli::quotaCommand},
    {"reserve", "reserve an agent's free resources for a role", agora::cli::reserveCommand},
    {"maintenance", "schedule, drain and bring up machines; status",
     agora::cli::maintenanceCommand},
    {"unreserve", "give an operator's reservation back", agora::cli::unreserveCommand},
    {"credentials", "write CURVE keys for a cluster's master, agents and frameworks into a directory",
     agora::cli::credentialsCommand},
    {"image", "import, list and remove images in this machine's store; build-rootfs",
     agora::cli::imageCommand},
    {"kube", "run the kube framework (Kubernetes API server, controllers, pod scheduler)",
     agora::cli::kubeCommand, true},
    {"kube-proxy", "(run by the kube framework on each agent) the service proxy",
     agora::cli::kubeProxyCommand, true},
    {"master", "run a master", agora::cli::masterCommand, true},
    {"agent", "run an agent on this machine", agora::cli::agentCommand, true},
    {"executor", "(started by agents) the built-in executor", agora::cli::executorCommand, true},
    {"supervise", "(used by agora up --ha) keep a command running", agora::cli::superviseCommand,
     true},
};

void usage(std::ostream& out) {
  out << "Agora: a cluster kernel. Masters pool the resources of agents and offer them to\n"
         "frameworks, which run tasks on them.\n\n"
         "Usage: agora <command> [flags]   (agora <command> --help for its flags)\n\n"
         "Commands:\n";
  for (const Verb& v : kVerbs) {
    out << "  " << v.name << std::string(12 - std::strlen(v.name), ' ') << v.summary << "\n";
  }
  out << "\nStart here: `agora up`, then `agora run --command='echo hello'`, then `agora stop`.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  if (const char* supervisor = std::getenv("AGORA_SUPERVISOR_PID")) {
    // Run by `agora supervise`: SIGTERM when it dies, and not at all if it already has.
    // What this process starts in turn is not supervised.
    pid_t expected = static_cast<pid_t>(std::atoi(supervisor));
    ::unsetenv("AGORA_SUPERVISOR_PID");
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != expected) {
      std::cerr << "agora: its supervisor (pid " << expected << ") is gone; not starting\n";
      return 1;
    }
  }
  std::string verb = argv[1];
  if (verb == "--help" || verb == "-h" || verb == "help") {
    usage(std::cout);
    return 0;
  }
  if (verb == "--version" || verb == "version") {
    std::cout << "agora " << AGORA_VERSION << "\n";
    return 0;
  }
  for (const Verb& v : kVerbs) {
    if (verb == v.name) {
      if (!v.daemon) {
        // A command-line tool: warnings and errors only, and none of ZooKeeper's chatter.
        FLAGS_logtostderr = true;
        FLAGS_minloglevel = 1;
        google::InitGoogleLogging("agora");
        agora::zkSilenceClientLog();
      }
      // The verb sees "agora VERB" as argv[0].
      std::string self = std::string("agora ") + v.name;
      std::vector<const char*> args;
      args.push_back(self.c_str());
      for (int i = 2; i < argc; ++i) {
        args.push_back(argv[i]);
      }
      return v.run(static_cast<int>(args.size()), args.data());
    }
  }
  std::cerr << "agora: unknown command '" << verb << "'\n\n";
  usage(std::cerr);
  return 2;
}
