#include "frameworks/k8s-like/proxy/kernel_rules.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <glog/logging.h>

#include "common/fs.hpp"
#include "common/process.hpp"

namespace agora::kube {

namespace {

// Runs an iptables program (found in the system's directories) with `input` on stdin; its
// output, or why it failed.
Result<std::string> runIptables(std::vector<std::string> argv, const std::string& input) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    if (::access((dir + argv[0]).c_str(), X_OK) == 0) {
      argv[0] = dir + argv[0];
      break;
    }
  }
  char pattern[] = "/tmp/agora-iptables-XXXXXX";
  int fd = ::mkstemp(pattern);
  if (fd < 0) return Error("cannot make a temporary file");
  ::close(fd);
  std::string in = pattern;
  std::string out = in + ".out";
  if (Status written = writeFileAtomic(in, input); !written) return Error(written.error());
  SpawnOptions options;
  options.argv = argv;
  options.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
  options.stdinPath = in;
  options.stdoutPath = out;
  options.stderrPath = out;
  auto pid = spawnProcess(options);
  std::string output;
  int status = -1;
  if (pid) {
    while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
    }
    output = readFile(out).value_or("");
  }
  ::unlink(in.c_str());
  ::unlink(out.c_str());
  if (!pid) return Error(pid.error());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error(argv[0] + " failed: " + output);
  }
  return output;
}

constexpr char kLockDirectory[] = "/run/agora-kube-proxy";

std::string lockPath(const std::string& chain) {
  return std::string(kLockDirectory) + "/" + chain + ".lock";
}

