#pragma once

// HTTP on Boost.Beast: a small server that runs its sockets on one thread of its own and hands
// each request to a handler, and a blocking client for the CLI. Handlers never touch component
// state directly: they post into the component's loop and answer through the responder, which
// may be called from any thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/http_tokens.hpp"
#include "common/result.hpp"
#include "common/tls.hpp"
#include "common/time.hpp"

namespace agora {

struct HttpRequest {
  std::string method;
  std::string target;  // as sent, with the query
  std::string path;    // decoded, without the query
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  // Who sent it, by its bearer token, on a server that requires tokens; "" otherwise.
  std::string principal;

  // The query parameter, or `fallback` when absent.
  std::string param(const std::string& name, const std::string& fallback = "") const;
};

struct HttpResponse {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse text(std::string body, int status = 200);
  static HttpResponse jsonBody(std::string body, int status = 200);
  // {"error": message} with the given status.
  static HttpResponse error(int status, const std::string& message);
};

using HttpResponder = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(const HttpRequest&, HttpResponder)>;
// A handler that takes the connection over once the request is in (an upgrade to another
// protocol): it owns `fd` from then on (still non-blocking; it may change that) and is given
// the bytes that came after the request.
using HttpTakeover = std::function<void(const HttpRequest&, int fd, std::string early)>;

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes are fixed before start(): an exact path, or a prefix ending in '/'.
  void route(const std::string& path, HttpHandler handler);
  // An exact path whose requests take their connection over (on the server's thread: the
  // handler must not block).
  void takeOver(const std::string& path, HttpTakeover handler);

  // Binds and listens; returns the bound port (for port 0). Connections wait until serve().
  Result<uint16_t> listen(const std::string& ip, uint16_t port);
  // Starts answering, on a thread of its own. Routes are fixed from here on.
  void serve();
  // listen() then serve().
  Result<uint16_t> start(const std::string& ip, uint16_t port);
  void stop();

  uint16_t port() const;
  // Requests that could not be parsed, were too large, or timed out.
  uint64_t badRequests() const;

  // Before serve(): each client address may make `perSecond` requests a second on average and
  // `burst` at once; beyond that it is answered 429 (with Retry-After) while other clients are
  // served. perSecond <= 0: no limit (the default).
  void limitRate(double perSecond, double burst);
  // Requests answered 429 by that limit.
  uint64_t throttledRequests() const;

  // Before serve(): every request, except to `openPaths`, needs a bearer token from `tokens`
  // (401 otherwise); a read-only token may only GET or HEAD, and never take a connection over
  // (403). The token's principal is the request's `principal`.
  void requireTokens(HttpTokens tokens, std::set<std::string> openPaths);
  // Before serve(): HTTPS only (a plain request is answered 400 in plain HTTP). With a client
  // CA, a client certificate it signed names the request's principal (its common name); with
  // tokens too, the scope is what they grant that principal (HttpTokens::grantOf).
  Status useTls(const TlsServerConfig& config);
  bool usesTls() const;
  // Before serve(), with tokens: only `principals` may use `path` (403 for the others).
  void restrict(const std::string& path, std::set<std::string> principals);
  // Requests answered 401 or 403 by those checks.
  uint64_t refusedRequests() const;
  // Prometheus counters of the above (bad, throttled and refused requests), named
  // `<prefix>_http_..._total`.
  std::string metricsText(const std::string& prefix) const;

  struct Impl;  // Boost.Beast stays out of this header

 private:
  std::shared_ptr<Impl> impl_;
};

// "host:port" -> (host, port). Accepts "[::1]:5050".
Result<std::pair<std::string, uint16_t>> splitHostPort(const std::string& address);

std::string urlEncode(const std::string& s);
std::string urlDecode(const std::string& s);
// A query string ("a=1&b=x%20y&flag") into decoded parameters; a name without '=' maps to "".
void parseQuery(const std::string& query, std::map<std::string, std::string>* out);

// One request read from `bytes` as the server reads it from a connection, its limits
// included: an error for what the server answers 400 or 413 to, or if the request is not
// whole.
Result<HttpRequest> parseHttpRequest(const std::string& bytes);

// A blocking request with a deadline for the whole exchange.
Result<HttpResponse> httpRequest(const std::string& method, const std::string& address,
                                 const std::string& target, const std::string& body = "",
                                 Duration timeout = seconds(10),
                                 const std::string& contentType = "application/json");

inline Result<HttpResponse> httpGet(const std::string& address, const std::string& target,
                                    Duration timeout = seconds(10)) {
  return httpRequest("GET", address, target, "", timeout);
}

}  // namespace agora
