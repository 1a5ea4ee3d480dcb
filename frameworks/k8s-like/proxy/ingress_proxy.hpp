#pragma once

// The ingress proxy: an HTTP/1.1 reverse proxy serving an IngressTable (ingress_rules.hpp) on
// the ingress address, plain on one port and TLS on another (the certificate chosen by the
// name the client asks for). Each request is routed by its Host and path to one of the
// backend's ready endpoints in turn; bodies stream both ways (chunked or not), connections
// are kept alive on both sides, upgraded ones (WebSocket) tunnelled, and the backend learns
// the client through X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto and X-Real-IP. No
// route: 404; no ready endpoint: 503; none answering: 502.
//
// One thread, event-driven (asio). Messages are relayed, not rebuilt: only the heads are
// parsed (http1.hpp) and rewritten, bodies pass as they are framed, so a request costs one
// read and one write on each side. Idle connections close after 60 s.

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "frameworks/k8s-like/proxy/ingress_rules.hpp"

namespace agora::kube {

class IngressProxy {
 public:
  IngressProxy();
  ~IngressProxy();
  IngressProxy(const IngressProxy&) = delete;
  IngressProxy& operator=(const IngressProxy&) = delete;

  // Any thread: new requests are routed by `table` from now on.
  void update(IngressTable table);

  // Starts serving on ip:httpPort and ip:httpsPort (0: not that one). Fails when an address is
  // taken (another agent's proxy on this machine may serve it); the caller tries again later.
  Status listen(const std::string& ip, uint16_t httpPort, uint16_t httpsPort);
  bool listening() const;
  void stop();

  uint64_t requests() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace agora::kube
