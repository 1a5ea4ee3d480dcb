#include "frameworks/k8s-like/scheduler/pod_exec.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glog/logging.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "common/http_tokens.hpp"
#include "common/net.hpp"
#include "common/tls.hpp"
#include "frameworks/k8s-like/apiserver/objects.hpp"
#include "frameworks/k8s-like/apiserver/status.hpp"
#include "frameworks/k8s-like/scheduler/pod_scheduler.hpp"

namespace agora::kube {

using json = nlohmann::json;

namespace {

constexpr size_t kMaxBacklog = 4 * 1024 * 1024;  // client bytes not yet taken, either way
constexpr int kConnectSeconds = 10;

std::string header(const HttpRequest& request, const char* name) {
  auto it = request.headers.find(name);
  return it == request.headers.end() ? "" : it->second;
}

// A failure to reach the node: 500, as the kube-apiserver answers when the kubelet is away.
HttpResponse nodeError(const std::string& message) {
  ApiError error;
  error.message = message;
  return toResponse(ApiOutcome::failure(error));
}

// The agent's refusal as a Kubernetes answer.
HttpResponse refusalFrom(const std::string& head, const std::string& body) {
  json status = json::parse(body, nullptr, false);
  if (status.is_object() && status.value("kind", "") == "Status") {
    return HttpResponse::jsonBody(body, status.value("code", 500));
  }
  std::string line = head.substr(0, head.find('\r'));
  return nodeError("the node's agent answered " + line);
}

struct Relay {
  std::mutex mutex;
  std::deque<std::string> fromClient;
  size_t queued = 0;
  std::atomic<bool> clientGone{false};
  int wake[2] = {-1, -1};

