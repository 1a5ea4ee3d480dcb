#pragma once

// CURVE on the protocol port: who a peer is, proven by a key pair, and an encrypted channel.
//
// The master holds a server key pair and the public keys of the clients it admits, each named
// by a principal. Agents and schedulers hold a key pair of their own and the master's public
// key, which they pin: a master without the matching secret key cannot complete a handshake.
// One file per component holds what it needs (`agora up` writes them into the profile):
//
//   {"principal": "agent", "public_key": "<Z85>", "secret_key": "<Z85>",
//    "master_public_key": "<Z85>", "tls_ca": "<PEM>"}                      (a client)
//   {"public_key": "<Z85>", "secret_key": "<Z85>",
//    "clients": [{"principal": "agent", "public_key": "<Z85>"}, ...]}      (the master)
//
// Keys are ZeroMQ's Z85 text, 40 characters for 32 bytes. A client's optional "tls_ca" is the
// CA whose certificates the master's and agents' HTTPS APIs serve with (common/tls.hpp).

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "common/result.hpp"

namespace agora {

struct CurveKeyPair {
  std::string publicKey;  // Z85
  std::string secretKey;  // Z85
};

struct Credentials {
  std::string principal;   // a client's name; the master's own is unused
  CurveKeyPair keys;
  std::string serverKey;   // a client's: the master's public key
  std::string tlsCa;       // a client's, optional: the CA of the cluster's HTTPS APIs (PEM)
  std::map<std::string, std::string> clients;  // the master's: public key -> principal

  bool isServer() const { return !clients.empty(); }
};

CurveKeyPair generateCurveKeyPair();
// The pair of a secret key (Z85); an error when it is not one.
Result<CurveKeyPair> curveKeyPairOf(const std::string& secretKey);

// Checks a file's credentials: well-formed keys, a public key that belongs to the secret key,
// a principal and a pinned server key for a client.
Result<Credentials> parseCredentials(const std::string& text);
// A master's credentials (they list clients) or a client's; the other kind is an error.
enum class CredentialsFor { kMaster, kClient };
Result<Credentials> loadCredentials(const std::string& path, CredentialsFor use);
std::string credentialsToJson(const Credentials& credentials);
// Written with mode 0600: it holds a secret key.
Status saveCredentials(const std::string& path, const Credentials& credentials);

// The ZAP handler (ZeroMQ's authentication protocol, RFC 27) of one ZeroMQ context: a thread
// that answers each CURVE handshake on the context's server sockets, admitting a client whose
// public key it knows and naming the connection with that key's principal (ZeroMQ then stamps
// every message from it with the principal as "User-Id"). Without a handler, a CURVE server
// would admit any client key: it is started before the socket binds and lives as long.
class ZapHandler {
 public:
  // Fails when the context already has a handler.
  static Result<std::unique_ptr<ZapHandler>> start(zmq::context_t& context,
                                                   std::map<std::string, std::string> clients);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  uint64_t admitted() const { return admitted_.load(); }
  uint64_t refused() const { return refused_.load(); }

  // Admits a client key from now on, named `principal` (an agent's executors come and go),
  // or stops admitting it. Connections made already stay.
  void admit(const std::string& publicKey, const std::string& principal);
  void forget(const std::string& publicKey);

 private:
  ZapHandler(zmq::context_t& context, std::map<std::string, std::string> clients);
  void run();
  void answer(zmq::socket_t& socket);

  zmq::socket_t socket_;
  std::mutex mutex_;
  std::map<std::string, std::string> clients_;  // guarded by mutex_
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> refused_{0};
  std::thread thread_;
};

}  // namespace agora
