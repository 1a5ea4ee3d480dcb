#include "frameworks/k8s-like/apiserver/http_server.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <glog/logging.h>

#include "common/http_message.hpp"
#include "common/rate_limiter.hpp"
#include "common/tcp_listen.hpp"

namespace agora::kube {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr size_t kMaxBody = 3 * 1024 * 1024;  // kube-apiserver's limit on a request is 3 MiB
constexpr uint32_t kMaxHeader = 64 * 1024;
constexpr auto kIdleTimeout = std::chrono::seconds(120);
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);

std::string head(int status, const std::string& contentType,
                 const std::vector<std::pair<std::string, std::string>>& headers,
                 bool keepAlive) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " +
                    std::string(http::obsolete_reason(static_cast<http::status>(status))) +
                    "\r\nContent-Type: " + contentType + "\r\nCache-Control: no-cache, private\r\n";
  for (const auto& [name, value] : headers) {
    out += name + ": " + value + "\r\n";
  }
  if (!keepAlive) {
    out += "Connection: close\r\n";
  }
  return out;
}

// The session's side of the server, independent of the stream type.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  virtual void close() = 0;
};

}  // namespace

struct ApiHttpServer::Impl : std::enable_shared_from_this<ApiHttpServer::Impl> {
  net::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  std::optional<ssl::context> tls;
  ApiHandler handler;
  std::thread thread;
  std::atomic<bool> running{false};
  std::vector<std::weak_ptr<SessionBase>> sessions;  // io thread only
  std::unique_ptr<RateLimiter> limiter;               // io thread only, once started
  std::atomic<uint64_t> throttled{0};

  void accept();
};

namespace {

template <class Stream>
class Session final : public SessionBase {
 public:
  Session(Stream&& stream, std::shared_ptr<ApiHttpServer::Impl> server)
      : stream_(std::move(stream)), server_(std::move(server)) {}

