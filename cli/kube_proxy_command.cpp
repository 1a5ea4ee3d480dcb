// `agora kube-proxy`: the service proxy the kube framework runs on each agent (one pod per
// node in kube-system). It reads Services and Endpoints from the kube API every
// --poll_interval and serves what they say (frameworks/k8s-like/proxy/); while the API is
// away it keeps serving what it last knew.

#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <chrono>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/histogram.hpp"
#include "common/http.hpp"
#include "common/logging.hpp"
#include "frameworks/k8s-like/proxy/api_client.hpp"
#include "frameworks/k8s-like/proxy/ingress_proxy.hpp"
#include "frameworks/k8s-like/proxy/ingress_rules.hpp"
#include "frameworks/k8s-like/proxy/kernel_rules.hpp"
#include "frameworks/k8s-like/proxy/pod_files.hpp"
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
  std::string nodeName;
  std::string mode = "auto";
  bool loadBalancer = true;
  Duration pollInterval = milliseconds(250);
  std::string metricsListen = "127.0.0.1:0";
  DaemonFlags daemonFlags;
  Flags flags("agora kube-proxy --api=URL --node_ip=IP [flags]",
              "The kube framework's service proxy for one node: listens on each Service's\n"
              "ClusterIP ports, on its NodePorts at --node_ip and on LoadBalancer addresses,\n"
              "and relays connections (TCP) and datagrams (UDP) to the Service's ready\n"
              "endpoints; with --load_balancer, serves Ingresses (HTTP on port 80, TLS on 443)\n"
              "at the ingress address too. The kube framework runs it on every agent.");
  flags.add(&api, "api", "The kube API server (https://host:port).");
  flags.add(&token, "token", "The API's bearer token (default: $AGORA_KUBE_TOKEN).");
  flags.add(&caFile, "ca_file", "The API server's CA certificate (default: $AGORA_KUBE_CA, PEM).");
  flags.add(&nodeIp, "node_ip", "This node's address, where NodePorts listen.");
  flags.add(&nodeName, "node_name", "This node's name (default: --node_ip).");
  flags.add(&mode, "mode",
            "iptables: connections are rewritten to endpoints by the kernel (nat rules, as\n"
            "kube-proxy's iptables mode), the proxy's listeners only turning away those of\n"
            "Services without endpoints; userspace: the proxy relays every connection; auto:\n"
            "iptables where this machine allows it (root, iptables-restore).");
  flags.add(&loadBalancer, "load_balancer", "Serve LoadBalancer Services' addresses here.");
  flags.add(&pollInterval, "poll_interval", "How often Services and Endpoints are read.");
  flags.add(&metricsListen, "metrics_listen",
            "Where /metrics (Prometheus text) and /healthz are served, HOST:PORT (port 0: any;\n"
            "the log and the info file say which).");
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
  if (mode != "auto" && mode != "iptables" && mode != "userspace") {
    std::cerr << "agora kube-proxy: --mode: auto, iptables or userspace, not '" << mode << "'\n";
    return 2;
  }
  if (nodeName.empty()) nodeName = nodeIp;
  initLogging(argv[0], daemonFlags.logDir, daemonFlags.verbose);
  // The kernel's rules, in a chain of this proxy's own (named after its cluster and node).
  std::unique_ptr<kube::KernelRules> kernel;
  if (mode != "userspace") {
    Status usable = kube::KernelRules::available();
    if (usable) {
      // Chains left by proxies killed before they could remove them.
      kube::KernelRules::collectStale();
      char chain[32];
      std::snprintf(chain, sizeof(chain), "AGORA-%08zx",
                    std::hash<std::string>()(api + "/" + nodeName) & 0xffffffffu);
      kernel = std::make_unique<kube::KernelRules>(chain);
      LOG(INFO) << "Connections are rewritten by the kernel (iptables chain " << chain << ")";
    } else if (mode == "iptables") {
      std::cerr << "agora kube-proxy: --mode=iptables: " << usable.error() << "\n";
      return 1;
    } else {
      LOG(WARNING) << "The proxy relays connections itself (no iptables: " << usable.error()
                   << ")";
    }
  }
  int signals = prepareDaemonSignals();
  kube::ServiceProxy proxy;
  proxy.start();
  kube::IngressProxy ingress;
  std::string ingressAddress;  // where it listens, once it does
  kube::ProxyNode node{nodeIp, loadBalancer};
  LOG(INFO) << "Service proxy for node " << nodeIp << ", reading " << api;
  // What an operator alerts on: connections relayed and turned away, requests through the
  // ingress, rule syncs and their time, and the API being away.
  struct {
    std::mutex mutex;
    Histogram syncSeconds;
    uint64_t apiErrors = 0;
    size_t frontends = 0;
  } stats;
  HttpServer metricsServer;
  metricsServer.route("/healthz", [](const HttpRequest&, HttpResponder respond) {
    respond(HttpResponse::text("ok"));
  });
  metricsServer.route("/metrics", [&](const HttpRequest&, HttpResponder respond) {
    std::ostringstream out;
    auto counter = [&](const char* name, const char* help, double value, const char* type) {
      out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
          << name << " " << value << "\n";
    };
    counter("agora_kube_proxy_connections_total",
            "Connections the proxy relayed to an endpoint (in iptables mode the kernel carries "
            "them and they are not counted).",
            static_cast<double>(proxy.connections()), "counter");
    counter("agora_kube_proxy_connections_refused_total",
            "Connections turned away: their Service had no ready endpoint.",
            static_cast<double>(proxy.refused()), "counter");
    counter("agora_kube_ingress_requests_total", "HTTP requests routed by the ingress proxy.",
            static_cast<double>(ingress.requests()), "counter");
    std::lock_guard<std::mutex> lock(stats.mutex);
    counter("agora_kube_proxy_frontends", "Addresses and ports the proxy serves.",
            static_cast<double>(stats.frontends), "gauge");
    counter("agora_kube_proxy_api_errors_total",
            "Reads of the kube API that failed (the proxy keeps its last rules meanwhile).",
            static_cast<double>(stats.apiErrors), "counter");
    counter("agora_kube_proxy_kernel_rules", "1 when the kernel rewrites connections (iptables).",
            kernel ? 1 : 0, "gauge");
    out << "# HELP agora_kube_proxy_sync_rules_seconds Time to apply changed rules.\n"
        << "# TYPE agora_kube_proxy_sync_rules_seconds histogram\n";
    stats.syncSeconds.write(out, "agora_kube_proxy_sync_rules_seconds");
    HttpResponse r = HttpResponse::text(out.str());
    r.contentType = "text/plain; version=0.0.4; charset=utf-8";
    respond(std::move(r));
  });
  std::string metricsAddress;
  if (auto where = splitHostPort(metricsListen); !where) {
    std::cerr << "agora kube-proxy: --metrics_listen: " << where.error() << "\n";
    return 2;
  } else if (auto port = metricsServer.start(where->first, where->second); !port) {
    LOG(WARNING) << "No metrics: " << port.error();
  } else {
    metricsAddress = where->first + ":" + std::to_string(*port);
    LOG(INFO) << "Metrics at http://" << metricsAddress << "/metrics";
  }
  writeInfoFile(daemonFlags.infoFile, {{"pid", ::getpid()}, {"metrics", metricsAddress}});
  std::string lastError;
  std::string lastVersions;
  bool kernelRetry = false;
  bool ingressRetry = false;
  while (true) {
    auto services = (*client)->get("/api/v1/services");
    auto endpoints = services ? (*client)->get("/api/v1/endpoints") : services;
    auto ingresses = endpoints ? (*client)->get("/apis/networking.k8s.io/v1/ingresses") : endpoints;
    auto secrets = ingresses ? (*client)->get("/api/v1/secrets") : ingresses;
    auto configMaps = secrets ? (*client)->get("/api/v1/configmaps") : secrets;
    auto pods = configMaps ? (*client)->get("/api/v1/pods?fieldSelector=" +
                                            urlEncode("spec.nodeName=" + nodeName))
                           : configMaps;
    if (!services || !endpoints || !ingresses || !secrets || !configMaps || !pods) {
      std::string why = !services ? services.error() : !endpoints ? endpoints.error()
                        : !ingresses ? ingresses.error() : !secrets ? secrets.error()
                        : !configMaps ? configMaps.error() : pods.error();
      if (why != lastError) {
        LOG(WARNING) << "Keeping the last rules: " << why;
        lastError = why;
      }
      std::lock_guard<std::mutex> lock(stats.mutex);
      ++stats.apiErrors;
    } else {
      try {
        json s = json::parse(*services);
        json e = json::parse(*endpoints);
        json i = json::parse(*ingresses);
        json t = json::parse(*secrets);
        json m = json::parse(*configMaps);
        json p = json::parse(*pods);
        std::string versions = s["metadata"].value("resourceVersion", "") + "/" +
                               e["metadata"].value("resourceVersion", "") + "/" +
                               i["metadata"].value("resourceVersion", "") + "/" +
                               t["metadata"].value("resourceVersion", "") + "/" +
                               m["metadata"].value("resourceVersion", "") + "/" +
                               p["metadata"].value("resourceVersion", "");
        // Unchanged rules are applied again while some address could not be had (another
        // agent's proxy on this machine may hold it, until it goes).
        bool changed = versions != lastVersions;
        lastVersions = versions;
        if (changed) {
          // ConfigMap and Secret volumes of this node's pods follow their objects.
          int updated = kube::refreshPodFiles(p.value("items", json::array()),
                                              m.value("items", json::array()),
                                              t.value("items", json::array()), nodeName);
          if (updated > 0) LOG(INFO) << "Updated " << updated << " files of pods' volumes";
        }
        if (changed || !proxy.failures().empty() || kernelRetry || ingressRetry) {
          auto syncStart = std::chrono::steady_clock::now();
          const json serviceItems = s.value("items", json::array());
          const json endpointItems = e.value("items", json::array());
          std::vector<kube::Frontend> rules = kube::proxyRules(serviceItems, endpointItems, node);
          size_t frontends = rules.size();
          if (kernel && (changed || kernelRetry)) {
            Status applied = kernel->apply(rules);
            if (!applied && !kernelRetry) LOG(WARNING) << "Kernel rules: " << applied.error();
            kernelRetry = !applied;  // meanwhile the listeners relay
          }
          proxy.apply(std::move(rules));
          {
            std::lock_guard<std::mutex> lock(stats.mutex);
            stats.frontends = frontends;
            stats.syncSeconds.observe(std::chrono::duration<double>(
                                          std::chrono::steady_clock::now() - syncStart)
                                          .count());
          }
          ingress.update(kube::ingressRules(i.value("items", json::array()), serviceItems,
                                            endpointItems, t.value("items", json::array())));
          // The ingress address: the controller's Service's load-balancer address.
          std::string address;
          for (const json& service : serviceItems) {
            const json meta = service.value("metadata", json::object());
            const json annotations = meta.value("annotations", json::object());
            if (annotations.value(kube::kIngressControllerAnnotation, "") != "true") continue;
            const json lb = service.value("status", json::object())
                                .value("loadBalancer", json::object())
                                .value("ingress", json::array());
            if (!lb.empty()) address = lb[0].value("ip", "");
          }
          if (loadBalancer && !address.empty() && address != ingressAddress) {
            ingress.stop();
            ingressAddress.clear();
          }
          ingressRetry = false;
          if (loadBalancer && !address.empty() && !ingress.listening()) {
            if (Status listening = ingress.listen(address, 80, 443); listening) {
              LOG(INFO) << "Serving Ingresses on " << address << ":80 and :443";
              ingressAddress = address;
            } else {
              ingressRetry = true;  // another agent's proxy on this machine may serve it
              VLOG(1) << "Ingress: " << listening.error();
            }
          }
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
  metricsServer.stop();
  if (kernel) kernel->remove();
  ingress.stop();
  proxy.stop();
  return 0;
}

}  // namespace agora::cli
