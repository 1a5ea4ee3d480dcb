#include "common/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <glog/logging.h>
#include <zmq.h>

namespace agora {

EventLoop::EventLoop() {
  wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  PCHECK(wakeFd_ >= 0) << "eventfd";
  epollFd_ = ::epoll_create1(EPOLL_CLOEXEC);
  PCHECK(epollFd_ >= 0) << "epoll_create1";
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wakeFd_;
  PCHECK(::epoll_ctl(epollFd_, EPOLL_CTL_ADD, wakeFd_, &event) == 0);
}

EventLoop::~EventLoop() {
  ::close(epollFd_);
  ::close(wakeFd_);
}

TimePoint EventLoop::now() const { return std::chrono::steady_clock::now(); }

double EventLoop::wallTime() const { return wallTimeNow(); }

void EventLoop::post(std::function<void()> fn) {
  bool wasEmpty;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    wasEmpty = posted_.empty();
    posted_.push_back(std::move(fn));
  }
  if (wasEmpty) {
    uint64_t one = 1;
    ssize_t n = ::write(wakeFd_, &one, sizeof(one));
    (void)n;  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  }
}

TimerId EventLoop::after(Duration delay, std::function<void()> fn) {
  return timers_.add(now() + delay, std::move(fn));
}

void EventLoop::cancel(TimerId id) { timers_.cancel(id); }

void EventLoop::add(std::shared_ptr<Watch> watch) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = watch->fd;
  PCHECK(::epoll_ctl(epollFd_, EPOLL_CTL_ADD, watch->fd, &event) == 0)
      << "epoll_ctl add " << watch->fd;
  byFd_[watch->fd] = watch;
  if (watch->socket != nullptr) {
    bySocket_[watch->socket] = watch;
    dirty_.insert(watch->socket);  // it may hold input already
  }
}

void EventLoop::remove(const std::shared_ptr<Watch>& watch) {
  watch->alive = false;
  ::epoll_ctl(epollFd_, EPOLL_CTL_DEL, watch->fd, nullptr);
  byFd_.erase(watch->fd);
  if (watch->socket != nullptr) {
    bySocket_.erase(watch->socket);
    dirty_.erase(watch->socket);
  }
}

void EventLoop::watchSocket(void* socket, std::function<void()> onReadable) {
  int fd = -1;
  size_t size = sizeof(fd);
  CHECK_EQ(zmq_getsockopt(socket, ZMQ_FD, &fd, &size), 0) << zmq_strerror(zmq_errno());
  auto watch = std::make_shared<Watch>();
  watch->socket = socket;
  watch->fd = fd;
  watch->onReadable = std::move(onReadable);
  add(std::move(watch));
}

void EventLoop::watchFd(int fd, std::function<void()> onReadable) {
  auto watch = std::make_shared<Watch>();
  watch->fd = fd;
  watch->onReadable = std::move(onReadable);
  add(std::move(watch));
}

void EventLoop::unwatchSocket(void* socket) {
  auto it = bySocket_.find(socket);
  if (it != bySocket_.end()) {
    remove(it->second);
  }
}

void EventLoop::unwatchFd(int fd) {
  auto it = byFd_.find(fd);
  if (it != byFd_.end() && it->second->socket == nullptr) {
    remove(it->second);
  }
}

void EventLoop::stop() {
  stopped_ = true;
  uint64_t one = 1;
  ssize_t n = ::write(wakeFd_, &one, sizeof(one));
  (void)n;
}

void EventLoop::drainPosted() {
  uint64_t value;
  while (::read(wakeFd_, &value, sizeof(value)) > 0) {
  }
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) {
    fn();
  }
}

void EventLoop::runDueTimers() {
  TimePoint t = now();
  // Timers added while firing with zero delay run on the next iteration, so a timer that
  // re-arms itself cannot starve the sockets.
  size_t budget = timers_.size();
  while (budget-- > 0) {
    auto fn = timers_.popDue(t);
    if (!fn) {
      break;
    }
    fn();
  }
}

namespace {

bool hasInput(void* socket) {
  uint32_t events = 0;
  size_t size = sizeof(events);
  if (zmq_getsockopt(socket, ZMQ_EVENTS, &events, &size) != 0) {
    return false;
  }
  return (events & ZMQ_POLLIN) != 0;
}

}  // namespace

void EventLoop::dispatchSocket(const std::shared_ptr<Watch>& watch) {
  if (!watch->alive || !hasInput(watch->socket)) {
    return;
  }
  watch->onReadable();
  // A handler reads a bounded batch: what is left waits for the next turn, after timers and
  // posted work.
  if (watch->alive && hasInput(watch->socket)) {
    dirty_.insert(watch->socket);
  }
}

void EventLoop::sweep() {
  std::vector<std::shared_ptr<Watch>> all;
  all.reserve(bySocket_.size());
  for (auto& [socket, watch] : bySocket_) {
    all.push_back(watch);
  }
  for (auto& watch : all) {
    if (watch->alive && hasInput(watch->socket)) {
      if (++missed_ % 1000 == 1) {
        VLOG(1) << "A ZeroMQ socket had input without a notification (" << missed_ << " so far)";
      }
      dispatchSocket(watch);
    }
  }
}

void EventLoop::run() {
  loopThread_ = std::this_thread::get_id();
  std::vector<epoll_event> events(256);
  nextSweep_ = now() + seconds(1);
  while (!stopped_) {
    int timeoutMs = -1;
    if (!timers_.empty()) {
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(timers_.next() - now());
      timeoutMs = static_cast<int>(std::clamp<long>(wait.count(), 0, 1000));
    } else {
      timeoutMs = 1000;  // the sweep
    }
    if (!dirty_.empty()) {
      timeoutMs = 0;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!posted_.empty()) {
        timeoutMs = 0;
      }
    }

    int n = ::epoll_wait(epollFd_, events.data(), static_cast<int>(events.size()), timeoutMs);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      PLOG(FATAL) << "epoll_wait";
    }

    if (oversleepHandler_ && !timers_.empty()) {
      Duration late = now() - timers_.next();
      if (late > oversleepLimit_) {
        oversleepHandler_(late);
      }
    }

    drainPosted();
    runDueTimers();

    // Collect first, then call: a handler may watch or unwatch.
    std::vector<std::shared_ptr<Watch>> ready;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wakeFd_) {
        continue;
      }
      auto it = byFd_.find(fd);
      if (it == byFd_.end()) {
        continue;
      }
      if (it->second->socket != nullptr) {
        dirty_.insert(it->second->socket);
      } else {
        ready.push_back(it->second);
      }
    }
    std::vector<void*> sockets(dirty_.begin(), dirty_.end());
    dirty_.clear();
    for (void* socket : sockets) {
      auto it = bySocket_.find(socket);
      if (it != bySocket_.end()) {
        ready.push_back(it->second);
      }
    }
    for (auto& watch : ready) {
      if (!watch->alive) {
        continue;
      }
      if (watch->socket != nullptr) {
        dispatchSocket(watch);
      } else {
        watch->onReadable();
      }
    }
    if (now() >= nextSweep_) {
      nextSweep_ = now() + seconds(1);
      sweep();
    }
  }
  drainPosted();
  stopped_ = false;  // stop() ends this run; the loop can be run again
}

}  // namespace agora
