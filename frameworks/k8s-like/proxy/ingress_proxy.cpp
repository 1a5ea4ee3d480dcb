#include "frameworks/k8s-like/proxy/ingress_proxy.hpp"

#include <algorithm>
#include <atomic>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <glog/logging.h>

namespace agora::kube {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr size_t kMaxConnections = 10000;
constexpr uint32_t kHeaderLimit = 64 * 1024;
constexpr auto kIdle = std::chrono::seconds(60);
constexpr auto kConnect = std::chrono::seconds(5);
constexpr size_t kChunk = 64 * 1024;
constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

}  // namespace

struct IngressProxy::Impl : std::enable_shared_from_this<IngressProxy::Impl> {
  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  mutable std::mutex mutex;
  std::shared_ptr<const IngressTable> table = std::make_shared<IngressTable>();
  // TLS contexts by certificate (its PEM), for the table's certificates.
  std::map<std::string, std::shared_ptr<ssl::context>> contexts;
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;  // the io thread's, once listening
  std::atomic<size_t> connections{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> turn{0};

  std::shared_ptr<const IngressTable> snapshot() {
    std::lock_guard<std::mutex> lock(mutex);
    return table;
  }

  std::shared_ptr<ssl::context> contextFor(const std::string& host) {
    std::lock_guard<std::mutex> lock(mutex);
    const TlsCertificate* cert = table->certificateFor(host);
    if (cert == nullptr) return nullptr;
    auto it = contexts.find(cert->certPem);
    return it == contexts.end() ? nullptr : it->second;
  }

  static int onServerName(SSL* ssl, int*, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    const char* name = ::SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name != nullptr) {
      if (auto context = self->contextFor(name)) ::SSL_set_SSL_CTX(ssl, context->native_handle());
    }
    return SSL_TLSEXT_ERR_OK;
  }

  std::shared_ptr<ssl::context> makeContext(const TlsCertificate& cert) {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1);
    context->use_certificate_chain(net::buffer(cert.certPem), ec);
    if (!ec) context->use_private_key(net::buffer(cert.keyPem), ssl::context::pem, ec);
    if (ec) {
      LOG(WARNING) << "Ingress TLS certificate not usable: " << ec.message();
      return nullptr;
    }
    ::SSL_CTX_set_tlsext_servername_callback(context->native_handle(), &Impl::onServerName);
    ::SSL_CTX_set_tlsext_servername_arg(context->native_handle(), this);
    return context;
  }

  void accept(std::shared_ptr<tcp::acceptor> acceptor, bool tls);
};

