#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/loop.hpp"

namespace agora {

// A real-time loop: polls ZeroMQ sockets and file descriptors, runs timers and posted closures.
// ZeroMQ sockets belong to the thread that runs the loop; other threads wake it through an
// eventfd when they post.
class EventLoop final : public Loop {
 public:
  EventLoop();
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  TimePoint now() const override;
  double wallTime() const override;
  void post(std::function<void()> fn) override;
  TimerId after(Duration delay, std::function<void()> fn) override;
  void cancel(TimerId id) override;

  // Calls onReadable on the loop thread whenever the ZeroMQ socket (a void* from
  // zmq::socket_t::handle()) or the file descriptor has input. Loop thread only (or before run).
  void watchSocket(void* socket, std::function<void()> onReadable);
  void watchFd(int fd, std::function<void()> onReadable);
  void unwatchSocket(void* socket);
  void unwatchFd(int fd);

  // Calls `handler` with the lateness, before anything else runs, when the loop wakes up more
  // than `limit` after its earliest timer was due: the process was paused (SIGSTOP, a frozen
  // VM) or starved. Components whose right to act has a deadline (a leader's ZooKeeper
  // session) must not act on what queued up meanwhile.
  void onOversleep(Duration limit, std::function<void(Duration)> handler) {
    oversleepLimit_ = limit;
    oversleepHandler_ = std::move(handler);
  }

  // Runs until stop(). The thread that calls run() is the loop thread.
  void run();
  // Makes run() return after the current iteration. Safe from any thread.
  void stop();
  bool inLoopThread() const { return std::this_thread::get_id() == loopThread_.load(); }

 private:
  struct Watch {
    void* socket = nullptr;
    int fd = -1;
    std::function<void()> onReadable;
    std::shared_ptr<bool> alive;
  };

  void drainPosted();
  void runDueTimers();

  int wakeFd_ = -1;
  std::atomic<bool> stopped_{false};
  std::atomic<std::thread::id> loopThread_{};
  std::mutex mutex_;
  std::vector<std::function<void()>> posted_;  // guarded by mutex_
  std::vector<Watch> watches_;
  TimerQueue timers_;
  Duration oversleepLimit_ = Duration::max();
  std::function<void(Duration)> oversleepHandler_;
};

}  // namespace agora
