// The master's --acls files (JSON or YAML), --credentials and --http_credentials files on any
// input: parsed, and ACLs that parse asked about every action.

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/acls.hpp"
#include "common/curve.hpp"
#include "common/http_tokens.hpp"

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
  return 0;
}
