// The resources parser (common/resources.hpp: "cpus:4;mem:1024;ports:[31000-32000]", the
// agents' --resources and the operator API's amounts) on any text, and the arithmetic on
// what it accepts: a parsed value prints to text that parses back to it, adding and taking
// away again gives it back, and it contains itself.

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/resources.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = agora::Resources::parse(text, size % 2 == 0 ? "*" : "eng");
  if (!parsed.ok()) return 0;
  const agora::Resources& r = *parsed;
  if (!agora::Resources::validate(r.toProto()).ok()) __builtin_trap();
  auto again = agora::Resources::parse(r.toString());
  if (!again.ok()) __builtin_trap();  // what it prints, it reads
  if (!r.contains(r)) __builtin_trap();
  agora::Resources twice = r + r;
  if (!twice.contains(r)) __builtin_trap();
  (void)(twice - r).toString();
  (void)r.unreserved().toString();
  (void)r.reservedFor("eng").toString();
  (void)r.scalar("cpus");
  (void)r.rangeCount("ports");
  return 0;
}
