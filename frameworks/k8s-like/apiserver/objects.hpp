#pragma once

// What the API server does to each kind's objects on their way into the store, as
// kube-apiserver does it: defaulting (a Deployment's 25% maxSurge, a pod's restartPolicy),
// validation with field causes (422 Invalid), the fields an update may not change, and which
// top-level fields a kind has (strict field validation).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "frameworks/k8s-like/apiserver/kinds.hpp"
#include "frameworks/k8s-like/apiserver/status.hpp"

namespace agora::kube {

void applyDefaults(const ResourceType& type, nlohmann::json& object);

// Why the object is invalid; empty when it is valid.
std::vector<FieldCause> validateObject(const ResourceType& type, const nlohmann::json& object);

// Why `next` may not replace `current` (immutable fields); empty when it may.
std::vector<FieldCause> validateUpdate(const ResourceType& type, const nlohmann::json& current,
                                       const nlohmann::json& next);

// Fields the kind does not have, as dotted paths ("spec.replica"); strict validation refuses
// them, the default warns.
std::vector<std::string> unknownFields(const ResourceType& type, const nlohmann::json& object);

// Secrets: stringData folded into data (base64), as the API server does on write.
void foldStringData(nlohmann::json& secret);

// A Kubernetes quantity ("500m", "1.5", "128Mi", "2G", "1e3") as a number of units (cores,
// bytes); an error for anything else.
Result<double> parseQuantity(const std::string& text);
// A quantity from JSON (a string, or a bare number).
Result<double> parseQuantity(const nlohmann::json& value);

// `object[field]` when `object` is an object holding a string there, else "": for reading
// what peers and users send without trusting its shape.
std::string stringField(const nlohmann::json& object, const char* field);

// The data of a ConfigMap (`data`, and `binaryData` decoded) or Secret (`data` decoded), key ->
// bytes; entries that are not strings are left out.
std::map<std::string, std::string> decodedData(const nlohmann::json& object, bool secret);

std::string base64Encode(const std::string& bytes);
std::optional<std::string> base64Decode(const std::string& text);

}  // namespace agora::kube