  void start() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(kHandshakeTimeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = shared()](beast::error_code ec) {
                                if (ec) {
                                  VLOG(1) << "TLS handshake: " << ec.message();
                                  self->close();
                                  return;
                                }
                                self->read();
                              });
    } else {
      read();
    }
  }

  void close() override {
    if (closed_) {
      return;
    }
    closed_ = true;
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(stream_).socket().close(ec);
    auto fn = std::move(onClose_);
    onClose_ = nullptr;
    if (fn) {
      fn();
    }
  }

  // What an Exchange calls, from any thread: each posts onto the session's strand.
  void post(std::function<void(Session&)> fn) {
    net::post(stream_.get_executor(), [self = shared(), fn = std::move(fn)] { fn(*self); });
  }

  // On the strand.
  void respond(uint64_t exchange, HttpResponse r) {
    if (exchange != current_ || state_ != kAnswering) {
      return;
    }
    std::string out = head(r.status, r.contentType, r.headers, keepAlive_);
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n";
    out += r.body;
    state_ = kDone;
    enqueue(std::move(out));
  }

  void startStream(uint64_t exchange, int status, const std::string& contentType) {
    if (exchange != current_ || state_ != kAnswering) {
      return;
    }
    state_ = kStreaming;
    beast::get_lowest_layer(stream_).expires_never();
    std::string out = head(status, contentType, {}, keepAlive_);
    out += "Transfer-Encoding: chunked\r\n\r\n";
    enqueue(std::move(out));
    watchForClose();
  }

  void send(uint64_t exchange, const std::string& chunk) {
    if (exchange != current_ || state_ != kStreaming || chunk.empty()) {
      return;
    }
    char size[32];
    std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
    enqueue(std::string(size) + chunk + "\r\n");
  }

  void finish(uint64_t exchange) {
    if (exchange != current_ || state_ != kStreaming) {
      return;
    }
    state_ = kDone;
    keepAlive_ = false;  // the read watching for a close is still out: start afresh
    enqueue("0\r\n\r\n");
  }

  void tunnel(uint64_t exchange, std::string head, std::function<void(std::string)> received) {
    if (exchange != current_ || state_ != kAnswering) {
      return;
    }
    state_ = kTunnel;
    keepAlive_ = false;
    received_ = std::move(received);
    beast::get_lowest_layer(stream_).expires_never();
    enqueue(std::move(head));
    // What the client sent after its request is the tunnel's already.
    if (buffer_.size() > 0) {
      std::string early(static_cast<const char*>(buffer_.data().data()), buffer_.size());
      buffer_.consume(buffer_.size());
      received_(std::move(early));
    }
    readTunnel();
  }

  void sendRaw(uint64_t exchange, std::string bytes) {
    if (exchange != current_ || state_ != kTunnel || bytes.empty()) {
      return;
    }
    enqueue(std::move(bytes));
  }

  void finishTunnel(uint64_t exchange) {
    if (exchange != current_ || state_ != kTunnel) {
      return;
    }
    state_ = kDone;
    if (!writing_) {
      close();
    }
  }

  size_t backlog() const { return backlog_.load(); }
  bool tunnelling() const { return state_ == kTunnel; }

  void setOnClose(uint64_t exchange, std::function<void()> fn) {
    if (exchange != current_ || closed_) {
      if (fn) {
        fn();
      }
      return;
    }
    onClose_ = std::move(fn);
  }

 private:
  enum State { kReading, kAnswering, kStreaming, kTunnel, kDone };

  void readTunnel() {
    stream_.async_read_some(net::buffer(tunnelBuffer_),
                            [self = shared()](beast::error_code ec, size_t n) {
                              if (ec) {
                                self->close();
                                return;
                              }
                              if (self->state_ == kTunnel) {
                                self->received_(std::string(self->tunnelBuffer_.data(), n));
                                self->readTunnel();
                              }
                            });
  }

  std::shared_ptr<Session> shared() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }

  void read() {
    state_ = kReading;
    parser_.emplace();
    parser_->body_limit(kMaxBody);
    parser_->header_limit(kMaxHeader);
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared()](beast::error_code ec, size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    if (ec) {
      if (ec == http::error::body_limit || ec == http::error::header_limit) {
        keepAlive_ = false;
        state_ = kAnswering;
        respond(current_, HttpResponse::jsonBody(
                              R"({"kind":"Status","apiVersion":"v1","metadata":{},)"
                              R"("status":"Failure","message":"the request is too large",)"
                              R"("reason":"RequestEntityTooLarge","code":413})",
                              413));
        return;
      }
      close();
      return;
    }
    auto& message = parser_->get();
    keepAlive_ = message.keep_alive();
    HttpRequest request = toHttpRequest(message);
    state_ = kAnswering;
    ++current_;
    if (server_->limiter) {
      beast::error_code error;
      auto peer = beast::get_lowest_layer(stream_).socket().remote_endpoint(error);
      std::string client = error ? std::string("?") : peer.address().to_string();
      if (!server_->limiter->allow(client, std::chrono::steady_clock::now())) {
        uint64_t throttled = ++server_->throttled;
        LOG_EVERY_N(WARNING, 100) << "kube API: too many requests from " << client
                                  << "; answering 429 (" << throttled << " so far)";
        HttpResponse r = HttpResponse::jsonBody(
            R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
            R"("message":"too many requests from )" + client + R"(, slow down",)"
            R"("reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429})",
            429);
        r.headers.emplace_back("Retry-After", "1");
        respond(current_, std::move(r));
        return;
      }
    }
    server_->handler(std::move(request), makeExchange());
  }

  std::shared_ptr<Exchange> makeExchange();

  // While a stream runs, a read that ends only when the client closes its side.
  void watchForClose() {
    stream_.async_read_some(net::buffer(scratch_),
                            [self = shared()](beast::error_code ec, size_t) {
                              if (ec) {
                                self->close();
                                return;
                              }
                              if (self->state_ == kStreaming) {
                                self->watchForClose();
                              }
                            });
  }

  void enqueue(std::string bytes) {
    if (closed_) {
      return;
    }
    backlog_ += bytes.size();
    queue_.push_back(std::move(bytes));
    if (!writing_) {
      writeNext();
    }
  }

  void writeNext() {
    if (queue_.empty()) {
      writing_ = false;
      if (state_ == kDone) {
        if (keepAlive_) {
          read();
        } else {
          close();
        }
      }
      return;
    }
    writing_ = true;
    if (state_ != kStreaming && state_ != kTunnel) {
      beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    }
    net::async_write(stream_, net::buffer(queue_.front()),
                     [self = shared()](beast::error_code ec, size_t) {
                       if (ec) {
                         self->close();
                         return;
                       }
                       self->backlog_ -= self->queue_.front().size();
                       self->queue_.pop_front();
                       self->writeNext();
                     });
  }

  Stream stream_;
  std::shared_ptr<ApiHttpServer::Impl> server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<std::string> queue_;
  std::array<char, 512> scratch_{};
  std::function<void()> onClose_;
  std::function<void(std::string)> received_;  // a tunnel's client bytes
  std::array<char, 16 * 1024> tunnelBuffer_{};
  std::atomic<size_t> backlog_{0};
  State state_ = kReading;
  uint64_t current_ = 0;  // the exchange being answered
  bool keepAlive_ = true;
  bool writing_ = false;
  bool closed_ = false;
};

