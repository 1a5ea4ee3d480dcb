// The ingress proxy's HTTP/1.1 head parsing and body framing (frameworks/k8s-like/proxy/
// http1.hpp) on any bytes, as a client's request or a backend's response, and the body after
// the head in pieces.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "frameworks/k8s-like/proxy/http1.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace agora::kube::http1;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t end = headEnd(in);
  std::string_view head = end == std::string_view::npos ? in : in.substr(0, end);
  Head request;
  (void)parseRequest(head, &request);
  for (const Header& h : request.headers) (void)request.hopByHop(h.name);
  Head response;
  (void)parseResponse(head, &response);
  if (end == std::string_view::npos) return 0;
  // The body, framed as the request's head says, fed in pieces of 7 bytes.
  BodyFramer framer = request.chunked ? BodyFramer::chunked()
                      : request.contentLength ? BodyFramer::length(*request.contentLength)
                                              : BodyFramer::untilClose();
  std::string_view body = in.substr(end);
  std::string dechunked;
  while (!body.empty() && !framer.done()) {
    size_t n = body.size() < 7 ? body.size() : 7;
    auto taken = framer.take(body.data(), n, &dechunked);
    if (!taken.ok()) break;
    if (*taken > n) __builtin_trap();
    body.remove_prefix(*taken == 0 ? n : *taken);
  }
  return 0;
}
