#include "common/zmq_transport.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>

#include <glog/logging.h>

#include "common/envelope.hpp"

namespace agora {

namespace {

constexpr int kHighWaterMark = 200000;
constexpr int kMaxBatch = 2048;  // messages read per wake-up, so timers and posts are not starved

void configureCommon(zmq::socket_t& s, size_t maxMessageSize, int lingerMs) {
  s.set(zmq::sockopt::linger, lingerMs);
  s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(maxMessageSize));
  s.set(zmq::sockopt::sndhwm, kHighWaterMark);
  s.set(zmq::sockopt::rcvhwm, kHighWaterMark);
  s.set(zmq::sockopt::tcp_keepalive, 1);
}

// One event from a socket monitor: its id and value (for a failed handshake, the protocol
// error or the ZAP status code).
struct MonitorEvent {
  uint16_t id = 0;
  uint32_t value = 0;
};

// Reads one event from a socket monitor, or nothing when no event is waiting.
std::optional<MonitorEvent> readMonitorEvent(zmq::socket_t& monitor) {
  zmq::message_t event;
  if (!monitor.recv(event, zmq::recv_flags::dontwait)) {
    return std::nullopt;
  }
  MonitorEvent e;
  if (event.size() >= sizeof(e.id) + sizeof(e.value)) {
    memcpy(&e.id, event.data(), sizeof(e.id));
    memcpy(&e.value, static_cast<const char*>(event.data()) + sizeof(e.id), sizeof(e.value));
  }
  while (event.more()) {
    (void)monitor.recv(event, zmq::recv_flags::none);
  }
  return e;
}

// Registrations and subscriptions: what admits a peer, and costs a registry write.
bool isAdmission(const Envelope& envelope) {
  if (envelope.has_agent_call()) {
    return envelope.agent_call().has_register_() || envelope.agent_call().has_reregister();
  }
  return envelope.has_scheduler_call() && envelope.scheduler_call().has_subscribe();
}

}  // namespace

// ------------------------------------------------------------------------------------------
// ZmqRouter

ZmqRouter::ZmqRouter(zmq::context_t& context, EventLoop& loop, size_t maxMessageSize)
    : context_(context), loop_(loop), socket_(context, zmq::socket_type::router),
      monitor_(context, zmq::socket_type::pair) {
  configureCommon(socket_, maxMessageSize, 0);
  socket_.set(zmq::sockopt::backlog, 4096);  // thousands of agents reconnect after a failover
  socket_.set(zmq::sockopt::router_mandatory, 1);
  socket_.set(zmq::sockopt::router_handover, 1);

  static std::atomic<uint64_t> monitors{0};
  std::string monitorEndpoint = "inproc://agora-router-monitor-" + std::to_string(monitors++);
  int rc = zmq_socket_monitor(socket_.handle(), monitorEndpoint.c_str(),
                              ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                  ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                  ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_DISCONNECTED);
  CHECK_EQ(rc, 0) << "zmq_socket_monitor: " << zmq_strerror(zmq_errno());
  monitor_.set(zmq::sockopt::linger, 0);
  monitor_.connect(monitorEndpoint);

  loop_.watchSocket(socket_.handle(), [this] { onReadable(); });
  loop_.watchSocket(monitor_.handle(), [this] { onMonitorEvent(); });
}

ZmqRouter::~ZmqRouter() {
  loop_.unwatchSocket(socket_.handle());
  loop_.unwatchSocket(monitor_.handle());
  zmq_socket_monitor(socket_.handle(), nullptr, 0);
}

Status ZmqRouter::useCurve(const Credentials& credentials) {
  if (!credentials.isServer()) {
    return Error("a CURVE server needs credentials that list the 'clients' it admits");
  }
  if (Status started = useCurve(credentials.keys); !started) {
    return started;
  }
  for (const auto& [key, principal] : credentials.clients) {
    zap_->admit(key, principal);
  }
  return ok();
}

