#include "common/manual_loop.hpp"

namespace agora {

ManualLoop::ManualLoop()
    : start_(TimePoint{} + hours(24)), now_(start_), wallStart_(1'800'000'000.0) {}

void ManualLoop::post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mutex_);
  posted_.push_back(std::move(fn));
}

TimerId ManualLoop::after(Duration delay, std::function<void()> fn) {
  return timers_.add(now_ + delay, std::move(fn));
}

void ManualLoop::cancel(TimerId id) { timers_.cancel(id); }

bool ManualLoop::runPosted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) {
    fn();
  }
  return !batch.empty();
}

void ManualLoop::runUntilIdle() {
  while (true) {
    bool did = runPosted();
    while (auto fn = timers_.popDue(now_)) {
      fn();
      did = true;
    }
    if (!did) {
      return;
    }
  }
}

void ManualLoop::advance(Duration d) {
  TimePoint target = now_ + d;
  runUntilIdle();
  while (!timers_.empty() && timers_.next() <= target) {
    now_ = timers_.next();
    runUntilIdle();
  }
  now_ = target;
  runUntilIdle();
}

}  // namespace agora
