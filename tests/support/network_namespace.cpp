#include "tests/support/network_namespace.hpp"

#include <unistd.h>

#include <random>

#include "common/fs.hpp"
#include "tests/support/process_cluster.hpp"

namespace agora::testing {

namespace {

constexpr const char* kIp = "/usr/sbin/ip";

}  // namespace

NetworkNamespace::NetworkNamespace() {
  std::random_device device;
  int subnet = 1 + static_cast<int>(device() % 250);
  std::string tag = std::to_string(::getpid() % 100000) + "x" + std::to_string(subnet);
  name_ = "agora-" + tag;
  hostVeth_ = "ah" + tag;
  innerVeth_ = "ai" + tag;
  hostIp_ = "169.254." + std::to_string(subnet) + ".1";
  innerIp_ = "169.254." + std::to_string(subnet) + ".2";
}

NetworkNamespace::~NetworkNamespace() {
  if (created_) {
    (void)ip({"link", "del", hostVeth_});
    (void)ip({"netns", "del", name_});
  }
}

bool NetworkNamespace::available() { return ::geteuid() == 0 && pathExists(kIp); }

Status NetworkNamespace::ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kIp};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = runCommand(argv, seconds(10));
  if (r.exitCode != 0) {
    std::string line;
    for (const std::string& a : argv) {
      line += a + " ";
    }
    return Error(line + "failed: " + r.output);
  }
  return Status();
}

Status NetworkNamespace::create() {
  std::vector<std::vector<std::string>> steps = {
      {"netns", "add", name_},
      {"link", "add", hostVeth_, "type", "veth", "peer", "name", innerVeth_},
      {"link", "set", innerVeth_, "netns", name_},
      {"addr", "add", hostIp_ + "/30", "dev", hostVeth_},
      {"link", "set", hostVeth_, "up"},
      {"netns", "exec", name_, kIp, "addr", "add", innerIp_ + "/30", "dev", innerVeth_},
      {"netns", "exec", name_, kIp, "link", "set", innerVeth_, "up"},
      {"netns", "exec", name_, kIp, "link", "set", "lo", "up"},
  };
  created_ = true;
  for (const auto& step : steps) {
    Status s = ip(step);
    if (!s) {
      return s;
    }
  }
  return Status();
}

Status NetworkNamespace::cut() { return ip({"link", "set", hostVeth_, "down"}); }

Status NetworkNamespace::heal() { return ip({"link", "set", hostVeth_, "up"}); }

std::vector<std::string> NetworkNamespace::exec(const std::vector<std::string>& argv) const {
  std::vector<std::string> out = {kIp, "netns", "exec", name_};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

}  // namespace agora::testing
