#include <optional>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <glog/logging.h>

#include <sys/socket.h>

#include "common/http.hpp"
#include "common/http_message.hpp"
#include "common/rate_limiter.hpp"
#include "common/tcp_listen.hpp"
#include "common/tls_stream.hpp"

namespace agora {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);

// What stop() needs of a session, whatever its stream.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close() = 0;
};

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
  std::shared_ptr<net::ssl::context> tls;  // fixed before serve(); null: plain HTTP

  // Whether the request may go on; otherwise the answer (401 or 403). Sets its principal:
  // the client certificate's (`certified`, verified against the client CA) or the token's.
  std::optional<HttpResponse> authorize(HttpRequest& request, bool takesOver,
                                        const std::string& certified) {
    if (!tokens) {
      request.principal = certified;
      return std::nullopt;
    }
    if (openPaths.count(request.path) > 0) {
      return std::nullopt;
    }
    std::optional<TokenGrant> grant;
    auto header = request.headers.find("authorization");
    if (!certified.empty()) {
      grant = tokens->grantOf(certified);
    } else if (header != request.headers.end() && header->second.rfind("Bearer ", 0) == 0) {
      grant = tokens->find(header->second.substr(7));
    }
    if (!grant) {
      ++refused;
      HttpResponse r = HttpResponse::error(
          401, !certified.empty()
                   ? "the client certificate of '" + certified +
                         "' is not granted any scope here (--http_credentials)"
               : header == request.headers.end()
                   ? "this API needs a bearer token (Authorization: Bearer <token>) or a "
                     "client certificate"
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
  std::vector<std::weak_ptr<SessionBase>> sessions;

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
  // A TLS server's new connection: a TLS session, or a plain request answered 400.
  void detect(tcp::socket socket);
  template <class Stream>
  void startSession(Stream stream, beast::flat_buffer early);
};

namespace {

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Session(Stream&& stream, std::shared_ptr<HttpServer::Impl> server, beast::flat_buffer early)
      : stream_(std::move(stream)), server_(std::move(server)), buffer_(std::move(early)) {}

  void start() {
    if constexpr (kTls) {
      lowest().expires_after(kHandshakeTimeout);
      stream_.async_handshake(
          net::ssl::stream_base::server, buffer_.data(),
          [self = this->shared_from_this()](beast::error_code ec, size_t used) {
            if (ec) {
              VLOG(1) << "HTTP: TLS handshake failed: " << ec.message();
              ++self->server_->badRequests;
              self->close();
              return;
            }
            self->buffer_.consume(used);
            self->certified_ = peerCommonName(self->stream_);
            self->read();
          });
    } else {
      read();
    }
  }

  void close() override {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().socket().close(ec);
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(kMaxRequestBody);
    parser_->header_limit(kMaxRequestHeader);
    lowest().expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       self->onRead(ec);
                     });
  }

  void onRead(beast::error_code ec) {
    if (ec) {
      // A TLS client that hangs up without a close_notify (most do) is a client gone, too.
      if (ec != http::error::end_of_stream && ec != net::error::eof &&
          ec != net::error::connection_reset && ec != beast::error::timeout &&
          ec != net::ssl::error::stream_truncated) {
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
      auto peer = lowest().socket().remote_endpoint(ec);
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
    if (std::optional<HttpResponse> refusal =
            server_->authorize(request, takesOver, certified_)) {
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
      lowest().expires_never();
      int fd = -1;
      if constexpr (kTls) {
        // The handler gets a plain socket; the TLS session is relayed to it from here.
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) != 0) {
          close();
          return;
        }
        net::local::stream_protocol::socket local(stream_.get_executor());
        local.assign(net::local::stream_protocol(), pair[0]);
        std::make_shared<TlsRelay>(std::move(stream_), std::move(local))->start();
        fd = pair[1];
      } else {
        beast::error_code ec;
        fd = stream_.socket().release(ec);
        if (ec) {
          close();
          return;
        }
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
    auto self = this->shared_from_this();
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
    lowest().expires_after(kIdleTimeout);
    http::async_write(stream_, *response,
                      [self = this->shared_from_this(), response](beast::error_code ec, size_t) {
                        if (ec || !self->keepAlive_) {
                          self->close();
                          return;
                        }
                        self->read();
                      });
  }

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  Stream stream_;
  std::shared_ptr<HttpServer::Impl> server_;
  beast::flat_buffer buffer_;
  std::string certified_;  // the client certificate's principal, under TLS
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
        } else if (self->tls) {
          self->detect(std::move(socket));
        } else {
          self->startSession(beast::tcp_stream(std::move(socket)), beast::flat_buffer());
        }
        self->accept();
      });
}

template <class Stream>
void HttpServer::Impl::startSession(Stream stream, beast::flat_buffer early) {
  auto session = std::make_shared<Session<Stream>>(std::move(stream), shared_from_this(),
                                                   std::move(early));
  std::erase_if(sessions, [](const auto& s) { return s.expired(); });
  sessions.push_back(session);
  session->start();
}

void HttpServer::Impl::detect(tcp::socket socket) {
  struct Detection {
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
  };
  auto d = std::make_shared<Detection>(Detection{beast::tcp_stream(std::move(socket)), {}});
  d->stream.expires_after(kHandshakeTimeout);
  beast::async_detect_ssl(
      d->stream, d->buffer, [self = shared_from_this(), d](beast::error_code ec, bool tls) {
        if (ec || !self->running) {
          return;
        }
        if (tls) {
          self->startSession(TlsStream(std::move(d->stream), *self->tls), std::move(d->buffer));
          return;
        }
        // Plain HTTP to a TLS port: say so, in plain HTTP, rather than drop the connection.
        ++self->badRequests;
        static const std::string kBody =
            "{\"error\":\"this server speaks HTTPS: use https:// (TLS) to reach it\"}\n";
        static const std::string kAnswer =
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: "
            "close\r\nContent-Length: " + std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
        net::async_write(d->stream, net::buffer(kAnswer), [d](beast::error_code, size_t) {
          beast::error_code ignored;
          d->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
          d->stream.socket().close(ignored);
        });
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

Status HttpServer::useTls(const TlsServerConfig& config) {
  CHECK(!impl_->running) << "TLS is set before serve()";
  auto context = makeServerContext(config);
  if (!context) {
    return Error(context.error());
  }
  impl_->tls = *context;
  return ok();
}

bool HttpServer::usesTls() const { return impl_->tls != nullptr; }

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
