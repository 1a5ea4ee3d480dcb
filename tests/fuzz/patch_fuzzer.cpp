// The kube API's patch engines (frameworks/k8s-like/apiserver/patch.hpp: JSON patch, merge
// patch, strategic merge) on any object and any patch. The API server answers a thrown JSON
// error with a 400, so only a crash or undefined behaviour is a finding here.

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "frameworks/k8s-like/apiserver/patch.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using agora::kube::PatchType;
  if (size < 1) return 0;
  static const PatchType kTypes[] = {PatchType::kMerge, PatchType::kJson, PatchType::kStrategic};
  PatchType type = kTypes[data[0] % 3];
  std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t split = rest.find('\0');
  std::string objectText = split == std::string::npos ? "{}" : rest.substr(0, split);
  std::string patch = split == std::string::npos ? rest : rest.substr(split + 1);
  nlohmann::json object = nlohmann::json::parse(objectText, nullptr, false);
  if (object.is_discarded()) object = nlohmann::json::object();
  try {
    auto patched = agora::kube::applyPatch(type, object, patch);
    if (patched.ok()) (void)patched->dump();
  } catch (const nlohmann::json::exception&) {
    // Answered with a 400 by the API server.
  }
  return 0;
}
