// The master's --acls files (JSON or YAML), --credentials and --http_credentials files, and the
// kube API's --users files, on any input: parsed, and what parses asked about every action.

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/acls.hpp"
#include "common/curve.hpp"
#include "common/http_tokens.hpp"
#include "frameworks/k8s-like/apiserver/authorizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto acls = agora::Acls::parse(text);
  if (acls) {
    const char* names[] = {"", "ANY", "agent", "kube", "analytics/etl", "*", "root", "a/*"};
    for (size_t action = 0; action < agora::kAclActions; ++action) {
      for (const char* principal : names) {
        for (const char* object : names) {
          (void)acls->allows(static_cast<agora::AclAction>(action), principal, object);
        }
      }
    }
  }
  (void)agora::parseCredentials(text);
  if (auto tokens = agora::HttpTokens::parse(text)) {
    (void)tokens->find(text);
  }
  if (auto users = agora::kube::KubeAuthorizer::parse(text)) {
    std::string why;
    for (const char* token : {"alice-token-0123456789", ""}) {
      if (auto user = users->authenticate(token)) {
        for (const char* path : {"/api/v1/namespaces/a/pods", "/api/v1/nodes", "/apis",
                                 "/api/v1/namespaces/a/secrets/s", "/metrics"}) {
          for (const char* method : {"GET", "POST", "DELETE"}) {
            (void)users->allows(*user, agora::kube::accessAttributes(method, path, false), &why);
          }
        }
      }
    }
  }
  (void)agora::kube::accessAttributes("GET", text, false);
  return 0;
}
