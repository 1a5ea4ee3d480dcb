#pragma once

// Names and labels as Kubernetes validates them, with its wording (kubectl users know it).

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "frameworks/k8s-like/apiserver/status.hpp"

namespace agora::kube {

// Why `name` is not a DNS-1123 subdomain (most objects' names) or label (namespaces,
// services); nullopt when it is one.
std::optional<std::string> dns1123Subdomain(const std::string& name);
std::optional<std::string> dns1123Label(const std::string& name);

// Why a label key or value is not valid; nullopt when it is.
std::optional<std::string> labelKey(const std::string& key);
std::optional<std::string> labelValue(const std::string& value);

// The causes of an object's metadata being invalid: its name (a subdomain, or a label when
// `labelName`), its labels. Empty when valid.
std::vector<FieldCause> validateMetadata(const nlohmann::json& metadata, bool labelName);

}  // namespace agora::kube
