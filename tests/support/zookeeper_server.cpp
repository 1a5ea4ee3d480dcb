#include "tests/support/zookeeper_server.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "common/fs.hpp"
#include "tests/support/process_cluster.hpp"

namespace agora::testing {

namespace {

constexpr const char* kServerScript = "/usr/share/zookeeper/bin/zkServer.sh";

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// ZooKeeper's four-letter "ruok": "imok" when it serves.
bool answers(int port) {
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)});
    boost::asio::write(socket, boost::asio::buffer(std::string("ruok")));
    std::string reply(4, '\0');
    boost::system::error_code ec;
    boost::asio::read(socket, boost::asio::buffer(reply), ec);
    return reply == "imok";
  } catch (...) {
    return false;
  }
}

}  // namespace

ZooKeeperServer::ZooKeeperServer() = default;

ZooKeeperServer::~ZooKeeperServer() { stop(); }

bool ZooKeeperServer::available() { return pathExists(kServerScript); }

Status ZooKeeperServer::start() {
  if (port_ == 0) {
    port_ = freePort();
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
  if (!waitUntil([this] { return answers(port_); }, seconds(30))) {
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