namespace {

// One client connection: requests read one after the other (keep-alive), each relayed to an
// endpoint of its route and its answer relayed back, bodies streamed in chunks both ways.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(std::shared_ptr<IngressProxy::Impl> proxy, Stream stream, std::string clientIp,
          bool tls, std::shared_ptr<ssl::context> context)
      : proxy_(std::move(proxy)),
        client_(std::move(stream)),
        clientIp_(std::move(clientIp)),
        tls_(tls),
        context_(std::move(context)) {}

  ~Session() { --proxy_->connections; }

  void start() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(client_).expires_after(kIdle);
      client_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](boost::system::error_code ec) {
                                if (!ec) self->readHeader();
                              });
    } else {
      readHeader();
    }
  }

 private:
  using Self = Session<Stream>;

  void readHeader() {
    request_.reset();
    requestWriter_.reset();
    request_.emplace();
    request_->header_limit(kHeaderLimit);
    request_->body_limit(kNoLimit);
    beast::get_lowest_layer(client_).expires_after(kIdle);
    clientRefreshed_ = std::chrono::steady_clock::now();
    http::async_read_header(client_, buffer_, *request_,
                            [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                              self->onHeader(ec);
                            });
  }

  void onHeader(boost::system::error_code ec) {
    if (ec) {
      if (ec != http::error::end_of_stream && ec != net::error::eof &&
          ec != net::error::connection_reset && ec != beast::error::timeout &&
          ec != net::ssl::error::stream_truncated && ec != net::error::operation_aborted) {
        answer(http::status::bad_request, "bad request: " + ec.message());
      }
      return;
    }
    ++proxy_->requests;
    auto& message = request_->get();
    version_ = message.version();
    host_ = std::string(message[http::field::host]);
    std::string target(message.target());
    table_ = proxy_->snapshot();
    backend_ = table_->route(host_, target);
    if (backend_ == nullptr) {
      answer(http::status::not_found, "default backend - 404");
      return;
    }
    if (backend_->endpoints.empty()) {
      answer(http::status::service_unavailable, "no ready endpoint for " + backend_->service);
      return;
    }
    const auto& all = backend_->endpoints;
    if (upstream_ && std::find(all.begin(), all.end(), upstreamAt_) != all.end()) {
      sendRequest();  // the kept connection, to an endpoint still among them
      return;
    }
    upstream_.reset();
    upstreamBuffer_.clear();
    tries_ = 0;
    first_ = proxy_->turn++;
    connect();
  }

  void connect() {
    const auto& all = backend_->endpoints;
    if (tries_ >= std::min<size_t>(all.size(), 3)) {
      answer(http::status::bad_gateway, "no endpoint of " + backend_->service + " answers");
      return;
    }
    upstreamAt_ = all[(first_ + tries_++) % all.size()];
    boost::system::error_code ec;
    tcp::endpoint endpoint(net::ip::make_address(upstreamAt_.ip, ec), upstreamAt_.port);
    if (ec) {
      connect();
      return;
    }
    upstream_ = std::make_unique<beast::tcp_stream>(proxy_->io);
    upstream_->expires_after(kConnect);
    upstream_->async_connect(endpoint, [self = this->shared_from_this()](boost::system::error_code ec) {
      if (ec) {
        self->upstream_.reset();
        self->connect();
        return;
      }
      boost::system::error_code ignored;
      self->upstream_->socket().set_option(tcp::no_delay(true), ignored);
      self->sendRequest();
    });
  }

  void sendRequest() {
    upstream_->expires_after(kIdle);
    upstreamRefreshed_ = std::chrono::steady_clock::now();
    auto& message = request_->get();
    clientKeepAlive_ = message.keep_alive();
    head_ = message.method() == http::verb::head;
    std::string forwarded(message["X-Forwarded-For"]);
    message.set("X-Forwarded-For", forwarded.empty() ? clientIp_ : forwarded + ", " + clientIp_);
    message.set("X-Real-IP", clientIp_);
    message.set("X-Forwarded-Host", host_);
    message.set("X-Forwarded-Proto", tls_ ? "https" : "http");
    message.version(11);
    message.keep_alive(true);
    requestWriter_.emplace(message);
    pumpRequest();
  }

  // Request body: read a chunk from the client (unless done), write it to the endpoint.
  void pumpRequest() {
    auto& body = request_->get().body();
    if (request_->is_done()) {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
      writeRequest();
      return;
    }
    body.data = chunk_;
    body.size = sizeof(chunk_);
    refresh(beast::get_lowest_layer(client_), clientRefreshed_);
    http::async_read(client_, buffer_, *request_,
                     [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                       if (ec == http::error::need_buffer) ec = {};
                       if (ec) return;
                       auto& body = self->request_->get().body();
                       body.size = sizeof(self->chunk_) - body.size;
                       body.data = self->chunk_;
                       body.more = !self->request_->is_done();
                       self->writeRequest();
                     });
  }

  void writeRequest() {
    refresh(*upstream_, upstreamRefreshed_);
    http::async_write(*upstream_, *requestWriter_,
                      [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                        if (ec == http::error::need_buffer) ec = {};
                        if (ec) {
                          self->answer(http::status::bad_gateway,
                                       "cannot send to " + self->backend_->service);
                          return;
                        }
                        if (!self->request_->is_done() || !self->requestWriter_->is_done()) {
                          self->pumpRequest();
                        } else {
                          self->readResponseHeader();
                        }
                      });
  }

  void readResponseHeader() {
    responseWriter_.reset();
    response_.reset();
    response_.emplace();
    response_->header_limit(kHeaderLimit);
    response_->body_limit(kNoLimit);
    if (head_) response_->skip(true);
    refresh(*upstream_, upstreamRefreshed_);
    http::async_read_header(*upstream_, upstreamBuffer_, *response_,
                            [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                              self->onResponseHeader(ec);
                            });
  }

  void onResponseHeader(boost::system::error_code ec) {
    if (ec) {
      upstream_.reset();
      answer(http::status::bad_gateway,
             "the endpoint of " + backend_->service + " did not answer: " + ec.message());
      return;
    }
    auto& message = response_->get();
    unsigned status = message.result_int();
    upstreamKeepAlive_ = message.keep_alive();
    if (status >= 100 && status < 200 && status != 101) {
      // An interim answer goes through as it is; the real one follows.
      auto interim = std::make_shared<http::response<http::empty_body>>(message.result(), version_);
      interim->base() = message.base();
      http::async_write(client_, *interim,
                        [self = this->shared_from_this(), interim](boost::system::error_code ec,
                                                                   size_t) {
                          if (!ec) self->readResponseHeader();
                        });
      return;
    }
    message.version(version_);
    message.keep_alive(clientKeepAlive_);
    // A body that ends when the endpoint closes goes on chunked to a client kept alive.
    if (!head_ && !response_->chunked() && !response_->content_length() && status != 204 &&
        status != 304 && clientKeepAlive_ && version_ == 11) {
      message.chunked(true);
    }
    responseWriter_.emplace(message);
    pumpResponse();
  }

  void pumpResponse() {
    auto& body = response_->get().body();
    if (response_->is_done()) {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
      writeResponse();
      return;
    }
    body.data = chunk_;
    body.size = sizeof(chunk_);
    // A short body already read with the header (the common case) is taken from the buffer at
    // once, so header and body go to the client in one write.
    auto length = response_->content_length();
    if (length && *length <= sizeof(chunk_) && upstreamBuffer_.size() >= *length) {
      boost::system::error_code ec;
      http::read(upstream_->socket(), upstreamBuffer_, *response_, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (!ec && response_->is_done()) {
        body.size = sizeof(chunk_) - body.size;
        body.data = chunk_;
        body.more = false;
        writeResponse();
        return;
      }
      close();
      return;
    }
    refresh(*upstream_, upstreamRefreshed_);
    http::async_read(*upstream_, upstreamBuffer_, *response_,
                     [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                       if (ec == http::error::need_buffer) ec = {};
                       if (ec) return;  // the client sees the connection close mid-answer
                       auto& body = self->response_->get().body();
                       body.size = sizeof(self->chunk_) - body.size;
                       body.data = self->chunk_;
                       body.more = !self->response_->is_done();
                       self->writeResponse();
                     });
  }

  void writeResponse() {
    refresh(beast::get_lowest_layer(client_), clientRefreshed_);
    http::async_write(client_, *responseWriter_,
                      [self = this->shared_from_this()](boost::system::error_code ec, size_t) {
                        if (ec == http::error::need_buffer) ec = {};
                        if (ec) return;
                        if (!self->response_->is_done() || !self->responseWriter_->is_done()) {
                          self->pumpResponse();
                          return;
                        }
                        if (!self->upstreamKeepAlive_) self->upstream_.reset();
                        if (self->clientKeepAlive_) {
                          self->readHeader();
                        } else {
                          self->close();
                        }
                      });
  }

  // The proxy's own answer, after which the connection closes.
  void answer(http::status status, const std::string& text) {
    auto response = std::make_shared<http::response<http::string_body>>(status, version_);
    response->set(http::field::content_type, "text/plain; charset=utf-8");
    response->set(http::field::server, "agora-ingress");
    response->keep_alive(false);
    response->body() = text + "\n";
    response->prepare_payload();
    beast::get_lowest_layer(client_).expires_after(kIdle);
    http::async_write(client_, *response,
                      [self = this->shared_from_this(), response](boost::system::error_code, size_t) {
                        self->close();
                      });
  }

  // Moves a stream's deadline on while a message streams, a few times a minute rather than at
  // every chunk (each move costs the timer a system call).
  static void refresh(beast::tcp_stream& stream, std::chrono::steady_clock::time_point& at) {
    auto now = std::chrono::steady_clock::now();
    if (now - at > std::chrono::seconds(10)) {
      stream.expires_after(kIdle);
      at = now;
    }
  }

  void close() {
    boost::system::error_code ignored;
    beast::get_lowest_layer(client_).socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  std::shared_ptr<IngressProxy::Impl> proxy_;
  Stream client_;
  std::string clientIp_;
  bool tls_;
  std::shared_ptr<ssl::context> context_;  // kept while the TLS stream uses it
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::buffer_body>> request_;
  std::optional<http::request_serializer<http::buffer_body>> requestWriter_;
  std::unique_ptr<beast::tcp_stream> upstream_;
  Backend upstreamAt_;
  beast::flat_buffer upstreamBuffer_;
  std::optional<http::response_parser<http::buffer_body>> response_;
  std::optional<http::response_serializer<http::buffer_body>> responseWriter_;
  std::shared_ptr<const IngressTable> table_;  // keeps backend_ valid
  const IngressBackend* backend_ = nullptr;
  std::string host_;
  unsigned version_ = 11;
  bool clientKeepAlive_ = false;
  bool upstreamKeepAlive_ = false;
  bool head_ = false;
  size_t tries_ = 0;
  uint64_t first_ = 0;
  std::chrono::steady_clock::time_point clientRefreshed_;
  std::chrono::steady_clock::time_point upstreamRefreshed_;
  char chunk_[kChunk];
};

}  // namespace

