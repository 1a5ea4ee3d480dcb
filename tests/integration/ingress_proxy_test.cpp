// The ingress proxy on loopback, between raw-socket clients and a scripted backend in this
// process: what it does to heads, bodies and connections, byte by byte.

#include "frameworks/k8s-like/proxy/ingress_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/net.hpp"
#include "frameworks/k8s-like/proxy/http1.hpp"

namespace agora::testing {
namespace {

using namespace std::chrono_literals;

int connectTo(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void sendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

// Reads until `done` says so, the peer closes, or 5 s pass.
template <typename Done>
std::string receiveUntil(int fd, Done done) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done(got) && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buffer[65536];
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    got.append(buffer, static_cast<size_t>(n));
  }
  return got;
}

std::string receiveAll(int fd) {
  return receiveUntil(fd, [](const std::string&) { return false; });
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A backend answering by path: /len (the request's head back as a body with a length),
// /chunked (chunked), /close (no length, then closes), /drop (answers, then closes without
// saying so), /count (the request body's size), /upgrade (101, then echoes).
class Backend {
 public:
  Backend() : port_(static_cast<uint16_t>(freeLoopbackPort())) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bound_ = ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
             ::listen(listener_, 64) == 0;
    acceptor_ = std::thread([this] { acceptLoop(); });
  }

  ~Backend() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    ::close(listener_);
    std::lock_guard<std::mutex> lock(mutex_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : workers_) t.join();
    for (int fd : open_) ::close(fd);
  }

  bool bound() const { return bound_; }
  uint16_t port() const { return port_; }
  int connections() const { return connections_; }

 private:
  void acceptLoop() {
    while (!stopping_) {
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      ++connections_;
      std::lock_guard<std::mutex> lock(mutex_);
      open_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::string in;
    kube::http1::Head head;
    while (true) {
      size_t end = std::string::npos;
      while ((end = kube::http1::headEnd(in)) == std::string::npos) {
        char buffer[65536];
        ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) return;
        in.append(buffer, static_cast<size_t>(n));
      }
      std::string headText = in.substr(0, end);
      in.erase(0, end);
      if (!kube::http1::parseRequest(headText, &head).ok()) return;
      auto body = head.chunked ? kube::http1::BodyFramer::chunked()
                  : head.contentLength ? kube::http1::BodyFramer::length(*head.contentLength)
                                       : kube::http1::BodyFramer::none();
      std::string data;
      while (true) {
        auto taken = body.take(in.data(), in.size(), &data);
        if (!taken) return;
        if (!head.chunked) data.append(in, 0, *taken);
        in.erase(0, *taken);
        if (body.done()) break;
        char buffer[65536];
        ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) return;
        in.append(buffer, static_cast<size_t>(n));
      }
      std::string path(head.target);
      if (path == "/chunked") {
        sendAll(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                    "6\r\n world\r\n0\r\n\r\n");
      } else if (path == "/close") {
        sendAll(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
        ::shutdown(fd, SHUT_WR);
        return;
      } else if (path == "/drop") {
        sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ndropped");
        ::shutdown(fd, SHUT_RDWR);
        return;
      } else if (path == "/count") {
        std::string text = std::to_string(data.size());
        sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(text.size()) +
                        "\r\n\r\n" + text);
      } else if (path == "/upgrade") {
        sendAll(fd, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                    "Upgrade: echo\r\n\r\n");
        sendAll(fd, in);
        char buffer[4096];
        ssize_t n;
        while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
          sendAll(fd, std::string(buffer, static_cast<size_t>(n)));
        }
        return;
      } else {
        sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(headText.size()) +
                        "\r\n\r\n" + headText);
      }
    }
  }

  uint16_t port_;
  int listener_ = -1;
  bool bound_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<int> open_;
  std::vector<std::thread> workers_;
};

class IngressProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(backend_.bound());
    kube::IngressTable table;
    kube::IngressPath root;
    root.path = "/";
    root.backend.service = "test/backend:80";
    root.backend.endpoints = {{"127.0.0.1", backend_.port()}};
    kube::IngressPath empty;
    empty.path = "/empty";
    empty.backend.service = "test/empty:80";
    kube::IngressPath gone;
    gone.path = "/gone";
    gone.backend.service = "test/gone:80";
    gone.backend.endpoints = {{"127.0.0.1", static_cast<uint16_t>(freeLoopbackPort())}};
    table.hosts[""] = {root, empty, gone};
    proxy_.update(table);
    port_ = static_cast<uint16_t>(freeLoopbackPort());
    Status listening = proxy_.listen("127.0.0.1", port_, 0);
    ASSERT_TRUE(listening.ok()) << listening.error();
  }

  int client() { return connectTo(port_); }

  Backend backend_;
  kube::IngressProxy proxy_;
  uint16_t port_ = 0;
};

TEST_F(IngressProxyTest, RewritesHeadsAndKeepsBothConnectionsAlive) {
  int fd = client();
  ASSERT_GE(fd, 0);
  // Two requests at once (pipelined), the second naming a private header of this hop.
  sendAll(fd,
          "GET /len HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 127.0.0.9\r\n\r\n"
          "GET /len HTTP/1.1\r\nHost: app.test\r\nConnection: X-Hop\r\nX-Hop: private\r\n"
          "Keep-Alive: timeout=5\r\n\r\n");
  std::string got = receiveUntil(fd, [](const std::string& g) {
    return count(g, "X-Forwarded-Proto: http\r\n\r\n") >= 2;
  });
  EXPECT_EQ(count(got, "HTTP/1.1 200 OK"), 2u) << got;
  EXPECT_NE(got.find("X-Forwarded-For: 127.0.0.9, 127.0.0.1\r\n"), std::string::npos) << got;
  EXPECT_EQ(count(got, "X-Real-IP: 127.0.0.1\r\n"), 2u) << got;
  EXPECT_EQ(count(got, "X-Forwarded-Host: app.test\r\n"), 2u) << got;
  EXPECT_EQ(got.find("X-Hop"), std::string::npos) << got;
  EXPECT_EQ(got.find("Keep-Alive"), std::string::npos) << got;
  // A third request, on the same connections.
  sendAll(fd, "GET /len HTTP/1.1\r\nHost: app.test\r\n\r\n");
  got = receiveUntil(fd, [](const std::string& g) { return g.find("\r\n\r\n", g.find("\r\n\r\n") + 4) != std::string::npos; });
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_EQ(backend_.connections(), 1);
  ::close(fd);
}

TEST_F(IngressProxyTest, StreamsBodiesBothWaysAsTheyAreFramed) {
  int fd = client();
  ASSERT_GE(fd, 0);
  // A chunked request body of 2 MB, sent in pieces.
  sendAll(fd, "POST /count HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 32; ++i) sendAll(fd, "10000\r\n" + chunk + "\r\n");
  sendAll(fd, "0\r\n\r\n");
  std::string got = receiveUntil(fd, [](const std::string& g) { return g.find("\r\n\r\n2097152") != std::string::npos; });
  EXPECT_NE(got.find("\r\n\r\n2097152"), std::string::npos) << got;
  // A chunked answer stays chunked for an HTTP/1.1 client...
  sendAll(fd, "GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n");
  got = receiveUntil(fd, [](const std::string& g) { return g.find("0\r\n\r\n") != std::string::npos; });
  EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), std::string::npos) << got;
  // ...and an answer that ends with the backend's connection is chunked for it, kept alive.
  sendAll(fd, "GET /close HTTP/1.1\r\nHost: a\r\n\r\n");
  got = receiveUntil(fd, [](const std::string& g) { return g.find("0\r\n\r\n") != std::string::npos; });
  EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("d\r\nuntil the end\r\n0\r\n\r\n"), std::string::npos) << got;
  EXPECT_EQ(got.find("Connection: close"), std::string::npos) << got;
  sendAll(fd, "GET /len HTTP/1.1\r\nHost: a\r\n\r\n");
  got = receiveUntil(fd, [](const std::string& g) { return g.find("Proto: http\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK", 0), 0u) << got;
  ::close(fd);
}

