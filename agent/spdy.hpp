#pragma once

// SPDY/3.1 framing, as much of it as `kubectl port-forward` uses (it tunnels SPDY through a
// WebSocket: the "SPDY/3.1+portforward.k8s.io" subprotocol), without any I/O: frames out, and
// an incremental decoder for the frames in. Header blocks are zlib streams that run for the
// whole connection (one per direction) with SPDY's dictionary, so each side keeps a codec.
// Flow control is not enforced (kubectl's client does not either).

#include <zlib.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace agora::spdy {

enum class Type : uint16_t {
  kData = 0,  // not a control frame
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

inline constexpr uint8_t kFlagFin = 0x01;
inline constexpr uint32_t kRstCancel = 5;
inline constexpr uint32_t kRstProtocolError = 1;

using Headers = std::map<std::string, std::string>;

struct Frame {
  Type type = Type::kData;
  uint8_t flags = 0;
  uint32_t streamId = 0;  // data, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE
  uint32_t value = 0;     // RST_STREAM's status, PING's id, GOAWAY's last stream
  Headers headers;        // SYN_STREAM, SYN_REPLY, HEADERS (names in lower case)
  std::string data;       // a data frame's bytes
};

// One direction's header compression (deflate) or decompression (inflate).
class HeaderCodec {
 public:
  explicit HeaderCodec(bool compress);
  ~HeaderCodec();
  HeaderCodec(const HeaderCodec&) = delete;
  HeaderCodec& operator=(const HeaderCodec&) = delete;

  std::string encode(const Headers& headers);
  Result<Headers> decode(std::string_view block);

 private:
  bool compress_;
  z_stream zs_{};
  bool ready_ = false;
};

// Frames to send (this side's header codec compresses).
std::string dataFrame(uint32_t streamId, std::string_view data, bool fin);
std::string synReply(HeaderCodec& codec, uint32_t streamId, const Headers& headers, bool fin);
std::string synStream(HeaderCodec& codec, uint32_t streamId, const Headers& headers, bool fin);
std::string rstStream(uint32_t streamId, uint32_t status);
std::string ping(uint32_t id);
std::string goAway(uint32_t lastStreamId);

class Decoder {
 public:
  Decoder() : headers_(false) {}
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next whole frame, nothing while more bytes are needed, or an error for a broken stream.
  Result<std::optional<Frame>> next();

 private:
  std::string buffer_;
  size_t consumed_ = 0;
  HeaderCodec headers_;
};

}  // namespace agora::spdy
