#pragma once

// The three patch types `kubectl` sends: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
// and Kubernetes' strategic merge patch, which merges lists of named things (containers by
// name, ports by port, volume mounts by path) instead of replacing them, and understands the
// `$patch`, `$retainKeys`, `$setElementOrder/...` and `$deleteFromPrimitiveList/...` directives
// that `kubectl apply` writes.

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace agora::kube {

enum class PatchType { kMerge, kJson, kStrategic, kApply, kUnknown };

// From the request's Content-Type.
PatchType patchTypeOf(const std::string& contentType);

// The patched object; an error says why the patch does not apply.
Result<nlohmann::json> applyPatch(PatchType type, const nlohmann::json& original,
                                  const std::string& patch);

// Strategic merge of `patch` into `original`.
Result<nlohmann::json> strategicMerge(const nlohmann::json& original, const nlohmann::json& patch);

}  // namespace agora::kube
