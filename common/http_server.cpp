#include <optional>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <glog/logging.h>

#include "common/http.hpp"
#include "common/http_message.hpp"
#include "common/rate_limiter.hpp"
#include "common/tcp_listen.hpp"

namespace agora {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(60);

class Session;

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  net::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  std::thread thread;
  std::map<std::string, HttpHandler> exact;
  std::map<std::string, HttpTakeover> takeovers;
  std::vector<std::pair<std::string, HttpHandler>> prefixes;
  std::atomic<uint64_t> badRequests{0};
  std::atomic<uint64_t> throttled{0};
  std::optional<RateLimiter> limiter;  // used on the server's thread only
  std::optional<HttpTokens> tokens;    // fixed before serve()
  std::set<std::string> openPaths;
  std::map<std::string, std::set<std::string>> restricted;  // path -> principals
  std::atomic<uint64_t> refused{0};

  // Whether the request may go on; otherwise the answer (401 or 403). Sets its principal.
  std::optional<HttpResponse> authorize(HttpRequest& request, bool takesOver) {
    if (!tokens || openPaths.count(request.path) > 0) {
      return std::nullopt;
    }
    std::optional<TokenGrant> grant;
    auto header = request.headers.find("authorization");
    if (header != request.headers.end() && header->second.rfind("Bearer ", 0) == 0) {
      grant = tokens->find(header->second.substr(7));
    }
    if (!grant) {
      ++refused;
      HttpResponse r = HttpResponse::error(
          401, header == request.headers.end()
                   ? "this API needs a bearer token (Authorization: Bearer <token>)"
                   : "the bearer token is not one this server knows");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"agora\"");
      return r;
    }
    request.principal = grant->principal;
    bool reads = (request.method == "GET" || request.method == "HEAD") && !takesOver;
    if (!grant->admin && !reads) {
      ++refused;
      return HttpResponse::error(403, "the token of '" + grant->principal +
                                          "' is read-only: it cannot " + request.method + " " +
                                          request.path);
    }
    auto only = restricted.find(request.path);
    if (only != restricted.end() && only->second.count(grant->principal) == 0) {
      ++refused;
      std::string who;
      for (const std::string& p : only->second) who += (who.empty() ? "" : ", ") + p;
      return HttpResponse::error(403, request.path + " is only for " +
                                          (who.empty() ? std::string("no one") : who) +
                                          ", not '" + grant->principal + "'");
    }
    return std::nullopt;
  }
  uint16_t port = 0;
  std::atomic<bool> running{false};
  // Live sessions (io thread only), so that stop() can close them: pending operations then
  // end, and nothing is left holding the io_context.
  std::vector<std::weak_ptr<Session>> sessions;

  const HttpHandler* find(const std::string& path) const {
    auto it = exact.find(path);
    if (it != exact.end()) {
      return &it->second;
    }
    const HttpHandler* best = nullptr;
    size_t bestLength = 0;
    for (const auto& [prefix, handler] : prefixes) {
      if (path.rfind(prefix, 0) == 0 && prefix.size() > bestLength) {
        best = &handler;
        bestLength = prefix.size();
      }
    }
    return best;
  }

  void accept();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<HttpServer::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {}

  void start() { read(); }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(kMaxRequestBody);
    parser_->header_limit(kMaxRequestHeader);
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->onRead(ec);
                     });
  }

  void onRead(beast::error_code ec) {
    if (ec) {
      if (ec != http::error::end_of_stream && ec != net::error::eof &&
          ec != net::error::connection_reset && ec != beast::error::timeout) {
        ++server_->badRequests;
        VLOG(1) << "HTTP request rejected: " << ec.message();
        if (ec == http::error::body_limit || ec == http::error::header_limit) {
          HttpResponse r = HttpResponse::error(413, "request too large");
          keepAlive_ = false;
          write(std::move(r));
          return;
        }
        HttpResponse r = HttpResponse::error(400, "malformed request: " + ec.message());
        keepAlive_ = false;
        write(std::move(r));
        return;
      }
      close();
      return;
    }
    auto& message = parser_->get();
    keepAlive_ = message.keep_alive();
    version_ = message.version();

    HttpRequest request = toHttpRequest(message);
    if (server_->limiter) {
      beast::error_code ec;
      auto peer = stream_.socket().remote_endpoint(ec);
      std::string client = ec ? std::string("?") : peer.address().to_string();
      if (!server_->limiter->allow(client, std::chrono::steady_clock::now())) {
        ++server_->throttled;
        LOG_EVERY_N(WARNING, 100) << "HTTP: too many requests from " << client
                                  << "; answering 429 (" << server_->throttled.load()
                                  << " so far)";
        HttpResponse r = HttpResponse::error(429, "too many requests from " + client +
                                                      "; slow down and retry");
        r.headers.emplace_back("Retry-After", "1");
        write(std::move(r));
        return;
      }
    }

    bool takesOver = server_->takeovers.count(request.path) > 0;
    if (std::optional<HttpResponse> refusal = server_->authorize(request, takesOver)) {
      LOG_EVERY_N(WARNING, 100) << "HTTP: refused " << request.method << " " << request.path
                                << ": " << refusal->body;
      write(std::move(*refusal));
      return;
    }
    if (auto takeover = server_->takeovers.find(request.path);
        takeover != server_->takeovers.end()) {
      // The connection is the handler's from here: the socket and what came after the request.
      auto early = buffer_.data();
      std::string rest(static_cast<const char*>(early.data()), early.size());
      beast::error_code ec;
      stream_.expires_never();
      int fd = stream_.socket().release(ec);
      if (ec) {
        close();
        return;
      }
      takeover->second(request, fd, std::move(rest));
      return;
    }
    const HttpHandler* handler = server_->find(request.path);
    if (handler == nullptr) {
      write(HttpResponse::error(404, "no such endpoint: " + request.path));
      return;
    }
    auto once = std::make_shared<std::atomic<bool>>(false);
    auto self = shared_from_this();
    HttpResponder respond = [self, once](HttpResponse response) {
      if (once->exchange(true) || !self->server_->running) {
        return;  // answered already, or the server is gone
      }
      net::post(self->stream_.get_executor(),
                [self, r = std::move(response)]() mutable { self->write(std::move(r)); });
    };
    (*handler)(request, std::move(respond));
  }

  void write(HttpResponse r) {
    auto response = std::make_shared<http::response<http::string_body>>();
    response->version(version_);
    response->result(static_cast<http::status>(r.status));
    response->set(http::field::server, "agora");
    response->set(http::field::content_type, r.contentType);
    for (const auto& [name, value] : r.headers) {
      response->set(name, value);
    }
    response->body() = std::move(r.body);
    response->keep_alive(keepAlive_);
    response->prepare_payload();
    stream_.expires_after(kIdleTimeout);
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code ec, size_t) {
                        if (ec || !self->keepAlive_) {
                          self->close();
                          return;
                        }
                        self->read();
                      });
  }

  beast::tcp_stream stream_;
  std::shared_ptr<HttpServer::Impl> server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keepAlive_ = false;
  unsigned version_ = 11;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor->async_accept(
      net::make_strand(io), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (!self->running || !self->acceptor->is_open()) {
          return;
        }
        if (ec) {
          LOG_EVERY_N(WARNING, 100) << "HTTP accept: " << ec.message();
        } else {
          auto session = std::make_shared<Session>(std::move(socket), self);
          std::erase_if(self->sessions, [](const auto& s) { return s.expired(); });
          self->sessions.push_back(session);
          session->start();
        }
        self->accept();
      });
}

