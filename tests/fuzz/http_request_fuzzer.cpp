// How the master's and agents' HTTP server reads a request (common/http.hpp parseHttpRequest:
// Boost.Beast's parser with the server's limits, then the decoded path, the query parameters
// and the headers a handler sees). An error is expected for most inputs; a crash or undefined
// behaviour is a finding.

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/http.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto request = agora::parseHttpRequest(bytes);
  if (request.ok()) {
    (void)request->param("role");
    (void)request->param("agent_id", "none");
  }
  return 0;
}
