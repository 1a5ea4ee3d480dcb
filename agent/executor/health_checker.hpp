#pragma once

// Health checks, run by the built-in executors for each task that has one
// (TaskInfo.health_check): a command (healthy when it exits 0), an HTTP GET (healthy on a 2xx or
// 3xx answer) or a TCP connect, against the task inside its container.
//
// Every check runs as a short-lived helper process that the executor starts and reaps: a
// command check as the task's own command line (and user), HTTP and TCP checks as
// `agora executor probe ...`. So a check never blocks the executor, a check that hangs is killed
// at its timeout, and all three kinds share one path.
//
// Timing, as in Mesos: the first check runs `delay_seconds` after the task started, then one
// every `interval_seconds` (10s when 0), each given `timeout_seconds` (20s when 0). Failures
// within `grace_period_seconds` of the start do not count until the task has been healthy once.
// The framework hears of every change of health (the first result is one): a RUNNING update with
// `healthy` set and reason REASON_TASK_HEALTH_CHECK_STATUS_UPDATED. After
// `consecutive_failures` (3 when 0) failures in a row that count, the task is killed.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agora/agora.pb.h"
#include "agora/executor.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

namespace agora::agent {

class HealthChecker {
 public:
  // How a helper process ended: its wait status, or that it was killed at its timeout.
  using HelperDone = std::function<void(int waitStatus, bool timedOut)>;
  // What RunHelper says when the check cannot run yet (the task is still entering its image):
  // the check is tried again at the next interval, and counts neither way.
  static constexpr const char* kNotYet = "not yet: ";
  // Starts a helper process (the executor reaps it) whose output goes to `output`.
  using RunHelper =
      std::function<Status(const std::vector<std::string>& argv, bool asTaskUser,
                           const std::string& output, Duration timeout, HelperDone done)>;
  using Changed = std::function<void(bool healthy, const std::string& message)>;
  using Failed = std::function<void(const std::string& message)>;

  struct Timing {
    Duration delay;
    Duration interval;
    Duration timeout;
    Duration grace;
    uint32_t consecutiveFailures;
  };
  static Timing timingOf(const HealthCheck& check);

  // Whether the check can run at all: a type, a command, a port.
  static Status validate(const HealthCheck& check);

  // `self`: the agora binary (for probes); `output`: where each check's output goes.
  HealthChecker(ExecutorDriver* driver, HealthCheck check, std::string self, std::string output,
                RunHelper run, Changed changed, Failed failed);
  // A readiness check: reports every change and keeps checking; failures never end it.
  void reportOnly() { reportOnly_ = true; }
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // The task has started: the first check runs after the delay.
  void start();
  // No more checks (the task is ending); a check in flight is ignored when it ends.
  void stop();

 private:
  void schedule(Duration after);
  void check();
  void finished(int waitStatus, bool timedOut);
  void result(bool healthy, const std::string& message);
  std::string lastOutput() const;

  ExecutorDriver* driver_;
  HealthCheck check_;
  Timing timing_;
  std::string self_;
  std::string output_;
  RunHelper run_;
  Changed changed_;
  Failed failed_;
  TimePoint started_;
  uint64_t timer_ = 0;
  bool stopped_ = false;
  bool reportOnly_ = false;
  bool everHealthy_ = false;
  int reported_ = -1;  // -1: nothing reported yet; else the last `healthy` sent
  uint32_t failures_ = 0;
  // Lets a helper's callback tell whether this checker still exists.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// `agora executor probe http HOST PORT PATH` or `agora executor probe tcp HOST PORT`: one HTTP or
// TCP check; exit 0 when healthy, 1 when not, saying why on stdout.
int runHealthProbe(const std::vector<std::string>& args);

}  // namespace agora::agent
