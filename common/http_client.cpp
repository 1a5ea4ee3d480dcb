#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <functional>
#include <optional>

#include "common/http.hpp"
#include "common/http_tokens.hpp"
#include "common/tls_stream.hpp"

namespace agora {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

// One exchange on a connected (and, for TLS, handshaken) stream, under `stream`'s deadline.
template <class Stream>
void exchange(Stream& stream, http::request<http::string_body>& request,
              http::response_parser<http::string_body>& parser, beast::flat_buffer& buffer,
              const std::function<void(const std::string&, beast::error_code)>& fail,
              bool* done) {
  http::async_write(stream, request, [&, done](beast::error_code ec, size_t) {
    if (ec) {
      return fail("HTTP request failed:", ec);
    }
    http::async_read(stream, buffer, parser, [&, done](beast::error_code ec, size_t) {
      if (ec) {
        return fail("HTTP response failed:", ec);
      }
      *done = true;
    });
  });
}

}  // namespace

Result<HttpResponse> httpRequest(const std::string& method, const std::string& address,
                                 const std::string& target, const std::string& body,
                                 Duration timeout, const std::string& contentType) {
  HttpAddress where = parseHttpAddress(address);
  auto hostPort = splitHostPort(where.hostPort);
  if (!hostPort) {
    return Error(hostPort.error());
  }
  const auto& [host, port] = *hostPort;
  std::shared_ptr<ssl::context> context;
  if (where.tls) {
    auto made = makeClientContext(defaultHttpTls().value_or(TlsClientConfig{}));
    if (!made) {
      return Error(made.error());
    }
    context = *made;
  }

  // Asynchronous operations under one io_context, so the stream's deadline covers the whole
  // exchange (Beast applies timeouts only to asynchronous operations).
  net::io_context io;
  tcp::resolver resolver(io);
  std::optional<beast::tcp_stream> plain;
  std::optional<TlsStream> secure;
  if (context) {
    secure.emplace(beast::tcp_stream(io), *context);
    expectServerName(*secure, host);
  } else {
    plain.emplace(io);
  }
  beast::tcp_stream& lowest = context ? beast::get_lowest_layer(*secure) : *plain;
  beast::flat_buffer buffer;
  http::request<http::string_body> request(http::string_to_verb(method), target, 11);
  request.set(http::field::host, host);
  request.set(http::field::user_agent, "agora");
  if (const std::string& token = defaultBearerToken(); !token.empty()) {
    request.set(http::field::authorization, "Bearer " + token);
  }
  if (!body.empty()) {
    request.set(http::field::content_type, contentType);
    request.body() = body;
  }
  request.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);

  std::string failure;
  bool done = false;
  std::function<void(const std::string&, beast::error_code)> fail =
      [&](const std::string& what, beast::error_code ec) {
        failure = what + " " + where.hostPort + ": " + ec.message();
      };

  lowest.expires_after(timeout);
  resolver.async_resolve(host, std::to_string(port), [&](beast::error_code ec,
                                                         tcp::resolver::results_type results) {
    if (ec) {
      return fail("cannot resolve", ec);
    }
    lowest.async_connect(results, [&](beast::error_code ec, const tcp::endpoint&) {
      if (ec) {
        return fail("cannot connect to", ec);
      }
      if (!secure) {
        return exchange(*plain, request, parser, buffer, fail, &done);
      }
      secure->async_handshake(ssl::stream_base::client, [&](beast::error_code ec) {
        if (ec) {
          failure = "TLS handshake with " + where.hostPort +
                    " failed: " + handshakeFailure(*secure, ec);
          return;
        }
        exchange(*secure, request, parser, buffer, fail, &done);
      });
    });
  });
  io.run();

  if (!done) {
    return Error(failure.empty() ? "HTTP request to " + address + " failed" : failure);
  }
  auto& message = parser.get();
  HttpResponse response;
  response.status = static_cast<int>(message.result_int());
  response.contentType = std::string(message[http::field::content_type]);
  response.body = std::move(message.body());
  beast::error_code ignored;
  lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return response;
}

}  // namespace agora
