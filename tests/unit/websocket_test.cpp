// WebSocket framing: the handshake key, frames both ways, fragments, control frames, limits.

#include <gtest/gtest.h>

#include "common/websocket.hpp"

namespace agora::websocket {
namespace {

// Everything the decoder gives for `bytes`, fed one byte at a time.
std::vector<Message> decodeAll(Decoder& decoder, const std::string& bytes) {
  std::vector<Message> out;
  for (char c : bytes) {
    decoder.feed(std::string_view(&c, 1));
    while (true) {
      auto next = decoder.next();
      EXPECT_TRUE(next.ok()) << next.error();
      if (!next.ok() || !next->has_value()) break;
      out.push_back(std::move(**next));
    }
  }
  return out;
}

TEST(WebSocketTest, AcceptKeyIsTheOneInTheRfc) {
  EXPECT_EQ(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(newKey().size(), 24u);
  EXPECT_NE(newKey(), newKey());
}

TEST(WebSocketTest, ServerFramesAreUnmaskedAndClientFramesMasked) {
  EXPECT_EQ(encodeFrame(Opcode::kText, "Hello", false), std::string("\x81\x05Hello"));
  std::string masked = encodeFrame(Opcode::kBinary, "Hello", true);
  ASSERT_EQ(masked.size(), 2u + 4u + 5u);
  EXPECT_EQ(static_cast<uint8_t>(masked[0]), 0x82);
  EXPECT_EQ(static_cast<uint8_t>(masked[1]), 0x80 | 5);
  Decoder server(true);
  auto messages = decodeAll(server, masked);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].opcode, Opcode::kBinary);
  EXPECT_EQ(messages[0].payload, "Hello");
  // The RFC's own masked example.
  Decoder rfc(true);
  messages = decodeAll(rfc, std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].payload, "Hello");
}

TEST(WebSocketTest, LengthsOfSixteenAndSixtyFourBits) {
  for (size_t size : {125u, 126u, 65535u, 65536u, 200000u}) {
    std::string payload(size, 'x');
    payload[size - 1] = 'y';
    std::string frame = encodeFrame(Opcode::kBinary, payload, false);
    Decoder client(false);
    client.feed(frame);
    auto next = client.next();
    ASSERT_TRUE(next.ok()) << next.error();
    ASSERT_TRUE(next->has_value()) << size;
    EXPECT_EQ((*next)->payload, payload) << size;
    EXPECT_FALSE(client.next()->has_value());
  }
}

TEST(WebSocketTest, FragmentsAreJoinedAndControlFramesPassBetweenThem) {
  // "Hel" (text, not final), a ping, "lo" (continuation, final).
  std::string bytes = std::string("\x01\x03Hel", 5) + std::string("\x89\x02hi", 4) +
                      std::string("\x80\x02lo", 4);
  Decoder client(false);
  auto messages = decodeAll(client, bytes);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].opcode, Opcode::kPing);
  EXPECT_EQ(messages[0].payload, "hi");
  EXPECT_EQ(messages[1].opcode, Opcode::kText);
  EXPECT_EQ(messages[1].payload, "Hello");
}

TEST(WebSocketTest, BrokenStreamsAreErrors) {
  auto fails = [](bool fromClient, const std::string& bytes, size_t limit = 1 << 20) {
    Decoder d(fromClient, limit);
    d.feed(bytes);
    return !d.next().ok();
  };
  EXPECT_TRUE(fails(true, encodeFrame(Opcode::kBinary, "x", false)));   // unmasked from a client
  EXPECT_TRUE(fails(false, encodeFrame(Opcode::kBinary, "x", true)));   // masked from a server
  EXPECT_TRUE(fails(false, std::string("\x80\x01x", 3)));               // nothing to continue
  EXPECT_TRUE(fails(false, std::string("\x09\x01x", 3)));               // fragmented ping
  EXPECT_TRUE(fails(false, std::string("\xc2\x01x", 3)));               // reserved bit
  EXPECT_TRUE(fails(false, std::string("\x83\x01x", 3)));               // unknown opcode
  EXPECT_TRUE(fails(false, encodeFrame(Opcode::kPing, std::string(126, 'p'), false)));
  Decoder small(false, 10);
  small.feed(encodeFrame(Opcode::kBinary, std::string(11, 'x'), false));
  EXPECT_FALSE(small.next().ok());
  EXPECT_EQ(small.errorCode(), kTooBig);
  // A frame cut short is not an error: it waits for the rest.
  Decoder partial(false);
  partial.feed(std::string("\x82\x7e\x01", 3));
  auto next = partial.next();
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
}

TEST(WebSocketTest, ClosePayloadCarriesTheCodeThenTheReason) {
  EXPECT_EQ(closePayload(kNormalClosure, "bye"), std::string("\x03\xe8" "bye", 5));
  EXPECT_EQ(closePayload(kNormalClosure, std::string(200, 'r')).size(), 125u);
}

}  // namespace
}  // namespace agora::websocket
