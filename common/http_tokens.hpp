#pragma once

// Bearer tokens on the master's and agents' HTTP APIs (--http_credentials=FILE):
//
//   {"tokens": [{"token": "<secret>", "principal": "ops", "scope": "admin"},
//               {"token": "<secret>", "principal": "grafana", "scope": "read"},
//               {"principal": "backup", "scope": "read"}]}
//
// A request then needs `Authorization: Bearer <token>` (401 without one, or with one not
// listed); a read token may only read (GET and HEAD; 403 otherwise). The token's principal is
// who the ACLs see. An entry without a token grants its scope to a client certificate that
// names the principal (on a TLS server with a client CA: common/tls.hpp). A few paths stay open: /health, /master/info (where peers find the
// protocol port; nothing secret), and the dashboard's page (it reads nothing without a token).

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace agora {

struct TokenGrant {
  std::string principal;
  bool admin = false;  // otherwise read-only
};

class HttpTokens {
 public:
  static Result<HttpTokens> parse(const std::string& text);
  static Result<HttpTokens> load(const std::string& path);

  // The grant of `token`, compared in constant time against every listed token.
  std::optional<TokenGrant> find(const std::string& token) const;
  // What the file grants `principal` (a client certificate's): admin if any entry of it is.
  std::optional<TokenGrant> grantOf(const std::string& principal) const;
  size_t size() const { return tokens_.size(); }

 private:
  std::vector<std::pair<std::string, TokenGrant>> tokens_;
};

// A fresh random token (32 bytes, hex).
std::string generateToken();

// Whether two secrets are equal, in time that depends only on their lengths.
bool sameSecret(const std::string& a, const std::string& b);

// A token kept in a file (trailing whitespace dropped); an error when it is missing or empty.
Result<std::string> readTokenFile(const std::string& path);

// Sends `Authorization: Bearer <token>` with every request this process makes with
// httpRequest() (the CLI: its profile's operator token, or $AGORA_TOKEN). Empty: none.
void setDefaultBearerToken(const std::string& token);
const std::string& defaultBearerToken();

}  // namespace agora
