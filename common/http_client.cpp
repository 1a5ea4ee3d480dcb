#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "common/http.hpp"
#include "common/http_tokens.hpp"

namespace agora {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

std::string HttpRequest::param(const std::string& name, const std::string& fallback) const {
  auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

HttpResponse HttpResponse::text(std::string body, int status) {
  HttpResponse r;
  r.status = status;
  r.contentType = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::jsonBody(std::string body, int status) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::error(int status, const std::string& message) {
  return jsonBody(nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                          nlohmann::json::error_handler_t::replace),
                  status);
}

Result<std::pair<std::string, uint16_t>> splitHostPort(const std::string& address) {
  std::string host;
  std::string port;
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return Error("bad address '" + address + "': expected [host]:port");
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return Error("bad address '" + address + "': expected host:port");
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    return Error("bad port in address '" + address + "'");
  }
  return std::make_pair(host, static_cast<uint16_t>(std::stoul(port)));
}

std::string urlEncode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string urlDecode(const std::string& s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

Result<HttpResponse> httpRequest(const std::string& method, const std::string& address,
                                 const std::string& target, const std::string& body,
                                 Duration timeout, const std::string& contentType) {
  auto hostPort = splitHostPort(address);
  if (!hostPort) {
    return Error(hostPort.error());
  }
  const auto& [host, port] = *hostPort;

  // Asynchronous operations under one io_context, so the stream's deadline covers the whole
  // exchange (Beast applies timeouts only to asynchronous operations).
  net::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
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
  auto fail = [&](const std::string& what, beast::error_code ec) {
    failure = what + " " + address + ": " + ec.message();
  };

  stream.expires_after(timeout);
  resolver.async_resolve(host, std::to_string(port), [&](beast::error_code ec,
                                                         tcp::resolver::results_type results) {
    if (ec) {
      return fail("cannot resolve", ec);
    }
    stream.async_connect(results, [&](beast::error_code ec, const tcp::endpoint&) {
      if (ec) {
        return fail("cannot connect to", ec);
      }
      http::async_write(stream, request, [&](beast::error_code ec, size_t) {
        if (ec) {
          return fail("HTTP request failed:", ec);
        }
        http::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) {
          if (ec) {
            return fail("HTTP response failed:", ec);
          }
          done = true;
        });
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
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return response;
}

}  // namespace agora