TEST_F(IngressProxyTest, AnHttp10ClientGetsAPlainBodyAndAClose) {
  int fd = client();
  ASSERT_GE(fd, 0);
  sendAll(fd, "GET /chunked HTTP/1.0\r\nHost: a\r\n\r\n");
  std::string got = receiveAll(fd);
  EXPECT_EQ(got.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << got;
  EXPECT_EQ(got.find("Transfer-Encoding"), std::string::npos) << got;
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos) << got;
  EXPECT_EQ(got.substr(got.size() - 11), "hello world") << got;
  ::close(fd);
  // Kept alive when it asks and the answer has a length.
  fd = client();
  sendAll(fd, "GET /len HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  got = receiveUntil(fd, [](const std::string& g) { return g.find("Proto: http\r\n\r\n") != std::string::npos; });
  EXPECT_NE(got.find("Connection: keep-alive\r\n"), std::string::npos) << got;
  sendAll(fd, "HEAD /len HTTP/1.0\r\n\r\n");
  got = receiveAll(fd);  // no body, then the close
  EXPECT_EQ(got.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << got;
  EXPECT_EQ(got.substr(got.size() - 4), "\r\n\r\n") << got;
  ::close(fd);
}

TEST_F(IngressProxyTest, AnswersContinueItselfAndRetriesAConnectionTheBackendDropped) {
  int fd = client();
  ASSERT_GE(fd, 0);
  sendAll(fd, "POST /count HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string got = receiveUntil(fd, [](const std::string& g) { return g.find("\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(got, "HTTP/1.1 100 Continue\r\n\r\n");
  sendAll(fd, "abcde");
  got = receiveUntil(fd, [](const std::string& g) { return g.find("\r\n\r\n5") != std::string::npos; });
  EXPECT_NE(got.find("\r\n\r\n5"), std::string::npos) << got;
  // The backend drops its connection after this answer without saying so; the next request
  // goes on a new one, unseen by the client.
  sendAll(fd, "GET /drop HTTP/1.1\r\nHost: a\r\n\r\n");
  got = receiveUntil(fd, [](const std::string& g) { return g.find("dropped") != std::string::npos; });
  EXPECT_NE(got.find("dropped"), std::string::npos) << got;
  std::this_thread::sleep_for(100ms);  // ok: lets the backend's close arrive first
  sendAll(fd, "GET /len HTTP/1.1\r\nHost: a\r\n\r\n");
  got = receiveUntil(fd, [](const std::string& g) { return g.find("Proto: http\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK", 0), 0u) << got;
  ::close(fd);
}

TEST_F(IngressProxyTest, TunnelsAnUpgradedConnection) {
  int fd = client();
  ASSERT_GE(fd, 0);
  sendAll(fd, "GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
  std::string got = receiveUntil(fd, [](const std::string& g) { return g.find("\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(got.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("Upgrade: echo\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Connection: upgrade\r\n"), std::string::npos) << got;
  sendAll(fd, "ping over the tunnel");
  got = receiveUntil(fd, [](const std::string& g) { return g.find("tunnel") != std::string::npos; });
  EXPECT_EQ(got, "ping over the tunnel");
  ::close(fd);
}

TEST_F(IngressProxyTest, ItsOwnAnswersForWhatItCannotRelay) {
  auto status = [&](const std::string& request) {
    int fd = client();
    sendAll(fd, request);
    std::string got = receiveAll(fd);
    ::close(fd);
    return got.substr(0, got.find("\r\n"));
  };
  EXPECT_EQ(status("GET /empty HTTP/1.1\r\nHost: a\r\n\r\n"), "HTTP/1.1 503 Service Unavailable");
  EXPECT_EQ(status("GET /gone HTTP/1.1\r\nHost: a\r\n\r\n"), "HTTP/1.1 502 Bad Gateway");
  EXPECT_EQ(status("GET / HTTP/1.1\r\nBad Header\r\n\r\n"), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(status("GET / HTTP/1.1\r\nX: " + std::string(100 * 1024, 'x')),
            "HTTP/1.1 431 Request Header Fields Too Large");
  EXPECT_EQ(status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            "HTTP/1.1 400 Bad Request");
  // And nothing is lost by them: the proxy goes on serving.
  EXPECT_EQ(status("GET /len HTTP/1.1\r\nConnection: close\r\n\r\n"), "HTTP/1.1 200 OK");
}

}  // namespace
}  // namespace agora::testing
