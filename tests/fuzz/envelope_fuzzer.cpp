// The protocol's envelope decoder (common/envelope.hpp), every message a master, agent,
// scheduler or executor receives, on any bytes: an envelope or an error, and an envelope it
// accepts encodes and decodes again.

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/envelope.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    agora::quietProtobufLogging();
    return true;
  }();
  (void)quiet;
  auto envelope = agora::decodeEnvelope(data, size);
  if (!envelope.ok()) return 0;
  (void)agora::envelopeKind(*envelope);
  std::string bytes = agora::encodeEnvelope(*envelope);
  if (!agora::decodeEnvelope(bytes.data(), bytes.size()).ok()) __builtin_trap();
  return 0;
}
