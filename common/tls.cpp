#include "common/tls.hpp"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <glog/logging.h>

#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/net.hpp"
#include "common/tls_stream.hpp"

namespace agora {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

std::mutex defaultMutex;
std::optional<TlsClientConfig> defaultConfig;  // guarded by defaultMutex

bool isIpAddress(const std::string& host) {
  in_addr v4;
  in6_addr v6;
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

}  // namespace

Result<TlsServerConfig> loadTlsServerConfig(const std::string& certPath,
                                            const std::string& keyPath,
                                            const std::string& clientCaPath) {
  if (certPath.empty() || keyPath.empty()) {
    return Error("TLS needs both a certificate (--tls_cert) and its key (--tls_key)");
  }
  TlsServerConfig config;
  for (auto [path, out] : {std::pair{&certPath, &config.certPem}, {&keyPath, &config.keyPem},
                           {&clientCaPath, &config.clientCaPem}}) {
    if (path->empty()) continue;
    auto text = readFile(*path);
    if (!text) return Error(text.error());
    *out = *text;
  }
  if (auto context = makeServerContext(config); !context) {
    return Error(certPath + ", " + keyPath + ": " + context.error());
  }
  return config;
}

Result<std::shared_ptr<ssl::context>> makeServerContext(const TlsServerConfig& config) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  context->use_certificate_chain(net::buffer(config.certPem), ec);
  if (ec) return Error("not a PEM certificate: " + ec.message());
  context->use_private_key(net::buffer(config.keyPem), ssl::context::pem, ec);
  if (ec || SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return Error(ec && ec.message().find("mismatch") == std::string::npos
                     ? "not a PEM private key: " + ec.message()
                     : "the private key does not belong to the certificate");
  }
  if (!config.clientCaPem.empty()) {
    context->add_certificate_authority(net::buffer(config.clientCaPem), ec);
    if (ec) return Error("the client CA is not a PEM certificate: " + ec.message());
    // Asked for, not required: a client may prove who it is with a bearer token instead.
    context->set_verify_mode(ssl::verify_peer);
  }
  return context;
}

Result<std::shared_ptr<ssl::context>> makeClientContext(const TlsClientConfig& config) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  if (config.caPem.empty()) {
    context->set_default_verify_paths(ec);
  } else {
    context->add_certificate_authority(net::buffer(config.caPem), ec);
  }
  if (ec) return Error("the CA is not a PEM certificate: " + ec.message());
  context->set_verify_mode(ssl::verify_peer);
  if (!config.certPem.empty()) {
    context->use_certificate_chain(net::buffer(config.certPem), ec);
    if (!ec) context->use_private_key(net::buffer(config.keyPem), ssl::context::pem, ec);
    if (ec) return Error("the client certificate or its key is not PEM: " + ec.message());
  }
  return context;
}

void expectServerName(TlsStream& stream, const std::string& host) {
  SSL* ssl = stream.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (isIpAddress(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
}

std::string handshakeFailure(TlsStream& stream, const boost::system::error_code& ec) {
  long verified = SSL_get_verify_result(stream.native_handle());
  if (verified != X509_V_OK) {
    return std::string("the server's certificate does not verify: ") +
           X509_verify_cert_error_string(verified);
  }
  return ec.message();
}

std::string peerCommonName(TlsStream& stream) {
  SSL* ssl = stream.native_handle();
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return "";
  char name[256] = {0};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name,
                                    sizeof(name));
  return n > 0 ? std::string(name, static_cast<size_t>(n)) : "";
}

TlsRelay::TlsRelay(TlsStream stream, net::local::stream_protocol::socket local)
    : stream_(std::move(stream)), local_(std::move(local)) {}

void TlsRelay::start() {
  beast::get_lowest_layer(stream_).expires_never();
  fromTls();
  toTls();
}

void TlsRelay::fromTls() {
  stream_.async_read_some(net::buffer(up_), [self = shared_from_this()](
                                                beast::error_code ec, size_t n) {
    if (ec) {
      // The peer is done sending (or gone): the local side reads its end of stream, and the
      // relay lasts until it closes.
      beast::error_code ignored;
      self->local_.shutdown(net::socket_base::shutdown_send, ignored);
      return;
    }
    net::async_write(self->local_, net::buffer(self->up_.data(), n),
                     [self](beast::error_code ec, size_t) {
                       if (ec) return self->close();
                       self->fromTls();
                     });
  });
}

void TlsRelay::toTls() {
  local_.async_read_some(net::buffer(down_), [self = shared_from_this()](beast::error_code ec,
                                                                          size_t n) {
    if (ec) return self->close();  // the local side closed: the exchange is over
    net::async_write(self->stream_, net::buffer(self->down_.data(), n),
                     [self](beast::error_code ec, size_t) {
                       if (ec) return self->close();
                       self->toTls();
                     });
  });
}

void TlsRelay::close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ignored;
  beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(stream_).socket().close(ignored);
  local_.close(ignored);
}

