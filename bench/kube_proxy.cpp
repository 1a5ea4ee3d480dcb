// Proxy overhead: requests/s and p99 latency of one HTTP backend (nginx answering a short
// text) reached directly, through the service proxy (a ClusterIP: in iptables mode, the
// kernel's rewrite; in userspace mode, the relay), through the ingress proxy (HTTP/1.1), and through nginx configured as the equivalent
// reverse proxy (keep-alive upstream), all in one run, with wrk on loopback.
//
//   agora-bench-kube-proxy [--seconds=5] [--connections=32] [--threads=1] [--rounds=3] [--only=NAME]
//
// The service and ingress proxies run in this process, as the same classes `agora kube-proxy`
// runs; nginx and wrk are Debian's.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/net.hpp"
#include "common/process.hpp"
#include "frameworks/k8s-like/proxy/ingress_proxy.hpp"
#include "frameworks/k8s-like/proxy/kernel_rules.hpp"
#include "frameworks/k8s-like/proxy/service_proxy.hpp"

namespace agora::bench {

namespace {

struct Load {
  double requestsPerSecond = 0;
  double p99Ms = 0;
  double requests = 0;
  double proxyCpuUsPerRequest = 0;  // 0: not measured (no process of a proxy's on the path)
  std::string errors;
};

// CPU seconds (user and system) a process has used.
double cpuSeconds(pid_t pid) {
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat").value_or("");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The nginx master's worker (its one child).
pid_t nginxWorker(pid_t master) {
  std::string children = readFile("/proc/" + std::to_string(master) + "/task/" +
                                  std::to_string(master) + "/children")
                             .value_or("");
  return static_cast<pid_t>(std::atoi(children.c_str()));
}

double toMs(double value, const std::string& unit) {
  return unit == "us" ? value / 1000 : unit == "s" ? value * 1000 : value;
}

Result<Load> runWrk(const std::string& url, int seconds, int connections, int threads,
                    const std::string& dir) {
  std::string out = dir + "/wrk.out";
  ::unlink(out.c_str());
  SpawnOptions options;
  options.argv = {"/usr/bin/wrk", "-t" + std::to_string(threads), "-c" + std::to_string(connections),
                  "-d" + std::to_string(seconds) + "s", "--latency", url};
  options.env = currentEnvironment();
  options.stdoutPath = out;
  options.stderrPath = out;
  auto pid = spawnProcess(options);
  if (!pid) return Error(pid.error());
  int status = 0;
  ::waitpid(*pid, &status, 0);
  std::string text = readFile(out).value_or("");
  Load load;
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(R"(Requests/sec:\s+([0-9.]+))"))) {
    return Error("wrk said: " + text);
  }
  load.requestsPerSecond = std::stod(m[1]);
  if (std::regex_search(text, m, std::regex(R"((\d+) requests in)"))) load.requests = std::stod(m[1]);
  if (std::regex_search(text, m, std::regex(R"(99%\s+([0-9.]+)(us|ms|s))"))) {
    load.p99Ms = toMs(std::stod(m[1]), m[2]);
  }
  if (std::regex_search(text, m, std::regex(R"(Non-2xx or 3xx responses: (\d+))"))) {
    load.errors = m[1].str() + " non-2xx";
  }
  if (std::regex_search(text, m, std::regex(R"(Socket errors: [^\n]+)"))) {
    load.errors += (load.errors.empty() ? "" : "; ") + m[0].str();
  }
  return load;
}

Result<pid_t> startNginx(const std::string& dir, const std::string& name,
                         const std::string& server) {
  std::string conf = dir + "/" + name + ".conf";
  std::string text = "worker_processes 1;\ndaemon off;\npid " + dir + "/" + name +
                     ".pid;\nerror_log " + dir + "/" + name + ".err;\n"
                     "events { worker_connections 4096; }\n"
                     "http {\n  access_log off;\n  client_body_temp_path " + dir + ";\n"
                     "  proxy_temp_path " + dir + ";\n  fastcgi_temp_path " + dir + ";\n"
                     "  uwsgi_temp_path " + dir + ";\n  scgi_temp_path " + dir + ";\n" +
                     server + "}\n";
  if (Status written = writeFileAtomic(conf, text); !written) return Error(written.error());
  SpawnOptions options;
  options.argv = {"/usr/sbin/nginx", "-c", conf, "-p", dir};
  options.env = currentEnvironment();
  options.stderrPath = dir + "/" + name + ".stderr";
  return spawnProcess(options);
}

bool waitForPort(const std::string& url) {
  for (int i = 0; i < 100; ++i) {
    std::string cmd = "/usr/bin/curl -s -o /dev/null " + url;
    if (std::system(cmd.c_str()) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace

int run(int argc, char** argv) {
  int seconds = 5;
  int connections = 32;
  int threads = 1;
  int rounds = 3;
  std::string only;
  Flags flags("agora-bench-kube-proxy [flags]",
              "Requests/s and p99 through the service proxy, the ingress proxy and nginx.");
  flags.add(&seconds, "seconds", "How long each load runs.");
  flags.add(&connections, "connections", "wrk's connections (kept alive).");
  flags.add(&threads, "threads", "wrk's threads.");
  flags.add(&rounds, "rounds",
            "Rounds of all the paths in turn; each path's median round is reported (the\n"
            "machine's drift spread over all of them).");
  flags.add(&only, "only",
            "Measure only the paths whose names contain this (say 'ingress'); direct is\n"
            "always measured, as the anchor.");
  if (auto parsed = flags.parse(argc, argv); !parsed) {
    std::cerr << parsed.error() << "\n";
    return 2;
  }
  if (!pathExists("/usr/sbin/nginx") || !pathExists("/usr/bin/wrk")) {
    std::cerr << "needs nginx and wrk (Debian's nginx-light and wrk; scripts/install-deps)\n";
    return 1;
  }
  char pattern[] = "/tmp/agora-bench-proxy-XXXXXX";
  std::string dir = ::mkdtemp(pattern);
  int backendPort = freeLoopbackPort();
  int nginxProxyPort = freeLoopbackPort();
  int servicePort = freeLoopbackPort();
  int ingressPort = freeLoopbackPort();
  std::string backend = "127.0.0.1:" + std::to_string(backendPort);
  std::vector<pid_t> nginx;
  auto started = startNginx(dir, "backend",
                            "  server {\n    listen " + backend + ";\n    location / { return 200 "
                            "\"hello from the backend\\n\"; }\n  }\n");
  auto proxyStarted = startNginx(
      dir, "proxy",
      "  upstream backend { server " + backend + "; keepalive 64; }\n"
      "  server {\n    listen 127.0.0.1:" + std::to_string(nginxProxyPort) + ";\n"
      "    location / {\n      proxy_pass http://backend;\n      proxy_http_version 1.1;\n"
      "      proxy_set_header Connection \"\";\n"
      "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }\n  }\n");
  if (!started || !proxyStarted) {
    std::cerr << "nginx: " << (!started ? started.error() : proxyStarted.error()) << "\n";
    return 1;
  }
  nginx = {*started, *proxyStarted};

  kube::ServiceProxy service;
  service.start();
  kube::Frontend frontend;
  frontend.protocol = "TCP";
  frontend.ip = "127.96.255.250";
  frontend.port = static_cast<uint16_t>(servicePort);
  frontend.service = "bench/backend:http";
  frontend.backends = {{"127.0.0.1", static_cast<uint16_t>(backendPort)}};
  service.apply({frontend});

  // The same frontend as kernel rules (a second address, so both are measured).
  kube::Frontend kernelFrontend = frontend;
  kernelFrontend.ip = "127.96.255.251";
  std::unique_ptr<kube::KernelRules> kernel;
  if (Status usable = kube::KernelRules::available(); usable) {
    kernel = std::make_unique<kube::KernelRules>("AGORA-BENCH-" + std::to_string(::getpid() % 100000));
    if (Status applied = kernel->apply({kernelFrontend}); !applied) {
      std::cerr << "iptables: " << applied.error() << "\n";
      kernel.reset();
    }
  } else {
    std::cerr << "no kernel rules here (" << usable.error() << "): the iptables row is left out\n";
  }

  kube::IngressProxy ingress;
  kube::IngressTable table;
  kube::IngressPath root;
  root.path = "/";
  root.backend.service = "bench/backend:80";
  root.backend.endpoints = {{"127.0.0.1", static_cast<uint16_t>(backendPort)}};
  table.hosts[""] = {root};
  ingress.update(table);
  Status listening = ingress.listen("127.97.255.250", static_cast<uint16_t>(ingressPort), 0);

  struct Target {
    std::string name;
    std::string url;
    pid_t cpuOf = 0;  // whose CPU time is the proxy's: this process (-1) or nginx's worker
  };
  pid_t nginxProxyWorker = 0;
  for (int i = 0; i < 100 && nginxProxyWorker == 0; ++i) {
    nginxProxyWorker = nginxWorker(*proxyStarted);
    if (nginxProxyWorker == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::vector<Target> targets = {
      {"direct (nginx backend)", "http://" + backend + "/"},
      {"service proxy, iptables mode", "http://127.96.255.251:" + std::to_string(servicePort) + "/"},
      {"service proxy, userspace mode", "http://127.96.255.250:" + std::to_string(servicePort) + "/", -1},
      {"ingress proxy (HTTP)", "http://127.97.255.250:" + std::to_string(ingressPort) + "/", -1},
      {"nginx reverse proxy", "http://127.0.0.1:" + std::to_string(nginxProxyPort) + "/",
       nginxProxyWorker},
  };
  int rc = 0;
  if (!listening) {
    std::cerr << "ingress: " << listening.error() << "\n";
    rc = 1;
  }
  std::printf("wrk -t%d -c%d -d%ds, keep-alive, one backend (nginx, 'return 200'); median of %d "
              "rounds\n",
              threads, connections, seconds, rounds);
  std::vector<Target> measured;
  for (const Target& t : targets) {
    if (!kernel && t.name.find("iptables") != std::string::npos) continue;
    if (!only.empty() && t.name.find(only) == std::string::npos && measured.size() > 0) continue;
    if (!waitForPort(t.url)) {
      std::cerr << t.name << ": nothing answers at " << t.url << "\n";
      rc = 1;
    }
    measured.push_back(t);
  }
  std::vector<std::vector<Load>> loads(measured.size());
  for (int round = 0; round < rounds && rc == 0; ++round) {
    for (size_t i = 0; i < measured.size() && rc == 0; ++i) {
      pid_t cpuOf = measured[i].cpuOf == -1 ? ::getpid() : measured[i].cpuOf;
      double cpuBefore = cpuOf > 0 ? cpuSeconds(cpuOf) : 0;
      auto load = runWrk(measured[i].url, seconds, connections, threads, dir);
      if (load && cpuOf > 0 && load->requests > 0) {
        load->proxyCpuUsPerRequest = (cpuSeconds(cpuOf) - cpuBefore) * 1e6 / load->requests;
      }
      if (!load) {
        std::cerr << measured[i].name << ": " << load.error() << "\n";
        rc = 1;
        break;
      }
      loads[i].push_back(*load);
    }
  }
  if (rc == 0) {
    std::printf("%-32s %12s %10s %9s %14s\n", "path", "requests/s", "p99 ms", "vs direct",
                "proxy CPU/req");
    double direct = 0;
    for (size_t i = 0; i < measured.size(); ++i) {
      auto runs = loads[i];
      std::sort(runs.begin(), runs.end(), [](const Load& a, const Load& b) {
        return a.requestsPerSecond < b.requestsPerSecond;
      });
      const Load& median = runs[runs.size() / 2];
      if (direct == 0) direct = median.requestsPerSecond;
      std::string all;
      for (const Load& l : loads[i]) all += (all.empty() ? "" : " ") + std::to_string(static_cast<int>(l.requestsPerSecond));
      // The proxy's CPU per request: the median over the rounds.
      std::vector<double> cpu;
      for (const Load& l : loads[i]) cpu.push_back(l.proxyCpuUsPerRequest);
      std::sort(cpu.begin(), cpu.end());
      std::string cpuText = cpu[cpu.size() / 2] > 0
                                ? std::to_string(cpu[cpu.size() / 2]).substr(0, 4) + " us"
                                : "-";
      std::printf("%-32s %12.0f %10.2f %8.0f%% %14s  (rounds: %s) %s\n", measured[i].name.c_str(),
                  median.requestsPerSecond, median.p99Ms, 100 * median.requestsPerSecond / direct,
                  cpuText.c_str(), all.c_str(), median.errors.c_str());
    }
  }
  if (kernel) kernel->remove();
  ingress.stop();
  service.stop();
  for (pid_t pid : nginx) {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
  std::string cleanup = "rm -rf " + dir;
  (void)std::system(cleanup.c_str());
  return rc;
}

}  // namespace agora::bench

int main(int argc, char** argv) { return agora::bench::run(argc, argv); }