template <class Stream>
class SessionExchange final : public Exchange {
 public:
  // Holds the session: while the loop works on the answer, nothing else does.
  SessionExchange(std::shared_ptr<Session<Stream>> session, uint64_t id)
      : session_(std::move(session)), id_(id) {}

  void respond(HttpResponse response) override {
    with([id = id_, r = std::move(response)](Session<Stream>& s) mutable {
      s.respond(id, std::move(r));
    });
  }
  void startStream(int status, const std::string& contentType) override {
    with([id = id_, status, contentType](Session<Stream>& s) {
      s.startStream(id, status, contentType);
    });
  }
  void send(std::string chunk) override {
    with([id = id_, c = std::move(chunk)](Session<Stream>& s) mutable {
      if (s.tunnelling()) {
        s.sendRaw(id, std::move(c));
      } else {
        s.send(id, c);
      }
    });
  }
  void finish() override {
    with([id = id_](Session<Stream>& s) {
      if (s.tunnelling()) {
        s.finishTunnel(id);
      } else {
        s.finish(id);
      }
    });
  }
  void tunnel(std::string head, std::function<void(std::string)> received) override {
    with([id = id_, h = std::move(head), r = std::move(received)](Session<Stream>& s) mutable {
      s.tunnel(id, std::move(h), std::move(r));
    });
  }
  size_t backlog() const override { return session_->backlog(); }
  void onClose(std::function<void()> fn) override {
    session_->post([id = id_, fn = std::move(fn)](Session<Stream>& s) mutable {
      s.setOnClose(id, std::move(fn));
    });
  }

 private:
  void with(std::function<void(Session<Stream>&)> fn) {
    session_->post(std::move(fn));
  }

  std::shared_ptr<Session<Stream>> session_;
  uint64_t id_;
};

template <class Stream>
std::shared_ptr<Exchange> Session<Stream>::makeExchange() {
  return std::make_shared<SessionExchange<Stream>>(shared(), current_);
}

}  // namespace

void ApiHttpServer::Impl::accept() {
  acceptor->async_accept(
      net::make_strand(io), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (!self->running || !self->acceptor->is_open()) {
          return;
        }
        if (ec) {
          LOG_EVERY_N(WARNING, 100) << "API server accept: " << ec.message();
        } else {
          std::shared_ptr<SessionBase> session;
          if (self->tls) {
            using TlsStream = beast::ssl_stream<beast::tcp_stream>;
            auto s = std::make_shared<Session<TlsStream>>(
                TlsStream(beast::tcp_stream(std::move(socket)), *self->tls), self);
            s->start();
            session = s;
          } else {
            auto s = std::make_shared<Session<beast::tcp_stream>>(
                beast::tcp_stream(std::move(socket)), self);
            s->start();
            session = s;
          }
          std::erase_if(self->sessions, [](const auto& s) { return s.expired(); });
          self->sessions.push_back(session);
        }
        self->accept();
      });
}

ApiHttpServer::ApiHttpServer(ApiHandler handler, std::optional<TlsMaterial> tls)
    : impl_(std::make_shared<Impl>()) {
  impl_->handler = std::move(handler);
  if (tls) {
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                            ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                            ssl::context::no_tlsv1_1);
    impl_->tls->use_certificate_chain(
        net::buffer(tls->certificatePem.data(), tls->certificatePem.size()));
    impl_->tls->use_private_key(net::buffer(tls->keyPem.data(), tls->keyPem.size()),
                                ssl::context::pem);
  }
}

ApiHttpServer::~ApiHttpServer() { stop(); }

void ApiHttpServer::limitRate(double perSecond, double burst) {
  impl_->limiter = perSecond > 0 ? std::make_unique<RateLimiter>(perSecond, std::max(1.0, burst))
                                 : nullptr;
}

uint64_t ApiHttpServer::throttledRequests() const { return impl_->throttled.load(); }

Result<uint16_t> ApiHttpServer::start(const std::string& ip, uint16_t port) {
  auto listening = listenTcp(impl_->io, impl_->acceptor, ip, port);
  if (!listening) {
    return listening;
  }
  uint16_t bound = *listening;
  impl_->running = true;
  impl_->accept();
  impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
  return bound;
}

void ApiHttpServer::stop() {
  if (!impl_->running) {
    return;
  }
  impl_->running = false;
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

}  // namespace agora::kube
