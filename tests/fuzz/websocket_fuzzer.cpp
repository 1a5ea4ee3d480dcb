// The WebSocket decoder (common/websocket.hpp) on any bytes, as a client or a server would
// send them, in pieces of any size: it must give messages or an error, never crash or grow
// without bound.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/websocket.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  bool fromClient = (data[0] & 1) != 0;
  size_t piece = 1 + data[1] % 64;
  agora::websocket::Decoder decoder(fromClient, 1 << 16);
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  while (!in.empty()) {
    size_t n = in.size() < piece ? in.size() : piece;
    decoder.feed(in.substr(0, n));
    in.remove_prefix(n);
    while (true) {
      auto next = decoder.next();
      if (!next.ok()) return 0;  // a broken stream: the connection would close
      if (!next->has_value()) break;
      if ((*next)->payload.size() > (1u << 16)) __builtin_trap();  // past the limit
    }
  }
  return 0;
}
