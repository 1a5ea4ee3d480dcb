#pragma once

// How the HTTP server reads a request (common/http_server.cpp), apart from its sockets, so that
// the reading can be tested and fuzzed on bytes (parseHttpRequest in common/http.hpp).

#include <cstddef>
#include <cstdint>

#include <boost/beast/http.hpp>

#include "common/http.hpp"

namespace agora {

// The most a request may carry: its head, and its body (413 beyond either).
inline constexpr size_t kMaxRequestBody = 8 * 1024 * 1024;
inline constexpr uint32_t kMaxRequestHeader = 16 * 1024;

using HttpMessage = boost::beast::http::request<boost::beast::http::string_body>;

// What a handler sees of a request the parser read: the path decoded, the query split into
// decoded parameters, the header names in lower case (a repeated header's values joined with
// ","). The body is moved out of `message`.
HttpRequest toHttpRequest(HttpMessage& message);

}  // namespace agora
