// agora agent: registers this machine with a master and runs the tasks it is given.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <iostream>
#include <set>

#include <glog/logging.h>
#include <zmq.hpp>

#include "agent/agent.hpp"
#include "agent/containerizer/fake_containerizer.hpp"
#include "agent/containerizer/posix_containerizer.hpp"
#include "agent/executor/command_executor.hpp"
#include "agent/http.hpp"
#include "agent/remote_command.hpp"
#include "agent/resource_detection.hpp"
#include "isolators/gpu.hpp"
#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "common/curve.hpp"
#include "common/event_loop.hpp"
#include "common/fs.hpp"
#include "common/ids.hpp"
#include "common/logging.hpp"
#include "common/process.hpp"
#include "common/zmq_transport.hpp"

namespace agora::cli {

namespace {

// ipc:// paths are limited to about 100 bytes; a long work dir falls back to the abstract
// socket namespace with a name derived from the work dir.
std::string executorEndpoint(const std::string& workDir) {
  std::string path = workDir + "/executors.sock";
  if (path.size() < 100) {
    return "ipc://" + path;
  }
  return "ipc://@agora-executors-" + std::to_string(std::hash<std::string>()(workDir));
}

// The executors' socket's CURVE key pair, kept in the work directory (0600): executors that an
// earlier agent started pinned its public key, and reconnect to the next agent with it.
Result<CurveKeyPair> executorsKeyPair(const std::string& workDir) {
  std::string path = workDir + "/executors.key";
  if (auto kept = readFile(path)) {
    std::string secret = kept->substr(0, kept->find('\n'));
    if (auto keys = curveKeyPairOf(secret)) {
      return keys;
    }
    LOG(WARNING) << path << " holds no CURVE secret key; making a new one";
  }
  CurveKeyPair keys = generateCurveKeyPair();
  if (Status saved = writeFileAtomic(path, keys.secretKey + "\n", 0600); !saved) {
    return Error(saved.error());
  }
  return keys;
}

}  // namespace

int agentCommand(int argc, const char* const* argv) {
  std::string masterAddress;
  std::string workDir;
  std::string ip = "127.0.0.1";
  int port = 5051;
  std::string hostname;
  std::string resourcesFlag;
  std::string attributesFlag;
  std::string containerizerName = "posix";
  std::string isolation;
  std::string cgroupsRoot = "agora";
  bool allowHostExec = false;
  bool cgroupsEnableCfs = false;
  int maxPids = 0;
  gpu::Options gpuOptions;
  Duration fakeTaskDuration = Duration::zero();
  DaemonFlags daemonFlags;
  double httpRateLimit = 200;
  agent::AgentOptions options;
  Duration statusRetry = seconds(10);

  Flags flags("agora agent --master=HOST:PORT --work_dir=DIR [flags]",
              "Runs an agent: it offers this machine's resources through the master and runs\n"
              "the tasks frameworks launch on it, each under an executor in its own sandbox.\n"
              "SIGTERM or SIGINT stops the agent alone: its tasks keep running, and the next\n"
              "agent on the same --work_dir takes them back. SIGUSR1 stops its tasks too.");
  flags.add(&masterAddress, "master",
            "The master: its HTTP address host:port, or zk://host:2181,.../agora to follow the\n"
            "leader elected in ZooKeeper (required, or --zk).");
  std::string zk;
  flags.add(&zk, "zk", "ZooKeeper URL of an HA cluster (the same as --master=zk://...).");
  Duration zkSessionTimeout = seconds(10);
  flags.add(&zkSessionTimeout, "zk_session_timeout", "ZooKeeper session timeout.");
  flags.add(&workDir, "work_dir",
            "Where sandboxes and the agent's own files live (required; created if missing).");
  flags.add(&ip, "ip", "IP address to listen on for the agent's HTTP API.");
  flags.add(&port, "port", "HTTP port (0 picks a free port).");
  flags.add(&hostname, "hostname", "Hostname to advertise (default: this machine's).");
  flags.add(&resourcesFlag, "resources",
            "Resources to offer, replacing what is detected for each name given, e.g.\n"
            "'cpus:4;mem:8192;disk:20000;ports:[31000-32000]' or 'cpus(eng):2' to reserve.");
  flags.add(&attributesFlag, "attributes", "Attributes, e.g. 'rack:a;zone:z1'.");
  flags.add(&containerizerName, "containerizer",
            "posix (executors as child processes) or fake (simulated tasks, for tests and\n"
            "benchmarks).");
  flags.add(&isolation, "isolation",
            "With the posix containerizer: isolators, comma-separated, of cgroups/cpu, "
            "cgroups/mem, cgroups/pids (cgroups v1 or v2), cgroups/devices (v1), namespaces/pid, "
            "namespaces/mount, "
            "namespaces/uts, namespaces/ipc, namespaces/net (loopback only), gpu/nvidia (GPUs,\n"
            "given to tasks one by one).\n"
            "Needs root. Empty: none.");
  flags.add(&options.enforceDiskLimit, "enforce_disk_limit",
            "Destroy a container whose sandbox outgrows its tasks' disk (checked every "
            "--disk_watch_interval).");
  flags.add(&options.diskWatchInterval, "disk_watch_interval", "How often sandboxes are measured.");
  flags.add(&options.gcDelay, "gc_delay",
            "How long the sandbox of an ended executor is kept (less as the disk fills).");
  flags.add(&options.gcDiskHeadroom, "gc_disk_headroom",
            "The disk fraction kept free: the delay is gc_delay x (1 - used - headroom).");
  flags.add(&options.usageInterval, "usage_interval",
            "How often the usage of isolated containers goes to the master (0: never).");
  flags.add(&options.switchUser, "switch_user",
            "Run tasks as their framework's user (needs root unless it is the agent's own).");
  flags.add(&gpuOptions.gpus, "gpus",
            "With gpu/nvidia isolation: the GPUs to offer, by index (0,1), found as\n"
            "<nvidia_dev_dir>/nvidia<index>. Empty: ask NVML for every GPU.");
  flags.add(&gpuOptions.devDir, "nvidia_dev_dir", "Where the NVIDIA device files are.");
  flags.add(&gpuOptions.nvmlLibrary, "nvml_library",
            "The NVML library to load at run time (the driver's libnvidia-ml.so.1).");
  options.imageStore = defaultImageStore();
  flags.add(&allowHostExec, "allow_host_exec",
            "Run commands on this machine's host for whoever reaches the agent's HTTP port\n"
            "(agora ssh): a root shell. Off by default; agora up turns it on for its agents.");
  flags.add(&options.imageStore, "image_store",
            "Where the images tasks name are (agora image import --store=...; shared by the\n"
            "agents of one machine).");
  flags.add(&cgroupsRoot, "cgroups_root",
            "Where containers' cgroups go: relative to the agent's own cgroup, or from the "
            "hierarchy's top when it starts with '/'.");
  flags.add(&cgroupsEnableCfs, "cgroups_enable_cfs",
            "Hard-limit each container's CPU to its cpus (CFS quota), not just shares.");
  flags.add(&maxPids, "max_pids_per_container",
            "With cgroups/pids: the most processes a container may have (0: no limit).");
  flags.add(&fakeTaskDuration, "fake_task_duration",
            "With --containerizer=fake: how long each simulated task runs.");
  flags.add(&options.executorRegistrationTimeout, "executor_registration_timeout",
            "How long an executor may take to connect before it is destroyed.");
  flags.add(&options.executorShutdownGracePeriod, "executor_shutdown_grace_period",
            "How long executors get to stop their tasks before they are killed.");
  flags.add(&options.recoveryTimeout, "recovery_timeout",
            "Executors that lose their agent for this long kill their tasks and exit.");
  flags.add(&options.executorReregistrationTimeout, "executor_reregistration_timeout",
            "After a restart, executors taken back that do not reconnect within this are\n"
            "destroyed (their tasks fail with REASON_EXECUTOR_REREGISTRATION_TIMEOUT).");
  flags.add(&options.masterPingTimeout, "master_ping_timeout",
            "Without a ping from the master for this long, look for it and re-register\n"
            "(0: the master's ping interval x (missed pings + 1), which it sends).");
  flags.add(&statusRetry, "status_update_retry_interval",
            "First retry interval of an unacknowledged status update (doubles up to 10mins).");
  flags.add(&httpRateLimit, "http_rate_limit",
            "HTTP requests a second each client address may make on average (twice as many at\n"
            "once); beyond that it is answered 429 while others are served. 0: no limit.");
  std::string httpCredentialsPath;
  flags.add(&httpCredentialsPath, "http_credentials",
            "Bearer tokens for the HTTP API (the master's --http_credentials format). With them,\n"
            "every request but /health needs a token, a read token can only read, and the\n"
            "sandbox and remote-command endpoints (files, exec, attach, port-forward, host exec)\n"
            "take only the --remote_command_principals' tokens.");
  std::string remotePrincipals = "master,kube";
  flags.add(&remotePrincipals, "remote_command_principals",
            "With --http_credentials: the principals whose tokens may read sandboxes (/files)\n"
            "and run commands in containers or on the host: the master, which relays the\n"
            "operator's (agora ssh, agora run's output), and kube (kubectl exec, attach,\n"
            "port-forward, logs).");
  std::string credentialsPath;
  flags.add(&credentialsPath, "credentials",
            "CURVE credentials (JSON: this agent's principal and key pair, and the master's\n"
            "public key, which it pins; `agora up` writes them) for a master that requires them.");
  TlsFlags tlsFlags;
  tlsFlags.addTo(flags);
  daemonFlags.addTo(flags, "agent");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  std::optional<HttpTokens> httpTokens;
  if (!httpCredentialsPath.empty()) {
    auto loaded = HttpTokens::load(httpCredentialsPath);
    if (!loaded) {
      std::cerr << "agora agent: --http_credentials: " << loaded.error() << "\n";
      return 2;
    }
    httpTokens = std::move(loaded).value();
  }
  std::optional<Credentials> credentials;
  if (!credentialsPath.empty()) {
    auto loaded = loadCredentials(credentialsPath, CredentialsFor::kClient);
    if (!loaded) {
      std::cerr << "agora agent: --credentials: " << loaded.error() << "\n";
      return 2;
    }
    credentials = std::move(loaded).value();
  }
  auto tls = tlsFlags.server();
  if (!tls) {
    std::cerr << "agora agent: " << tls.error() << "\n";
    return 2;
  }
  if (Status trusted = tlsFlags.trust(credentials ? credentials->tlsCa : ""); !trusted) {
    std::cerr << "agora agent: " << trusted.error() << "\n";
    return 2;
  }
  if (!zk.empty()) {
    masterAddress = zk;
  }
  if (masterAddress.empty()) {
    std::cerr << "agora agent: --master=HOST:PORT (or --zk=zk://...) is required\n";
    return 2;
  }
  if (workDir.empty()) {
    std::cerr << "agora agent: --work_dir is required (where sandboxes are kept)\n";
    return 2;
  }
  if (port < 0 || port > 65535) {
    std::cerr << "agora agent: --port must be between 0 and 65535\n";
    return 2;
  }
  if (containerizerName != "posix" && containerizerName != "fake") {
    std::cerr << "agora agent: --containerizer must be posix or fake\n";
    return 2;
  }
  std::optional<agent::CgroupsIsolation> cgroupsIsolation;
  bool gpuIsolation = false;
  if (!isolation.empty()) {
    agent::CgroupsIsolation chosen;
    chosen.cpu = chosen.memory = chosen.pids = false;
    size_t start = 0;
    while (start <= isolation.size()) {
      size_t comma = isolation.find(',', start);
      std::string name = isolation.substr(start, comma == std::string::npos ? std::string::npos
                                                                           : comma - start);
      if (name == "cgroups/cpu") {
        chosen.cpu = true;
      } else if (name == "cgroups/mem") {
        chosen.memory = true;
      } else if (name == "cgroups/pids") {
        chosen.pids = true;
      } else if (name == "cgroups/devices") {
        chosen.devices = true;
      } else if (name == "gpu/nvidia") {
        gpuIsolation = true;
        chosen.devices = true;
      } else if (name == "namespaces/pid" || name == "namespaces/mount" ||
                 name == "namespaces/uts" || name == "namespaces/ipc" ||
                 name == "namespaces/net") {
        chosen.namespaces.insert(name.substr(std::string("namespaces/").size()));
      } else {
        std::cerr << "agora agent: --isolation: unknown isolator '" << name
                  << "' (cgroups/cpu, cgroups/mem, cgroups/pids, cgroups/devices, namespaces/pid, "
                     "namespaces/mount, namespaces/uts, namespaces/ipc, namespaces/net, "
                     "gpu/nvidia)\n";
        return 2;
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (containerizerName != "posix") {
      std::cerr << "agora agent: --isolation needs --containerizer=posix\n";
      return 2;
    }
    if (maxPids < 0) {
      std::cerr << "agora agent: --max_pids_per_container must not be negative\n";
      return 2;
    }
    if (::geteuid() != 0) {
      std::cerr << "agora agent: --isolation needs root (cgroups, namespaces)\n";
      return 1;
    }
    if (chosen.anyCgroups()) {
      auto layout = cgroups::detectLayout();
      if (!layout) {
        std::cerr << "agora agent: --isolation: " << layout.error() << "\n";
        return 1;
      }
      chosen.layout = *layout;
    }
    chosen.root = cgroupsRoot;
    chosen.cpuHardLimit = cgroupsEnableCfs;
    chosen.maxPids = static_cast<uint64_t>(maxPids);
    cgroupsIsolation = chosen;
  }
  if (Status made = makeDirectories(workDir); !made) {
    std::cerr << "agora agent: " << made.error() << "\n";
    return 1;
  }
  workDir = *realPath(workDir);
  // One agent per work directory: a second would take over the first one's executors.
  int lock = ::open((workDir + "/agent.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0 || ::flock(lock, LOCK_EX | LOCK_NB) != 0) {
    std::cerr << "agora agent: another agent is using the work directory " << workDir << "\n";
    return 1;
  }
  auto resources = agent::detectResources(workDir, resourcesFlag);
  if (!resources) {
    std::cerr << "agora agent: " << resources.error() << "\n";
    return 2;
  }
  std::optional<gpu::Inventory> gpus;
  if (gpuIsolation) {
    auto found = gpu::discover(gpuOptions);
    if (!found) {
      std::cerr << "agora agent: " << found.error() << "\n";
      return 1;
    }
    double named = resources->scalar("gpus");
    if (named > static_cast<double>(found->gpus.size())) {
      std::cerr << "agora agent: --resources offers " << named << " GPUs but "
                << found->gpus.size() << " were found (" << found->source << ")\n";
      return 2;
    }
    if (named == 0 && !found->gpus.empty()) {
      *resources += *Resources::parse("gpus:" + std::to_string(found->gpus.size()));
    } else if (named > 0) {
      found->gpus.resize(static_cast<size_t>(named));  // offer only as many as asked
    }
    gpus = *found;
  } else if (!gpuOptions.gpus.empty()) {
    std::cerr << "agora agent: --gpus needs --isolation=...,gpu/nvidia\n";
    return 2;
  }
  auto attributes = agent::parseAttributes(attributesFlag);
  if (!attributes) {
    std::cerr << "agora agent: --attributes: " << attributes.error() << "\n";
    return 2;
  }

  initLogging(argv[0], daemonFlags.logDir, daemonFlags.verbose);
  int signals = prepareDaemonSignals({SIGUSR1});

  zmq::context_t context(1);
  EventLoop loop;
  HttpServer http;
  auto httpPort = http.listen(ip, static_cast<uint16_t>(port));
  if (!httpPort) {
    std::cerr << "agora agent: " << httpPort.error() << "\n";
    return 1;
  }

  options.workDir = workDir;
  options.info.set_hostname(hostname.empty() ? localHostname() : hostname);
  options.info.set_address(ip + ":" + std::to_string(*httpPort));
  resources->copyTo(options.info.mutable_resources());
  for (const Attribute& a : *attributes) {
    *options.info.add_attributes() = a;
  }
  options.executorBinary = selfExecutable();
  if (gpus) {
    options.gpus = gpus->gpus;
    options.gpuControlRules = gpus->controlRules;
    options.gpuControlDevices = gpus->controlDevices;
    if (gpus->gpus.empty()) {
      LOG(WARNING) << "gpu/nvidia: offering no GPUs: " << gpus->source;
    } else {
      LOG(INFO) << "gpu/nvidia: offering " << gpus->gpus.size() << " GPUs (" << gpus->source
                << ")";
    }
  }
  // Real executors outlive the agent: checkpoint them so that a restarted agent takes them back.
  options.checkpoint = containerizerName == "posix";
  options.statusUpdates.retryMin = statusRetry;
  options.statusUpdates.retryMax = std::max<Duration>(statusRetry, minutes(10));

  ZmqDealer masterLink(context, loop, "A-" + uuidString(), kDefaultMaxMessageSize);
  if (credentials) {
    masterLink.useCurve(*credentials);
  }
  auto detector = createMasterDetector(loop, masterAddress, zkSessionTimeout);
  if (!detector) {
    std::cerr << "agora agent: --master: " << detector.error() << "\n";
    return 2;
  }

  std::unique_ptr<ZmqRouter> executorRouter;
  std::unique_ptr<agent::PosixContainerizer> posix;
  std::unique_ptr<agent::FakeContainerizer> fake;
  Transport* executorLink = nullptr;
  agent::Containerizer* containerizer = nullptr;
  if (containerizerName == "fake") {
    fake = std::make_unique<agent::FakeContainerizer>(
        loop, fakeTaskDuration == Duration::zero() ? Duration::max() : fakeTaskDuration);
    executorLink = fake.get();
    containerizer = fake.get();
    options.executorEndpoint = "fake://";
  } else {
    executorRouter = std::make_unique<ZmqRouter>(context, loop, kDefaultMaxMessageSize);
    if (credentials) {
      // The executors' socket is a CURVE server too: each executor holds a key pair of its own,
      // admitted as its container alone.
      auto keys = executorsKeyPair(workDir);
      if (!keys) {
        std::cerr << "agora agent: the executors' key: " << keys.error() << "\n";
        return 1;
      }
      if (Status curve = executorRouter->useCurve(*keys); !curve) {
        std::cerr << "agora agent: the executors' socket: " << curve.error() << "\n";
        return 1;
      }
      ZapHandler* zap = executorRouter->zap();
      options.executorCurveKey = keys->publicKey;
      options.admitExecutorKey = [zap](const std::string& key, const std::string& containerId) {
        zap->admit(key, containerId);
      };
      options.forgetExecutorKey = [zap](const std::string& key) { zap->forget(key); };
    }
    auto bound = executorRouter->bind(executorEndpoint(workDir));
    if (!bound) {
      std::cerr << "agora agent: " << bound.error() << "\n";
      return 1;
    }
    options.executorEndpoint = *bound;
    if (cgroupsIsolation && cgroupsIsolation->namespaces.count("net") > 0 &&
        options.executorEndpoint.rfind("ipc://@", 0) == 0) {
      // An abstract socket belongs to a network namespace: executors in their own could not
      // reach it.
      std::cerr << "agora agent: --isolation=namespaces/net needs the executors' socket in the "
                   "filesystem: pick a --work_dir shorter than 85 characters\n";
      return 2;
    }
    posix = std::make_unique<agent::PosixContainerizer>(loop, cgroupsIsolation);
    if (cgroupsIsolation) {
      LOG(INFO) << "Isolating containers with cgroups "
                << (cgroupsIsolation->layout.v2 ? "v2" : "v1") << " under '"
                << cgroupsIsolation->root << "' (" << isolation << ")";
    }
    executorLink = executorRouter.get();
    containerizer = posix.get();
  }

  agent::Agent agent(
      options, loop, masterLink,
      [&masterLink](const std::string& endpoint) { return masterLink.connect(endpoint); },
      **detector, *executorLink, *containerizer);
  masterLink.setHandler([&agent](const std::string& from, Envelope&& envelope) {
    agent.receiveFromMaster(from, std::move(envelope));
  });
  masterLink.setConnectionHandler([&agent](bool up) { agent.masterConnectionChanged(up); });
  // Idle connections to the standby masters: a failover finds them already connected.
  (*detector)->onContendersChange([&masterLink](const std::vector<MasterInfo>& masters) {
    masterLink.keepStandbyConnections(endpointsOf(masters));
  });
  agent.setAlreadyConnected(
      [&masterLink](const std::string& endpoint) { return masterLink.holdsStandbyConnection(endpoint); });
  auto toAgent = [&agent](const std::string& from, Envelope&& envelope) {
    agent.receiveFromExecutor(from, std::move(envelope));
  };
  if (fake) {
    fake->setDeliver(toAgent);
  } else {
    executorRouter->setHandler(toAgent);
  }
  if (Status recovered = agent.recover(); !recovered) {
    std::cerr << "agora agent: " << recovered.error() << "\n";
    LOG(ERROR) << recovered.error();
    return 1;
  }
  agent::addAgentRoutes(http, loop, agent, workDir, allowHostExec);
  if (credentials) {
    LOG(INFO) << "Connecting to the master with CURVE as principal '" << credentials->principal
              << "'";
  } else {
    LOG(WARNING) << "UNAUTHENTICATED: this agent's connection to the master is neither "
                    "authenticated nor encrypted (no --credentials)";
  }
  if (!httpTokens) {
    LOG(WARNING) << "UNAUTHENTICATED: this agent's HTTP API (files, exec, port-forward) takes "
                    "no tokens (--http_credentials): keep --ip on an address only trusted "
                    "machines reach (docs/SECURITY.md)";
  }
  if (*tls) {
    if (Status s = http.useTls(**tls); !s) {
      std::cerr << "agora agent: " << s.error() << "\n";
      return 2;
    }
    LOG(INFO) << "HTTP API: TLS" << ((*tls)->clientCaPem.empty() ? "" : ", client certificates");
  } else {
    LOG(WARNING) << "The HTTP API has no TLS (--tls_cert): what it answers, and tokens, cross "
                    "the network in the clear (docs/SECURITY.md)";
  }
  http.limitRate(httpRateLimit, 2 * httpRateLimit);
  if (httpTokens) {
    http.requireTokens(*httpTokens, {"/health"});
    std::vector<std::string> listed = splitList(remotePrincipals);
    std::set<std::string> remote(listed.begin(), listed.end());
    for (const char* path : {"/files/read", "/files/browse", "/containers/exec",
                             "/containers/attach", "/containers/portforward", "/host/exec"}) {
      http.restrict(path, remote);
    }
    LOG(INFO) << "HTTP API: bearer tokens required; sandboxes and remote commands only for "
              << remotePrincipals;
  }
  http.serve();
  agent.start();

  // SIGTERM and SIGINT stop the agent alone: its containers keep running, and the next agent
  // on this work directory takes them back (a restart, an upgrade). SIGUSR1 stops everything:
  // each executor is asked to stop its tasks, then killed after the grace period.
  bool stopping = false;
  loop.watchFd(signals, [&] {
    signalfd_siginfo info;
    int signal = 0;
    while (::read(signals, &info, sizeof(info)) > 0) {
      signal = static_cast<int>(info.ssi_signo);
    }
    if (stopping) {
      LOG(WARNING) << "Second signal: killing every container now";
      if (posix) {
        posix->destroyAll();
      }
      loop.stop();
      return;
    }
    if (signal != SIGUSR1) {
      LOG(INFO) << "Agent received " << strsignal(signal)
                << "; stopping, and leaving its containers running for the next agent";
      loop.stop();
      return;
    }
    stopping = true;
    LOG(INFO) << "Agent received SIGUSR1; stopping its executors";
    agent.shutdown([&loop] { loop.stop(); });
    loop.after(options.executorShutdownGracePeriod + seconds(3), [&] {
      LOG(WARNING) << "Executors did not stop in time; killing them";
      if (posix) {
        posix->destroyAll();
      }
      loop.stop();
    });
  });

  writeInfoFile(daemonFlags.infoFile, {{"pid", ::getpid()},
                           {"http", options.info.address()},
                           {"executor_endpoint", options.executorEndpoint},
                           {"work_dir", workDir}});
  loop.run();
  http.stop();
  return 0;
}

int executorCommand(int argc, const char* const* argv) {
  if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::cout << "Usage: agora executor\n\nThe built-in executor. Agents start it inside a "
                 "container with its\nconfiguration in AGORA_* environment variables; it is "
                 "not meant to be run by hand.\n";
    return 0;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "remote-command") {
    return agent::runRemoteCommand(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  return agent::runCommandExecutor(args);
}

}  // namespace agora::cli
