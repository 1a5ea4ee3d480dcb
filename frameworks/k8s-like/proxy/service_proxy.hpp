#pragma once

// The node's service proxy: listens on each frontend of proxyRules() (TCP and UDP) and relays
// what comes to one of the ready endpoints behind it, round robin, or the same endpoint for a
// client while it has ClientIP affinity. Applying new rules changes the backends of a
// listener in place (connections already made stay where they are, as with kube-proxy);
// frontends that went away stop listening. Where several agents share a machine, the first
// proxy to bind an address serves it and the others keep trying at each apply, so one takes
// over when it goes (sharing the port would split ClientIP affinity between proxies).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "frameworks/k8s-like/proxy/proxy_rules.hpp"

namespace agora::kube {

class ServiceProxy {
 public:
  // Traffic is relayed on one thread of its own.
  ServiceProxy();
  ~ServiceProxy();
  ServiceProxy(const ServiceProxy&) = delete;
  ServiceProxy& operator=(const ServiceProxy&) = delete;

  void start();
  void stop();

  // Any thread. Returns once the listeners are as the rules say (or could not be made: those
  // are retried at the next apply and are in failures()).
  void apply(std::vector<Frontend> rules);

  // "TCP 127.96.0.5:80: Address already in use", for each frontend not listening now.
  std::vector<std::string> failures() const;
  uint64_t connections() const;
  // Connections and datagrams turned away: no ready endpoint, or none answered.
  uint64_t refused() const;

  struct Impl;  // Boost.Asio stays out of this header

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace agora::kube
