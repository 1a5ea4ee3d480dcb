#pragma once

// Reliable status updates. Each task has a stream of updates that the agent sends to the
// master in order, one at a time: the head is resent with exponential back-off until the
// framework's acknowledgement for it comes back, then the next one goes. A terminal update
// that is acknowledged ends the stream.
//
// With a directory, every stream is also a log on disk (<directory>/<framework>/<task>): an
// update is appended and synced before it is forwarded, and so is each acknowledgement, so a
// restarted agent recovers every stream as it was and sends what was not acknowledged.

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>

#include "agent/checkpoint.pb.h"
#include "agora/agora.pb.h"
#include "common/histogram.hpp"
#include "common/loop.hpp"

namespace agora::agent {

// Whether a task in this state has ended.
inline bool terminal(TaskState s) {
  return s == TASK_FINISHED || s == TASK_FAILED || s == TASK_KILLED || s == TASK_ERROR ||
         s == TASK_LOST || s == TASK_DROPPED || s == TASK_GONE;
}

class StatusUpdateManager {
 public:
  struct Options {
    Duration retryMin = seconds(10);
    Duration retryMax = minutes(10);
    std::string directory;  // where the streams' logs go; empty: kept in memory only
  };
  // Sends one update to the master (with the latest state of its task); false if it could not.
  using Forward = std::function<bool(const std::string& frameworkId, const TaskStatus& status,
                                     TaskState latestState)>;

  StatusUpdateManager(Loop& loop, Options options, Forward forward);
  ~StatusUpdateManager();

  // Records an update and forwards it if it heads its stream. False for a duplicate (a uuid
  // already in the stream).
  bool update(const std::string& frameworkId, const TaskStatus& status);

  // Applies the framework's acknowledgement. False when it does not match the stream's head.
  bool acknowledge(const std::string& frameworkId, const std::string& taskId,
                   const std::string& uuid);

  // While paused (no master), nothing is sent; resume() sends every head at once.
  void pause();
  void resume();

  // Sends the heads of a framework's streams again now (it reconnected), resetting back-off.
  void flush(const std::string& frameworkId);

  // Forgets a framework's streams (it was removed).
  void cleanupFramework(const std::string& frameworkId);

  // Reads the streams back from the directory (at start-up, before any update). A log that
  // cannot be read is named in the returned list and set aside (renamed *.corrupt).
  std::vector<std::string> recover();

  // The latest state a stream has seen; nullopt when there is no stream for the task.
  std::optional<TaskState> latest(const std::string& frameworkId, const std::string& taskId) const;
  // Each stream: its framework, task, the update at its head and the latest state.
  void forEachStream(const std::function<void(const std::string& frameworkId,
                                              const std::string& taskId,
                                              const TaskStatus& head, TaskState latest)>& fn) const;

  // Updates not yet acknowledged, across all streams.
  size_t pending() const { return pending_; }
  bool hasStream(const std::string& frameworkId, const std::string& taskId) const;
  uint64_t retries() const { return retries_; }
  // Seconds from an update's first sending to its acknowledgement.
  const Histogram& roundTrip() const { return roundTrip_; }

 private:
  using Key = std::pair<std::string, std::string>;  // framework id, task id
  struct Stream {
    std::deque<TaskStatus> updates;
    std::unordered_set<std::string> uuids;
    TaskState latest = TASK_UNKNOWN;
    TimePoint nextRetry;
    Duration backoff;
    TimePoint sentAt{};  // when its head first went out (unset: not yet)
  };

  void sendHead(const Key& key, Stream& stream);
  // Appends to the stream's log (when there is a directory).
  void persist(const Key& key, const checkpoint::UpdateRecord& record);
  std::string logPath(const Key& key) const;
  void retryDue();
  void armRetryTimer();

  Loop& loop_;
  Options options_;
  Forward forward_;
  std::map<Key, Stream> streams_;
  std::set<Key> waiting_;  // streams whose head was sent and is not acknowledged
  std::set<std::string> frameworkDirs_;  // made already
  size_t pending_ = 0;
  bool paused_ = true;
  uint64_t retries_ = 0;
  Histogram roundTrip_;
  TimerId retryTimer_ = 0;
};

}  // namespace agora::agent
