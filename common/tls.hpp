#pragma once

// TLS on the master's and agents' HTTP APIs.
//
// A server serves with a certificate and key (`--tls_cert`, `--tls_key`) and, given
// `--tls_client_ca`, also takes a client certificate that CA signed as proof of who the client
// is: its common name is the request's principal, as a bearer token's principal would be.
// A client trusts one CA for all of a cluster's servers and checks that a server's certificate
// names the address it dialled. `agora up` makes the CA, a serving certificate for its
// daemons, and puts the CA into the profile and the clients' credentials files.

#include <optional>
#include <string>

#include "common/result.hpp"
#include "common/time.hpp"

namespace agora {

struct TlsServerConfig {
  std::string certPem;      // the serving certificate (chain)
  std::string keyPem;       // its key
  std::string clientCaPem;  // "": no client certificates are asked for
};

// The files the flags name; the key must belong to the certificate. `clientCaPath` may be "".
Result<TlsServerConfig> loadTlsServerConfig(const std::string& certPath,
                                            const std::string& keyPath,
                                            const std::string& clientCaPath);

struct TlsClientConfig {
  std::string caPem;    // the CA the servers' certificates must chain to
  std::string certPem;  // optional: a client certificate to present, and its key
  std::string keyPem;
};

// From here on, this process's connections to agora HTTP servers (httpRequest, connectHttp)
// use TLS with `config` unless an address says "http://". nullopt: plain HTTP unless an
// address says "https://". Set once at start-up, before such connections are made.
void setDefaultHttpTls(std::optional<TlsClientConfig> config);
std::optional<TlsClientConfig> defaultHttpTls();

// "https://host:port", "http://host:port" or "host:port" (then TLS as the default says).
struct HttpAddress {
  std::string hostPort;
  bool tls = false;
};
HttpAddress parseHttpAddress(const std::string& address);

// A blocking connection to the agora HTTP server at `address`, for code that speaks HTTP on a
// descriptor (the upgrades of exec and port-forward). Under TLS the descriptor is one end of a
// socket pair, and a thread of the connection's own relays the other end through the TLS
// session until either side closes. `timeout` bounds the connect and the handshake, and each
// later send and receive as connectTcp's does (zero: 30 s for the handshake, none after).
Result<int> connectHttp(const std::string& address, Duration timeout = seconds(10));

}  // namespace agora
