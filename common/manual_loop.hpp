#pragma once

#include <mutex>
#include <vector>

#include "common/loop.hpp"

namespace agora {

// A loop whose clock moves only when advance() is called: whole clusters run deterministically
// in one thread under it (tests and simulations). post() is safe from any thread; everything
// else belongs to the thread that drives the loop.
class ManualLoop final : public Loop {
 public:
  ManualLoop();

  TimePoint now() const override { return now_; }
  double wallTime() const override { return wallStart_ + toSeconds(now_ - start_); }
  void post(std::function<void()> fn) override;
  TimerId after(Duration delay, std::function<void()> fn) override;
  void cancel(TimerId id) override;

  // Runs posted closures and due timers until nothing is left to do at the current time.
  void runUntilIdle();
  // Moves the clock forward by `d`, firing each timer at its own deadline, in order.
  void advance(Duration d);

  size_t pendingTimers() const { return timers_.size(); }

 private:
  bool runPosted();

  TimePoint start_;
  TimePoint now_;
  double wallStart_;
  std::mutex mutex_;
  std::vector<std::function<void()>> posted_;  // guarded by mutex_
  TimerQueue timers_;
};

}  // namespace agora