void IngressProxy::Impl::accept(std::shared_ptr<tcp::acceptor> acceptor, bool tls) {
  acceptor->async_accept([self = shared_from_this(), acceptor, tls](boost::system::error_code ec,
                                                                    tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
    if (!ec && self->connections < kMaxConnections) {
      ++self->connections;
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::string client = socket.remote_endpoint(ignored).address().to_string();
      if (!tls) {
        std::make_shared<Session<beast::tcp_stream>>(self, beast::tcp_stream(std::move(socket)),
                                                     client, false, nullptr)
            ->start();
      } else if (auto context = self->contextFor("")) {
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
            self, beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *context),
            client, true, context)
            ->start();
      } else {
        --self->connections;  // no certificate at all: closed
      }
    }
    self->accept(acceptor, tls);
  });
}

IngressProxy::IngressProxy() : impl_(std::make_shared<Impl>()) {
  impl_->work.emplace(impl_->io.get_executor());
  impl_->threads.emplace_back([impl = impl_] { impl->io.run(); });
}

IngressProxy::~IngressProxy() {
  stop();
  impl_->work.reset();
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
}

void IngressProxy::update(IngressTable table) {
  auto next = std::make_shared<const IngressTable>(std::move(table));
  std::map<std::string, std::shared_ptr<ssl::context>> contexts;
  for (const auto& [host, cert] : next->certificates) {
    if (contexts.count(cert.certPem)) continue;
    {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      auto known = impl_->contexts.find(cert.certPem);
      if (known != impl_->contexts.end()) {
        contexts[cert.certPem] = known->second;
        continue;
      }
    }
    if (auto made = impl_->makeContext(cert)) contexts[cert.certPem] = made;
  }
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->table = std::move(next);
  impl_->contexts = std::move(contexts);
}

