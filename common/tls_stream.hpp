#pragma once

// The Boost.Asio side of common/tls.hpp, for the HTTP server and client only: SSL contexts
// made from the configurations, and a relay between a TLS stream and a plain local socket.

#include <array>
#include <memory>
#include <string>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include "common/result.hpp"
#include "common/tls.hpp"

namespace agora {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

Result<std::shared_ptr<boost::asio::ssl::context>> makeServerContext(const TlsServerConfig& config);
Result<std::shared_ptr<boost::asio::ssl::context>> makeClientContext(const TlsClientConfig& config);
// Asks the server for `host` (SNI) and checks that its certificate names it.
void expectServerName(TlsStream& stream, const std::string& host);
// Why a client's handshake failed: the certificate check's reason when that failed.
std::string handshakeFailure(TlsStream& stream, const boost::system::error_code& ec);
// The common name of the verified client certificate of a finished handshake; "" when the
// client sent none.
std::string peerCommonName(TlsStream& stream);

// Moves bytes both ways between a TLS session and a local socket until the local side closes
// or either side fails; the TLS peer's end of stream half-closes the local socket. Lives as
// long as its pending operations, on the stream's executor.
class TlsRelay : public std::enable_shared_from_this<TlsRelay> {
 public:
  TlsRelay(TlsStream stream, boost::asio::local::stream_protocol::socket local);
  void start();

 private:
  void fromTls();
  void toTls();
  void close();

  TlsStream stream_;
  boost::asio::local::stream_protocol::socket local_;
  std::array<char, 16384> up_;
  std::array<char, 16384> down_;
  bool closed_ = false;
};

}  // namespace agora