Status ZmqRouter::useCurve(const CurveKeyPair& keys) {
  auto zap = ZapHandler::start(context_, {});
  if (!zap) {
    return Error(zap.error());
  }
  zap_ = std::move(zap).value();
  socket_.set(zmq::sockopt::curve_server, 1);
  socket_.set(zmq::sockopt::curve_secretkey, keys.secretKey);
  socket_.set(zmq::sockopt::zap_domain, "agora");
  return ok();
}

void ZmqRouter::limitAdmissions(double perSecond, double burst) {
  admissions_ = perSecond > 0 ? std::make_unique<RateLimiter>(perSecond, std::max(1.0, burst))
                              : nullptr;
}

Result<std::string> ZmqRouter::bind(const std::string& endpoint) {
  try {
    socket_.bind(endpoint);
  } catch (const zmq::error_t& e) {
    return Error("cannot bind " + endpoint + ": " + e.what());
  }
  return socket_.get(zmq::sockopt::last_endpoint);
}

bool ZmqRouter::send(const std::string& to, const Envelope& envelope) {
  envelope.SerializeToString(&buffer_);
  loop_.markDirty(socket_.handle());  // a send can swallow the socket's input notification
  try {
    auto sent = socket_.send(zmq::buffer(to), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    if (!sent) {
      ++stats_.sendFailed;
      return false;
    }
    socket_.send(zmq::buffer(buffer_), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: no such peer (ROUTER_MANDATORY).
    VLOG(1) << "send to " << to << " failed: " << e.what();
    ++stats_.sendFailed;
    return false;
  }
  ++stats_.sent;
  return true;
}

void ZmqRouter::onReadable() {
  for (int i = 0; i < kMaxBatch; ++i) {
    zmq::message_t identity;
    auto got = socket_.recv(identity, zmq::recv_flags::dontwait);
    if (!got) {
      return;
    }
    if (!identity.more()) {
      ++stats_.malformed;
      continue;
    }
    zmq::message_t payload;
    (void)socket_.recv(payload, zmq::recv_flags::none);
    bool extra = false;
    while (payload.more()) {
      // A peer that sends more than one frame per message is not speaking our protocol.
      extra = true;
      (void)socket_.recv(payload, zmq::recv_flags::none);
    }
    if (extra) {
      ++stats_.malformed;
      LOG_EVERY_N(WARNING, 100) << "Dropped a multi-frame message from " << identity.to_string();
      continue;
    }
    auto envelope = decodeEnvelope(payload.data(), payload.size());
    if (!envelope) {
      ++stats_.malformed;
      LOG_EVERY_N(WARNING, 100) << "Dropped a message from " << identity.to_string() << ": "
                                << envelope.error();
      continue;
    }
    if (admissions_ && isAdmission(*envelope)) {
      const char* address = zmq_msg_gets(payload.handle(), "Peer-Address");
      if (!admissions_->allow(address != nullptr ? address : "",
                              RateLimiter::Clock::now())) {
        ++stats_.throttled;
        LOG_EVERY_N(WARNING, 1000) << "Throttled registrations from "
                                   << (address != nullptr ? address : "a local peer") << " ("
                                   << stats_.throttled << " dropped so far)";
        continue;
      }
    }
    // Only the transport says who sent a message: what a peer wrote there is overwritten.
    if (zap_) {
      const char* principal = zmq_msg_gets(payload.handle(), "User-Id");
      envelope->set_authenticated_principal(principal != nullptr ? principal : "");
    } else {
      envelope->clear_authenticated_principal();
    }
    ++stats_.received;
    if (handler_) {
      handler_(identity.to_string(), std::move(envelope).value());
    }
  }
}

void ZmqRouter::onMonitorEvent() {
  while (std::optional<MonitorEvent> event = readMonitorEvent(monitor_)) {
    uint16_t id = event->id;
    if (id == ZMQ_EVENT_DISCONNECTED) {
      ++stats_.disconnects;
    } else if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      ++stats_.authFailures;  // the ZAP handler logs who and why
    } else if (zap_ && id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
      // A peer without CURVE keys (or with a key for another master) speaking to a CURVE
      // port fails here, as does garbage.
      ++stats_.authFailures;
      LOG_EVERY_N(WARNING, 100) << "A connection failed the CURVE handshake (no keys, the "
                                   "wrong master key, or not a peer)";
    } else {
      ++stats_.handshakeFailures;
      LOG_EVERY_N(WARNING, 100) << "A connection failed the ZeroMQ handshake (not a peer)";
    }
  }
}

// ------------------------------------------------------------------------------------------
// ZmqDealer

ZmqDealer::ZmqDealer(zmq::context_t& context, EventLoop& loop, std::string identity,
                     size_t maxMessageSize)
    : context_(context), loop_(loop), identity_(std::move(identity)),
      maxMessageSize_(maxMessageSize) {}

ZmqDealer::~ZmqDealer() { close(); }

void ZmqDealer::close() {
  ++generation_;
  if (monitor_) {
    loop_.unwatchSocket(monitor_->handle());
    zmq_socket_monitor(socket_->handle(), nullptr, 0);
    monitor_.reset();
  }
  if (socket_) {
    loop_.unwatchSocket(socket_->handle());
    socket_.reset();
  }
}

Result<std::unique_ptr<zmq::socket_t>> ZmqDealer::openSocket(const std::string& endpoint) {
  std::unique_ptr<zmq::socket_t> socket;
  try {
    socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
  } catch (const zmq::error_t& e) {
    return Error("cannot open a socket for " + endpoint + ": " + e.what());  // out of sockets
  }
  // A peer's last words (a teardown, a final status update) get a moment to leave.
  configureCommon(*socket, maxMessageSize_, 1000);
  socket->set(zmq::sockopt::routing_id, identity_);
  if (curve_) {
    socket->set(zmq::sockopt::curve_serverkey, curve_->serverKey);
    socket->set(zmq::sockopt::curve_publickey, curve_->keys.publicKey);
    socket->set(zmq::sockopt::curve_secretkey, curve_->keys.secretKey);
  }
  socket->set(zmq::sockopt::reconnect_ivl, 100);
  socket->set(zmq::sockopt::reconnect_ivl_max, 2000);
  try {
    socket->connect(endpoint);
  } catch (const zmq::error_t& e) {
    return Error("cannot connect to " + endpoint + ": " + e.what());
  }
  return socket;
}

void ZmqDealer::keepStandbyConnections(const std::vector<std::string>& endpoints) {
  std::map<std::string, std::unique_ptr<zmq::socket_t>> kept;
  for (const std::string& endpoint : endpoints) {
    if (endpoint == endpoint_ || kept.count(endpoint) > 0) {
      continue;
    }
    auto it = standby_.find(endpoint);
    if (it != standby_.end()) {
      kept.emplace(endpoint, std::move(it->second));
      continue;
    }
    auto socket = openSocket(endpoint);
    if (socket) {
      kept.emplace(endpoint, std::move(socket).value());
    } else {
      LOG_EVERY_N(WARNING, 100) << socket.error();
    }
  }
  standby_ = std::move(kept);  // the rest close
}

Status ZmqDealer::connect(const std::string& endpoint) {
  if (socket_ && endpoint != endpoint_) {
    // What is still queued for the peer we leave (registration retries to a master that died)
    // is dropped rather than lingered over: a closed socket that lingers keeps reconnecting
    // to the dead address, thousands at once after a failover. Whatever matters is sent
    // again to the new peer (status updates are retried until acknowledged).
    socket_->set(zmq::sockopt::linger, 0);
  }
  close();
  std::unique_ptr<zmq::socket_t> socket;
  auto it = standby_.find(endpoint);
  if (it != standby_.end()) {
    socket = std::move(it->second);
    standby_.erase(it);
  } else {
    auto opened = openSocket(endpoint);
    if (!opened) {
      return Error(opened.error());
    }
    socket = std::move(opened).value();
  }
  socket_ = std::move(socket);
  endpoint_ = endpoint;
  loop_.watchSocket(socket_->handle(), [this] { onReadable(); });
  if (connectionHandler_) {
    static std::atomic<uint64_t> monitors{0};
    std::string monitorEndpoint = "inproc://agora-dealer-monitor-" + std::to_string(monitors++);
    // Refused handshakes too, to say why (agents and schedulers watch their connection).
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
    try {
      if (zmq_socket_monitor(socket_->handle(), monitorEndpoint.c_str(), events) != 0) {
        throw zmq::error_t();
      }
      monitor_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pair);
      monitor_->set(zmq::sockopt::linger, 0);
      monitor_->connect(monitorEndpoint);
      loop_.watchSocket(monitor_->handle(), [this] { onMonitorEvent(); });
    } catch (const zmq::error_t& e) {
      // Out of sockets or descriptors: the connection works, unwatched.
      LOG_EVERY_N(WARNING, 100) << "Cannot watch the connection to " << endpoint << ": "
                                << e.what();
      zmq_socket_monitor(socket_->handle(), nullptr, 0);
      monitor_.reset();
    }
  }
  return ok();
}

