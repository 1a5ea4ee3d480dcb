#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/time.hpp"

namespace agora {

// Tells a paused process (SIGSTOP, a frozen VM: every thread stopped) from a busy event loop. A
// thread of its own ticks every `interval`; the largest gap between two ticks shows how long
// the whole process did not run. A busy loop does not stop this thread.
class PauseDetector {
 public:
  explicit PauseDetector(Duration interval = milliseconds(50));
  ~PauseDetector();
  PauseDetector(const PauseDetector&) = delete;
  PauseDetector& operator=(const PauseDetector&) = delete;

  // The largest gap between ticks since the last call.
  Duration takeLargestGap();

 private:
  Duration interval_;
  std::atomic<int64_t> largestGap_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace agora
