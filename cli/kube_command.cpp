// agora kube: the Kubernetes-style framework in one process: the API server kubectl talks to,
// its store in --data_dir, and (as they land) the controllers and the pod scheduler that runs
// pods on the master's offers.

#include <sys/signalfd.h>
#include <unistd.h>

#include <iostream>

#include <glog/logging.h>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "common/event_loop.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/http_tokens.hpp"
#include "common/logging.hpp"
#include "frameworks/k8s-like/apiserver/api_server.hpp"
#include "common/certs.hpp"
#include "frameworks/k8s-like/apiserver/http_server.hpp"
#include "frameworks/k8s-like/apiserver/kubeconfig.hpp"
#include "frameworks/k8s-like/apiserver/services.hpp"
#include "frameworks/k8s-like/controllers/autoscaler.hpp"
#include "frameworks/k8s-like/controllers/controllers.hpp"
#include "frameworks/k8s-like/controllers/pod_metrics.hpp"
#include "frameworks/k8s-like/dns/cluster_dns.hpp"
#include "frameworks/k8s-like/scheduler/kube_framework.hpp"
#include "common/zookeeper.hpp"
#include "frameworks/k8s-like/store/store.hpp"
#include "frameworks/k8s-like/store/zookeeper_store.hpp"

namespace agora::cli {

namespace {

// The token in `path`, or a new one written there (0600).
Result<std::string> loadOrMakeToken(const std::string& path) {
  if (auto existing = readTokenFile(path)) {
    return existing;
  }
  std::string token = generateToken();
  if (Status written = writeFileAtomic(path, token + "\n", 0600); !written) {
    return Error(written.error());
  }
  return token;
}

}  // namespace

int kubeCommand(int argc, const char* const* argv) {
  std::string master;
  std::string listen = "127.0.0.1:6443";
  std::string dataDir;
  std::string token;
  std::string kubeconfig;
  std::string contextName = "agora";
  std::string role = "kube";
  std::string serviceCidr = "127.96.0.0/16";
  std::string nodePortRange = "30000-32767";
  std::string lbPool = "127.97.0.0/16";
  std::string lbNodes;
  std::string podCidr = "127.98.0.0/16";
  std::string dnsListen;
  std::string clusterDomain = "cluster.local";
  std::string zk;
  Duration zkSessionTimeout = seconds(10);
  Duration metricsInterval = seconds(15);
  Duration eventTtl = std::chrono::hours(1);
  kube::AutoscalerOptions autoscaler;
  bool insecureHttp = false;
  DaemonFlags daemonFlags;

  Flags flags("agora kube --data_dir=DIR [flags]",
              "Runs the kube framework: a Kubernetes-compatible API server that the stock\n"
              "kubectl drives (HTTPS with a CA of its own and a bearer token), its object store\n"
              "in --data_dir, and the controllers and pod scheduler that run Deployments,\n"
              "ReplicaSets and Pods on the cluster's offers.");
  flags.add(&master, "master",
            "The master's HTTP address (host:port) or zk:// URL. Without it, only the API\n"
            "server and the controllers run: pods stay Pending.");
  double apiRateLimit = 500;
  flags.add(&apiRateLimit, "api_rate_limit",
            "API requests a second each client address may make on average (twice as many at\n"
            "once); beyond that it is answered 429 with Retry-After, which kubectl waits out.\n"
            "0: no limit.");
  std::string usersPath;
  flags.add(&usersPath, "users",
            "More users of the API (YAML or JSON: each a name, a bearer token, groups, and\n"
            "whether an administrator) and their bindings to namespaces, view or edit\n"
            "(docs/kube.md). The kubeconfig's token is an administrator's.");
  std::string httpTokenFile;
  flags.add(&httpTokenFile, "http_token_file",
            "A file holding the bearer token the framework gives the master's and agents' HTTP\n"
            "APIs (when they require tokens): its principal must be among the agents'\n"
            "--remote_command_principals for kubectl exec, attach and port-forward.");
  std::string credentials;
  flags.add(&credentials, "credentials",
            "CURVE credentials (JSON: the framework's principal and key pair, and the master's\n"
            "public key) for a master that requires them.");
  flags.add(&role, "role", "The role the framework's resources are offered to.");
  flags.add(&serviceCidr, "service_cidr", "Where Services' ClusterIPs come from.");
  flags.add(&nodePortRange, "service_node_port_range", "Where NodePorts come from.");
  flags.add(&lbPool, "lb_address_pool", "Where LoadBalancer Services' addresses come from.");
  flags.add(&lbNodes, "lb_nodes",
            "The nodes (comma-separated names) whose service proxy serves LoadBalancer\n"
            "addresses (default: all).");
  flags.add(&dnsListen, "dns_listen",
            "Where the cluster's DNS server answers (IP:port; default: --listen's IP, any\n"
            "port). Pods reach it through the kube-dns Service, at the 10th address of\n"
            "--service_cidr.");
  flags.add(&clusterDomain, "cluster_domain", "The cluster's DNS domain.");
  flags.add(&podCidr, "pod_cidr",
            "Where pods on agents with a loopback address (a one-machine cluster) get their\n"
            "own addresses from.");
  flags.add(&eventTtl, "event_ttl", "How long Events are kept after they last happened.");
  flags.add(&metricsInterval, "metrics_interval",
            "How often pods' and nodes' usage is read from the agents (kubectl top, the\n"
            "autoscaler).");
  flags.add(&autoscaler.syncPeriod, "hpa_sync_period",
            "How often HorizontalPodAutoscalers are evaluated.");
  flags.add(&autoscaler.downscaleStabilization, "hpa_downscale_stabilization",
            "The scale-down stabilisation window of HPAs that do not set their own.");
  flags.add(&zk, "zk",
            "zk://host1:2181,host2:2181/agora-kube: keep the objects in ZooKeeper, for several\n"
            "instances of which one leads (the others wait, not listening, and take over when\n"
            "it goes). Without it, the store is a file store in --data_dir.");
  flags.add(&zkSessionTimeout, "zk_session_timeout",
            "ZooKeeper session timeout: a leader that loses its session for this long stops.");
  flags.add(&listen, "listen", "Address of the API server (IP:port; port 0 picks one).");
  flags.add(&dataDir, "data_dir",
            "Where the store, the TLS material (pki/) and the token live; survives restarts.");
  flags.add(&token, "token",
            "The bearer token clients must present (default: made once into\n"
            "<data_dir>/token).");
  flags.add(&kubeconfig, "kubeconfig",
            "Write a context for this server into this kubeconfig (merged with what it holds)\n"
            "and make it current, as minikube does.");
  flags.add(&contextName, "context", "Name of the kubeconfig cluster, user and context.");
  flags.add(&insecureHttp, "insecure_http",
            "Serve plain HTTP without authentication (for debugging on loopback only).");
  daemonFlags.addTo(flags, "kube");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  if (!httpTokenFile.empty()) {
    auto token = readTokenFile(httpTokenFile);
    if (!token) {
      std::cerr << "agora kube: --http_token_file: " << token.error() << "\n";
      return 2;
    }
    setDefaultBearerToken(*token);
  }
  if (dataDir.empty()) {
    std::cerr << "agora kube: --data_dir is required\n";
    return 2;
  }
  auto hostPort = splitHostPort(listen);
  if (!hostPort) {
    std::cerr << "agora kube: --listen: " << hostPort.error() << "\n";
    return 2;
  }
  if (Status made = makeDirectories(dataDir); !made) {
    std::cerr << "agora kube: " << made.error() << "\n";
    return 1;
  }
  std::optional<kube::TlsMaterial> tls;
  std::string caPem;
  if (!insecureHttp) {
    std::vector<std::string> names = {"127.0.0.1", "localhost", "::1"};
    if (std::find(names.begin(), names.end(), hostPort->first) == names.end()) {
      names.push_back(hostPort->first);
    }
    auto certs = loadOrMakeCertificates(dataDir + "/pki", names);
    if (!certs) {
      std::cerr << "agora kube: TLS: " << certs.error() << "\n";
      return 1;
    }
    tls = kube::TlsMaterial{certs->serverCert, certs->serverKey};
    caPem = certs->caCert;
    if (token.empty()) {
      auto made = loadOrMakeToken(dataDir + "/token");
      if (!made) {
        std::cerr << "agora kube: token: " << made.error() << "\n";
        return 1;
      }
      token = *made;
    }
  } else {
    token.clear();
  }
  initLogging(argv[0], daemonFlags.logDir, daemonFlags.verbose);
  int signals = prepareDaemonSignals();
  std::unique_ptr<kube::Store> store;
  if (!zk.empty()) {
    if (auto parsed = parseZkUrl(zk); !parsed) {
      std::cerr << "agora kube: --zk: " << parsed.error() << "\n";
      return 2;
    }
    kube::ZooKeeperStore::Options zkOptions;
    zkOptions.sessionTimeout = zkSessionTimeout;
    zkOptions.identity = listen;
    zkOptions.onLost = [](const std::string& why) {
      // Another instance leads now (or will): stop before acting on anything else.
      LOG(ERROR) << "kube exits: " << why;
      google::FlushLogFiles(google::GLOG_INFO);
      ::_exit(1);
    };
    LOG(INFO) << "Contending for leadership through " << zk;
    auto led = kube::ZooKeeperStore::lead(zk, zkOptions);
    if (!led) {
      std::cerr << "agora kube: " << led.error() << "\n";
      return 1;
    }
    store = std::move(*led);
  } else {
    auto opened = kube::FileStore::open(dataDir + "/store", {});
    if (!opened) {
      std::cerr << "agora kube: store: " << opened.error() << "\n";
      return 1;
    }
    store = std::move(*opened);
  }
  EventLoop loop;
  kube::ApiServerOptions options;
  options.token = token;
  if (!usersPath.empty()) {
    auto users = kube::KubeAuthorizer::load(usersPath);
    if (!users) {
      std::cerr << "agora kube: --users: " << users.error() << "\n";
      return 2;
    }
    options.users = std::make_shared<const kube::KubeAuthorizer>(std::move(users).value());
  }
  options.advertise = listen;
  options.services.serviceCidr = serviceCidr;
  options.services.loadBalancerPool = lbPool;
  if (Status range = options.services.setNodePortRange(nodePortRange); !range) {
    std::cerr << "agora kube: --service_node_port_range: " << range.error() << "\n";
    return 2;
  }
  kube::ApiServer api(&loop, store.get(), options);
  api.bootstrap();
  kube::GarbageCollector gc(&api, eventTtl);
  kube::ReplicaSetController replicaSets(&api);
  kube::DeploymentController deployments(&api);
  kube::EndpointsController endpoints(&api);
  kube::MetricsCollector metrics(&api, metricsInterval);
  gc.start();
  replicaSets.start();
  deployments.start();
  endpoints.start();
  // The cluster's DNS, reached through the kube-dns Service.
  kube::ClusterDns dns(&api, clusterDomain);
  auto dnsAddress = splitHostPort(dnsListen.empty() ? hostPort->first + ":0" : dnsListen);
  if (!dnsAddress) {
    std::cerr << "agora kube: --dns_listen: " << dnsAddress.error() << "\n";
    return 2;
  }
  auto dnsPort = dns.start(dnsAddress->first, dnsAddress->second);
  if (!dnsPort) {
    std::cerr << "agora kube: DNS: " << dnsPort.error() << "\n";
    return 1;
  }
  std::string nameserver;
  if (auto wanted = kube::addressAt(serviceCidr, 9); !wanted) {
    std::cerr << "agora kube: --service_cidr: " << wanted.error() << "\n";
    return 2;
  } else if (auto published = dns.publish(*wanted, dnsAddress->first, *dnsPort); !published) {
    LOG(WARNING) << "Pods get the host's DNS: " << published.error();
  } else {
    nameserver = *published;
    LOG(INFO) << "Cluster DNS at " << dnsAddress->first << ":" << *dnsPort << ", for pods at "
              << nameserver << ":53 (" << clusterDomain << ")";
  }
  kube::ApiHttpServer http(api.handler(), tls);
  http.limitRate(apiRateLimit, 2 * apiRateLimit);
  auto port = http.start(hostPort->first, hostPort->second);
  if (!port) {
    std::cerr << "agora kube: " << port.error() << "\n";
    return 1;
  }
  std::string host = hostPort->first.find(':') != std::string::npos
                         ? "[" + hostPort->first + "]" : hostPort->first;
  std::string url = std::string(insecureHttp ? "http" : "https") + "://" + host + ":" +
                    std::to_string(*port);
  // The framework, once its API (and its dashboard, whose address it tells the master) serves.
  std::unique_ptr<kube::KubeFramework> framework;
  std::unique_ptr<kube::HorizontalPodAutoscalerController> hpas;
  if (!master.empty()) {
    kube::KubeFrameworkOptions frameworkOptions;
    frameworkOptions.master = master;
    frameworkOptions.credentials = credentials;
    frameworkOptions.role = role;
    frameworkOptions.dataDir = dataDir;
    frameworkOptions.scheduler.podCidr = podCidr;
    frameworkOptions.scheduler.dnsServer = nameserver;
    frameworkOptions.scheduler.clusterDomain = clusterDomain;
    frameworkOptions.webuiUrl = url + "/dashboard/";
    framework = std::make_unique<kube::KubeFramework>(&api, frameworkOptions);
    framework->start();
    metrics.start();
    hpas = std::make_unique<kube::HorizontalPodAutoscalerController>(&api, &metrics, autoscaler);
    hpas->start();
  }
  // The service proxy on every node, once there are nodes (a master) and an address to read.
  std::unique_ptr<kube::ProxyDaemonController> proxies;
  if (framework) {
    kube::ProxyDaemonOptions proxyOptions;
    char self[4096];
    ssize_t length = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    proxyOptions.program = length > 0 ? std::string(self, static_cast<size_t>(length)) : argv[0];
    proxyOptions.api = url;
    proxyOptions.caPem = caPem;
    proxyOptions.token = token;
    size_t start = 0;
    while (start < lbNodes.size()) {
      size_t comma = lbNodes.find(',', start);
      std::string node = lbNodes.substr(start, comma == std::string::npos ? std::string::npos
                                                                          : comma - start);
      if (!node.empty()) proxyOptions.loadBalancerNodes.insert(node);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    proxies = std::make_unique<kube::ProxyDaemonController>(&api, proxyOptions);
    proxies->start();
  }
  if (!kubeconfig.empty()) {
    kube::KubeconfigEntry entry;
    entry.name = contextName;
    entry.server = url;
    entry.caPem = caPem;
    entry.token = token;
    if (Status merged = kube::mergeKubeconfig(kubeconfig, entry); !merged) {
      std::cerr << "agora kube: kubeconfig: " << merged.error() << "\n";
      return 1;
    }
  }
  loop.watchFd(signals, [&] {
    signalfd_siginfo info;
    while (::read(signals, &info, sizeof(info)) > 0) {
      LOG(INFO) << "Received signal " << info.ssi_signo << "; kube exiting";
    }
    loop.stop();
  });
  LOG(INFO) << "Kube API server at " << url << " (" << store->describe() << ")";
  writeInfoFile(daemonFlags.infoFile, {{"pid", ::getpid()},
                                       {"api", url},
                                       {"ca", insecureHttp ? "" : dataDir + "/pki/ca.crt"},
                                       {"token_file", insecureHttp ? "" : dataDir + "/token"}});
  loop.run();
  if (framework) {
    framework->stop();
  }
  http.stop();
  return 0;
}

}  // namespace agora::cli
