#pragma once

// WebSocket framing (RFC 6455), without any I/O: the handshake's accept key, a frame encoder,
// and an incremental decoder that takes bytes as they arrive and gives whole messages. The
// remote-command sessions (`kubectl exec`, `agora ssh`) speak it over sockets of their own.
//
// Limits: control frames carry at most 125 bytes and are never fragmented; a data message may
// arrive in fragments (joined here) and may not exceed the decoder's limit. A client's frames
// must be masked and a server's must not be, so each side's decoder says which it expects.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace agora::websocket {

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes this code sends.
inline constexpr uint16_t kNormalClosure = 1000;
inline constexpr uint16_t kProtocolError = 1002;
inline constexpr uint16_t kTooBig = 1009;

// Sec-WebSocket-Accept for a request's Sec-WebSocket-Key.
std::string acceptKey(const std::string& key);

// A fresh Sec-WebSocket-Key (16 random bytes, base64).
std::string newKey();

// One frame, FIN set. A client masks (with a random key); a server does not.
std::string encodeFrame(Opcode opcode, std::string_view payload, bool mask);

// A close frame's payload: the code, then the reason.
std::string closePayload(uint16_t code, std::string_view reason = "");

struct Message {
  Opcode opcode = Opcode::kBinary;  // kText, kBinary, kClose, kPing or kPong
  std::string payload;
};

class Decoder {
 public:
  // `fromClient`: frames must be masked (a server's decoder); otherwise they must not be.
  explicit Decoder(bool fromClient, size_t maxMessage = 16 * 1024 * 1024)
      : fromClient_(fromClient), maxMessage_(maxMessage) {}

  void feed(std::string_view bytes) { buffer_.append(bytes); }

  // The next whole message, nothing while more bytes are needed, or an error for a broken
  // stream (after which the connection should be closed with `errorCode()`).
  Result<std::optional<Message>> next();
  uint16_t errorCode() const { return errorCode_; }

 private:
  bool fromClient_;
  size_t maxMessage_;
  std::string buffer_;
  size_t consumed_ = 0;
  // A fragmented data message being put together.
  std::optional<Opcode> partialOpcode_;
  std::string partial_;
  uint16_t errorCode_ = kProtocolError;
};

}  // namespace agora::websocket
