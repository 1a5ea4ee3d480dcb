// `kubectl port-forward` on the agent: SPDY/3.1 streams tunnelled through a WebSocket (see
// remote_command.hpp). For each connection kubectl accepts locally it opens two streams with
// the same request id: "error" (where this side writes why a connection failed) and "data"
// (the connection's bytes). This process lives in the task's network namespace, so a data
// stream becomes a TCP connection to localhost:PORT there, as the kubelet does it.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "agent/remote_command.hpp"
#include "agent/spdy.hpp"
#include "common/net.hpp"
#include "common/websocket.hpp"

namespace agora::agent {

namespace {

class PortForward {
 public:
  PortForward(int socket, const RemoteCommand& command) : socket_(socket), command_(command) {}

  int run();

 private:
  struct Pair {
    uint16_t port = 0;
    uint32_t errorStream = 0;
    uint32_t dataStream = 0;
    int fd = -1;  // the connection to the port, once the data stream has come
    bool sentFin = false;
  };

  // Sends SPDY bytes in one binary WebSocket message.
  bool send(const std::string& spdyBytes) {
    return writeAll(socket_, websocket::encodeFrame(websocket::Opcode::kBinary, spdyBytes,
                                                    false));
  }
  bool onFrame(const spdy::Frame& frame);
  void openStream(const spdy::Frame& frame);
  void connectPair(Pair& pair);
  void closePair(const std::string& requestId, bool tellClient);
  Pair* byStream(uint32_t streamId);

