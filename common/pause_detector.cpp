#include "common/pause_detector.hpp"

namespace agora {

PauseDetector::PauseDetector(Duration interval)
    : interval_(interval), thread_([this] {
        auto last = std::chrono::steady_clock::now();
        std::unique_lock<std::mutex> lock(mutex_);
        while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
          auto now = std::chrono::steady_clock::now();
          int64_t gap = std::chrono::duration_cast<Duration>(now - last).count();
          int64_t seen = largestGap_.load();
          while (gap > seen && !largestGap_.compare_exchange_weak(seen, gap)) {
          }
          last = now;
        }
      }) {}

PauseDetector::~PauseDetector() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Duration PauseDetector::takeLargestGap() { return Duration(largestGap_.exchange(0)); }

}  // namespace agora
