#include "frameworks/k8s-like/proxy/ingress_proxy.hpp"

#include <sys/socket.h>
#include <cerrno>
#include <sys/time.h>

#include <atomic>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
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

constexpr size_t kMaxConnections = 4096;
constexpr uint32_t kHeaderLimit = 64 * 1024;
constexpr int kIdleSeconds = 60;
constexpr size_t kChunk = 64 * 1024;

void setTimeouts(int fd, int seconds) {
  timeval tv{};
  tv.tv_sec = seconds;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Copies the body of the message whose header `parser` has read from `in` to `out`, after its
// header, as it comes.
template <bool isRequest, typename In, typename Out>
bool relayMessage(In& in, beast::flat_buffer& buffer, http::parser<isRequest, http::buffer_body>& parser,
                  Out& out) {
  char chunk[kChunk];
  http::serializer<isRequest, http::buffer_body> serializer(parser.get());
  boost::system::error_code ec;
  do {
    if (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof(chunk);
      http::read(in, buffer, parser, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return false;
      parser.get().body().size = sizeof(chunk) - parser.get().body().size;
      parser.get().body().data = chunk;
      parser.get().body().more = !parser.is_done();
    } else {
      parser.get().body().data = nullptr;
      parser.get().body().size = 0;
      parser.get().body().more = false;  // the end: no more body comes
    }
    http::write(out, serializer, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return false;
  } while (!parser.is_done() || !serializer.is_done());
  return true;
}

template <typename Stream>
void answer(Stream& stream, http::status status, const std::string& text, unsigned version) {
  http::response<http::string_body> response(status, version);
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  response.set(http::field::server, "agora-ingress");
  response.keep_alive(false);
  response.body() = text + "\n";
  response.prepare_payload();
  boost::system::error_code ignored;
  http::write(stream, response, ignored);
}

}  // namespace

struct IngressProxy::Impl : std::enable_shared_from_this<IngressProxy::Impl> {
  net::io_context io;
  mutable std::mutex mutex;
  std::shared_ptr<const IngressTable> table = std::make_shared<IngressTable>();
  // TLS contexts by certificate (its PEM), for the table's certificates.
  std::map<std::string, std::shared_ptr<ssl::context>> contexts;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::thread> listeners;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> connections{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> turn{0};

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

  void accept(tcp::acceptor* acceptor, bool tls) {
    while (!stopping) {
      boost::system::error_code ec;
      tcp::socket socket(io);
      acceptor->accept(socket, ec);
      if (stopping) return;
      if (ec) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      if (connections >= kMaxConnections) {
        continue;  // closed: too many at once
      }
      ++connections;
      std::thread([self = shared_from_this(), socket = std::move(socket), tls]() mutable {
        try {
          self->session(std::move(socket), tls);
        } catch (const std::exception& e) {
          VLOG(1) << "Ingress connection: " << e.what();
        }
        --self->connections;
      }).detach();
    }
  }

  void session(tcp::socket socket, bool tls) {
    setTimeouts(socket.native_handle(), kIdleSeconds);
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    std::string client = socket.remote_endpoint(ec).address().to_string();
    if (!tls) {
      serve(socket, client, false);
      socket.shutdown(tcp::socket::shutdown_both, ec);
      return;
    }
    auto context = contextFor("");
    if (!context) return;  // no certificate at all
    ssl::stream<tcp::socket> stream(std::move(socket), *context);
    stream.handshake(ssl::stream_base::server, ec);
    if (ec) return;
    serve(stream, client, true);
    stream.shutdown(ec);
  }

  template <typename Stream>
  void serve(Stream& client, const std::string& clientIp, bool tls) {
    beast::flat_buffer buffer;
    std::optional<tcp::socket> upstream;
    Backend upstreamAt;
    beast::flat_buffer upstreamBuffer;
    while (true) {
      http::request_parser<http::buffer_body> request;
      request.header_limit(kHeaderLimit);
      request.body_limit(std::numeric_limits<std::uint64_t>::max());
      boost::system::error_code ec;
      http::read_header(client, buffer, request, ec);
      if (ec) {
        if (ec != http::error::end_of_stream && ec != net::error::eof &&
            ec != net::error::connection_reset && ec != net::error::would_block &&
            ec != net::error::timed_out && ec != net::ssl::error::stream_truncated) {
          answer(client, http::status::bad_request, "bad request: " + ec.message(), 11);
        }
        return;
      }
      ++requests;
      auto& message = request.get();
      unsigned version = message.version();
      std::string host(message[http::field::host]);
      std::string target(message.target());
      std::shared_ptr<const IngressTable> snapshot;
      {
        std::lock_guard<std::mutex> lock(mutex);
        snapshot = table;
      }
      const IngressBackend* backend = snapshot->route(host, target);
      if (backend == nullptr) {
        answer(client, http::status::not_found, "default backend - 404", version);
        return;
      }
      if (backend->endpoints.empty()) {
        answer(client, http::status::service_unavailable,
               "no ready endpoint for " + backend->service, version);
        return;
      }
      // The endpoint: the one already connected if it is still among them, else the next.
      const auto& all = backend->endpoints;
      bool reuse = upstream && upstream->is_open() &&
                   std::find(all.begin(), all.end(), upstreamAt) != all.end();
      if (reuse) {
        // A kept connection the endpoint has closed meanwhile is not used again.
        char probe;
        ssize_t peeked = ::recv(upstream->native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
        reuse = peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
      }
      if (!reuse) {
        upstream.reset();
        upstreamBuffer.clear();
        size_t first = turn++ % all.size();
        for (size_t i = 0; i < all.size() && i < 3 && !upstream; ++i) {
          const Backend& at = all[(first + i) % all.size()];
          tcp::socket s(io);
          tcp::endpoint endpoint(net::ip::make_address(at.ip, ec), at.port);
          if (!ec) s.connect(endpoint, ec);
          if (ec) continue;
          setTimeouts(s.native_handle(), kIdleSeconds);
          s.set_option(tcp::no_delay(true), ec);
          upstream.emplace(std::move(s));
          upstreamAt = at;
        }
        if (!upstream) {
          answer(client, http::status::bad_gateway, "no endpoint of " + backend->service +
                                                        " answers", version);
          return;
        }
      }
      bool clientKeepAlive = message.keep_alive();
      std::string forwarded(message["X-Forwarded-For"]);
      message.set("X-Forwarded-For", forwarded.empty() ? clientIp : forwarded + ", " + clientIp);
      message.set("X-Real-IP", clientIp);
      message.set("X-Forwarded-Host", host);
      message.set("X-Forwarded-Proto", tls ? "https" : "http");
      message.version(11);
      message.keep_alive(true);
      bool head = message.method() == http::verb::head;
      if (!relayMessage(client, buffer, request, *upstream)) {
        return;
      }
      // The answer (after any 1xx interim ones, which go through as they are).
      while (true) {
        http::response_parser<http::buffer_body> response;
        response.header_limit(kHeaderLimit);
        response.body_limit(std::numeric_limits<std::uint64_t>::max());
        if (head) response.skip(true);
        http::read_header(*upstream, upstreamBuffer, response, ec);
        if (ec) {
          answer(client, http::status::bad_gateway, "the endpoint of " + backend->service +
                                                        " did not answer: " + ec.message(),
                 version);
          return;
        }
        unsigned status = response.get().result_int();
        bool upstreamKeepAlive = response.get().keep_alive();
        if (status >= 100 && status < 200 && status != 101) {
          http::response<http::empty_body> interim(response.get().result(), version);
          interim.base() = response.get().base();
          http::write(client, interim, ec);
          if (ec) return;
          continue;
        }
        response.get().version(version);
        response.get().keep_alive(clientKeepAlive);
        // A body that ends when the endpoint closes goes on chunked to a client kept alive.
        if (!head && !response.chunked() && !response.content_length() && status != 204 &&
            status != 304 && clientKeepAlive && version == 11) {
          response.get().chunked(true);
        }
        if (!relayMessage(*upstream, upstreamBuffer, response, client)) {
          return;
        }
        if (!upstreamKeepAlive) upstream.reset();
        break;
      }
      if (!clientKeepAlive) return;
    }
  }
};

IngressProxy::IngressProxy() : impl_(std::make_shared<Impl>()) {}

IngressProxy::~IngressProxy() { stop(); }

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
  std::vector<std::pair<std::unique_ptr<tcp::acceptor>, bool>> made;
  for (auto [port, tls] : {std::pair<uint16_t, bool>{httpPort, false}, {httpsPort, true}}) {
    if (port == 0) continue;
    boost::system::error_code ec;
    tcp::endpoint endpoint(net::ip::make_address(ip, ec), port);
    if (ec) return Error("'" + ip + "' is not an address");
    auto acceptor = std::make_unique<tcp::acceptor>(impl_->io);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error("cannot listen on " + ip + ":" + std::to_string(port) + ": " + ec.message());
    }
    made.emplace_back(std::move(acceptor), tls);
  }
  impl_->stopping = false;
  for (auto& [acceptor, tls] : made) {
    tcp::acceptor* raw = acceptor.get();
    impl_->acceptors.push_back(std::move(acceptor));
    impl_->listeners.emplace_back([impl = impl_, raw, tls = tls] { impl->accept(raw, tls); });
  }
  return ok();
}

bool IngressProxy::listening() const { return !impl_->listeners.empty(); }

void IngressProxy::stop() {
  impl_->stopping = true;
  for (auto& acceptor : impl_->acceptors) {
    ::shutdown(acceptor->native_handle(), SHUT_RDWR);  // wakes the blocked accept
  }
  for (auto& t : impl_->listeners) t.join();
  impl_->listeners.clear();
  impl_->acceptors.clear();
}

uint64_t IngressProxy::requests() const { return impl_->requests; }

}  // namespace agora::kube
