#pragma once

// A real ZooKeeper server (Debian's `zookeeper` package) for tests: its own data directory, a
// free port on loopback, a short tick time so sessions expire quickly. Started by the fixture,
// stopped (and its directory removed) when it goes away, even if the test fails.

#include <sys/types.h>

#include <string>

#include "common/result.hpp"
#include "tests/support/temp_dir.hpp"

namespace agora::testing {

class ZooKeeperServer {
 public:
  ZooKeeperServer();
  ~ZooKeeperServer();
  ZooKeeperServer(const ZooKeeperServer&) = delete;
  ZooKeeperServer& operator=(const ZooKeeperServer&) = delete;

  // Starts the server and waits until it answers; on the same port again after stop().
  Status start();
  void stop();
  bool running() const { return pid_ > 0; }

  // "127.0.0.1:PORT".
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // "zk://127.0.0.1:PORT/<path>".
  std::string url(const std::string& path) const { return "zk://" + address() + path; }

  // True when a ZooKeeper server package is installed here.
  static bool available();

 private:
  TempDir dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace agora::testing
