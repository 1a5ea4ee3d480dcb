// The SPDY/3.1 frame decoder (agent/spdy.hpp, kubectl port-forward) on any bytes: frames or an
// error, whatever the header blocks' zlib streams hold.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/spdy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  agora::spdy::Decoder decoder;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // In two pieces, split where the first byte says.
  size_t split = size > 0 ? data[0] % (size + 1) : 0;
  for (std::string_view piece : {in.substr(0, split), in.substr(split)}) {
    decoder.feed(piece);
    while (true) {
      auto frame = decoder.next();
      if (!frame.ok() || !frame->has_value()) break;
    }
  }
  return 0;
}
