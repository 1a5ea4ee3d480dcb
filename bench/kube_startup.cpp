// Pod startup latency on a real local cluster: `agora up` (a master and agents running real
// containers), `agora kube` beside it, and P pods (agora/host, `sleep`) created through the API
// at a steady rate. Each pod's latency is from just before its create request to the watch
// event that shows it Running (Kubernetes' pod startup SLI, as its density tests measure it).
//
//   agora-bench-kube-startup --pods=500 --rate=20
//
// Uses a temporary AGORA_HOME; the API server runs plain HTTP on loopback for the benchmark's
// own client (the TLS handshake is not part of a pod's startup).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/net.hpp"
#include "common/process.hpp"

namespace agora::bench {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string agoraBinary() {
  std::string self = selfExecutable();
  return self.substr(0, self.rfind('/')) + "/agora";
}

int runTo(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
          const std::string& log) {
  SpawnOptions spawn;
  spawn.argv = argv;
  spawn.env = env;
  spawn.stdoutPath = log;
  spawn.stderrPath = log;
  auto pid = spawnProcess(spawn);
  if (!pid) return -1;
  int status = 0;
  ::waitpid(*pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Streams a watch over plain HTTP (chunked), calling `event` for each line, until `stop`.
void watch(uint16_t port, const std::string& target, std::atomic<bool>& stop,
           const std::function<void(const json&)>& event) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return;
  }
  timeval tv{0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!::write(fd, request.data(), request.size());
  std::string buffer;
  bool headers = false;
  std::string lines;
  char chunk[65536];
  while (!stop) {
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n == 0) break;
    if (n < 0) continue;  // the timeout: look at `stop`
    buffer.append(chunk, static_cast<size_t>(n));
    if (!headers) {
      size_t end = buffer.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      buffer.erase(0, end + 4);
      headers = true;
    }
    // Chunked: "<hex>\r\n<data>\r\n".
    while (true) {
      size_t eol = buffer.find("\r\n");
      if (eol == std::string::npos) break;
      size_t size = std::stoul(buffer.substr(0, eol), nullptr, 16);
      if (buffer.size() < eol + 2 + size + 2) break;
      lines += buffer.substr(eol + 2, size);
      buffer.erase(0, eol + 2 + size + 2);
    }
    size_t nl;
    while ((nl = lines.find('\n')) != std::string::npos) {
      json e = json::parse(lines.substr(0, nl), nullptr, false);
      lines.erase(0, nl + 1);
      if (!e.is_discarded()) event(e);
    }
  }
  ::close(fd);
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size()))) - 1;
  return values[std::min(index, values.size() - 1)];
}

}  // namespace

