// agora up: a local cluster, minikube-style. A master (or, with --ha, a ZooKeeper server and
// three masters, each kept running by `agora supervise`) and --agents agents.

#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "cli/local_cluster.hpp"
#include "cli/profile.hpp"
#include "common/detector.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/http_tokens.hpp"
#include "common/ids.hpp"
#include "common/net.hpp"
#include "common/process.hpp"
#include "frameworks/k8s-like/apiserver/kubeconfig.hpp"
#include "isolators/cgroups.hpp"

namespace agora::cli {

namespace {

// Waits until the leading master lists `agents` agents; returns how many it listed.
size_t waitForAgents(const std::string& master, size_t agents, Clock::time_point deadline) {
  size_t registered = 0;
  while (Clock::now() < deadline) {
    std::string http = master;
    if (master.rfind("zk://", 0) == 0) {
      auto leader = findLeader(master, seconds(2));
      http = leader ? leader->ip() + ":" + std::to_string(leader->http_port()) : "";
    }
    auto state = http.empty() ? Result<HttpResponse>(Error("no leader")) : httpGet(http, "/state", seconds(2));
    if (state && state->status == 200) {
      auto j = nlohmann::json::parse(state->body, nullptr, false);
      if (!j.is_discarded() && j.value("leader", false)) {
        registered = j.value("agents", nlohmann::json::array()).size();
        if (registered >= agents) {
          return registered;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return registered;
}

// Starts again, with the flags they were started with, the agents of a running profile whose
// process has gone; each takes back the tasks its predecessor left running.
Status restartDeadAgents(Profile& profile, Duration timeout) {
  auto deadline = Clock::now() + timeout;
  bool changed = false;
  int number = 0;
  for (DaemonRecord& agent : profile.daemons) {
    if (agent.role != "agent" && agent.role != "kube") {
      continue;
    }
    ++number;
    if (isOurDaemon(agent.pid, agent.role) || agent.args.empty()) {
      continue;
    }
    (void)removeAll(agent.dir + "/info.json");
    auto pid = startDaemon(agent.args, agent.log);
    if (!pid) {
      return Error("agent " + std::to_string(number) + ": " + pid.error());
    }
    auto info = waitForInfoFile(agent.dir + "/info.json", *pid, agent.log, deadline);
    if (!info) {
      return Error("agent " + std::to_string(number) + " did not come up: " + info.error());
    }
    agent.pid = *pid;
    if (agent.role == "agent") {
      agent.http = info->value("http", "");
    }
    changed = true;
    std::cout << "Restarted " << (agent.role == "kube" ? "kube" : "agent " + std::to_string(number))
              << " (" << daemonUrl(profile, agent)
              << "); it takes back the tasks it left running\n";
  }
  return changed ? saveProfile(profile) : Status();
}

// The profile's keys: the master's, and one key pair for each principal of the cluster
// (agents, the kube framework, the operator's CLI), each pinning the master's public key; and
// ACLs in which only agents register agents.
Status writeProfileCredentials(const std::string& dir, const std::string& ip) {
  if (Status written = writeClusterCredentials(dir, {"agent", "kube", "operator"}); !written) {
    return written;
  }
  // TLS for the master's and agents' HTTP APIs: one serving certificate for the daemons of
  // this machine, and the CA in every client's file (and the profile, for the CLI).
  if (Status written = writeClusterTls(dir, {ip, "127.0.0.1", "::1", "localhost", localHostname()},
                                       {"agent", "kube", "operator"}, {});
      !written) {
    return written;
  }
  // HTTP bearer tokens: the operator's and kube's (admin), the master's (for what it relays to
  // agents), and one that only reads (for a monitoring system, say).
  nlohmann::json tokens = nlohmann::json::array();
  for (auto [principal, scope] : {std::pair<const char*, const char*>{"operator", "admin"},
                                  {"kube", "admin"},
                                  {"master", "admin"},
                                  {"reader", "read"}}) {
    std::string token = generateToken();
    tokens.push_back({{"token", token}, {"principal", principal}, {"scope", scope}});
    if (Status saved = writeFileAtomic(dir + "/" + principal + ".token", token + "\n", 0600);
        !saved) {
      return saved;
    }
  }
  if (Status saved = writeFileAtomic(dir + "/tokens.json",
                                     nlohmann::json{{"tokens", tokens}}.dump(2) + "\n", 0600);
      !saved) {
    return saved;
  }
  return writeFileAtomic(dir + "/acls.yaml", R"(# Who may do what on this cluster (docs/SECURITY.md), written by agora up. A request no
# rule allows is refused. Principals are the keys' names in master.json; edit, then send the
# masters SIGHUP (agora status shows their pids) and they read it again.
register_agents:
  - principals: [agent]
register_frameworks:
  - principals: [kube, operator]
    roles: [ANY]
run_tasks:
  - principals: [kube, operator]
    users: [ANY]
reserve_resources:
  - principals: [kube, operator]
create_volumes:
  - principals: [kube, operator]
# The HTTP API, by the principal of the bearer token (tokens.json: operator, kube and master
# are admin tokens, reader a read-only one). Agents serve sandboxes and commands to the master
# (relaying the operator's) and kube only.
set_quota:
  - principals: [operator]
set_weights:
  - principals: [operator]
drain_agents:
  - principals: [operator]
view_state:
  - principals: [operator, kube, reader]
)");
}

}  // namespace

int upCommand(int argc, const char* const* argv) {
  std::string profileName = "default";
  int agents = 2;
  std::string ip = "127.0.0.1";
  int port = 5050;
  std::string agentResources;
  std::string containerizer = "posix";
  bool ha = false;
  int masters = 3;
  Duration timeout = seconds(60);
  bool kube = true;
  int kubePort = 6443;
  std::string kubeconfig = kube::defaultKubeconfigPath();
  std::string kubeContext;
  std::string kubeServiceCidr;
  std::string kubePodCidr;
  std::string kubeLbPool;
  std::string kubeNodePorts;
  Flags flags("agora up [flags]",
              "Starts a local cluster in the background: a master and --agents agents on this\n"
              "machine (with --ha: a ZooKeeper server and --masters masters that elect a leader),\n"
              "with their work directories and logs in the profile directory\n"
              "($AGORA_HOME/profiles/<profile>, AGORA_HOME defaulting to ~/.agora). Returns\n"
              "once every agent has registered.");
  flags.add(&profileName, "profile", "Name of the local cluster.");
  flags.add(&agents, "agents", "How many agents to start.");
  flags.add(&ip, "ip", "IP address the daemons listen on.");
  flags.add(&port, "port", "The master's HTTP port (0 picks a free one; --ha picks free ones).");
  flags.add(&agentResources, "agent_resources",
            "--resources for each agent (default: detected, shared by all agents).");
  flags.add(&containerizer, "containerizer", "posix, or fake for simulated tasks.");
  std::string isolation = "auto";
  flags.add(&isolation, "isolation",
            "The agents' --isolation. auto: cgroups (cpu, mem, pids) and pid, uts and ipc "
            "namespaces when running as root on a machine with cgroups; none: plain processes.");
  bool authenticate = true;
  flags.add(&authenticate, "authenticate",
            "Generate CURVE keys for the master, agents, kube and the CLI (and ACLs) into the\n"
            "profile: the protocol port is encrypted and admits only them. --noauthenticate\n"
            "for an open cluster.");
  flags.add(&ha, "ha", "High availability: ZooKeeper and several masters, one elected leader.");
  flags.add(&masters, "masters", "With --ha: how many masters.");
  flags.add(&timeout, "timeout", "How long to wait for the cluster to come up.");
  flags.add(&kube, "kube",
            "Start the kube framework too (a Kubernetes API server for kubectl) and write its\n"
            "context into --kubeconfig, made current.");
  std::string kubeUsers;
  flags.add(&kubeUsers, "kube_users",
            "The kube framework's --users: more API users (tokens) and their namespaces' roles.");
  flags.add(&kubePort, "kube_port", "The kube API server's port on --ip (0 picks a free one).");
  flags.add(&kubeconfig, "kubeconfig", "The kubeconfig to write the kube context into.");
  flags.add(&kubeContext, "kube_context",
            "Name of the kubeconfig context (default: agora, or agora-<profile>).");
  flags.add(&kubeServiceCidr, "kube_service_cidr",
            "The kube framework's --service_cidr (default 127.96.0.0/16). Two clusters running\n"
            "on one machine need different ranges, as they need different ports.");
  flags.add(&kubePodCidr, "kube_pod_cidr", "The kube framework's --pod_cidr (default 127.98.0.0/16).");
  flags.add(&kubeLbPool, "kube_lb_pool",
            "The kube framework's --lb_address_pool (default 127.97.0.0/16).");
  flags.add(&kubeNodePorts, "kube_node_port_range",
            "The kube framework's --service_node_port_range (default 30000-32767).");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  if (agents < 0 || agents > 1000) {
    std::cerr << "agora up: --agents must be between 0 and 1000\n";
    return 2;
  }
  if (masters < 1 || masters > 9) {
    std::cerr << "agora up: --masters must be between 1 and 9\n";
    return 2;
  }
  if (Status s = validateId(profileName, "profile name"); !s) {
    std::cerr << "agora up: " << s.error() << "\n";
    return 2;
  }
  useBearerToken(true, profileName);  // a cluster that is up already: its token
  if (auto existing = loadProfile(profileName); existing && anyRunning(*existing)) {
    // Agents that died (or were stopped alone) start again; each takes back its tasks.
    if (Status restarted = restartDeadAgents(*existing, timeout); !restarted) {
      std::cerr << "agora up: " << restarted.error() << "\n";
      return 1;
    }
    std::cout << "Profile '" << profileName << "' is up"
              << (existing->zk.empty() ? "; master at " + daemonUrl(*existing, *existing->master())
                                       : "; masters elected through " + existing->zk)
              << " (agora status, agora stop)\n";
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

  std::string masterAddress;  // what agents and the CLI are given
  std::string keys = credentialsDir(profileName);
  std::vector<std::string> masterSecurity;
  if (authenticate) {
    if (Status written = writeProfileCredentials(keys, ip); !written) {
      return fail("cannot write the profile's credentials: " + written.error());
    }
    masterSecurity = {"--credentials=" + keys + "/master.json", "--acls=" + keys + "/acls.yaml",
                      "--http_credentials=" + keys + "/tokens.json",
                      "--http_token_file=" + keys + "/master.token",
                      "--tls_cert=" + keys + "/http.crt", "--tls_key=" + keys + "/http.key",
                      "--tls_client_ca=" + keys + "/http-ca.crt",
                      "--tls_ca=" + keys + "/http-ca.crt"};
    // agora up's own requests (is every agent registered?) carry the operator's token, over
    // TLS.
    useBearerToken(true, profileName);
  } else {
    (void)removeAll(keys);
    setDefaultBearerToken("");
    setDefaultHttpTls(std::nullopt);
  }
  if (ha) {
    int zkPort = 0;
    auto zk = startZooKeeper(profile.dir + "/zookeeper", &zkPort, deadline);
    if (!zk) {
      return fail(zk.error());
    }
    profile.daemons.push_back(*zk);
    profile.zk = "zk://127.0.0.1:" + std::to_string(zkPort) + "/agora";
    masterAddress = profile.zk;
    for (int i = 1; i <= masters; ++i) {
      DaemonRecord master;
      master.role = "master";
      master.dir = profile.dir + "/master-" + std::to_string(i);
      master.log = master.dir + "/master.log";
      if (Status s = makeDirectories(master.dir); !s) {
        return fail(s.error());
      }
      // Fixed ports, so that a restarted master is where it was.
      int httpPort = freeLoopbackPort();
      int protocolPort = freeLoopbackPort();
      master.http = ip + ":" + std::to_string(httpPort);
      std::vector<std::string> args = {self, "supervise", "--", self, "master", "--ip=" + ip,
                                       "--port=" + std::to_string(httpPort),
                                       "--protocol_port=" + std::to_string(protocolPort),
                                       "--zk=" + profile.zk, "--zk_session_timeout=5secs",
                                       "--agent_reregister_timeout=2mins"};
      args.insert(args.end(), masterSecurity.begin(), masterSecurity.end());
      auto pid = startDaemon(args, master.log);
      if (!pid) {
        return fail(pid.error());
      }
      master.pid = *pid;
      profile.daemons.push_back(master);
    }
  } else {
    DaemonRecord master;
    master.role = "master";
    master.dir = profile.dir + "/master";
    master.log = master.dir + "/master.log";
    if (Status s = makeDirectories(master.dir); !s) {
      return fail(s.error());
    }
    (void)removeAll(master.dir + "/info.json");
    std::vector<std::string> args = {self, "master", "--ip=" + ip, "--port=" + std::to_string(port),
                                     "--work_dir=" + master.dir,
                                     "--info_file=" + master.dir + "/info.json"};
    args.insert(args.end(), masterSecurity.begin(), masterSecurity.end());
    auto pid = startDaemon(args, master.log);
    if (!pid) {
      return fail(pid.error());
    }
    master.pid = *pid;
    profile.daemons.push_back(master);
    auto info = waitForInfoFile(master.dir + "/info.json", *pid, master.log, deadline);
    if (!info) {
      std::string hint = info.error().find("Address already in use") != std::string::npos
                             ? "\n(port " + std::to_string(port) +
                                   " is taken: pick another with --port, or --port=0 for any)"
                             : "";
      return fail("the master did not come up: " + info.error() + hint);
    }
    profile.daemons.back().http = info->value("http", "");
    masterAddress = profile.daemons.back().http;
  }

  // Isolated containers where the machine allows them; plain processes, said so, where not.
  std::string isolationFlag;
  if (containerizer == "posix" && isolation == "auto") {
    auto layout = cgroups::detectLayout();
    if (::geteuid() != 0) {
      std::cout << "Tasks run as plain processes (no cgroups or namespaces): not running as "
                   "root.\n";
    } else if (!layout) {
      std::cout << "Tasks run as plain processes: " << layout.error() << "\n";
    } else {
      // GPUs when the machine has NVIDIA's driver (none, and it says so in the log, when not).
      isolationFlag = "cgroups/cpu,cgroups/mem,cgroups/pids,cgroups/devices,namespaces/pid,"
                      "namespaces/mount,namespaces/uts,namespaces/ipc,gpu/nvidia";
    }
  } else if (containerizer == "posix" && isolation != "none" && isolation != "auto") {
    isolationFlag = isolation;
  }

  size_t firstAgent = profile.daemons.size();
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
                                     "--master=" + masterAddress,
                                     "--work_dir=" + agent.dir + "/work",
                                     "--ip=" + ip,
                                     "--port=0",
                                     "--hostname=" + localHostname() + "-agent-" +
                                         std::to_string(i),
                                     "--containerizer=" + containerizer,
                                     "--image_store=" + defaultImageStore(),
                                     "--allow_host_exec",
                                     "--info_file=" + agent.dir + "/info.json"};
    if (ha) {
      args.push_back("--zk_session_timeout=5secs");
    }
    if (authenticate) {
      args.push_back("--credentials=" + keys + "/agent.json");
      args.push_back("--http_credentials=" + keys + "/tokens.json");
      args.push_back("--tls_cert=" + keys + "/http.crt");
      args.push_back("--tls_key=" + keys + "/http.key");
      args.push_back("--tls_client_ca=" + keys + "/http-ca.crt");
    }
    if (!agentResources.empty()) {
      args.push_back("--resources=" + agentResources);
    }
    if (!isolationFlag.empty()) {
      args.push_back("--isolation=" + isolationFlag);
    }
    auto pid = startDaemon(args, agent.log);
    if (!pid) {
      return fail(pid.error());
    }
    agent.pid = *pid;
    agent.args = args;
    profile.daemons.push_back(agent);
  }
  for (size_t i = firstAgent; i < profile.daemons.size(); ++i) {
    DaemonRecord& agent = profile.daemons[i];
    auto info = waitForInfoFile(agent.dir + "/info.json", agent.pid, agent.log, deadline);
    if (!info) {
      return fail("agent " + std::to_string(i - firstAgent + 1) +
                  " did not come up: " + info.error());
    }
    agent.http = info->value("http", "");
  }
  if (Status s = saveProfile(profile); !s) {
    return fail(s.error());
  }

  // Up means a master leads and every agent has registered with it.
  size_t registered = waitForAgents(masterAddress, static_cast<size_t>(agents), deadline);
  if (registered < static_cast<size_t>(agents)) {
    return fail(std::to_string(registered) + " of " + std::to_string(agents) +
                " agents registered in time; see the logs in " + profile.dir);
  }

  if (kube) {
    DaemonRecord k;
    k.role = "kube";
    k.dir = profile.dir + "/kube";
    k.log = k.dir + "/kube.log";
    if (Status s = makeDirectories(k.dir); !s) {
      return fail(s.error());
    }
    (void)removeAll(k.dir + "/info.json");
    if (kubeContext.empty()) {
      kubeContext = profileName == "default" ? "agora" : "agora-" + profileName;
    }
    int chosen = kubePort == 0 ? freeLoopbackPort() : kubePort;
    auto kubeArgs = [&](const std::string& infoFile) {
      std::vector<std::string> args = {self,
                                       "kube",
                                       "--master=" + masterAddress,
                                       "--listen=" + ip + ":" + std::to_string(chosen),
                                       "--data_dir=" + k.dir + "/data",
                                       "--kubeconfig=" + kubeconfig,
                                       "--context=" + kubeContext,
                                       "--info_file=" + infoFile};
      const std::pair<const char*, std::string> network[] = {
          {"--service_cidr=", kubeServiceCidr},
          {"--pod_cidr=", kubePodCidr},
          {"--lb_address_pool=", kubeLbPool},
          {"--service_node_port_range=", kubeNodePorts}};
      for (const auto& [flag, value] : network) {
        if (!value.empty()) args.push_back(flag + value);
      }
      if (!kubeUsers.empty()) {
        args.push_back("--users=" + std::filesystem::absolute(kubeUsers).string());
      }
      if (authenticate) {
        args.push_back("--credentials=" + keys + "/kube.json");
        args.push_back("--http_token_file=" + keys + "/kube.token");
      }
      if (ha) {
        // Two instances on the profile's ZooKeeper, one leading. Both on the same address (only
        // the leader listens) and the same data directory (one CA, one token), so kubectl's
        // context stays right when the other takes over.
        args.push_back("--zk=" + profile.zk.substr(0, profile.zk.find('/', 5)) + "/agora-kube");
        args.push_back("--zk_session_timeout=5secs");
        args.insert(args.begin(), {self, "supervise", "--"});
      }
      return args;
    };
    std::vector<std::string> args = kubeArgs(k.dir + "/info.json");
    auto pid = startDaemon(args, k.log);
    if (!pid) {
      return fail(pid.error());
    }
    k.pid = *pid;
    k.args = args;
    k.http = ip + ":" + std::to_string(chosen);
    profile.daemons.push_back(k);
    if (Status s = saveProfile(profile); !s) {
      return fail(s.error());
    }
    auto info = waitForInfoFile(k.dir + "/info.json", *pid, k.log, deadline);
    if (!info) {
      std::string hint = info.error().find("Address already in use") != std::string::npos
                             ? "\n(port " + std::to_string(chosen) +
                                   " is taken: pick another with --kube_port, or 0 for any)"
                             : "";
      return fail("the kube API server did not come up: " + info.error() + hint);
    }
    if (ha) {
      DaemonRecord standby = k;
      standby.log = k.dir + "/kube-2.log";
      standby.args = kubeArgs(k.dir + "/info-2.json");
      auto second = startDaemon(standby.args, standby.log);
      if (!second) {
        return fail(second.error());
      }
      standby.pid = *second;
      profile.daemons.push_back(standby);
      if (Status s = saveProfile(profile); !s) {
        return fail(s.error());
      }
    }
  }

  std::cout << "Agora is up (profile '" << profileName << "'):\n";
  int masterNumber = 0;
  int agentNumber = 0;
  for (const DaemonRecord& d : profile.daemons) {
    std::string name = d.role == "zookeeper" ? "zookeeper"
                       : d.role == "kube"    ? "kube API"
                       : d.role == "master"  ? (ha ? "master " + std::to_string(++masterNumber)
                                                   : "master")
                                             : "agent " + std::to_string(++agentNumber);
    std::cout << "  " << name << std::string(11 - std::min<size_t>(10, name.size()), ' ')
              << daemonUrl(profile, d) << "   log " << d.log << "\n";
  }
  if (ha) {
    std::cout << "\nMasters elect their leader through " << profile.zk
              << "; agora status shows which leads.\n";
  }
  if (kube) {
    std::cout << "\nkubectl now uses context '" << kubeContext << "' (in " << kubeconfig
              << "):\n      kubectl get nodes;  kubectl apply -f examples/kube/deployment.yaml\n";
  }
  if (authenticate) {
    std::cout << "\nThe protocol port admits only the keys in " << keys
              << " (CURVE), and the HTTP\nAPIs are HTTPS and take only its tokens. Your own "
                 "frameworks: export AGORA_CREDENTIALS=" << keys << "/operator.json;\ncurl: "
                 "--cacert " << keys << "/http-ca.crt -H \"Authorization: Bearer $(cat " << keys
              << "/operator.token)\"\n";
  }
  std::cout << "\nTry:  agora run --command='echo hello from $AGORA_TASK_ID' --count=3\n"
            << "      agora agents;  agora tasks;  agora status;  agora stop\n";
  return 0;
}

}  // namespace agora::cli
