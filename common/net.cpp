#include "common/net.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "common/http.hpp"

namespace agora {

Result<int> connectTcp(const std::string& address, Duration timeout) {
  auto hostPort = splitHostPort(address);
  if (!hostPort) return Error(hostPort.error());
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string port = std::to_string(hostPort->second);
  if (int rc = ::getaddrinfo(hostPort->first.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Error("cannot resolve " + address + ": " + ::gai_strerror(rc));
  }
  int fd = -1;
  int error = 0;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (timeout > Duration::zero()) {
      auto micros = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
      timeval tv{static_cast<time_t>(micros / 1000000),
                 static_cast<suseconds_t>(micros % 1000000)};
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      error = errno;
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) return Error("cannot connect to " + address + ": " + std::strerror(error));
  return fd;
}

bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void relayDescriptors(int a, int b) {
  for (int fd : {a, b}) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  // One direction each: from[i] to to[i], open while its source has not ended.
  int from[2] = {a, b};
  int to[2] = {b, a};
  bool open[2] = {true, true};
  char buffer[32 * 1024];
  while (open[0] || open[1]) {
    pollfd fds[2];
    int n = 0;
    int which[2];
    for (int i = 0; i < 2; ++i) {
      if (open[i]) {
        fds[n] = {from[i], POLLIN, 0};
        which[n++] = i;
      }
    }
    if (::poll(fds, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int k = 0; k < n; ++k) {
      if (fds[k].revents == 0) continue;
      int i = which[k];
      ssize_t got = ::recv(from[i], buffer, sizeof(buffer), 0);
      if (got < 0 && errno == ENOTSOCK) got = ::read(from[i], buffer, sizeof(buffer));
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        // Its source ended: the other side reads the end, and may still answer.
        open[i] = false;
        ::shutdown(to[i], SHUT_WR);
        if (got < 0) return;  // a reset: nothing more either way
        continue;
      }
      if (!writeAll(to[i], std::string_view(buffer, static_cast<size_t>(got)))) return;
    }
  }
}

int freeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return 0;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

bool zooKeeperServes(int port) {
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)});
    boost::asio::write(socket, boost::asio::buffer(std::string("ruok")));
    std::string reply(4, '\0');
    boost::system::error_code ec;
    boost::asio::read(socket, boost::asio::buffer(reply), ec);
    return reply == "imok";
  } catch (const boost::system::system_error&) {
    return false;
  }
}

}  // namespace agora
