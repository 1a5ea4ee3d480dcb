#pragma once

// The API server's HTTP front: HTTPS (or plain HTTP when asked) on Boost.Beast, one thread of
// its own, and answers that are either whole or streamed in chunks (watches). A request is handed
// to the handler as an Exchange, which any thread may answer: the API's loop answers it when it
// has the result, and a watch keeps sending on it until the client leaves.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/http.hpp"
#include "common/result.hpp"

namespace agora::kube {

// One request's answer. Thread-safe; calls after the exchange is over do nothing.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // A whole response.
  virtual void respond(HttpResponse response) = 0;
  // A chunked response: the head now, then each send() as it comes, until finish().
  virtual void startStream(int status, const std::string& contentType) = 0;
  virtual void send(std::string chunk) = 0;
  virtual void finish() = 0;
  // `fn` runs once (on the server's thread) when the client goes away or the server stops
  // before the exchange ended; a watch cancels itself there.
  virtual void onClose(std::function<void()> fn) = 0;
  // Hands the connection over as a byte pipe, for a protocol the client upgraded to that is
  // relayed elsewhere (kubectl exec's WebSocket to the agent): `head` goes out first (the
  // upgrade's answer), then what each send() gives, as it is; what the client sends goes to
  // `received`, on the server's thread, which it must not block. finish() closes.
  virtual void tunnel(std::string head, std::function<void(std::string)> received) = 0;
  // Bytes given to send() that have not gone out yet: a relay waits while there are many.
  virtual size_t backlog() const = 0;
};

using ApiHandler = std::function<void(HttpRequest, std::shared_ptr<Exchange>)>;

struct TlsMaterial {
  std::string certificatePem;  // the serving certificate
  std::string keyPem;
};

class ApiHttpServer {
 public:
  // Without `tls`, plain HTTP.
  ApiHttpServer(ApiHandler handler, std::optional<TlsMaterial> tls);
  ~ApiHttpServer();
  ApiHttpServer(const ApiHttpServer&) = delete;
  ApiHttpServer& operator=(const ApiHttpServer&) = delete;

  // Before start(): each client address may make `perSecond` requests a second on average and
  // `burst` at once; beyond that it is answered 429 (a Status, with Retry-After, which kubectl
  // waits out and retries) while other clients are served. perSecond <= 0: no limit.
  void limitRate(double perSecond, double burst);
  uint64_t throttledRequests() const;

  // Binds, listens and starts answering; returns the bound port (for port 0).
  Result<uint16_t> start(const std::string& ip, uint16_t port);
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace agora::kube
