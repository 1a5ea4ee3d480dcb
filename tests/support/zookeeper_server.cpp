#include "tests/support/zookeeper_server.hpp"

#include <unistd.h>

#include "common/fs.hpp"
#include "common/net.hpp"
#include "tests/support/process_cluster.hpp"

namespace agora::testing {

namespace {

constexpr const char* kServerScript = "/usr/share/zookeeper/bin/zkServer.sh";

}  // namespace

ZooKeeperServer::ZooKeeperServer() = default;

ZooKeeperServer::~ZooKeeperServer() { stop(); }

bool ZooKeeperServer::available() { return pathExists(kServerScript); }

Status ZooKeeperServer::start() {
  if (port_ == 0) {
    port_ = freeLoopbackPort();
  }
  std::string data = dir_.path() + "/data";
  Status made = makeDirectories(data);
  if (!made) {
    return made;
  }
  std::string config = dir_.path() + "/zoo.cfg";
  Status written = writeFileAtomic(
      config, "tickTime=100\ninitLimit=10\nsyncLimit=5\ndataDir=" + data +
                  "\nclientPort=" + std::to_string(port_) +
                  "\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                  "minSessionTimeout=200\nmaxSessionTimeout=60000\n"
                  "4lw.commands.whitelist=ruok,srvr\n");
  if (!written) {
    return written;
  }
  auto pid = spawnChild({kServerScript, "start-foreground", config}, dir_.path() + "/zookeeper.log",
                        {{"ZOO_LOG_DIR", dir_.path()}, {"ZOOCFGDIR", dir_.path()}});
  if (!pid) {
    return Error(pid.error());
  }
  pid_ = *pid;
  if (!waitUntil([this] { return zooKeeperServes(port_); }, seconds(30))) {
    stop();
    return Error("ZooKeeper did not start; see " + dir_.path() + "/zookeeper.log");
  }
  return Status();
}

void ZooKeeperServer::stop() {
  if (pid_ > 0) {
    stopChild(pid_, seconds(10));
    pid_ = -1;
  }
}

}  // namespace agora::testing
