#pragma once

// The kubeconfig entry that lets the stock kubectl reach `agora kube`, written as minikube
// writes its own: a cluster (server and CA), a user (bearer token) and a context, all under one
// name, merged into the user's kubeconfig without touching their other entries, and the context
// made current.

#include <string>

#include "common/result.hpp"

namespace agora::kube {

struct KubeconfigEntry {
  std::string name = "agora";  // of the cluster, user and context
  std::string server;          // https://127.0.0.1:6443
  std::string caPem;           // the CA kubectl trusts for it
  std::string token;           // the bearer token
  std::string ns = "default";
};

// Adds or replaces the entry in the kubeconfig at `path` (made if missing; written atomically,
// mode 0600) and makes its context current. A file that is not a kubeconfig is an error, and is
// left as it was.
Status mergeKubeconfig(const std::string& path, const KubeconfigEntry& entry);

// Takes the entry named `name` out again (and the current context, if it was that one).
Status removeFromKubeconfig(const std::string& path, const std::string& name);

// $KUBECONFIG's first file, or ~/.kube/config.
std::string defaultKubeconfigPath();

}  // namespace agora::kube
