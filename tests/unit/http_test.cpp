#include <gtest/gtest.h>

#include <functional>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "common/http.hpp"
#include "frameworks/k8s-like/apiserver/http_server.hpp"

namespace agora {
namespace {

TEST(HttpTest, ServesRoutesAndRejectsGarbage) {
  HttpServer server;
  server.route("/hello", [](const HttpRequest& request, HttpResponder respond) {
    respond(HttpResponse::text("hi " + request.param("name", "there")));
  });
  server.route("/files/", [](const HttpRequest& request, HttpResponder respond) {
    respond(HttpResponse::text(request.path));
  });
  auto port = server.start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.error();
  std::string address = "127.0.0.1:" + std::to_string(*port);

  auto r = httpGet(address, "/hello?name=a%20b");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hi a b");
  EXPECT_EQ(httpGet(address, "/files/x/y")->body, "/files/x/y");
  EXPECT_EQ(httpGet(address, "/nope")->status, 404);

  // Garbage on the socket gets a 400 and the server keeps serving.
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), *port});
  std::string garbage = "\x16\x03\x01 definitely not http\r\n\r\n";
  boost::asio::write(socket, boost::asio::buffer(garbage));
  std::string reply(256, '\0');
  boost::system::error_code ec;
  size_t n = socket.read_some(boost::asio::buffer(reply), ec);
  EXPECT_NE(reply.substr(0, n).find("400"), std::string::npos);
  EXPECT_EQ(httpGet(address, "/hello")->status, 200);
  EXPECT_GE(server.badRequests(), 1u);
  server.stop();
}

// The status a request from `source` gets.
int statusFrom(const std::string& source, uint16_t port) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.open(boost::asio::ip::tcp::v4());
  socket.bind({boost::asio::ip::make_address(source), 0});
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  std::string request = "GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  boost::asio::write(socket, boost::asio::buffer(request));
  std::string reply(64, '\0');
  boost::system::error_code ec;
  size_t n = socket.read_some(boost::asio::buffer(reply), ec);
  reply.resize(n);
  return reply.size() > 12 ? std::atoi(reply.substr(9, 3).c_str()) : 0;
}

// 20 requests from 127.0.0.1 to a server limited to a burst of 5 and one a second: the burst
// is served (and what a second refills while the test runs), the rest answered 429 and
// counted; 127.0.0.2 is served meanwhile.
void expectAFloodThrottled(uint16_t port, const std::function<uint64_t()>& counted) {
  int served = 0;
  int throttled = 0;
  for (int i = 0; i < 20; ++i) {
    int status = statusFrom("127.0.0.1", port);
    served += status == 200;
    throttled += status == 429;
  }
  EXPECT_GE(served, 5);
  EXPECT_LE(served, 7);
  EXPECT_EQ(served + throttled, 20);
  EXPECT_EQ(counted(), static_cast<uint64_t>(throttled));
  EXPECT_EQ(statusFrom("127.0.0.2", port), 200);
}

TEST(HttpTest, AFloodFromOneClientIsThrottledWhileOthersAreServed) {
  HttpServer server;
  server.route("/hello", [](const HttpRequest&, HttpResponder respond) {
    respond(HttpResponse::text("hi"));
  });
  server.limitRate(1, 5);  // a burst of 5, then one a second
  auto port = server.start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.error();
  expectAFloodThrottled(*port, [&] { return server.throttledRequests(); });
  server.stop();
}

TEST(HttpTest, TheKubeApiThrottlesAFloodFromOneClientWhileOthersAreServed) {
  kube::ApiHttpServer server(
      [](HttpRequest, std::shared_ptr<kube::Exchange> exchange) {
        exchange->respond(HttpResponse::text("hi"));
      },
      std::nullopt);
  server.limitRate(1, 5);
  auto port = server.start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.error();
  expectAFloodThrottled(*port, [&] { return server.throttledRequests(); });
  server.stop();
}

TEST(HttpTest, ARequestIsReadAsTheServerReadsIt) {
  auto request = parseHttpRequest(
      "POST /quota%2Fx?role=eng%2Fweb&dry&a=1+2 HTTP/1.1\r\nHost: h\r\nX-Token: T\r\n"
      "Content-Length: 4\r\n\r\nbodyEXTRA");
  ASSERT_TRUE(request.ok()) << request.error();
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->path, "/quota/x");
  EXPECT_EQ(request->param("role"), "eng/web");
  EXPECT_EQ(request->query.count("dry"), 1u);
  EXPECT_EQ(request->param("a"), "1 2");
  EXPECT_EQ(request->headers.at("x-token"), "T");
  EXPECT_EQ(request->body, "body");

  EXPECT_FALSE(parseHttpRequest("GET / HTTP/1.1\r\nHost").ok());                  // not whole
  EXPECT_FALSE(parseHttpRequest("GARBAGE\r\n\r\n").ok());                        // not HTTP
  EXPECT_FALSE(parseHttpRequest("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").ok());
  std::string huge = "GET / HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
  auto tooLarge = parseHttpRequest(huge);
  ASSERT_FALSE(tooLarge.ok());
  EXPECT_NE(tooLarge.error().find("header"), std::string::npos) << tooLarge.error();
}

TEST(HttpTest, ClientFailsCleanlyOnNoServerAndBadAddresses) {
  EXPECT_FALSE(httpGet("127.0.0.1:1", "/", milliseconds(500)).ok());
  EXPECT_FALSE(httpGet("no-port", "/").ok());
  EXPECT_FALSE(splitHostPort("host:99999").ok());
  EXPECT_EQ(splitHostPort("[::1]:80")->first, "::1");
}

}  // namespace
}  // namespace agora