Status IngressProxy::listen(const std::string& ip, uint16_t httpPort, uint16_t httpsPort) {
  if (listening()) return ok();
  std::vector<std::pair<std::shared_ptr<tcp::acceptor>, bool>> made;
  for (auto [port, tls] : {std::pair<uint16_t, bool>{httpPort, false}, {httpsPort, true}}) {
    if (port == 0) continue;
    boost::system::error_code ec;
    tcp::endpoint endpoint(net::ip::make_address(ip, ec), port);
    if (ec) return Error("'" + ip + "' is not an address");
    auto acceptor = std::make_shared<tcp::acceptor>(impl_->io);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error("cannot listen on " + ip + ":" + std::to_string(port) + ": " + ec.message());
    }
    made.emplace_back(std::move(acceptor), tls);
  }
  std::promise<void> done;
  net::post(impl_->io, [impl = impl_, made, &done] {
    for (const auto& [acceptor, tls] : made) {
      impl->acceptors.push_back(acceptor);
      impl->accept(acceptor, tls);
    }
    done.set_value();
  });
  done.get_future().wait();
  return ok();
}

bool IngressProxy::listening() const {
  std::promise<bool> answer;
  net::post(impl_->io, [impl = impl_, &answer] { answer.set_value(!impl->acceptors.empty()); });
  return answer.get_future().get();
}

void IngressProxy::stop() {
  std::promise<void> done;
  net::post(impl_->io, [impl = impl_, &done] {
    for (auto& acceptor : impl->acceptors) {
      boost::system::error_code ignored;
      acceptor->close(ignored);
    }
    impl->acceptors.clear();
    done.set_value();
  });
  done.get_future().wait();
}

uint64_t IngressProxy::requests() const { return impl_->requests; }

}  // namespace agora::kube
