#include "agent/status_update_manager.hpp"

#include <algorithm>

#include <glog/logging.h>

namespace agora::agent {

StatusUpdateManager::StatusUpdateManager(Loop& loop, Options options, Forward forward)
    : loop_(loop), options_(options), forward_(std::move(forward)) {
  armRetryTimer();
}

StatusUpdateManager::~StatusUpdateManager() { loop_.cancel(retryTimer_); }

void StatusUpdateManager::armRetryTimer() {
  Duration tick = std::max<Duration>(options_.retryMin / 4, milliseconds(50));
  retryTimer_ = loop_.after(tick, [this] {
    retryDue();
    armRetryTimer();
  });
}

bool StatusUpdateManager::update(const std::string& frameworkId, const TaskStatus& status) {
  Key key{frameworkId, status.task_id()};
  Stream& stream = streams_[key];
  if (!stream.uuids.insert(status.uuid()).second) {
    return false;
  }
  if (!terminal(stream.latest)) {
    stream.latest = status.state();
  }
  stream.updates.push_back(status);
  ++pending_;
  if (stream.updates.size() == 1) {
    stream.backoff = options_.retryMin;
    sendHead(key, stream);
  }
  return true;
}

void StatusUpdateManager::sendHead(const Key& key, Stream& stream) {
  stream.nextRetry = loop_.now() + stream.backoff;
  waiting_.insert(key);
  if (!paused_) {
    forward_(key.first, stream.updates.front(), stream.latest);
  }
}

bool StatusUpdateManager::acknowledge(const std::string& frameworkId, const std::string& taskId,
                                      const std::string& uuid) {
  Key key{frameworkId, taskId};
  auto it = streams_.find(key);
  if (it == streams_.end() || it->second.updates.empty() ||
      it->second.updates.front().uuid() != uuid) {
    return false;
  }
  Stream& stream = it->second;
  bool ended = terminal(stream.updates.front().state());
  stream.updates.pop_front();
  --pending_;
  waiting_.erase(key);
  if (ended) {
    // Nothing may follow a terminal update.
    pending_ -= stream.updates.size();
    streams_.erase(it);
    return true;
  }
  if (!stream.updates.empty()) {
    stream.backoff = options_.retryMin;
    sendHead(key, stream);
  }
  return true;
}

void StatusUpdateManager::retryDue() {
  if (paused_) {
    return;
  }
  TimePoint now = loop_.now();
  for (const Key& key : waiting_) {
    Stream& stream = streams_.at(key);
    if (stream.nextRetry > now) {
      continue;
    }
    ++retries_;
    stream.backoff = std::min(stream.backoff * 2, options_.retryMax);
    stream.nextRetry = now + stream.backoff;
    forward_(key.first, stream.updates.front(), stream.latest);
  }
}

void StatusUpdateManager::pause() { paused_ = true; }

void StatusUpdateManager::resume() {
  paused_ = false;
  for (const Key& key : waiting_) {
    Stream& stream = streams_.at(key);
    stream.backoff = options_.retryMin;
    stream.nextRetry = loop_.now() + stream.backoff;
    forward_(key.first, stream.updates.front(), stream.latest);
  }
}

void StatusUpdateManager::flush(const std::string& frameworkId) {
  if (paused_) {
    return;
  }
  for (auto it = waiting_.lower_bound(Key{frameworkId, ""});
       it != waiting_.end() && it->first == frameworkId; ++it) {
    Stream& stream = streams_.at(*it);
    stream.backoff = options_.retryMin;
    stream.nextRetry = loop_.now() + stream.backoff;
    forward_(it->first, stream.updates.front(), stream.latest);
  }
}

void StatusUpdateManager::cleanupFramework(const std::string& frameworkId) {
  for (auto it = streams_.lower_bound(Key{frameworkId, ""});
       it != streams_.end() && it->first.first == frameworkId;) {
    pending_ -= it->second.updates.size();
    waiting_.erase(it->first);
    it = streams_.erase(it);
  }
}

bool StatusUpdateManager::hasStream(const std::string& frameworkId,
                                    const std::string& taskId) const {
  return streams_.count(Key{frameworkId, taskId}) > 0;
}

}  // namespace agora::agent
