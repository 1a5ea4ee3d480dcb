#pragma once

#include <atomic>
#include <future>
#include <optional>
#include <thread>

#include "common/event_loop.hpp"

namespace agora::testing {

// An EventLoop on a thread of its own, for tests that drive components living on a real loop.
class LoopThread {
 public:
  LoopThread() : thread_([this] { loop_.run(); }) {}
  ~LoopThread() {
    loop_.stop();
    thread_.join();
  }
  EventLoop& loop() { return loop_; }

  // Runs fn on the loop and waits for it to return.
  template <typename Fn>
  void sync(Fn fn) {
    std::promise<void> done;
    loop_.post([&] {
      fn();
      done.set_value();
    });
    done.get_future().get();
  }

  // Runs fn(answer) on the loop and waits (up to `timeout`) until it calls answer(value).
  template <typename T, typename Fn>
  std::optional<T> await(Fn fn, std::chrono::seconds timeout = std::chrono::seconds(30)) {
    auto promise = std::make_shared<std::promise<T>>();
    auto once = std::make_shared<std::atomic<bool>>(false);
    loop_.post([fn, promise, once]() mutable {
      fn([promise, once](T value) {
        if (!once->exchange(true)) {
          promise->set_value(std::move(value));
        }
      });
    });
    auto future = promise->get_future();
    if (future.wait_for(timeout) != std::future_status::ready) {
      return std::nullopt;
    }
    return future.get();
  }

 private:
  EventLoop loop_;
  std::thread thread_;
};

}  // namespace agora::testing
