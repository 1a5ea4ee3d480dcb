#include "common/http_tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cctype>
#include <mutex>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"

namespace agora {

namespace {

std::mutex defaultTokenMutex;
std::string defaultToken;  // guarded by defaultTokenMutex

}  // namespace

Result<HttpTokens> HttpTokens::parse(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("tokens") || !j["tokens"].is_array()) {
    return Error("not a JSON object with a list of 'tokens'");
  }
  HttpTokens out;
  std::set<std::string> seen;
  for (const nlohmann::json& entry : j["tokens"]) {
    if (!entry.is_object()) {
      return Error("each of 'tokens' must be an object {token, principal, scope}");
    }
    for (const auto& [key, value] : entry.items()) {
      if (key != "token" && key != "principal" && key != "scope") {
        return Error("tokens: unknown field '" + key + "' (a token has token, principal, scope)");
      }
      if (!value.is_string()) {
        return Error("tokens: '" + key + "' must be a string");
      }
    }
    std::string token = entry.value("token", "");
    std::string principal = entry.value("principal", "");
    std::string scope = entry.value("scope", "read");
    // Without a token, the entry grants a scope to the holder of a client certificate.
    if (entry.contains("token") && token.size() < 16) {
      return Error("tokens: the token of '" + principal +
                   "' is shorter than 16 characters: too easy to guess");
    }
    if (principal.empty()) {
      return Error("tokens: a token without a 'principal'");
    }
    if (scope != "read" && scope != "admin") {
      return Error("tokens: the scope of '" + principal + "' must be read or admin, not '" +
                   scope + "'");
    }
    if (!token.empty() && !seen.insert(token).second) {
      return Error("tokens: a token is listed twice");
    }
    out.tokens_.push_back({token, TokenGrant{principal, scope == "admin"}});
  }
  if (out.tokens_.empty()) {
    return Error("'tokens' is empty: no one could use the API");
  }
  return out;
}

Result<HttpTokens> HttpTokens::load(const std::string& path) {
  auto text = readFile(path);
  if (!text) {
    return Error(text.error());
  }
  auto tokens = parse(*text);
  if (!tokens) {
    return Error(path + ": " + tokens.error());
  }
  return tokens;
}

std::optional<TokenGrant> HttpTokens::find(const std::string& token) const {
  std::optional<TokenGrant> found;
  for (const auto& [known, grant] : tokens_) {
    // Every token is compared, each in constant time: how long this takes says nothing about
    // how much of a guess was right.
    if (!known.empty() && sameSecret(known, token)) {
      found = grant;
    }
  }
  return found;
}

std::optional<TokenGrant> HttpTokens::grantOf(const std::string& principal) const {
  std::optional<TokenGrant> found;
  for (const auto& [known, grant] : tokens_) {
    if (grant.principal == principal && (!found || grant.admin)) {
      found = grant;
    }
  }
  return found;
}

bool sameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<std::string> readTokenFile(const std::string& path) {
  auto text = readFile(path);
  if (!text) {
    return Error(text.error());
  }
  std::string token = *text;
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
    token.pop_back();
  }
  if (token.empty()) {
    return Error(path + " holds no token");
  }
  return token;
}

std::string generateToken() {
  unsigned char bytes[32];
  CHECK_EQ(RAND_bytes(bytes, sizeof(bytes)), 1) << "RAND_bytes failed";
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

void setDefaultBearerToken(const std::string& token) {
  std::lock_guard<std::mutex> lock(defaultTokenMutex);
  defaultToken = token;
}

const std::string& defaultBearerToken() {
  std::lock_guard<std::mutex> lock(defaultTokenMutex);
  static thread_local std::string copy;
  copy = defaultToken;
  return copy;
}

}  // namespace agora