int run(int argc, const char* const* argv) {
  int pods = 500;
  double rate = 20;
  int agents = 2;
  std::string home = "/tmp/agora-bench-kube-startup";
  Flags flags("agora-bench-kube-startup [flags]",
              "Pod startup latency on a local cluster (see docs/PERF.md).");
  flags.add(&pods, "pods", "Pods to start.");
  flags.add(&rate, "rate", "Pods created per second.");
  flags.add(&agents, "agents", "Agents in the local cluster.");
  flags.add(&home, "home", "AGORA_HOME for the run (removed first and after).");
  if (auto parsed = flags.parse(argc, argv); !parsed) {
    std::cerr << parsed.error() << "\n";
    return 2;
  }
  (void)removeAll(home);
  (void)makeDirectories(home);
  auto env = currentEnvironment();
  env["AGORA_HOME"] = home;
  env["KUBECONFIG"] = home + "/kubeconfig";
  std::string agora = agoraBinary();
  int cpus = std::max(8, pods / agents / 4 + 8);
  if (runTo({agora, "up", "--port=0", "--kube=false", "--agents=" + std::to_string(agents),
             "--agent_resources=cpus:" + std::to_string(cpus) + ";mem:262144"},
            env, home + "/up.log") != 0) {
    std::cerr << "agora up failed; see " << home << "/up.log\n";
    return 1;
  }
  std::string master;
  auto profile = readFile(home + "/profiles/default/profile.json");
  if (profile) {
    json p = json::parse(*profile, nullptr, false);
    for (const auto& d : p.value("daemons", json::array())) {
      if (d.value("role", "") == "master") master = d.value("http", "");
    }
  }
  uint16_t port = static_cast<uint16_t>(freeLoopbackPort());
  SpawnOptions kube;
  kube.argv = {agora, "kube", "--master=" + master, "--listen=127.0.0.1:" + std::to_string(port),
               "--data_dir=" + home + "/kube", "--insecure_http"};
  kube.env = env;
  kube.stdoutPath = home + "/kube.log";
  kube.stderrPath = home + "/kube.log";
  auto kubePid = spawnProcess(kube);
  std::string api = "127.0.0.1:" + std::to_string(port);
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    auto r = httpGet(api, "/api/v1/nodes", seconds(2));
    if (r && r->status == 200 &&
        json::parse(r->body, nullptr, false).value("items", json::array()).size() ==
            static_cast<size_t>(agents)) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  std::mutex mutex;
  std::map<std::string, Clock::time_point> created;
  std::map<std::string, double> latency;
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    watch(port, "/api/v1/namespaces/default/pods?watch=1", stop, [&](const json& e) {
      const json& pod = e.value("object", json::object());
      std::string name = pod.value("metadata", json::object()).value("name", "");
      bool running = pod.value("status", json::object()).value("phase", "") == "Running";
      if (!running) return;
      std::lock_guard<std::mutex> lock(mutex);
      auto it = created.find(name);
      if (it != created.end() && !latency.count(name)) {
        latency[name] = std::chrono::duration<double>(Clock::now() - it->second).count();
      }
    });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the watch is open

  auto start = Clock::now();
  for (int i = 0; i < pods; ++i) {
    std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(i / rate)));
    std::string name = "startup-" + std::to_string(i);
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}}},
                {"spec",
                 {{"terminationGracePeriodSeconds", 1},
                  {"containers",
                   json::array({{{"name", "c"},
                                 {"image", "agora/host"},
                                 {"command", {"sleep", "3600"}},
                                 {"resources",
                                  {{"requests", {{"cpu", "100m"}, {"memory", "16Mi"}}}}}}})}}}};
    {
      std::lock_guard<std::mutex> lock(mutex);
      created[name] = Clock::now();
    }
    auto r = httpRequest("POST", api, "/api/v1/namespaces/default/pods", pod.dump(), seconds(10));
    if (!r || r->status != 201) {
      std::cerr << "create " << name << ": " << (r ? r->body : r.error()) << "\n";
    }
  }
  deadline = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (latency.size() == static_cast<size_t>(pods)) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  watcher.join();
  std::vector<double> values;
  for (const auto& [name, l] : latency) values.push_back(l * 1000);
  std::printf("pods: %d created at %.0f/s on %d agents; %zu Running\n", pods, rate, agents,
              values.size());
  std::printf("startup latency (create -> Running seen through a watch): p50 %.0f ms, "
              "p90 %.0f ms, p99 %.0f ms, max %.0f ms\n",
              percentile(values, 50), percentile(values, 90), percentile(values, 99),
              percentile(values, 100));

  // Clean up: the pods, the kube framework, the cluster.
  (void)httpRequest("DELETE", api, "/api/v1/namespaces/default/pods", "", seconds(30));
  deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    auto r = httpGet(api, "/api/v1/namespaces/default/pods", seconds(5));
    if (r && json::parse(r->body, nullptr, false).value("items", json::array()).empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (kubePid) {
    ::kill(*kubePid, SIGTERM);
    ::waitpid(*kubePid, nullptr, 0);
  }
  runTo({agora, "delete"}, env, home + "/delete.log");
  (void)removeAll(home);
  return values.size() == static_cast<size_t>(pods) ? 0 : 1;
}

}  // namespace agora::bench

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  return agora::bench::run(argc, argv);
}