HttpServer::HttpServer() : impl_(std::make_shared<Impl>()) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(const std::string& path, HttpHandler handler) {
  CHECK(!impl_->running) << "routes are fixed before start()";
  if (!path.empty() && path.back() == '/') {
    impl_->prefixes.emplace_back(path, std::move(handler));
  } else {
    impl_->exact[path] = std::move(handler);
  }
}

void HttpServer::takeOver(const std::string& path, HttpTakeover handler) {
  CHECK(!impl_->running) << "routes are fixed before start()";
  impl_->takeovers[path] = std::move(handler);
}

Result<uint16_t> HttpServer::start(const std::string& ip, uint16_t port) {
  auto bound = listen(ip, port);
  if (bound) {
    serve();
  }
  return bound;
}

Result<uint16_t> HttpServer::listen(const std::string& ip, uint16_t port) {
  CHECK(!impl_->running && !impl_->acceptor);
  auto bound = listenTcp(impl_->io, impl_->acceptor, ip, port);
  if (!bound) {
    return bound;
  }
  impl_->port = *bound;
  return impl_->port;
}

void HttpServer::serve() {
  CHECK(impl_->acceptor && !impl_->running) << "serve() needs a successful listen() first";
  impl_->running = true;
  impl_->accept();
  impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
}

void HttpServer::stop() {
  if (!impl_->running) {
    return;
  }
  impl_->running = false;
  // Close everything: pending operations end with errors, and io.run() returns once no work is
  // left (no io.stop(), which would strand handlers that hold sessions).
  net::post(impl_->io, [impl = impl_] {
    beast::error_code ec;
    impl->acceptor->close(ec);
    for (auto& weak : impl->sessions) {
      if (auto session = weak.lock()) {
        session->close();
      }
    }
    impl->sessions.clear();
  });
  impl_->thread.join();
}

uint16_t HttpServer::port() const { return impl_->port; }

uint64_t HttpServer::badRequests() const { return impl_->badRequests.load(); }

void HttpServer::limitRate(double perSecond, double burst) {
  if (perSecond > 0) {
    impl_->limiter.emplace(perSecond, std::max(1.0, burst));
  } else {
    impl_->limiter.reset();
  }
}

uint64_t HttpServer::throttledRequests() const { return impl_->throttled.load(); }

void HttpServer::requireTokens(HttpTokens tokens, std::set<std::string> openPaths) {
  impl_->tokens = std::move(tokens);
  impl_->openPaths = std::move(openPaths);
}

void HttpServer::restrict(const std::string& path, std::set<std::string> principals) {
  impl_->restricted[path] = std::move(principals);
}

uint64_t HttpServer::refusedRequests() const { return impl_->refused.load(); }

std::string HttpServer::metricsText(const std::string& prefix) const {
  std::string out;
  auto counter = [&](const std::string& name, const std::string& help, uint64_t value) {
    std::string full = prefix + "_http_" + name + "_total";
    out += "# HELP " + full + " " + help + "\n# TYPE " + full + " counter\n" + full + " " +
           std::to_string(value) + "\n";
  };
  counter("bad_requests", "HTTP requests that could not be read, were too large, or timed out.",
          badRequests());
  counter("throttled", "HTTP requests answered 429: over the client's rate limit.",
          throttledRequests());
  counter("unauthorized", "HTTP requests answered 401 or 403: no token, an unknown one, or one "
                          "that may not do that.",
          refusedRequests());
  return out;
}

}  // namespace agora
