#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/loop.hpp"

namespace agora {

// A real-time loop: waits on ZeroMQ sockets and file descriptors with epoll (a wait costs the
// same for 3 sockets or 10,000, which simulations of thousands of agents in one process need),
// runs timers and posted closures. ZeroMQ sockets belong to the thread that runs the loop; other
// threads wake it through an eventfd when they post.
//
// ZeroMQ sockets are watched through their ZMQ_FD, which only says that the socket's state may
// have changed; the loop then asks ZMQ_EVENTS. A send can swallow that signal, so whoever sends
// on a watched socket calls markDirty() and the loop looks at it again (the ZeroMQ transports
// do); a slow sweep of every socket catches anything else.
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
  // Asks the loop to look at a watched ZeroMQ socket again (after a send on it).
  void markDirty(void* socket) { dirty_.insert(socket); }

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
  // Makes run() return (the current one, or the next if none runs); run() may be called again.
  void stop();
  bool inLoopThread() const { return std::this_thread::get_id() == loopThread_.load(); }

 private:
  struct Watch {
    void* socket = nullptr;  // null for a plain file descriptor
    int fd = -1;             // what epoll watches: the fd, or the socket's ZMQ_FD
    std::function<void()> onReadable;
    bool alive = true;
  };

  void drainPosted();
  void runDueTimers();
  void add(std::shared_ptr<Watch> watch);
  void remove(const std::shared_ptr<Watch>& watch);
  // Calls the socket's handler if it has input; marks it to be seen again if input remains.
  void dispatchSocket(const std::shared_ptr<Watch>& watch);
  void sweep();

  int wakeFd_ = -1;
  int epollFd_ = -1;
  std::atomic<bool> stopped_{false};
  std::atomic<std::thread::id> loopThread_{};
  std::mutex mutex_;
  std::vector<std::function<void()>> posted_;  // guarded by mutex_
  std::unordered_map<int, std::shared_ptr<Watch>> byFd_;
  std::unordered_map<void*, std::shared_ptr<Watch>> bySocket_;
  std::unordered_set<void*> dirty_;
  TimePoint nextSweep_;
  uint64_t missed_ = 0;
  TimerQueue timers_;
  Duration oversleepLimit_ = Duration::max();
  std::function<void(Duration)> oversleepHandler_;
};

}  // namespace agora
