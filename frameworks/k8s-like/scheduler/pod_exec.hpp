#pragma once

// `kubectl exec`, `kubectl attach` and `kubectl port-forward`: the pods/exec, pods/attach and
// pods/portforward subresources. The API
// server checks the request against the pod (its container, that it runs, that the client
// asked for a WebSocket), then relays the client's connection byte for byte to the agent of
// the pod's node, which answers the upgrade and runs the command in the container (or follows
// its output, for attach): agent/remote_command.hpp. Like the kube-apiserver's proxy to the
// kubelet, it never looks inside the WebSocket.

#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/http.hpp"
#include "common/result.hpp"
#include "frameworks/k8s-like/apiserver/http_server.hpp"

namespace agora::kube {

// The container a request names (`container`, or the pod's only one). The error is for a 400.
Result<std::string> podContainer(const nlohmann::json& pod,
                                 const std::map<std::string, std::string>& query);

struct RemoteCommandTarget {
  std::string agentAddress;  // the pod's agent, host:port
  std::string agentPath;     // /containers/exec, /containers/attach or /containers/portforward
  std::string taskId;        // the container's task
};

// Checks an exec or attach request (`subresource`) against the pod; the error is for a 400.
Result<RemoteCommandTarget> remoteCommandTarget(const nlohmann::json& pod,
                                                const HttpRequest& request,
                                                const std::string& subresource,
                                                const std::string& agentAddress);

// Relays the connection to the agent, on a thread of its own, until either side ends it.
void relayRemoteCommand(const HttpRequest& request, RemoteCommandTarget target,
                        std::shared_ptr<Exchange> exchange);

}  // namespace agora::kube
