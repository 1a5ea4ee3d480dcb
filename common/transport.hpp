#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "agora/protocol.pb.h"

namespace agora {

// Where a component sends its messages. The master's transport reaches many peers by routing
// id; an agent's or a scheduler's reaches only the master and ignores `to`. Core state machines
// see only this interface, so tests replace it with a fake and simulations with an in-process
// network.
class Transport {
 public:
  virtual ~Transport() = default;
  // False when the message could not be queued: an unknown peer, or a full queue.
  virtual bool send(const std::string& to, const Envelope& envelope) = 0;
};

// Receives each decoded message with the routing id (or endpoint) it came from.
using MessageHandler = std::function<void(const std::string& from, Envelope&& envelope)>;

struct TransportStats {
  uint64_t received = 0;           // well-formed envelopes delivered
  uint64_t malformed = 0;          // frames that did not decode, or had the wrong shape
  uint64_t sent = 0;
  uint64_t sendFailed = 0;         // unknown peer or full queue
  uint64_t handshakeFailures = 0;  // connections that did not speak ZMTP (garbage on the port)
  uint64_t authFailures = 0;       // CURVE handshakes refused: no keys, or keys not admitted
  uint64_t throttled = 0;          // registrations and subscriptions over a peer's rate limit
  uint64_t disconnects = 0;        // includes peers cut off for oversized messages
};

}  // namespace agora
