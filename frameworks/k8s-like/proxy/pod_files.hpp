#pragma once

// The node's part in ConfigMap and Secret volumes: when an object changes, the files of the
// running pods on this node that show it are rewritten in place (common/task_files.hpp), so
// the containers see the new content, as the kubelet updates its volumes. Environment
// variables stay as they were, as in Kubernetes.

#include <string>

#include <nlohmann/json.hpp>

namespace agora::kube {

// `pods`, `configMaps`, `secrets`: the items of their lists. Returns how many files changed.
int refreshPodFiles(const nlohmann::json& pods, const nlohmann::json& configMaps,
                    const nlohmann::json& secrets, const std::string& nodeName);

}  // namespace agora::kube