  int socket_;
  const RemoteCommand& command_;
  websocket::Decoder ws_{true};
  spdy::Decoder spdy_;
  spdy::HeaderCodec headers_{true};
  std::map<std::string, Pair> pairs_;  // by request id
};

PortForward::Pair* PortForward::byStream(uint32_t streamId) {
  for (auto& [id, pair] : pairs_) {
    if (pair.dataStream == streamId || pair.errorStream == streamId) return &pair;
  }
  return nullptr;
}

void PortForward::closePair(const std::string& requestId, bool tellClient) {
  auto it = pairs_.find(requestId);
  if (it == pairs_.end()) return;
  Pair& pair = it->second;
  if (pair.fd >= 0) ::close(pair.fd);
  if (tellClient && !pair.sentFin) {
    if (pair.dataStream != 0) send(spdy::dataFrame(pair.dataStream, "", true));
    if (pair.errorStream != 0) send(spdy::dataFrame(pair.errorStream, "", true));
  }
  pairs_.erase(it);
}

void PortForward::connectPair(Pair& pair) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(pair.port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 &&
      ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    pair.fd = fd;
    return;
  }
  std::string why = std::strerror(errno);
  if (fd >= 0) ::close(fd);
  // kubectl prints what comes on the error stream, and drops the local connection.
  std::string message = "error forwarding port " + std::to_string(pair.port) + " to pod " +
                        "task " + command_.task + ": failed to connect to localhost:" +
                        std::to_string(pair.port) + " inside the pod's network: " + why;
  if (pair.errorStream != 0) {
    send(spdy::dataFrame(pair.errorStream, message, true));
  }
  if (pair.dataStream != 0) send(spdy::dataFrame(pair.dataStream, "", true));
  pair.sentFin = true;
}

void PortForward::openStream(const spdy::Frame& frame) {
  auto header = [&](const char* name) {
    auto it = frame.headers.find(name);
    return it == frame.headers.end() ? std::string() : it->second;
  };
  std::string type = header("streamtype");
  std::string requestId = header("requestid");
  int port = std::atoi(header("port").c_str());
  if ((type != "error" && type != "data") || port <= 0 || port > 65535) {
    send(spdy::rstStream(frame.streamId, spdy::kRstProtocolError));
    return;
  }
  send(spdy::synReply(headers_, frame.streamId, {}, false));
  Pair& pair = pairs_[requestId];
  pair.port = static_cast<uint16_t>(port);
  if (type == "error") {
    pair.errorStream = frame.streamId;
  } else {
    pair.dataStream = frame.streamId;
    connectPair(pair);
  }
}

bool PortForward::onFrame(const spdy::Frame& frame) {
  switch (frame.type) {
    case spdy::Type::kSynStream:
      openStream(frame);
      return true;
    case spdy::Type::kData: {
      Pair* pair = byStream(frame.streamId);
      if (pair == nullptr) return true;
      if (frame.streamId == pair->dataStream && pair->fd >= 0) {
        if (!frame.data.empty() && !writeAll(pair->fd, frame.data)) {
          for (auto& [id, p] : pairs_) {
            if (&p == pair) {
              closePair(id, true);
              break;
            }
          }
          return true;
        }
        if ((frame.flags & spdy::kFlagFin) != 0) ::shutdown(pair->fd, SHUT_WR);
      }
      return true;
    }
    case spdy::Type::kRstStream: {
      for (auto& [id, pair] : pairs_) {
        if (pair.dataStream == frame.streamId || pair.errorStream == frame.streamId) {
          closePair(id, false);
          break;
        }
      }
      return true;
    }
    case spdy::Type::kPing:
      return send(spdy::ping(frame.value));
    case spdy::Type::kGoAway:
      return false;
    default:
      return true;
  }
}

int PortForward::run() {
  pid_t target = findTaskProcess(command_.containerPid, command_.task);
  std::string ns = "/proc/" + std::to_string(target) + "/ns/net";
  int netns = target > 0 ? ::open(ns.c_str(), O_RDONLY | O_CLOEXEC) : -1;
  if (netns < 0 || ::setns(netns, CLONE_NEWNET) != 0) {
    std::string answer = statusAnswer(404, "NotFound", "the pod's network is not there: is the "
                                                       "pod running?");
    (void)writeAll(socket_, answer);
    return 1;
  }
  ::close(netns);
  std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                     websocket::acceptKey(command_.key) +
                     "\r\nSec-WebSocket-Protocol: " + command_.protocol + "\r\n\r\n";
  if (!writeAll(socket_, head)) return 1;
  char buffer[32 * 1024];
  bool open = true;
  while (open) {
    std::vector<pollfd> fds = {{socket_, POLLIN, 0}};
    std::vector<std::string> ids;
    for (auto& [id, pair] : pairs_) {
      if (pair.fd >= 0) {
        fds.push_back({pair.fd, POLLIN, 0});
        ids.push_back(id);
      }
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) {
      ssize_t n = ::read(socket_, buffer, sizeof(buffer));
      if (n <= 0) break;
      ws_.feed(std::string_view(buffer, static_cast<size_t>(n)));
      while (open) {
        auto message = ws_.next();
        if (!message || !message->has_value()) {
          open = message.ok();
          break;
        }
        const websocket::Message& m = **message;
        if (m.opcode == websocket::Opcode::kPing) {
          writeAll(socket_, websocket::encodeFrame(websocket::Opcode::kPong, m.payload, false));
          continue;
        }
        if (m.opcode == websocket::Opcode::kClose) {
          writeAll(socket_, websocket::encodeFrame(websocket::Opcode::kClose,
                                                   websocket::closePayload(1000), false));
          open = false;
          break;
        }
        if (m.opcode != websocket::Opcode::kBinary) continue;
        spdy_.feed(m.payload);
        while (open) {
          auto frame = spdy_.next();
          if (!frame) {
            send(spdy::goAway(0));
            open = false;
          } else if (!frame->has_value()) {
            break;
          } else {
            open = onFrame(**frame);
          }
        }
      }
    }
    for (size_t i = 1; i < fds.size() && open; ++i) {
      if (fds[i].revents == 0) continue;
      auto it = pairs_.find(ids[i - 1]);
      if (it == pairs_.end() || it->second.fd < 0) continue;
      ssize_t n = ::read(it->second.fd, buffer, sizeof(buffer));
      if (n > 0) {
        send(spdy::dataFrame(it->second.dataStream,
                             std::string_view(buffer, static_cast<size_t>(n)), false));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        closePair(ids[i - 1], true);
      }
    }
  }
  for (auto& [id, pair] : pairs_) {
    if (pair.fd >= 0) ::close(pair.fd);
  }
  return 0;
}

}  // namespace

int runPortForward(int socket, const RemoteCommand& command) {
  PortForward forward(socket, command);
  return forward.run();
}

}  // namespace agora::agent