  void poke() {
    char c = 'x';
    (void)::write(wake[1], &c, 1);
  }
};

}  // namespace

Result<std::string> podContainer(const json& pod, const std::map<std::string, std::string>& query) {
  const json meta = pod.value("metadata", json::object());
  const json spec = pod.value("spec", json::object());
  std::string name = stringField(meta, "name");
  std::vector<std::string> names;
  for (const char* list : {"containers", "initContainers"}) {
    const json containers = spec.value(list, json::array());
    for (const json& c : containers) {
      if (c.is_object()) names.push_back(stringField(c, "name"));
    }
  }
  auto asked = query.find("container");
  std::string container = asked == query.end() ? "" : asked->second;
  if (container.empty()) {
    if (spec.value("containers", json::array()).size() != 1) {
      std::string choices;
      for (const std::string& n : names) choices += (choices.empty() ? "" : " ") + n;
      return Error("a container name must be specified for pod " + name + ", choose one of: [" +
                   choices + "]");
    }
    return names.front();
  }
  if (std::find(names.begin(), names.end(), container) == names.end()) {
    return Error("container " + container + " is not valid for pod " + name);
  }
  return container;
}

Result<RemoteCommandTarget> remoteCommandTarget(const json& pod, const HttpRequest& request,
                                                const std::string& subresource,
                                                const std::string& agentAddress) {
  // A port-forward is to the pod's network, which its containers share: the first one's.
  std::map<std::string, std::string> query = request.query;
  if (subresource == "portforward") {
    const json containers = pod.value("spec", json::object()).value("containers", json::array());
    if (!containers.empty() && containers[0].is_object()) {
      query["container"] = stringField(containers[0], "name");
    }
  }
  auto container = podContainer(pod, query);
  if (!container) return Error(container.error());
  const json meta = pod.value("metadata", json::object());
  std::string phase = stringField(pod.value("status", json::object()), "phase");
  if (phase == "Succeeded" || phase == "Failed") {
    return Error("cannot " + std::string(subresource == "portforward" ? "port-forward to" :
                                         subresource + " into") +
                 " a container in a completed pod; current phase is " + phase);
  }
  if (phase != "Running" || agentAddress.empty()) {
    return Error("container " + *container + " in pod " + stringField(meta, "name") +
                 " is not running (the pod is " + (phase.empty() ? "Pending" : phase) + ")");
  }
  // A container that is not running (waiting to start, or to be started again) has no
  // processes to join.
  const json statuses = pod.value("status", json::object()).value("containerStatuses", json::array());
  for (const json& status : statuses) {
    if (!status.is_object() || stringField(status, "name") != *container) continue;
    const json state = status.value("state", json::object());
    if (state.is_object() && !state.contains("running")) {
      std::string why = state.contains("waiting")
                            ? stringField(state["waiting"], "reason")
                            : (state.contains("terminated") ? "terminated" : "");
      return Error("container " + *container + " in pod " + stringField(meta, "name") +
                   " is not running" + (why.empty() ? "" : " (" + why + ")"));
    }
  }
  std::string upgrade = header(request, "upgrade");
  std::transform(upgrade.begin(), upgrade.end(), upgrade.begin(), ::tolower);
  if (upgrade != "websocket") {
    return Error(subresource + " is served over WebSockets (kubectl 1.30 or newer); this client "
                 "asked for " + (upgrade.empty() ? std::string("no upgrade") : upgrade));
  }
  RemoteCommandTarget target;
  target.agentAddress = agentAddress;
  target.agentPath = "/containers/" + subresource;
  target.taskId = PodScheduler::taskId(stringField(meta, "uid"), *container);
  return target;
}

void relayRemoteCommand(const HttpRequest& request, RemoteCommandTarget target,
                        std::shared_ptr<Exchange> exchange) {
  // The agent's request: the client's query (command, stdin, tty, ...) and WebSocket headers.
  size_t q = request.target.find('?');
  std::string query = q == std::string::npos ? "" : request.target.substr(q + 1);
  std::string agentRequest = "GET " + target.agentPath + "?task=" + urlEncode(target.taskId) +
                             (query.empty() ? "" : "&" + query) + " HTTP/1.1\r\nHost: " +
                             target.agentAddress + "\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\n";
  for (const char* name : {"sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol"}) {
    agentRequest += std::string(name) + ": " + header(request, name) + "\r\n";
  }
  if (const std::string& token = defaultBearerToken(); !token.empty()) {
    agentRequest += "Authorization: Bearer " + token + "\r\n";  // the kube framework's own
  }
  agentRequest += "\r\n";
  std::thread([agentRequest = std::move(agentRequest), target = std::move(target),
               exchange = std::move(exchange)] {
    auto fd = connectHttp(target.agentAddress, seconds(kConnectSeconds));
    if (!fd) {
      LOG(WARNING) << target.agentPath << " for task " << target.taskId
                   << ": cannot reach the node's agent: " << fd.error();
      exchange->respond(nodeError("cannot reach the node's agent: " + fd.error()));
      return;
    }
    std::string answer;
    size_t end = std::string::npos;
    char buffer[32 * 1024];
    bool sent = writeAll(*fd, agentRequest);
    while (sent && (end = answer.find("\r\n\r\n")) == std::string::npos && answer.size() < 65536) {
      ssize_t n = ::recv(*fd, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      answer.append(buffer, static_cast<size_t>(n));
    }
    if (end == std::string::npos) {
      ::close(*fd);
      LOG(WARNING) << target.agentPath << " for task " << target.taskId << ": the agent at "
                   << target.agentAddress << " did not answer";
      exchange->respond(nodeError("the node's agent at " + target.agentAddress +
                                  " did not answer"));
      return;
    }
    std::string head = answer.substr(0, end + 4);
    if (head.rfind("HTTP/1.1 101", 0) != 0) {
      std::string body = answer.substr(end + 4);
      while (true) {
        ssize_t n = ::recv(*fd, buffer, sizeof(buffer), 0);
        if (n <= 0 || body.size() > 65536) break;
        body.append(buffer, static_cast<size_t>(n));
      }
      ::close(*fd);
      LOG(WARNING) << target.agentPath << " for task " << target.taskId << ": the agent answered "
                   << head.substr(0, head.find('\r')) << ": " << body.substr(0, 512);
      exchange->respond(refusalFrom(head, body));
      return;
    }
    // Upgraded: bytes both ways until either side ends.
    timeval none{0, 0};
    ::setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    ::setsockopt(*fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
    auto relay = std::make_shared<Relay>();
    if (::pipe2(relay->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
      ::close(*fd);
      exchange->finish();
      return;
    }
    exchange->onClose([relay] {
      relay->clientGone = true;
      relay->poke();
    });
    exchange->tunnel(answer, [relay](std::string bytes) {
      std::lock_guard<std::mutex> lock(relay->mutex);
      if (relay->queued + bytes.size() > kMaxBacklog) {
        relay->clientGone = true;  // a client that floods a stuck command is cut off
      } else {
        relay->queued += bytes.size();
        relay->fromClient.push_back(std::move(bytes));
      }
      relay->poke();
    });
    while (!relay->clientGone) {
      pollfd fds[2] = {{*fd, POLLIN, 0}, {relay->wake[0], POLLIN, 0}};
      if (::poll(fds, 2, 1000) < 0 && errno != EINTR) break;
      if (fds[1].revents != 0) {
        while (::read(relay->wake[0], buffer, sizeof(buffer)) > 0) {
        }
        std::deque<std::string> pending;
        {
          std::lock_guard<std::mutex> lock(relay->mutex);
          pending.swap(relay->fromClient);
          relay->queued = 0;
        }
        bool agentTook = true;
        for (const std::string& bytes : pending) agentTook = agentTook && writeAll(*fd, bytes);
        if (!agentTook) break;
      }
      if (fds[0].revents != 0) {
        ssize_t n = ::recv(*fd, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        // A slow client holds the agent back rather than filling this process's memory.
        while (exchange->backlog() > kMaxBacklog && !relay->clientGone) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        exchange->send(std::string(buffer, static_cast<size_t>(n)));
      }
    }
    ::close(*fd);
    exchange->finish();
    // The callbacks may still poke: the pipe closes with the last of them.
    std::thread([relay] {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      ::close(relay->wake[0]);
      ::close(relay->wake[1]);
    }).detach();
  }).detach();
}

}  // namespace agora::kube
