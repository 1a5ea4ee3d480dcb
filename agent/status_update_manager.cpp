#include "agent/status_update_manager.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <glog/logging.h>

#include "agent/checkpoint.hpp"
#include "common/fs.hpp"

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
  checkpoint::UpdateRecord record;
  *record.mutable_update() = status;
  persist(key, record);
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
    if (stream.sentAt == TimePoint{}) stream.sentAt = loop_.now();
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
  if (stream.sentAt != TimePoint{}) roundTrip_.observe(toSeconds(loop_.now() - stream.sentAt));
  stream.sentAt = TimePoint{};
  bool ended = terminal(stream.updates.front().state());
  stream.updates.pop_front();
  --pending_;
  waiting_.erase(key);
  if (ended) {
    // Nothing may follow a terminal update.
    pending_ -= stream.updates.size();
    streams_.erase(it);
    if (!options_.directory.empty() && ::unlink(logPath(key).c_str()) != 0 && errno != ENOENT) {
      PLOG(WARNING) << "Cannot remove " << logPath(key);
    }
    return true;
  }
  checkpoint::UpdateRecord record;
  record.set_ack(uuid);
  persist(key, record);
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
  if (!options_.directory.empty() && !frameworkId.empty()) {
    frameworkDirs_.erase(frameworkId);
    if (Status removed = removeAll(options_.directory + "/" + frameworkId); !removed) {
      LOG(WARNING) << removed.error();
    }
  }
}

std::string StatusUpdateManager::logPath(const Key& key) const {
  return options_.directory + "/" + key.first + "/" + key.second;
}

void StatusUpdateManager::persist(const Key& key, const checkpoint::UpdateRecord& record) {
  if (options_.directory.empty()) {
    return;
  }
  if (frameworkDirs_.count(key.first) == 0) {
    if (Status made = makeDirectories(options_.directory + "/" + key.first); !made) {
      LOG(ERROR) << "Status updates of framework " << key.first
                 << " are kept in memory only: " << made.error();
      return;
    }
    frameworkDirs_.insert(key.first);
  }
  if (Status appended = checkpoint::appendUpdate(logPath(key), record); !appended) {
    LOG(ERROR) << "A status update of task " << key.second
               << " is kept in memory only: " << appended.error();
  }
}

std::vector<std::string> StatusUpdateManager::recover() {
  std::vector<std::string> errors;
  if (options_.directory.empty()) {
    return errors;
  }
  for (const std::string& frameworkId : checkpoint::listDirectory(options_.directory)) {
    frameworkDirs_.insert(frameworkId);
    std::string dir = options_.directory + "/" + frameworkId;
    for (const std::string& taskId : checkpoint::listDirectory(dir)) {
      std::string path = dir + "/" + taskId;
      if (taskId.size() > 8 && taskId.substr(taskId.size() - 8) == ".corrupt") {
        continue;
      }
      auto log = checkpoint::readUpdates(path);
      if (!log) {
        errors.push_back(log.error());
        ::rename(path.c_str(), (path + ".corrupt").c_str());
        continue;
      }
      Key key{frameworkId, taskId};
      Stream stream;
      bool ended = false;
      for (const checkpoint::UpdateRecord& record : log->records) {
        if (record.has_update()) {
          if (stream.uuids.insert(record.update().uuid()).second) {
            if (!terminal(stream.latest)) {
              stream.latest = record.update().state();
            }
            stream.updates.push_back(record.update());
          }
        } else if (!stream.updates.empty() && stream.updates.front().uuid() == record.ack()) {
          ended = terminal(stream.updates.front().state());
          stream.updates.pop_front();
        }
      }
      if (ended || stream.updates.empty()) {
        // Acknowledged to the end (the agent stopped before removing the log), or empty.
        ::unlink(path.c_str());
        continue;
      }
      if (log->tornTail) {
        LOG(WARNING) << path << ": a partly written last record was left out";
      }
      pending_ += stream.updates.size();
      stream.backoff = options_.retryMin;
      stream.nextRetry = loop_.now();
      waiting_.insert(key);
      streams_[key] = std::move(stream);
    }
  }
  return errors;
}

std::optional<TaskState> StatusUpdateManager::latest(const std::string& frameworkId,
                                                     const std::string& taskId) const {
  auto it = streams_.find(Key{frameworkId, taskId});
  if (it == streams_.end()) {
    return std::nullopt;
  }
  return it->second.latest;
}

void StatusUpdateManager::forEachStream(
    const std::function<void(const std::string&, const std::string&, const TaskStatus&,
                             TaskState)>& fn) const {
  for (const auto& [key, stream] : streams_) {
    if (!stream.updates.empty()) {
      fn(key.first, key.second, stream.updates.front(), stream.latest);
    }
  }
}

bool StatusUpdateManager::hasStream(const std::string& frameworkId,
                                    const std::string& taskId) const {
  return streams_.count(Key{frameworkId, taskId}) > 0;
}

}  // namespace agora::agent
