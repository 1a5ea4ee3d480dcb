#include "common/event_loop.hpp"

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
}

EventLoop::~EventLoop() { ::close(wakeFd_); }

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

void EventLoop::watchSocket(void* socket, std::function<void()> onReadable) {
  watches_.push_back(Watch{socket, -1, std::move(onReadable), std::make_shared<bool>(true)});
}

void EventLoop::watchFd(int fd, std::function<void()> onReadable) {
  watches_.push_back(Watch{nullptr, fd, std::move(onReadable), std::make_shared<bool>(true)});
}

void EventLoop::unwatchSocket(void* socket) {
  std::erase_if(watches_, [&](Watch& w) {
    if (w.socket == socket) {
      *w.alive = false;
      return true;
    }
    return false;
  });
}

void EventLoop::unwatchFd(int fd) {
  std::erase_if(watches_, [&](Watch& w) {
    if (w.socket == nullptr && w.fd == fd) {
      *w.alive = false;
      return true;
    }
    return false;
  });
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

void EventLoop::run() {
  loopThread_ = std::this_thread::get_id();
  std::vector<zmq_pollitem_t> items;
  std::vector<std::pair<std::function<void()>*, std::shared_ptr<bool>>> ready;
  while (!stopped_) {
    items.clear();
    items.push_back(zmq_pollitem_t{nullptr, wakeFd_, ZMQ_POLLIN, 0});
    for (const Watch& w : watches_) {
      items.push_back(zmq_pollitem_t{w.socket, w.fd, ZMQ_POLLIN, 0});
    }

    long timeoutMs = -1;
    if (!timers_.empty()) {
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(timers_.next() - now());
      timeoutMs = std::max<long>(0, wait.count());
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!posted_.empty()) {
        timeoutMs = 0;
      }
    }

    int rc = zmq_poll(items.data(), static_cast<int>(items.size()), timeoutMs);
    if (rc < 0) {
      if (zmq_errno() == EINTR) {
        continue;
      }
      if (zmq_errno() == ETERM) {
        LOG(WARNING) << "ZeroMQ context terminated; event loop stops";
        break;
      }
      LOG(FATAL) << "zmq_poll: " << zmq_strerror(zmq_errno());
    }

    if (oversleepHandler_ && !timers_.empty()) {
      Duration late = now() - timers_.next();
      if (late > oversleepLimit_) {
        oversleepHandler_(late);
      }
    }

    drainPosted();
    runDueTimers();

    // Collect first, then call: a callback may watch or unwatch.
    std::vector<Watch> snapshot;
    for (size_t i = 1; i < items.size(); ++i) {
      if (items[i].revents & ZMQ_POLLIN) {
        snapshot.push_back(watches_[i - 1]);
      }
    }
    for (Watch& w : snapshot) {
      if (*w.alive) {
        w.onReadable();
      }
    }
  }
  drainPosted();
}

}  // namespace agora
