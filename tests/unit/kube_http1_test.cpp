#include "frameworks/k8s-like/proxy/http1.hpp"

#include <string>

#include <gtest/gtest.h>

namespace agora::kube::http1 {
namespace {

TEST(Http1Test, FindsTheEndOfAHeadArrivingInPieces) {
  std::string text = "GET / HTTP/1.1\r\nHost: a\r\n\r";
  EXPECT_EQ(headEnd(text), std::string_view::npos);
  size_t scanned = text.size();
  text += "\nbody";
  EXPECT_EQ(headEnd(text, scanned), text.size() - 4);
}

TEST(Http1Test, ParsesARequestAndWhatDecidesItsFraming) {
  std::string text =
      "POST /api/v1?x=1 HTTP/1.1\r\nHost: app.example.test:8080\r\nContent-Length: 12\r\n"
      "Connection: keep-alive, X-Private\r\nX-Private: secret\r\nExpect: 100-continue\r\n\r\n";
  Head head;
  ASSERT_TRUE(parseRequest(text, &head).ok());
  EXPECT_EQ(head.method, "POST");
  EXPECT_EQ(head.target, "/api/v1?x=1");
  EXPECT_EQ(head.version, 11);
  EXPECT_EQ(head.host, "app.example.test:8080");
  ASSERT_TRUE(head.contentLength.has_value());
  EXPECT_EQ(*head.contentLength, 12u);
  EXPECT_FALSE(head.chunked);
  EXPECT_TRUE(head.keepAlive);
  EXPECT_TRUE(head.expectContinue);
  EXPECT_EQ(head.headers.size(), 5u);
  // Connection names a header of this hop only.
  EXPECT_TRUE(head.hopByHop("x-private"));
  EXPECT_TRUE(head.hopByHop("Keep-Alive"));
  EXPECT_TRUE(head.hopByHop("Transfer-Encoding"));
  EXPECT_FALSE(head.hopByHop("Content-Length"));
}

TEST(Http1Test, KeepAliveFollowsTheVersionAndConnection) {
  Head head;
  ASSERT_TRUE(parseRequest("GET / HTTP/1.0\r\n\r\n", &head).ok());
  EXPECT_FALSE(head.keepAlive);
  ASSERT_TRUE(parseRequest("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &head).ok());
  EXPECT_TRUE(head.keepAlive);
  ASSERT_TRUE(parseRequest("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &head).ok());
  EXPECT_FALSE(head.keepAlive);
  ASSERT_TRUE(parseRequest("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                           &head)
                  .ok());
  EXPECT_TRUE(head.upgrade);
  ASSERT_TRUE(parseRequest("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", &head).ok());
  EXPECT_FALSE(head.upgrade);  // Connection must say so too
}

TEST(Http1Test, RefusesMalformedAndAmbiguousRequests) {
  Head head;
  for (const char* bad : {
           "GET /\r\n\r\n",                                                    // no version
           "GET  / HTTP/1.1\r\n\r\n",                                          // empty target
           "GET / HTTP/2.0\r\n\r\n",                                           // not HTTP/1.x
           "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",                          // no name
           "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",                            // space in name
           "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",                        // folded
           "GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",                     // not a number
           "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",  // conflicting
           "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",  // both
           "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",  // no way to find the end
       }) {
    EXPECT_FALSE(parseRequest(bad, &head).ok()) << bad;
  }
  // The same Content-Length twice is one length.
  ASSERT_TRUE(
      parseRequest("GET / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", &head).ok());
  EXPECT_EQ(*head.contentLength, 2u);
}

TEST(Http1Test, ParsesAResponse) {
  Head head;
  ASSERT_TRUE(parseResponse("HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n", &head).ok());
  EXPECT_EQ(head.status, 204);
  ASSERT_TRUE(parseResponse("HTTP/1.0 200\r\nTransfer-Encoding: chunked\r\n\r\n", &head).ok());
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.version, 10);
  EXPECT_TRUE(head.chunked);
  EXPECT_FALSE(head.keepAlive);
  for (const char* bad : {"HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 OK\r\n\r\n", "ICY 200 OK\r\n\r\n",
                          "HTTP/1.1 099 Low\r\n\r\n"}) {
    EXPECT_FALSE(parseResponse(bad, &head).ok()) << bad;
  }
}

TEST(Http1Test, ALengthBodyEndsAtItsLengthAndLeavesTheNextMessage) {
  BodyFramer body = BodyFramer::length(5);
  auto taken = body.take("abc", 3);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, 3u);
  EXPECT_FALSE(body.done());
  taken = body.take("deGET", 5);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, 2u);
  EXPECT_TRUE(body.done());
  EXPECT_TRUE(BodyFramer::length(0).done());
  EXPECT_TRUE(BodyFramer::none().done());
}

TEST(Http1Test, AChunkedBodyEndsAfterItsLastChunkAndTrailersInAnyPieces) {
  std::string wire = "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
  // Fed one byte at a time, the end is found in the same place.
  BodyFramer body = BodyFramer::chunked();
  std::string data;
  size_t used = 0;
  for (size_t i = 0; i < wire.size() && !body.done(); ++i) {
    auto taken = body.take(wire.data() + i, 1, &data);
    ASSERT_TRUE(taken.ok()) << i;
    used += *taken;
  }
  EXPECT_TRUE(body.done());
  EXPECT_EQ(used, wire.size() - 4);
  EXPECT_EQ(data, "hello0123456789");
  // And all at once.
  BodyFramer whole = BodyFramer::chunked();
  auto taken = whole.take(wire.data(), wire.size());
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, wire.size() - 4);
  EXPECT_TRUE(whole.done());
}

TEST(Http1Test, RefusesMalformedChunks) {
  for (const char* bad : {"x\r\n", "5\r\nhelloX\r\n", "\r\n", "5\rX", "1234567890abcdef0\r\n"}) {
    BodyFramer body = BodyFramer::chunked();
    EXPECT_FALSE(body.take(bad, std::string(bad).size()).ok()) << bad;
  }
}

TEST(Http1Test, ABodyUntilCloseTakesEverything) {
  BodyFramer body = BodyFramer::untilClose();
  auto taken = body.take("anything", 8);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, 8u);
  EXPECT_FALSE(body.done());
  EXPECT_TRUE(body.isUntilClose());
}

}  // namespace
}  // namespace agora::kube::http1
