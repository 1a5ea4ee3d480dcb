#include "frameworks/k8s-like/proxy/api_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace agora::kube {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct ApiClient::Impl {
  ApiClientOptions options;
  bool tls = false;
  std::string host;
  std::string port;
  net::io_context io;
  std::optional<ssl::context> context;
  std::optional<tcp::socket> plain;
  std::optional<ssl::stream<tcp::socket>> secure;

  void close() {
    plain.reset();
    secure.reset();
  }

  tcp::socket& socket() { return tls ? secure->next_layer() : *plain; }

  Status connect() {
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    auto found = resolver.resolve(host, port, ec);
    if (ec) return Error("cannot resolve " + host + ": " + ec.message());
    if (tls) {
      secure.emplace(io, *context);
    } else {
      plain.emplace(io);
    }
    net::connect(socket(), found, ec);
    if (ec) {
      close();
      return Error("cannot connect to " + options.server + ": " + ec.message());
    }
    // Blocking calls with a deadline: the socket's own timeouts.
    timeval tv{};
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(options.timeout).count();
    tv.tv_sec = micros / 1000000;
    tv.tv_usec = micros % 1000000;
    ::setsockopt(socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(socket().native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (tls) {
      ::SSL_set_tlsext_host_name(secure->native_handle(), host.c_str());
      secure->set_verify_callback(ssl::host_name_verification(host));
      secure->handshake(ssl::stream_base::client, ec);
      if (ec) {
        close();
        return Error("TLS with " + options.server + ": " + ec.message());
      }
    }
    return ok();
  }

  template <typename Stream>
  Result<std::string> exchange(Stream& stream, const std::string& target) {
    http::request<http::empty_body> request(http::verb::get, target, 11);
    request.set(http::field::host, host);
    request.set(http::field::accept, "application/json");
    request.set(http::field::user_agent, "agora-kube-proxy");
    if (!options.token.empty()) {
      request.set(http::field::authorization, "Bearer " + options.token);
    }
    boost::system::error_code ec;
    http::write(stream, request, ec);
    if (ec) {
      close();
      return Error("sending to " + options.server + ": " + ec.message());
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    http::read(stream, buffer, parser, ec);
    if (ec) {
      close();
      return Error("reading from " + options.server + ": " + ec.message());
    }
    auto response = parser.release();
    if (!response.keep_alive()) close();
    if (response.result_int() != 200) {
      return Error("GET " + target + ": HTTP " + std::to_string(response.result_int()) + ": " +
                   response.body().substr(0, 300));
    }
    return std::move(response.body());
  }
};

Result<std::unique_ptr<ApiClient>> ApiClient::make(ApiClientOptions options) {
  auto impl = std::make_unique<Impl>();
  std::string rest;
  if (options.server.rfind("https://", 0) == 0) {
    impl->tls = true;
    rest = options.server.substr(8);
  } else if (options.server.rfind("http://", 0) == 0) {
    rest = options.server.substr(7);
  } else {
    return Error("'" + options.server + "' is not an http:// or https:// address");
  }
  rest = rest.substr(0, rest.find('/'));
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon + 1 == rest.size()) {
    return Error("'" + options.server + "' has no port");
  }
  impl->host = rest.substr(0, colon);
  impl->port = rest.substr(colon + 1);
  if (impl->host.size() > 2 && impl->host.front() == '[') {
    impl->host = impl->host.substr(1, impl->host.size() - 2);
  }
  if (impl->tls) {
    impl->context.emplace(ssl::context::tls_client);
    impl->context->set_verify_mode(ssl::verify_peer);
    boost::system::error_code ec;
    if (options.caPem.empty()) {
      return Error("an https server needs its CA");
    }
    impl->context->add_certificate_authority(net::buffer(options.caPem), ec);
    if (ec) return Error("the CA: " + ec.message());
  }
  impl->options = std::move(options);
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(impl)));
}

ApiClient::ApiClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiClient::~ApiClient() = default;

Result<std::string> ApiClient::get(const std::string& target) {
  // A kept connection may have been closed by the server meanwhile: one fresh try.
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool fresh = !impl_->plain && !impl_->secure;
    if (fresh) {
      if (Status connected = impl_->connect(); !connected) return connected.error();
    }
    auto answer = impl_->tls ? impl_->exchange(*impl_->secure, target)
                             : impl_->exchange(*impl_->plain, target);
    if (answer || fresh || answer.error().rfind("GET ", 0) == 0) {
      return answer;
    }
    impl_->close();
  }
  return Error("unreachable");
}

}  // namespace agora::kube
