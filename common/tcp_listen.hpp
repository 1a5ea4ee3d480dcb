#pragma once

// Opens, binds and listens a TCP acceptor on ip:port (port 0: any free one), with address
// reuse; shared by the HTTP servers (the operator API's and the kube API's). Returns the bound
// port; on failure the acceptor is left empty. Boost.Asio stays in this internal header, out of
// common/http.hpp.

#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/result.hpp"

namespace agora {

inline Result<uint16_t> listenTcp(boost::asio::io_context& io,
                                  std::optional<boost::asio::ip::tcp::acceptor>& acceptor,
                                  const std::string& ip, uint16_t port) {
  namespace net = boost::asio;
  boost::system::error_code ec;
  auto address = net::ip::make_address(ip, ec);
  if (ec) {
    return Error("invalid IP address '" + ip + "': " + ec.message());
  }
  net::ip::tcp::endpoint endpoint(address, port);
  acceptor.emplace(io);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor.reset();
    return Error("cannot listen on " + ip + ":" + std::to_string(port) + ": " + ec.message());
  }
  return acceptor->local_endpoint().port();
}

}  // namespace agora
