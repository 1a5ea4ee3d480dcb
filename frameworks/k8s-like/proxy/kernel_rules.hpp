#pragma once

// The service proxy's frontends as kernel rules (iptables' nat table, as kube-proxy's iptables
// mode does): a connection (or UDP flow) to a frontend is rewritten to one of its endpoints
// when it starts (DNAT; a random pick weighted evenly, or the client's earlier endpoint under
// ClientIP affinity, through the `recent` match), so the proxy's own process carries none of
// the traffic. Frontends without endpoints get no rule: the proxy's listener turns their
// connections away. Each proxy owns one chain (and one per endpoint with affinity), jumped
// to from OUTPUT (this machine's own traffic) and PREROUTING (traffic from elsewhere), and
// removes them when it stops.

#include <set>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "frameworks/k8s-like/proxy/proxy_rules.hpp"

namespace agora::kube {

// iptables-restore input (--noflush) that makes `chain` (and its endpoint chains) serve
// `rules`, and deletes the endpoint chains of `stale` that are no longer used. `made` gets the
// endpoint chains it uses.
std::string kernelRulesText(const std::vector<Frontend>& rules, const std::string& chain,
                            const std::set<std::string>& stale, std::set<std::string>* made);

class KernelRules {
 public:
  // `chain`: at most 20 characters ("AGORA-" and a hash, say).
  explicit KernelRules(std::string chain);
  ~KernelRules();

  // Whether this machine lets us (root, iptables-restore on the PATH, a nat table).
  static Status available();

  Status apply(const std::vector<Frontend>& rules);
  // Takes the jumps and chains away.
  void remove();

  // Removes the chains (AGORA-xxxxxxxx) of proxies that are gone without removing them
  // (killed): a live proxy holds a lock on /run/agora-kube-proxy/CHAIN.lock for as long as it
  // runs. Run by each proxy as it starts and by `agora stop`. Returns how many it removed.
  static int collectStale();

  const std::string& chain() const { return chain_; }

 private:
  std::string chain_;
  std::set<std::string> endpointChains_;
  bool jumped_ = false;
  int lock_ = -1;  // held while the chain is ours
};

}  // namespace agora::kube