void setDefaultHttpTls(std::optional<TlsClientConfig> config) {
  std::lock_guard<std::mutex> lock(defaultMutex);
  defaultConfig = std::move(config);
}

std::optional<TlsClientConfig> defaultHttpTls() {
  std::lock_guard<std::mutex> lock(defaultMutex);
  return defaultConfig;
}

HttpAddress parseHttpAddress(const std::string& address) {
  if (address.rfind("https://", 0) == 0) return {address.substr(8), true};
  if (address.rfind("http://", 0) == 0) return {address.substr(7), false};
  std::lock_guard<std::mutex> lock(defaultMutex);
  return {address, defaultConfig.has_value()};
}

Result<int> connectHttp(const std::string& address, Duration timeout) {
  HttpAddress target = parseHttpAddress(address);
  if (!target.tls) {
    return connectTcp(target.hostPort, timeout);
  }
  auto hostPort = splitHostPort(target.hostPort);
  if (!hostPort) return Error(hostPort.error());
  auto context = makeClientContext(defaultHttpTls().value_or(TlsClientConfig{}));
  if (!context) return Error(context.error());

  auto io = std::make_shared<net::io_context>(1);
  TlsStream stream(beast::tcp_stream(*io), **context);
  expectServerName(stream, hostPort->first);
  std::string failure;
  bool ready = false;
  beast::get_lowest_layer(stream).expires_after(timeout > Duration::zero() ? timeout : seconds(30));
  tcp::resolver resolver(*io);
  resolver.async_resolve(
      hostPort->first, std::to_string(hostPort->second),
      [&](beast::error_code ec, tcp::resolver::results_type results) {
        if (ec) {
          failure = "cannot resolve " + target.hostPort + ": " + ec.message();
          return;
        }
        beast::get_lowest_layer(stream).async_connect(
            results, [&](beast::error_code ec, const tcp::endpoint&) {
              if (ec) {
                failure = "cannot connect to " + target.hostPort + ": " + ec.message();
                return;
              }
              stream.async_handshake(ssl::stream_base::client, [&](beast::error_code ec) {
                if (ec) {
                  failure = "TLS handshake with " + target.hostPort +
                            " failed: " + handshakeFailure(stream, ec);
                  return;
                }
                ready = true;
              });
            });
      });
  io->run();
  if (!ready) {
    return Error(failure.empty() ? "no TLS connection to " + target.hostPort : failure);
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return Error(std::string("socketpair: ") + std::strerror(errno));
  }
  if (timeout > Duration::zero()) {
    // As connectTcp's descriptor: each later send and receive is bounded too.
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    timeval tv{static_cast<time_t>(micros / 1000000), static_cast<suseconds_t>(micros % 1000000)};
    ::setsockopt(pair[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ::setsockopt(pair[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  io->restart();
  net::local::stream_protocol::socket local(*io);
  local.assign(net::local::stream_protocol(), pair[0]);
  auto relay = std::make_shared<TlsRelay>(std::move(stream), std::move(local));
  relay->start();
  // The relay's thread ends with the connection; it holds what the stream needs.
  std::thread([io, context = *context] { io->run(); }).detach();
  return pair[1];
}

}  // namespace agora
