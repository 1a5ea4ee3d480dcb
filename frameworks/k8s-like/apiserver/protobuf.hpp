#pragma once

// Kubernetes' protobuf encoding, read into JSON. Recent kubectl sends the objects its typed
// generators make (`kubectl create namespace|configmap|secret|deployment|service`, `run`,
// `expose`, `autoscale`) as `application/vnd.kubernetes.protobuf`: the bytes "k8s\0", then a
// runtime.Unknown holding the TypeMeta and the object's own message. This decoder knows the
// field numbers of the messages those commands fill in; a field it does not know is an error
// (the client is told to send JSON, as `kubectl apply` does), never silently dropped.

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace agora::kube {

bool isProtobuf(const std::string& contentType);

Result<nlohmann::json> decodeProtobuf(const std::string& body);

// A request's object, JSON or protobuf by its Content-Type.
Result<nlohmann::json> decodeObject(const std::string& contentType, const std::string& body);

}  // namespace agora::kube
