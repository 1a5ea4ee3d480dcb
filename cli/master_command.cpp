// agora master: a master. Standalone by default (it leads at once, its registry in a file or in
// memory); with --zk, one of several masters elected through ZooKeeper, its registry there.

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <iostream>
#include <set>

#include <glog/logging.h>
#include <zmq.hpp>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "common/acls.hpp"
#include "common/curve.hpp"
#include "common/detector.hpp"
#include "common/event_loop.hpp"
#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/http_tokens.hpp"
#include "common/ids.hpp"
#include "common/logging.hpp"
#include "common/pause_detector.hpp"
#include "common/zmq_transport.hpp"
#include "common/zookeeper.hpp"
#include "master/allocator/hierarchical_allocator.hpp"
#include "master/contender/contender.hpp"
#include "master/http.hpp"
#include "master/master.hpp"
#include "master/registry/zookeeper_registry.hpp"

namespace agora::cli {

namespace {

// Leadership lost, or the registry can no longer be written: stop at once, before acting on
// anything else (a supervisor starts the master again, as a contender).
[[noreturn]] void stopActing(const std::string& why) {
  LOG(ERROR) << "Master exits: " << why;
  google::FlushLogFiles(google::GLOG_INFO);
  std::cerr.flush();
  ::_exit(1);
}

}  // namespace

int masterCommand(int argc, const char* const* argv) {
  std::string ip = "127.0.0.1";
  int port = 5050;
  int protocolPort = -1;
  std::string hostname;
  std::string zk;
  Duration zkSessionTimeout = seconds(10);
  std::string registryKind;
  std::string workDir;
  DaemonFlags daemonFlags;
  double httpRateLimit = 200;
  int maxMessageSize = static_cast<int>(kDefaultMaxMessageSize);
  master::MasterOptions options;

  Flags flags("agora master [flags]",
              "Runs a master: agents register with it, frameworks subscribe to it, and it offers\n"
              "the agents' resources to the frameworks. Operators and the CLI use its HTTP API\n"
              "(/state, /metrics, /health) at --ip:--port. With --zk, several masters elect one\n"
              "leader through ZooKeeper; the others wait, and point peers to the leader.");
  flags.add(&ip, "ip", "IP address to listen on (HTTP and protocol).");
  flags.add(&port, "port", "HTTP port: the address agents, frameworks and the CLI are given.\n"
                           "0 picks a free port.");
  flags.add(&protocolPort, "protocol_port",
            "Port of the ZeroMQ protocol endpoint agents and schedulers connect to (they learn\n"
            "it from GET /master/info). -1: 5049 when --port is 5050, otherwise any free port.");
  flags.add(&hostname, "hostname", "Hostname to advertise (default: this machine's).");
  flags.add(&zk, "zk",
            "ZooKeeper URL, zk://host1:2181,host2:2181/agora: elect the leader there and keep\n"
            "the registry there (HA mode).");
  flags.add(&zkSessionTimeout, "zk_session_timeout",
            "ZooKeeper session timeout: a leader that loses its session for this long stops.");
  flags.add(&registryKind, "registry",
            "Where the registry (admitted agents, frameworks) lives: zookeeper (the default with\n"
            "--zk), file (the default with --work_dir: <work_dir>/registry), or in_memory.");
  flags.add(&workDir, "work_dir", "Where a standalone master keeps its registry file.");
  flags.add(&options.allocationInterval, "allocation_interval",
            "How often to run a full allocation (allocations also follow events).");
  flags.add(&options.agentPingTimeout, "agent_ping_timeout",
            "How often the master pings each agent; an agent that misses\n"
            "--max_agent_ping_timeouts pings in a row is marked unreachable.");
  flags.add(&options.maxAgentPingTimeouts, "max_agent_ping_timeouts",
            "Missed pings before an agent is marked unreachable.");
  flags.add(&options.agentReregisterTimeout, "agent_reregister_timeout",
            "After a failover, agents that do not re-register within this time are marked\n"
            "unreachable.");
  flags.add(&options.frameworkHeartbeatInterval, "framework_heartbeat_interval",
            "How often schedulers and the master exchange heartbeats.");
  flags.add(&options.maxFrameworkHeartbeatMisses, "max_framework_heartbeat_misses",
            "Silent heartbeat intervals before a scheduler counts as disconnected.");
  flags.add(&options.offerTimeout, "offer_timeout",
            "Rescind offers not answered within this time (0: never).");
  std::string minAllocatable = "cpus:0.01|mem:32";
  flags.add(&minAllocatable, "min_allocatable_resources",
            "Offer an agent's free resources only when they hold at least one of these "
            "alternatives ('|' between them).");
  flags.add(&maxMessageSize, "max_message_size",
            "Largest message (bytes) a peer may send; larger ones cut the connection.");
  flags.add(&httpRateLimit, "http_rate_limit",
            "HTTP requests a second each client address may make on average (twice as many at\n"
            "once); beyond that it is answered 429 while others are served. 0: no limit.");
  double registrationRateLimit = 100;
  flags.add(&registrationRateLimit, "registration_rate_limit",
            "Registrations, re-registrations and subscriptions a second each peer address may\n"
            "send on average (50 times as many at once: a machine's agents after a failover);\n"
            "more are dropped. 0: no limit.");
  std::string credentialsPath;
  flags.add(&credentialsPath, "credentials",
            "CURVE credentials (JSON: the master's key pair and the 'clients' it admits, each a\n"
            "principal and its public key; `agora up` writes them). With them, the protocol\n"
            "port is encrypted and only listed clients connect, each as its principal.");
  std::string httpCredentialsPath;
  flags.add(&httpCredentialsPath, "http_credentials",
            "Bearer tokens for the HTTP API (JSON: {\"tokens\": [{\"token\", \"principal\",\n"
            "\"scope\": read|admin}]}). With them, every request but /health, /master/info and\n"
            "the dashboard's page needs a token (401), a read token can only read (403), and the\n"
            "token's principal is who the ACLs see.");
  std::string aclsPath;
  flags.add(&aclsPath, "acls",
            "ACLs (JSON or YAML; docs/SECURITY.md): which principals may register agents,\n"
            "register frameworks in which roles, run tasks as which users, reserve, create\n"
            "volumes, set quota and weights, drain, read state. Given, what no rule allows is\n"
            "refused.");
  std::string httpTokenFile;
  flags.add(&httpTokenFile, "http_token_file",
            "A file holding the bearer token this master presents to agents when it relays\n"
            "sandbox reads and commands to them (/agent/...).");
  std::string remotePrincipals = "operator";
  flags.add(&remotePrincipals, "remote_command_principals",
            "With --http_credentials: the principals whose admin tokens may run commands on\n"
            "agents through this master (/agent/host/exec, /agent/containers/exec, attach,\n"
            "portforward), comma-separated.");
  TlsFlags tlsFlags;
  tlsFlags.addTo(flags);
  daemonFlags.addTo(flags, "master");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  if (port < 0 || port > 65535 || protocolPort < -1 || protocolPort > 65535) {
    std::cerr << "agora master: ports must be between 0 and 65535\n";
    return 2;
  }
  master::HierarchicalAllocator::Options allocatorOptions;
  if (auto parsed = master::HierarchicalAllocator::Options::parseMinAllocatable(minAllocatable);
      !parsed) {
    std::cerr << "agora master: " << parsed.error() << "\n";
    return 2;
  } else {
    allocatorOptions.minAllocatable = *parsed;
  }
  std::optional<Credentials> credentials;
  if (!credentialsPath.empty()) {
    auto loaded = loadCredentials(credentialsPath, CredentialsFor::kMaster);
    if (!loaded) {
      std::cerr << "agora master: --credentials: " << loaded.error() << "\n";
      return 2;
    }
    credentials = std::move(loaded).value();
    options.authenticated = true;
  }
  std::optional<HttpTokens> httpTokens;
  if (!httpCredentialsPath.empty()) {
    auto loaded = HttpTokens::load(httpCredentialsPath);
    if (!loaded) {
      std::cerr << "agora master: --http_credentials: " << loaded.error() << "\n";
      return 2;
    }
    httpTokens = std::move(loaded).value();
  }
  auto tls = tlsFlags.server();
  if (!tls) {
    std::cerr << "agora master: " << tls.error() << "\n";
    return 2;
  }
  if (!httpTokenFile.empty()) {
    auto token = readTokenFile(httpTokenFile);
    if (!token) {
      std::cerr << "agora master: --http_token_file: " << token.error() << "\n";
      return 2;
    }
    setDefaultBearerToken(*token);  // what it relays to agents carries it
  }
  // Standby masters' HTTP clients (none today) and the dashboard's links trust the same CA.
  if (Status trusted = tlsFlags.trust(""); !trusted) {
    std::cerr << "agora master: " << trusted.error() << "\n";
    return 2;
  }
  if (!aclsPath.empty()) {
    auto acls = Acls::load(aclsPath);
    if (!acls) {
      std::cerr << "agora master: --acls: " << acls.error() << "\n";
      return 2;
    }
    options.acls = std::move(acls).value();
  }
  if (maxMessageSize < 1024) {
    std::cerr << "agora master: --max_message_size must be at least 1024 bytes\n";
    return 2;
  }
  std::optional<ZkUrl> zkUrl;
  if (!zk.empty()) {
    auto parsed = parseZkUrl(zk);
    if (!parsed) {
      std::cerr << "agora master: --zk: " << parsed.error() << "\n";
      return 2;
    }
    zkUrl = *parsed;
  }
  if (registryKind.empty()) {
    registryKind = zkUrl ? "zookeeper" : !workDir.empty() ? "file" : "in_memory";
  }
  if (registryKind != "zookeeper" && registryKind != "file" && registryKind != "in_memory") {
    std::cerr << "agora master: --registry must be zookeeper, file or in_memory\n";
    return 2;
  }
  if (registryKind == "zookeeper" && !zkUrl) {
    std::cerr << "agora master: --registry=zookeeper needs --zk\n";
    return 2;
  }
  if (registryKind == "file") {
    if (workDir.empty()) {
      std::cerr << "agora master: --registry=file needs --work_dir\n";
      return 2;
    }
    if (Status made = makeDirectories(workDir); !made) {
      std::cerr << "agora master: " << made.error() << "\n";
      return 1;
    }
  }
  if (protocolPort == -1) {
    protocolPort = port == 5050 ? 5049 : 0;
  }

  initLogging(argv[0], daemonFlags.logDir, daemonFlags.verbose);
  int signals = prepareDaemonSignals({SIGHUP});

  // Two I/O threads: after a failover thousands of agents connect at once, and the ZeroMQ
  // handshakes are spread over them.
  zmq::context_t context(2);
  EventLoop loop;
  ZmqRouter router(context, loop, static_cast<size_t>(maxMessageSize));
  router.limitAdmissions(registrationRateLimit, 50 * registrationRateLimit);
  if (credentials) {
    if (Status curve = router.useCurve(*credentials); !curve) {
      std::cerr << "agora master: " << curve.error() << "\n";
      return 1;
    }
  }
  auto endpoint = router.bind("tcp://" + ip + ":" +
                              (protocolPort == 0 ? std::string("*") : std::to_string(protocolPort)));
  if (!endpoint) {
    std::cerr << "agora master: " << endpoint.error() << "\n";
    return 1;
  }
  HttpServer http;
  auto httpPort = http.listen(ip, static_cast<uint16_t>(port));
  if (!httpPort) {
    std::cerr << "agora master: " << httpPort.error() << "\n";
    return 1;
  }

  options.info.set_id(uuidString());
  options.info.set_hostname(hostname.empty() ? localHostname() : hostname);
  options.info.set_ip(ip);
  options.info.set_http_port(*httpPort);
  options.info.set_endpoint(*endpoint);
  options.info.set_version(AGORA_VERSION);
  options.onFatal = [](const std::string& why) { stopActing(why); };

  std::unique_ptr<PauseDetector> pauseDetector;
  std::unique_ptr<ZooKeeperClient> zkClient;
  std::unique_ptr<ZooKeeperDetector> leaderDetector;
  std::unique_ptr<master::MasterContender> contender;
  std::unique_ptr<master::Registry> registry;
  std::unique_ptr<master::Master> master;

  if (zkUrl) {
    zkClient = std::make_unique<ZooKeeperClient>(loop, zkUrl->servers, zkSessionTimeout);
    contender = std::make_unique<master::ZooKeeperContender>(loop, *zkClient, zkUrl->path);
    leaderDetector = std::make_unique<ZooKeeperDetector>(loop, *zkClient, zkUrl->path);
    // A process that slept through its session must not act on what queued up meanwhile. (A
    // loop that was merely busy still has its session: ZooKeeper's own thread kept it.)
    pauseDetector = std::make_unique<PauseDetector>();
    loop.onOversleep(zkSessionTimeout, [&pauseDetector, zkSessionTimeout](Duration late) {
      Duration paused = pauseDetector->takeLargestGap();
      if (paused > zkSessionTimeout) {
        stopActing("this process was paused for " + formatDuration(paused) +
                   ", longer than the ZooKeeper session timeout");
      }
      LOG(WARNING) << "The master's event loop was busy for " << formatDuration(late);
    });
  } else {
    contender = std::make_unique<master::StandaloneContender>(loop);
  }
  if (registryKind == "zookeeper") {
    registry = std::make_unique<master::ZooKeeperRegistry>(loop, *zkClient, zkUrl->path,
                                                           options.info.id());
  } else if (registryKind == "file") {
    registry = std::make_unique<master::FileRegistry>(loop, workDir + "/registry");
  } else {
    registry = std::make_unique<master::InMemoryRegistry>(loop);
  }

  // Elected but still recovering the registry: peers that found this master already (agents
  // re-registering after a failover) are held, not dropped, and handled once it serves.
  bool recovering = false;
  std::vector<std::pair<std::string, Envelope>> held;
  constexpr size_t kMaxHeld = 1'000'000;
  router.setHandler([&](const std::string& from, Envelope&& envelope) {
    if (master) {
      master->receive(from, std::move(envelope));
    } else if (recovering && held.size() < kMaxHeld) {
      held.emplace_back(from, std::move(envelope));
    }
    // Otherwise a follower: peers find the leader through the detector and retry.
  });

  master::MasterHttpContext httpContext;
  httpContext.leading = [&master] { return master.get(); };
  httpContext.leader = [&leaderDetector]() -> std::optional<MasterInfo> {
    return leaderDetector ? leaderDetector->leader() : std::nullopt;
  };
  httpContext.self = options.info;
  if (*tls) {
    if (Status s = http.useTls(**tls); !s) {
      std::cerr << "agora master: " << s.error() << "\n";
      return 2;
    }
  }
  master::addMasterRoutes(http, loop, std::move(httpContext));
  http.limitRate(httpRateLimit, 2 * httpRateLimit);
  if (httpTokens) {
    http.requireTokens(*httpTokens, {"/health", "/master/info", "/", "/dashboard", "/redirect"});
    std::vector<std::string> listed = splitList(remotePrincipals);
    for (const std::string& path : master::agentCommandProxyPaths()) {
      http.restrict(path, std::set<std::string>(listed.begin(), listed.end()));
    }
  }
  http.serve();

  contender->contend(
      options.info,
      [&] {
        LOG(INFO) << "Leading; recovering the registry (" << registry->describe() << ")";
        options.electedTime = loop.wallTime();
        recovering = true;
        registry->recover([&](Result<master::RegistryState> recovered) {
          if (!recovered) {
            stopActing("cannot recover the registry: " + recovered.error());
          }
          master = std::make_unique<master::Master>(
              options, loop, router,
              std::make_unique<master::HierarchicalAllocator>([&loop] { return loop.now(); },
                                                              allocatorOptions),
              *registry);
          master->metrics().transportStats = [&router] { return router.stats(); };
          master->start(*recovered);
          recovering = false;
          LOG(INFO) << "Serving; handling " << held.size() << " messages that came meanwhile";
          for (auto& [from, envelope] : held) {
            master->receive(from, std::move(envelope));
          }
          held.clear();
          held.shrink_to_fit();
        });
      },
      [](const std::string& why) { stopActing("lost leadership: " + why); });

  loop.watchFd(signals, [&] {
    signalfd_siginfo info;
    bool exiting = false;
    while (::read(signals, &info, sizeof(info)) > 0) {
      if (info.ssi_signo != SIGHUP) {
        LOG(INFO) << "Received signal " << info.ssi_signo << "; master exiting";
        exiting = true;
        continue;
      }
      // SIGHUP: the ACLs again, from their file; a file that does not parse changes nothing.
      if (aclsPath.empty()) {
        LOG(WARNING) << "SIGHUP: no --acls file to reload";
        continue;
      }
      auto reloaded = Acls::load(aclsPath);
      if (!reloaded) {
        LOG(ERROR) << "SIGHUP: kept the ACLs in force: " << reloaded.error();
        continue;
      }
      options.acls = *reloaded;  // the next leadership term's too
      if (master) {
        master->setAcls(std::move(reloaded).value());
      }
      LOG(INFO) << "SIGHUP: reloaded the ACLs from " << aclsPath;
    }
    if (exiting) {
      loop.stop();
    }
  });

  if (credentials) {
    LOG(INFO) << "Protocol port: CURVE, admitting " << credentials->clients.size()
              << " client keys";
  } else {
    LOG(WARNING) << "UNAUTHENTICATED: this master's protocol port admits anyone who can reach "
                    "it, as any principal, unencrypted (no --credentials): keep --ip on an "
                    "address only trusted machines reach (docs/SECURITY.md)";
  }
  if (options.acls.enabled()) {
    LOG(INFO) << "ACLs from " << aclsPath
              << (options.acls.permissive() ? " (permissive: what no rule refuses is allowed)"
                                            : " (what no rule allows is refused)");
    if (!credentials) {
      LOG(WARNING) << "ACLs without --credentials: frameworks' principals are what they claim";
    }
  }
  if (httpTokens) {
    LOG(INFO) << "HTTP API: bearer tokens required (" << httpTokens->size() << " known)";
  } else if (!*tls || (*tls)->clientCaPem.empty()) {
    LOG(WARNING) << "UNAUTHENTICATED: this master's HTTP API takes no tokens "
                    "(--http_credentials) and no client certificates (--tls_client_ca): keep "
                    "--ip on an address only trusted machines reach (docs/SECURITY.md)";
  }
  if (!*tls) {
    LOG(WARNING) << "The HTTP API has no TLS (--tls_cert): what it answers, and tokens, cross "
                    "the network in the clear (docs/SECURITY.md)";
  }
  LOG(INFO) << "Master " << options.info.id() << " HTTP API at "
            << (*tls ? "https://" : "http://") << ip << ":" << *httpPort
            << (zkUrl ? " (contending through " + zk + ")" : "");
  writeInfoFile(daemonFlags.infoFile, {{"pid", ::getpid()},
                                       {"id", options.info.id()},
                                       {"http", ip + ":" + std::to_string(*httpPort)},
                                       {"endpoint", *endpoint}});
  loop.run();
  master.reset();
  http.stop();
  return 0;
}

}  // namespace agora::cli
