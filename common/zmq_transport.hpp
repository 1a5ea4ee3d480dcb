#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "common/curve.hpp"
#include "common/event_loop.hpp"
#include "common/rate_limiter.hpp"
#include "common/result.hpp"
#include "common/transport.hpp"

namespace agora {

constexpr size_t kDefaultMaxMessageSize = 16 * 1024 * 1024;

// The master's side (and an agent's side towards its executors): a ROUTER socket that peers
// connect to. ROUTER_MANDATORY makes a send to a vanished peer fail instead of disappearing;
// ROUTER_HANDOVER lets a restarted peer with the same routing id take over its connection.
class ZmqRouter final : public Transport {
 public:
  ZmqRouter(zmq::context_t& context, EventLoop& loop, size_t maxMessageSize);
  ~ZmqRouter() override;

  // Makes this a CURVE server with `credentials` (a server's: its key pair and the clients it
  // admits), before bind(): only known client keys complete a handshake, and each message is
  // stamped with its sender's principal (Envelope.authenticated_principal). Starts the
  // context's ZAP handler, so one such router per context.
  Status useCurve(const Credentials& credentials);
  // A CURVE server with `keys` that admits no one yet: clients come through zap()->admit().
  Status useCurve(const CurveKeyPair& keys);
  bool curve() const { return zap_ != nullptr; }
  ZapHandler* zap() { return zap_.get(); }
  // Each peer address (an IP) may send `perSecond` registrations, re-registrations and
  // subscriptions a second on average and `burst` at once; more are dropped (and counted), as
  // each costs the master a registry write. Other messages, and other peers, are unaffected.
  // perSecond <= 0: no limit (the default).
  void limitAdmissions(double perSecond, double burst);
  // Binds and returns the endpoint actually bound ("tcp://127.0.0.1:40123" for port 0).
  Result<std::string> bind(const std::string& endpoint);
  void setHandler(MessageHandler handler) { handler_ = std::move(handler); }
  bool send(const std::string& to, const Envelope& envelope) override;
  const TransportStats& stats() const { return stats_; }

 private:
  void onReadable();
  void onMonitorEvent();

  zmq::context_t& context_;
  EventLoop& loop_;
  // Goes after the socket it answers for: a CURVE server without its handler would admit
  // any key.
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t socket_;
  zmq::socket_t monitor_;
  std::unique_ptr<RateLimiter> admissions_;
  MessageHandler handler_;
  TransportStats stats_;
  std::string buffer_;
};

// A peer's side: a DEALER socket with a routing id, connected to one endpoint at a time.
class ZmqDealer final : public Transport {
 public:
  ZmqDealer(zmq::context_t& context, EventLoop& loop, std::string identity,
            size_t maxMessageSize);
  ~ZmqDealer() override;

  // Connects to `endpoint`, dropping any earlier connection and whatever was queued for it.
  // A standby connection to `endpoint` (below) becomes the connection, already established.
  Status connect(const std::string& endpoint);
  // Connects as a CURVE client with `credentials` (a client's: its key pair and the master's
  // public key, which a server must prove it holds). Set before connect().
  void useCurve(const Credentials& credentials) { curve_ = credentials; }
  // Holds idle connections to `endpoints` (besides the one connect() chose), so that moving to
  // one of them later costs no TCP or ZMTP handshake: agents keep one to every standby master,
  // and a failover finds them connected. Standby connections to other endpoints are closed.
  void keepStandbyConnections(const std::vector<std::string>& endpoints);
  size_t standbyConnections() const { return standby_.size(); }
  bool holdsStandbyConnection(const std::string& endpoint) const {
    return standby_.count(endpoint) > 0;
  }
  const std::string& endpoint() const { return endpoint_; }
  void setHandler(MessageHandler handler) { handler_ = std::move(handler); }
  // Called with true when the TCP connection to the endpoint comes up (again) and false when
  // it drops: a peer restarted on the same endpoint shows as a drop and a reconnect. Set before
  // connect().
  void setConnectionHandler(std::function<void(bool connected)> handler) {
    connectionHandler_ = std::move(handler);
  }
  bool send(const std::string& to, const Envelope& envelope) override;
  const TransportStats& stats() const { return stats_; }

 private:
  void onReadable();
  void onMonitorEvent();
  void close();
  Result<std::unique_ptr<zmq::socket_t>> openSocket(const std::string& endpoint);

  zmq::context_t& context_;
  EventLoop& loop_;
  std::string identity_;
  size_t maxMessageSize_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<zmq::socket_t> monitor_;
  std::map<std::string, std::unique_ptr<zmq::socket_t>> standby_;  // by endpoint
  std::function<void(bool)> connectionHandler_;
  std::optional<Credentials> curve_;
  uint64_t generation_ = 0;  // bumped whenever the socket is replaced
  std::string buffer_;  // reused for every send
  std::string endpoint_;
  MessageHandler handler_;
  TransportStats stats_;
};

}  // namespace agora
