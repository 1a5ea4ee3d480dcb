#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/transport.hpp"

namespace agora::testing {

// Records what a component sends, for tests to inspect and take.
class FakeTransport final : public Transport {
 public:
  bool send(const std::string& to, const Envelope& envelope) override {
    sent.emplace_back(to, envelope);
    return !failSends;
  }

  // Removes and returns the messages sent to `to` so far, in order.
  std::vector<Envelope> take(const std::string& to) {
    std::vector<Envelope> out;
    std::vector<std::pair<std::string, Envelope>> rest;
    for (auto& [dest, envelope] : sent) {
      if (dest == to) {
        out.push_back(std::move(envelope));
      } else {
        rest.emplace_back(dest, std::move(envelope));
      }
    }
    sent.swap(rest);
    return out;
  }

  std::vector<std::pair<std::string, Envelope>> sent;
  bool failSends = false;
};

}  // namespace agora::testing
