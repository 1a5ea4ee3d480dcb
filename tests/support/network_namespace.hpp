#pragma once

// A network namespace of the test's own, joined to the host by a veth pair with link-local
// addresses that exist only on that pair (169.254.N.1 on the host side, .2 inside). Processes
// started through exec() live inside it; cut() and heal() take the link down and up. Deleted,
// with its veth, when it goes away.

#include <string>
#include <vector>

#include "common/result.hpp"

namespace agora::testing {

class NetworkNamespace {
 public:
  NetworkNamespace();
  ~NetworkNamespace();
  NetworkNamespace(const NetworkNamespace&) = delete;
  NetworkNamespace& operator=(const NetworkNamespace&) = delete;

  // Root and iproute2 are needed.
  static bool available();

  Status create();
  Status cut();
  Status heal();

  // argv run inside the namespace (`ip netns exec NAME argv...`).
  std::vector<std::string> exec(const std::vector<std::string>& argv) const;

  const std::string& hostIp() const { return hostIp_; }
  const std::string& innerIp() const { return innerIp_; }

 private:
  Status ip(const std::vector<std::string>& args);

  std::string name_;
  std::string hostVeth_;
  std::string innerVeth_;
  std::string hostIp_;
  std::string innerIp_;
  bool created_ = false;
};

}  // namespace agora::testing
