#pragma once

// An in-process network for deterministic simulations: every node's Transport delivers through
// the ManualLoop, after a delay, possibly dropping messages, all decided by a seeded random
// generator. A whole cluster (master, agents with fake containerizers, schedulers) then runs
// in one thread, the same way every time for the same seed.

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "common/envelope.hpp"
#include "common/manual_loop.hpp"
#include "common/transport.hpp"

namespace agora::testing {

class SimNetwork {
 public:
  // Which messages may be lost: the ones the protocol promises to survive losing.
  using DropFilter = std::function<bool(const Envelope&)>;

  SimNetwork(ManualLoop& loop, uint64_t seed) : loop_(loop), rng_(seed) {}

  // A node's transport. Messages it sends to "master" go to the node named "master"; the
  // master's messages go to the node named by their routing id.
  Transport& attach(const std::string& name, MessageHandler handler) {
    auto node = std::make_unique<Node>(*this, name);
    Node& ref = *node;
    handlers_[name] = std::move(handler);
    nodes_[name] = std::move(node);
    return ref;
  }

  void setDropRate(double rate, DropFilter filter) {
    dropRate_ = rate;
    dropFilter_ = std::move(filter);
  }
  void setDelay(Duration min, Duration max) {
    minDelay_ = min;
    maxDelay_ = max;
  }

  uint64_t delivered() const { return delivered_; }
  uint64_t dropped() const { return dropped_; }

 private:
  class Node final : public Transport {
   public:
    Node(SimNetwork& network, std::string name) : network_(network), name_(std::move(name)) {}
    bool send(const std::string& to, const Envelope& envelope) override {
      return network_.route(name_, to, envelope);
    }

   private:
    SimNetwork& network_;
    std::string name_;
  };

  bool route(const std::string& from, const std::string& to, const Envelope& envelope) {
    if (handlers_.count(to) == 0) {
      return false;
    }
    if (dropRate_ > 0 && dropFilter_ && dropFilter_(envelope) &&
        std::uniform_real_distribution<double>(0, 1)(rng_) < dropRate_) {
      ++dropped_;
      return true;  // lost on the way, as on a real network
    }
    // Through the wire format, as the real transport does; in order between two nodes, as on a
    // TCP connection.
    std::string bytes = encodeEnvelope(envelope);
    auto spread = std::chrono::duration_cast<Duration>(maxDelay_ - minDelay_).count();
    TimePoint at = loop_.now() + minDelay_ + Duration(spread > 0 ? rng_() % spread : 0);
    TimePoint& last = lastDelivery_[{from, to}];
    at = std::max(at, last);
    last = at;
    loop_.after(at - loop_.now(), [this, from, to, bytes = std::move(bytes)] {
      auto decoded = decodeEnvelope(bytes.data(), bytes.size());
      ++delivered_;
      handlers_.at(to)(from, std::move(decoded).value());
    });
    return true;
  }

  ManualLoop& loop_;
  std::mt19937_64 rng_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  std::map<std::string, MessageHandler> handlers_;
  std::map<std::pair<std::string, std::string>, TimePoint> lastDelivery_;
  double dropRate_ = 0;
  DropFilter dropFilter_;
  Duration minDelay_ = microseconds(100);
  Duration maxDelay_ = milliseconds(5);
  uint64_t delivered_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace agora::testing
