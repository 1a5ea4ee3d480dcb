#pragma once

// The one-thread-per-component execution model. A component's state lives on one Loop; other
// threads only post() closures into it. Two implementations: EventLoop (real time, ZeroMQ
// sockets and file descriptors) and ManualLoop (a clock that moves only when a test says so).

#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

#include "common/time.hpp"

namespace agora {

using TimerId = uint64_t;

class Loop {
 public:
  virtual ~Loop() = default;

  // Monotonic time, for timeouts.
  virtual TimePoint now() const = 0;
  // Seconds since the epoch, for timestamps users see.
  virtual double wallTime() const = 0;

  // Runs fn on the loop thread, soon. Safe from any thread.
  virtual void post(std::function<void()> fn) = 0;

  // Runs fn on the loop thread after `delay`. Loop thread only.
  virtual TimerId after(Duration delay, std::function<void()> fn) = 0;
  // Cancels a timer that has not fired yet; cancelling a fired or unknown timer does nothing.
  virtual void cancel(TimerId id) = 0;
};

// Timers ordered by deadline, then by creation, so that equal deadlines fire in order.
class TimerQueue {
 public:
  TimerId add(TimePoint deadline, std::function<void()> fn);
  void cancel(TimerId id);
  bool empty() const { return byDeadline_.empty(); }
  // The earliest deadline; only when !empty().
  TimePoint next() const { return byDeadline_.begin()->first.first; }
  // Removes and returns the earliest timer if it is due at `now`; an empty function otherwise.
  std::function<void()> popDue(TimePoint now);
  size_t size() const { return byDeadline_.size(); }

 private:
  using Key = std::pair<TimePoint, TimerId>;
  std::map<Key, std::function<void()>> byDeadline_;
  std::unordered_map<TimerId, TimePoint> deadlines_;
  TimerId nextId_ = 1;
};

}  // namespace agora