// Takes `chain`'s lock without waiting: the open descriptor, or -1 when someone holds it.
int takeLock(const std::string& chain) {
  if (!makeDirectories(kLockDirectory)) return -1;
  int fd = ::open(lockPath(chain).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Deletes the jumps to `chain`, then it and its endpoint chains (`all`: the nat table's
// `-S` listing, where they are found).
void deleteChain(const std::string& chain, const std::string& all) {
  for (const char* from : {"OUTPUT", "PREROUTING"}) {
    while (runIptables({"iptables", "-w", "5", "-t", "nat", "-D", from, "-j", chain}, "")) {
    }
  }
  std::vector<std::string> chains = {chain};
  size_t at = 0;
  std::string prefix = "-N " + chain + "-";
  while ((at = all.find(prefix, at)) != std::string::npos) {
    size_t end = all.find('\n', at);
    chains.push_back(all.substr(at + 3, end == std::string::npos ? std::string::npos : end - at - 3));
    at += prefix.size();
  }
  std::string text = "*nat\n";
  for (const std::string& c : chains) text += ":" + c + " - [0:0]\n";
  for (const std::string& c : chains) text += "-X " + c + "\n";
  text += "COMMIT\n";
  if (auto removed = runIptables({"iptables-restore", "-w", "5", "--noflush"}, text); !removed) {
    LOG(WARNING) << "Cannot remove the chain " << chain << ": " << removed.error();
  }
}

std::string match(const Frontend& f) {
  std::string protocol = f.protocol == "UDP" ? "udp" : "tcp";
  return "-d " + f.ip + "/32 -p " + protocol + " -m " + protocol + " --dport " +
         std::to_string(f.port);
}

std::string target(const Backend& b) { return b.ip + ":" + std::to_string(b.port); }

}  // namespace

std::string kernelRulesText(const std::vector<Frontend>& rules, const std::string& chain,
                            const std::set<std::string>& stale, std::set<std::string>* made) {
  std::string declare = ":" + chain + " - [0:0]\n";
  std::string body;
  int next = 0;
  made->clear();
  for (const Frontend& f : rules) {
    const auto& all = f.backends;
    if (all.empty()) continue;  // the listener refuses
    std::string comment = " -m comment --comment \"" + f.service + "\"";
    std::vector<std::string> picks;  // what each endpoint's rule jumps to
    for (const Backend& b : all) {
      if (f.affinitySeconds <= 0) {
        picks.push_back("-j DNAT --to-destination " + target(b));
        continue;
      }
      // An endpoint chain remembers its clients (recent) and sends them there.
      std::string endpointChain = chain + "-" + std::to_string(next++);
      made->insert(endpointChain);
      declare += ":" + endpointChain + " - [0:0]\n";
      body += "-A " + endpointChain + " -p " + (f.protocol == "UDP" ? "udp" : "tcp") +
              " -m recent --name " + endpointChain +
              " --set --rsource -j DNAT --to-destination " + target(b) + "\n";
      body += "-A " + chain + " " + match(f) + comment + " -m recent --name " + endpointChain +
              " --rcheck --seconds " + std::to_string(f.affinitySeconds) +
              " --reap --rsource -j " + endpointChain + "\n";
      picks.push_back("-j " + endpointChain);
    }
    for (size_t i = 0; i < picks.size(); ++i) {
      std::string rule = "-A " + chain + " " + match(f) + comment;
      size_t left = picks.size() - i;
      if (left > 1) {
        char probability[32];
        std::snprintf(probability, sizeof(probability), "%.5f", 1.0 / static_cast<double>(left));
        rule += std::string(" -m statistic --mode random --probability ") + probability;
      }
      body += rule + " " + picks[i] + "\n";
    }
  }
  std::string removed;
  for (const std::string& old : stale) {
    if (made->count(old)) continue;
    declare += ":" + old + " - [0:0]\n";  // emptied, then deleted
    removed += "-X " + old + "\n";
  }
  return "*nat\n" + declare + body + removed + "COMMIT\n";
}

KernelRules::KernelRules(std::string chain) : chain_(std::move(chain)) {}

KernelRules::~KernelRules() { remove(); }

Status KernelRules::available() {
  if (::geteuid() != 0) return Error("not root");
  auto listed = runIptables({"iptables", "-w", "5", "-t", "nat", "-S", "OUTPUT"}, "");
  if (!listed) return Error(listed.error());
  return ok();
}

Status KernelRules::apply(const std::vector<Frontend>& rules) {
  if (lock_ < 0) {
    lock_ = takeLock(chain_);
    if (lock_ < 0) {
      return Error("the chain " + chain_ + " is another live proxy's (" + lockPath(chain_) +
                   " is locked)");
    }
  }
  std::set<std::string> made;
  std::string text = kernelRulesText(rules, chain_, endpointChains_, &made);
  auto restored = runIptables({"iptables-restore", "-w", "5", "--noflush"}, text);
  if (!restored) {
    // Rules that no longer say what the Services say go: the listeners relay meanwhile.
    (void)runIptables({"iptables-restore", "-w", "5", "--noflush"},
                      "*nat\n:" + chain_ + " - [0:0]\nCOMMIT\n");
    return Error(restored.error());
  }
  endpointChains_ = std::move(made);
  if (!jumped_) {
    for (const char* from : {"OUTPUT", "PREROUTING"}) {
      // Once only: a jump left by an earlier run of this proxy stays the one.
      if (!runIptables({"iptables", "-w", "5", "-t", "nat", "-C", from, "-j", chain_}, "")) {
        auto inserted =
            runIptables({"iptables", "-w", "5", "-t", "nat", "-I", from, "-j", chain_}, "");
        if (!inserted) return Error(inserted.error());
      }
    }
    jumped_ = true;
  }
  return ok();
}

void KernelRules::remove() {
  if (lock_ < 0) return;
  auto listed = runIptables({"iptables", "-w", "5", "-t", "nat", "-S"}, "");
  deleteChain(chain_, listed.value_or(""));
  endpointChains_.clear();
  jumped_ = false;
  ::unlink(lockPath(chain_).c_str());
  ::close(lock_);
  lock_ = -1;
}

int KernelRules::collectStale() {
  if (::geteuid() != 0) return 0;
  auto listed = runIptables({"iptables", "-w", "5", "-t", "nat", "-S"}, "");
  if (!listed) return 0;
  int removed = 0;
  size_t at = 0;
  while ((at = listed->find("-N AGORA-", at)) != std::string::npos) {
    size_t end = listed->find('\n', at);
    std::string chain = listed->substr(at + 3, end == std::string::npos ? std::string::npos
                                                                       : end - at - 3);
    at += 3;
    // A proxy's own chain is "AGORA-" and 8 hex digits; its endpoint chains go with it.
    if (chain.size() != 14 || chain.find_first_not_of("0123456789abcdef", 6) != std::string::npos) {
      continue;
    }
    int lock = takeLock(chain);
    if (lock < 0) continue;  // its proxy lives
    LOG(INFO) << "Removing the chain " << chain << " of a proxy that is gone";
    deleteChain(chain, *listed);
    ::unlink(lockPath(chain).c_str());
    ::close(lock);
    ++removed;
  }
  return removed;
}

}  // namespace agora::kube
