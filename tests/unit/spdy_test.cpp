// SPDY/3.1 framing for kubectl port-forward: header blocks through a connection's zlib streams,
// frames both ways, and broken input.

#include <gtest/gtest.h>

#include "agent/spdy.hpp"

namespace agora::spdy {
namespace {

TEST(SpdyTest, HeaderBlocksShareOneCompressionStreamPerDirection) {
  HeaderCodec out(true);
  Decoder in;
  // Several frames in a row: each block only decodes after the ones before it.
  for (int i = 0; i < 3; ++i) {
    Headers h = {{"streamtype", i % 2 == 0 ? "error" : "data"},
                 {"port", "8080"},
                 {"requestid", std::to_string(i)}};
    in.feed(synStream(out, 2 * i + 1, h, false));
  }
  for (int i = 0; i < 3; ++i) {
    auto frame = in.next();
    ASSERT_TRUE(frame.ok()) << frame.error();
    ASSERT_TRUE(frame->has_value());
    EXPECT_EQ((*frame)->type, Type::kSynStream);
    EXPECT_EQ((*frame)->streamId, static_cast<uint32_t>(2 * i + 1));
    EXPECT_EQ((*frame)->headers["requestid"], std::to_string(i));
    EXPECT_EQ((*frame)->headers["port"], "8080");
  }
  EXPECT_FALSE(in.next()->has_value());
}

TEST(SpdyTest, DataPingResetAndRepliesRoundTrip) {
  HeaderCodec out(true);
  Decoder in;
  std::string big(70000, 'z');
  std::string bytes = dataFrame(3, "hello", false) + dataFrame(3, "", true) + ping(7) +
                      rstStream(5, kRstCancel) + synReply(out, 1, {}, false) +
                      dataFrame(9, big, false) + goAway(9);
  // Fed a byte at a time, it still gives whole frames.
  std::vector<Frame> frames;
  for (char c : bytes) {
    in.feed(std::string_view(&c, 1));
    auto next = in.next();
    ASSERT_TRUE(next.ok()) << next.error();
    if (next->has_value()) frames.push_back(std::move(**next));
  }
  ASSERT_EQ(frames.size(), 7u);
  EXPECT_EQ(frames[0].type, Type::kData);
  EXPECT_EQ(frames[0].data, "hello");
  EXPECT_EQ(frames[1].flags & kFlagFin, kFlagFin);
  EXPECT_EQ(frames[2].type, Type::kPing);
  EXPECT_EQ(frames[2].value, 7u);
  EXPECT_EQ(frames[3].type, Type::kRstStream);
  EXPECT_EQ(frames[3].streamId, 5u);
  EXPECT_EQ(frames[3].value, kRstCancel);
  EXPECT_EQ(frames[4].type, Type::kSynReply);
  EXPECT_TRUE(frames[4].headers.empty());
  EXPECT_EQ(frames[5].data, big);
  EXPECT_EQ(frames[6].type, Type::kGoAway);
  EXPECT_EQ(frames[6].value, 9u);
}

TEST(SpdyTest, BrokenInputIsAnError) {
  Decoder wrongVersion;
  wrongVersion.feed(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));
  EXPECT_FALSE(wrongVersion.next().ok());
  Decoder garbage;
  garbage.feed(std::string("\x80\x03\x00\x01\x00\x00\x00\x0e", 8) + std::string(14, 'x'));
  EXPECT_FALSE(garbage.next().ok());  // a header block that is not zlib
  Decoder huge;
  huge.feed(std::string("\x00\x00\x00\x01\x00\xff\xff\xff", 8));
  auto next = huge.next();
  EXPECT_TRUE(!next.ok() || !next->has_value());
}

}  // namespace
}  // namespace agora::spdy
