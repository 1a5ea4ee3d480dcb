#include "common/loop.hpp"

namespace agora {

TimerId TimerQueue::add(TimePoint deadline, std::function<void()> fn) {
  TimerId id = nextId_++;
  byDeadline_.emplace(Key{deadline, id}, std::move(fn));
  deadlines_.emplace(id, deadline);
  return id;
}

void TimerQueue::cancel(TimerId id) {
  auto it = deadlines_.find(id);
  if (it == deadlines_.end()) {
    return;
  }
  byDeadline_.erase(Key{it->second, id});
  deadlines_.erase(it);
}

std::function<void()> TimerQueue::popDue(TimePoint now) {
  if (byDeadline_.empty() || byDeadline_.begin()->first.first > now) {
    return {};
  }
  auto node = byDeadline_.extract(byDeadline_.begin());
  deadlines_.erase(node.key().second);
  return std::move(node.mapped());
}

}  // namespace agora