void ZmqDealer::onMonitorEvent() {
  while (monitor_) {
    std::optional<MonitorEvent> event = readMonitorEvent(*monitor_);
    if (!event) {
      return;
    }
    if (event->id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      ++stats_.authFailures;
      LOG_EVERY_N(ERROR, 10) << "The master at " << endpoint_ << " refused this peer's CURVE "
                             << "credentials (ZAP status " << event->value
                             << "): is its public key among the master's clients?";
      continue;
    }
    if (event->id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
      ++stats_.authFailures;
      LOG_EVERY_N(WARNING, 10)
          << "The ZeroMQ handshake with " << endpoint_ << " failed: the master went away "
          << (curve_ ? "mid-handshake, or its CURVE key is not this peer's master_public_key"
                     : "mid-handshake, or it requires CURVE credentials (does the master require "
                       "CURVE credentials? give this peer a --credentials file)");
      continue;
    }
    uint64_t generation = generation_;
    if (event->id == ZMQ_EVENT_DISCONNECTED) {
      ++stats_.disconnects;
    }
    connectionHandler_(event->id == ZMQ_EVENT_CONNECTED);
    if (generation != generation_) {
      return;  // the handler reconnected
    }
  }
}

bool ZmqDealer::send(const std::string& /*to*/, const Envelope& envelope) {
  if (!socket_) {
    ++stats_.sendFailed;
    return false;
  }
  envelope.SerializeToString(&buffer_);
  loop_.markDirty(socket_->handle());  // a send can swallow the socket's input notification
  try {
    auto sent = socket_->send(zmq::buffer(buffer_), zmq::send_flags::dontwait);
    if (!sent) {
      ++stats_.sendFailed;
      return false;
    }
  } catch (const zmq::error_t& e) {
    ++stats_.sendFailed;
    return false;
  }
  ++stats_.sent;
  return true;
}

void ZmqDealer::onReadable() {
  for (int i = 0; i < kMaxBatch && socket_; ++i) {
    zmq::message_t payload;
    auto got = socket_->recv(payload, zmq::recv_flags::dontwait);
    if (!got) {
      return;
    }
    bool extra = false;
    while (payload.more()) {
      extra = true;
      (void)socket_->recv(payload, zmq::recv_flags::none);
    }
    if (extra) {
      ++stats_.malformed;
      continue;
    }
    auto envelope = decodeEnvelope(payload.data(), payload.size());
    if (!envelope) {
      ++stats_.malformed;
      LOG_EVERY_N(WARNING, 100) << "Dropped a message from " << endpoint_ << ": "
                                << envelope.error();
      continue;
    }
    ++stats_.received;
    if (handler_) {
      // The handler may reconnect (and so replace the socket): stop reading after it does.
      uint64_t generation = generation_;
      handler_(endpoint_, std::move(envelope).value());
      if (generation != generation_) {
        return;
      }
    }
  }
}

}  // namespace agora
