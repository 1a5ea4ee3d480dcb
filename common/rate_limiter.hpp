#pragma once

// Per-client token buckets: each key (a client's address) may act `perSecond` times a second
// on average and `burst` times at once; past that it is refused until its bucket refills,
// while other keys are unaffected. Not thread-safe: one thread (a server's) uses it.

#include <algorithm>
#include <chrono>
#include <string>
#include <unordered_map>

namespace agora {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  RateLimiter(double perSecond, double burst) : perSecond_(perSecond), burst_(burst) {}

  // Takes a token for `key`; false when it has none left.
  bool allow(const std::string& key, Clock::time_point now) {
    if (buckets_.size() > kMaxKeys) {
      forgetIdle(now);
    }
    auto [it, added] = buckets_.try_emplace(key, Bucket{burst_, now});
    Bucket& b = it->second;
    if (!added) {
      double elapsed = std::chrono::duration<double>(now - b.last).count();
      b.tokens = std::min(burst_, b.tokens + elapsed * perSecond_);
      b.last = now;
    }
    if (b.tokens < 1) {
      return false;
    }
    b.tokens -= 1;
    return true;
  }

  size_t keys() const { return buckets_.size(); }

 private:
  static constexpr size_t kMaxKeys = 10000;

  struct Bucket {
    double tokens;
    Clock::time_point last;
  };

  // Buckets that have refilled are the same as new ones: dropped, so that many clients
  // passing by do not grow the table for ever.
  void forgetIdle(Clock::time_point now) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      double elapsed = std::chrono::duration<double>(now - it->second.last).count();
      if (it->second.tokens + elapsed * perSecond_ >= burst_) {
        it = buckets_.erase(it);
      } else {
        ++it;
      }
    }
  }

  double perSecond_;
  double burst_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace agora
