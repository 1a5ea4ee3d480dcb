#include <cctype>

#include "common/http_message.hpp"

namespace agora {

void parseQuery(const std::string& query, std::map<std::string, std::string>* out) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) {
      amp = query.size();
    }
    std::string pair = query.substr(pos, amp - pos);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      if (eq == std::string::npos) {
        (*out)[urlDecode(pair)] = "";
      } else {
        (*out)[urlDecode(pair.substr(0, eq))] = urlDecode(pair.substr(eq + 1));
      }
    }
    pos = amp + 1;
  }
}

HttpRequest toHttpRequest(HttpMessage& message) {
  HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  size_t q = request.target.find('?');
  request.path = urlDecode(request.target.substr(0, q));
  if (q != std::string::npos) {
    parseQuery(request.target.substr(q + 1), &request.query);
  }
  for (const auto& field : message) {
    std::string name(field.name_string());
    for (char& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    // A header sent more than once is one comma-separated list (RFC 9110, 5.3).
    auto [it, added] = request.headers.emplace(name, std::string(field.value()));
    if (!added) {
      it->second += "," + std::string(field.value());
    }
  }
  request.body = std::move(message.body());
  return request;
}

Result<HttpRequest> parseHttpRequest(const std::string& bytes) {
  namespace http = boost::beast::http;
  http::request_parser<http::string_body> parser;
  parser.body_limit(kMaxRequestBody);
  parser.header_limit(kMaxRequestHeader);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < bytes.size() && !parser.is_done()) {
    size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    if (ec == http::error::need_more) {
      break;
    }
    if (ec) {
      return Error("malformed request: " + ec.message());
    }
    if (n == 0) {
      break;
    }
    used += n;
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) {
      return Error("incomplete request");
    }
  }
  return toHttpRequest(parser.get());
}

}  // namespace agora
