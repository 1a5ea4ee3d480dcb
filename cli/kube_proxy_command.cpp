// `agora kube-proxy`: the service proxy the kube framework runs on each agent (one pod per
// node in kube-system). It reads Services and Endpoints from the kube API every
// --poll_interval and serves what they say (frameworks/k8s-like/proxy/); while the API is
// away it keeps serving what it last knew.

#include <poll.h>
#include <unistd.h>

#include <iostream>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/logging.hpp"
#include "frameworks/k8s-like/proxy/api_client.hpp"
#include "frameworks/k8s-like/proxy/proxy_rules.hpp"
#include "frameworks/k8s-like/proxy/service_proxy.hpp"

namespace agora::cli {

using nlohmann::json;

namespace {

std::string fromEnv(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

}  // namespace

int kubeProxyCommand(int argc, const char* const* argv) {
  std::string api;
  std::string token = fromEnv("AGORA_KUBE_TOKEN");
  std::string caFile;
  std::string nodeIp;
  bool loadBalancer = true;
  Duration pollInterval = milliseconds(250);
  DaemonFlags daemonFlags;
  Flags flags("agora kube-proxy --api=URL --node_ip=IP [flags]",
              "The kube framework's service proxy for one node: listens on each Service's\n"
              "ClusterIP ports, on its NodePorts at --node_ip and on LoadBalancer addresses,\n"
              "and relays connections (TCP) and datagrams (UDP) to the Service's ready\n"
              "endpoints. The kube framework runs it on every agent.");
  flags.add(&api, "api", "The kube API server (https://host:port).");
  flags.add(&token, "token", "The API's bearer token (default: $AGORA_KUBE_TOKEN).");
  flags.add(&caFile, "ca_file", "The API server's CA certificate (default: $AGORA_KUBE_CA, PEM).");
  flags.add(&nodeIp, "node_ip", "This node's address, where NodePorts listen.");
  flags.add(&loadBalancer, "load_balancer", "Serve LoadBalancer Services' addresses here.");
  flags.add(&pollInterval, "poll_interval", "How often Services and Endpoints are read.");
  daemonFlags.addTo(flags, "kube-proxy");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  if (api.empty() || nodeIp.empty()) {
    std::cerr << "agora kube-proxy: --api and --node_ip are required\n";
    return 2;
  }
  std::string ca = fromEnv("AGORA_KUBE_CA");
  if (!caFile.empty()) {
    auto read = readFile(caFile);
    if (!read) {
      std::cerr << "agora kube-proxy: --ca_file: cannot read '" << caFile << "'\n";
      return 2;
    }
    ca = *read;
  }
  auto client = kube::ApiClient::make({api, token, ca, seconds(5)});
  if (!client) {
    std::cerr << "agora kube-proxy: --api: " << client.error() << "\n";
    return 2;
  }
  initLogging(argv[0], daemonFlags.logDir, daemonFlags.verbose);
  int signals = prepareDaemonSignals();
  kube::ServiceProxy proxy;
  proxy.start();
  kube::ProxyNode node{nodeIp, loadBalancer};
  LOG(INFO) << "Service proxy for node " << nodeIp << ", reading " << api;
  writeInfoFile(daemonFlags.infoFile, {{"pid", ::getpid()}});
  std::string lastError;
  std::string lastVersions;
  while (true) {
    auto services = (*client)->get("/api/v1/services");
    auto endpoints = services ? (*client)->get("/api/v1/endpoints") : services;
    if (!services || !endpoints) {
      std::string why = !services ? services.error() : endpoints.error();
      if (why != lastError) {
        LOG(WARNING) << "Keeping the last rules: " << why;
        lastError = why;
      }
    } else {
      try {
        json s = json::parse(*services);
        json e = json::parse(*endpoints);
        std::string versions = s["metadata"].value("resourceVersion", "") + "/" +
                               e["metadata"].value("resourceVersion", "");
        // Unchanged rules are applied again while some address could not be had (another
        // agent's proxy on this machine may hold it, until it goes).
        if (versions != lastVersions || !proxy.failures().empty()) {
          proxy.apply(kube::proxyRules(s.value("items", json::array()),
                                       e.value("items", json::array()), node));
          lastVersions = versions;
        }
        if (!lastError.empty()) {
          LOG(INFO) << "The API answers again";
          lastError.clear();
        }
      } catch (const std::exception& x) {
        LOG(WARNING) << "Cannot read the API's answer: " << x.what();
      }
    }
    pollfd fd{signals, POLLIN, 0};
    int timeout = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(pollInterval).count());
    if (::poll(&fd, 1, timeout) > 0) {
      LOG(INFO) << "Service proxy exiting";
      break;
    }
  }
  proxy.stop();
  return 0;
}

}  // namespace agora::cli
