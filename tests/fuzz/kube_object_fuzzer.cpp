// What the kube API does with a request's object before it stores it: decode it by its
// Content-Type (JSON, or Kubernetes' protobuf encoding that kubectl's typed commands send),
// find its kind, apply the defaults, validate it, list its unknown fields, and read a Secret's
// data. The first byte picks the encoding. The API server answers a thrown JSON error with a
// 400, so only a crash or undefined behaviour is a finding here.

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "frameworks/k8s-like/apiserver/kinds.hpp"
#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/protobuf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace agora::kube;  // NOLINT
  if (size < 1) return 0;
  const char* contentType =
      data[0] % 2 == 0 ? "application/json" : "application/vnd.kubernetes.protobuf";
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    auto object = decodeObject(contentType, body);
    if (!object.ok() || !object->is_object()) return 0;
    nlohmann::json& o = *object;
    const ResourceType* type = findKind(o.value("apiVersion", ""), o.value("kind", ""));
    if (type == nullptr) return 0;
    (void)unknownFields(*type, o);
    applyDefaults(*type, o);
    (void)validateObject(*type, o);
    (void)validateUpdate(*type, o, o);
    if (o.value("kind", "") == "Secret") {
      foldStringData(o);
      (void)decodedData(o, true);
    } else if (o.value("kind", "") == "ConfigMap") {
      (void)decodedData(o, false);
    }
    (void)o.dump();
  } catch (const nlohmann::json::exception&) {
    // Answered with a 400 by the API server.
  }
  return 0;
}
