#pragma once

// A local cluster with the kube framework, as users start it (`agora up`, in a profile of its
// own under a temporary AGORA_HOME, its kubeconfig a temporary file), and the real kubectl
// against it. Stopped (and its profile deleted) when the test ends, whatever happens.

#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "isolators/images/archive.hpp"
#include "isolators/images/store.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::testing {

// The environment for `agora up` in a test: its own kube network ranges (ClusterIPs, pod
// addresses, load-balancer addresses, node ports), so that clusters of tests running side by
// side on this machine never serve one another's addresses.
inline std::map<std::string, std::string> kubeNetworkEnv() {
  static int made = 0;
  int n = (static_cast<int>(::getpid()) * 7 + made++) % 250 + 1;
  std::string octet = std::to_string(n);
  return {{"AGORA_KUBE_PORT", "0"},
          {"AGORA_KUBE_SERVICE_CIDR", "127.96." + octet + ".0/24"},
          {"AGORA_KUBE_POD_CIDR", "127.98." + octet + ".0/24"},
          {"AGORA_KUBE_LB_POOL", "127.97." + octet + ".0/24"},
          {"AGORA_KUBE_NODE_PORT_RANGE",
           std::to_string(30000 + n * 10) + "-" + std::to_string(30009 + n * 10)}};
}

class KubeCluster {
 public:
  // `agents` agents with `resources` each; `extra` flags for `agora up` (--ha); `env` for the
  // daemons (AGORA_<FLAG> sets a daemon's flag).
  explicit KubeCluster(int agents = 2, const std::string& resources = "cpus:2;mem:2048",
                       const std::vector<std::string>& extra = {},
                       const std::map<std::string, std::string>& env = {}) {
    env_ = kubeNetworkEnv();
    for (const auto& [name, value] : env) env_[name] = value;
    env_["AGORA_HOME"] = home_.path();
    env_["KUBECONFIG"] = home_.path() + "/kubeconfig";
    std::vector<std::string> args = {"up", "--port=0", "--agents=" + std::to_string(agents),
                                     "--agent_resources=" + resources};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult up = agora(args);
    upOutput_ = up.output;
    up_ = up.exitCode == 0;
  }
  ~KubeCluster() { agora({"delete"}); }

  bool up() const { return up_; }

  // The pid of the profile's daemon of `role` ("kube", "master", "agent"), or 0.
  int daemonPid(const std::string& role) const {
    nlohmann::json profile = nlohmann::json::parse(
        readFile(home_.path() + "/profiles/default/profile.json").value_or("{}"), nullptr, false);
    if (!profile.is_object()) return 0;
    for (const auto& d : profile.value("daemons", nlohmann::json::array())) {
      if (d.value("role", "") == role) return d.value("pid", 0);
    }
    return 0;
  }
  const std::string& upOutput() const { return upOutput_; }

  // The last `bytes` of the kube framework's and the first agent's logs, for a failure's message.
  std::string logTails(size_t bytes = 6000) const {
    std::string out;
    for (const char* log : {"kube/kube.log", "agent-1/agent.log"}) {
      std::string text = readFile(home_.path() + "/profiles/default/" + log).value_or("");
      out += std::string("\n--- ") + log + ":\n" +
             (text.size() > bytes ? text.substr(text.size() - bytes) : text);
    }
    return out;
  }
  const std::string& home() const { return home_.path(); }
  std::string kubeconfig() const { return home_.path() + "/kubeconfig"; }

  CommandResult agora(const std::vector<std::string>& args, Duration timeout = seconds(90)) {
    std::vector<std::string> argv = {AGORA_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, timeout, env_);
  }

  // The real kubectl (`version` "1.27" runs kubectl.1.27 from beside it), output and status.
  CommandResult kubectl(const std::vector<std::string>& args, const std::string& version = "",
                        Duration timeout = seconds(60)) {
    std::vector<std::string> argv = {"/usr/bin/env", kubectlBinary(version),
                                     "--cache-dir=" + home_.path() + "/kube-cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, timeout, env_);
  }

  // kubectl's output, parsed as JSON (null when it is not JSON).
  nlohmann::json json(const std::vector<std::string>& args) {
    std::vector<std::string> withOutput = args;
    withOutput.push_back("-o");
    withOutput.push_back("json");
    return nlohmann::json::parse(kubectl(withOutput).output, nullptr, false);
  }

  static std::string kubectlBinary(const std::string& version) {
    if (version.empty()) {
      return "kubectl";
    }
    CommandResult where = runCommand({"/bin/sh", "-c", "dirname \"$(readlink -f \"$(command -v kubectl)\")\""},
                                     seconds(10));
    std::string dir = where.output.substr(0, where.output.find('\n'));
    return dir + "/kubectl." + version;
  }

  static bool haveKubectl(const std::string& version = "") {
    return runCommand({"/usr/bin/env", kubectlBinary(version), "version", "--client"}, seconds(20))
               .exitCode == 0;
  }

 private:
  TempDir home_;
  std::map<std::string, std::string> env_;
  std::string upOutput_;
  bool up_ = false;
};

// A container on the host's filesystem (the agora/host image) running `script` with sh, with
// small requests.
inline nlohmann::json hostContainer(const std::string& name, const std::string& script) {
  return {{"name", name},
          {"image", "agora/host"},
          {"command", {"/bin/sh", "-c", script}},
          {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "32Mi"}}}}}};
}

// A small image (busybox) imported into the cluster's image store as `name`; false where this
// machine cannot run images (not root, no overlayfs, no busybox-static).
inline bool importTestImage(KubeCluster& k, const std::string& name) {
  std::string filesystems = readFile("/proc/filesystems").value_or("");
  if (::geteuid() != 0 || filesystems.find("overlay") == std::string::npos ||
      !pathExists("/bin/busybox")) {
    return false;
  }
  std::string dir = k.home() + "/image";
  EXPECT_TRUE(makeDirectories(dir).ok());
  std::vector<images::TarEntry> entries = {
      {"bin", 'd', "", "", 0755},
      {"bin/busybox", 'f', readFile("/bin/busybox").value_or(""), "", 0755},
      {"tmp", 'd', "", "", 01777}};
  for (const char* applet : {"sh", "sleep", "touch", "test", "date", "echo", "cat", "wget", "nslookup", "grep", "stat"}) {
    entries.push_back({std::string("bin/") + applet, 'l', "", "busybox", 0777});
  }
  EXPECT_TRUE(images::writeTar(dir + "/layer.tar", entries).ok());
  images::RunConfig run;
  run.cmd = {"/bin/sh"};
  run.env = {"PATH=/bin"};
  EXPECT_TRUE(images::writeOciArchive(dir + "/image.tar", {dir + "/layer.tar"}, run, name).ok());
  auto imported = k.agora({"image", "import", dir + "/image.tar", "--name=" + name});
  EXPECT_EQ(imported.exitCode, 0) << imported.output;
  return imported.exitCode == 0;
}

}  // namespace agora::testing

// Skips a test without kubectl; fails it when its cluster did not come up.
#define REQUIRE_CLUSTER(cluster)                                               \
  if (!agora::testing::KubeCluster::haveKubectl()) GTEST_SKIP() << "no kubectl on the PATH"; \
  ASSERT_TRUE((cluster).up()) << (cluster).upOutput()
