#include "common/websocket.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace agora::websocket {

namespace {

constexpr const char* kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

std::string base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                                static_cast<int>(size));
  out.resize(static_cast<size_t>(written));
  return out;
}

bool isControl(uint8_t opcode) { return (opcode & 0x8) != 0; }

}  // namespace

std::string acceptKey(const std::string& key) {
  std::string text = key + kGuid;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha1(), nullptr);
  return base64(digest, length);
}

std::string newKey() {
  unsigned char bytes[16];
  RAND_bytes(bytes, sizeof(bytes));
  return base64(bytes, sizeof(bytes));
}

std::string encodeFrame(Opcode opcode, std::string_view payload, bool mask) {
  std::string out;
  out.reserve(payload.size() + 14);
  out.push_back(static_cast<char>(0x80 | static_cast<uint8_t>(opcode)));
  uint8_t maskBit = mask ? 0x80 : 0;
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(maskBit | payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    out.push_back(static_cast<char>(maskBit | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xFF));
  } else {
    out.push_back(static_cast<char>(maskBit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((static_cast<uint64_t>(payload.size()) >> shift) & 0xFF));
    }
  }
  if (!mask) {
    out.append(payload);
    return out;
  }
  unsigned char key[4];
  RAND_bytes(key, sizeof(key));
  out.append(reinterpret_cast<const char*>(key), 4);
  size_t start = out.size();
  out.append(payload);
  for (size_t i = 0; i < payload.size(); ++i) {
    out[start + i] = static_cast<char>(out[start + i] ^ key[i % 4]);
  }
  return out;
}

std::string closePayload(uint16_t code, std::string_view reason) {
  std::string out;
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xFF));
  out.append(reason.substr(0, 123));
  return out;
}

Result<std::optional<Message>> Decoder::next() {
  while (true) {
    std::string_view in(buffer_);
    in.remove_prefix(consumed_);
    if (in.size() < 2) {
      break;
    }
    auto byte = [&](size_t i) { return static_cast<uint8_t>(in[i]); };
    bool fin = (byte(0) & 0x80) != 0;
    uint8_t opcode = byte(0) & 0x0F;
    if ((byte(0) & 0x70) != 0) {
      return Error("a frame uses reserved bits (no extension was agreed)");
    }
    bool masked = (byte(1) & 0x80) != 0;
    if (masked != fromClient_) {
      return Error(fromClient_ ? "a client's frame is not masked" : "a server's frame is masked");
    }
    uint64_t length = byte(1) & 0x7F;
    size_t at = 2;
    if (length == 126) {
      if (in.size() < 4) break;
      length = (uint64_t{byte(2)} << 8) | byte(3);
      at = 4;
    } else if (length == 127) {
      if (in.size() < 10) break;
      length = 0;
      for (size_t i = 2; i < 10; ++i) length = (length << 8) | byte(i);
      at = 10;
    }
    if (isControl(opcode) && (length > 125 || !fin)) {
      return Error("a control frame is fragmented or longer than 125 bytes");
    }
    if (length > maxMessage_ || partial_.size() + length > maxMessage_) {
      errorCode_ = kTooBig;
      return Error("a message is larger than " + std::to_string(maxMessage_) + " bytes");
    }
    size_t maskAt = at;
    if (masked) at += 4;
    if (in.size() < at + length) break;
    std::string payload(in.substr(at, length));
    if (masked) {
      for (size_t i = 0; i < payload.size(); ++i) {
        payload[i] = static_cast<char>(payload[i] ^ in[maskAt + i % 4]);
      }
    }
    consumed_ += at + length;
    if (consumed_ > 64 * 1024 && consumed_ * 2 > buffer_.size()) {
      buffer_.erase(0, consumed_);
      consumed_ = 0;
    }
    switch (opcode) {
      case 0x8:
      case 0x9:
      case 0xA:
        return std::optional<Message>(Message{static_cast<Opcode>(opcode), std::move(payload)});
      case 0x1:
      case 0x2:
        if (partialOpcode_) {
          return Error("a new message began before the last one ended");
        }
        if (fin) {
          return std::optional<Message>(Message{static_cast<Opcode>(opcode), std::move(payload)});
        }
        partialOpcode_ = static_cast<Opcode>(opcode);
        partial_ = std::move(payload);
        continue;
      case 0x0: {
        if (!partialOpcode_) {
          return Error("a continuation frame with no message to continue");
        }
        partial_ += payload;
        if (!fin) continue;
        Message whole{*partialOpcode_, std::move(partial_)};
        partialOpcode_.reset();
        partial_.clear();
        return std::optional<Message>(std::move(whole));
      }
      default:
        return Error("unknown opcode " + std::to_string(opcode));
    }
  }
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  return std::optional<Message>();
}

}  // namespace agora::websocket
