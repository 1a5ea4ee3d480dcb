#pragma once

// The scheduling of one batch job, as a state machine without I/O: offers in, decisions out;
// task updates in, progress out. BatchScheduler (scheduler.hpp) drives it from a
// SchedulerDriver; tests drive it directly.
//
// - A stage's tasks become pending once every stage it depends on has finished all of its tasks.
// - Offers are packed with pending tasks. A task whose input says where its data lives waits
//   up to `localityWait` for an offer from a matching agent, then takes any.
// - A task that fails (or is lost) runs again, up to its stage's retries, preferring another
//   agent than the ones it failed on.
// - A task that runs much longer than its stage's finished tasks did (a straggler) gets a
//   speculative copy on another agent; the first to finish wins and the other is killed.
// - Offers it cannot use are declined with a filter; with nothing pending it asks to be
//   suppressed, and revived when a stage becomes ready.

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agora/agora.pb.h"
#include "common/resources.hpp"
#include "common/result.hpp"
#include "common/time.hpp"
#include "frameworks/batch/job.hpp"

namespace agora::batch {

struct RunnerOptions {
  Duration localityWait = seconds(3);
  // A running task is a straggler when it has run `stragglerFactor` times the median of its
  // stage's finished tasks, and at least `stragglerMinimum`.
  double stragglerFactor = 3.0;
  Duration stragglerMinimum = seconds(5);
  // How long an offer's agent is not offered again when it was declined.
  double declineSeconds = 5;
};

struct Decision {
  std::map<std::string, std::vector<TaskInfo>> launch;  // offer id -> tasks
  std::vector<std::string> decline;
  std::vector<std::string> kill;                        // task ids (the losers of a race)
};

struct StageProgress {
  std::string name;
  int tasks = 0;
  int finished = 0;
  int running = 0;
  int failures = 0;  // failed attempts, retried or not
  bool ready = false;
};

class JobRunner {
 public:
  JobRunner(Job job, RunnerOptions options, TimePoint now);

  // The runner's record (JSON), to keep across a restart of its framework: each task's
  // attempts and failures, which finished, which may still run and where.
  nlohmann::json snapshot(TimePoint now) const;
  // Takes back a record that snapshot() made for this job: finished tasks stay finished,
  // attempts that may still run are followed again (reconciliation says how they are), and
  // new attempts get ids not used before. Fails on a record of another job.
  Status restore(const nlohmann::json& snapshot, TimePoint now);
  // Whether `taskId` is an attempt this runner launched or took back.
  bool knows(const std::string& taskId) const { return byTask_.count(taskId) > 0; }

  Decision offers(const std::vector<Offer>& offers, TimePoint now);
  // Returns the task ids to kill (speculative copies whose twin won).
  std::vector<std::string> update(const TaskStatus& status, TimePoint now);
  // Stragglers and the deadline: call now and then (the scheduler does on each offer batch).
  void tick(TimePoint now);

  bool wantsOffers() const;
  bool done() const { return done_; }
  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }
  std::vector<StageProgress> progress() const;
  std::vector<std::string> finishedStages() const;
  // Task ids of attempts that may still run (for a cancel, or reconciliation).
  std::vector<std::string> activeTasks() const;
  // Attempts that may still run, each with its agent (for reconciliation).
  std::vector<std::pair<std::string, std::string>> activeAttempts() const;
  // The latest attempt of each task: for its output (`agora batch logs`).
  struct TaskRef {
    std::string stage;
    int index = 0;
    std::string taskId;   // "" before its first launch
    std::string agentId;
    bool finished = false;
  };
  std::vector<TaskRef> latestAttempts() const;
  const Job& job() const { return job_; }

 private:
  struct Attempt {
    std::string taskId;
    std::string agentId;
    TimePoint started;
    bool speculative = false;
  };
  struct Slot {  // one task of a stage, across its attempts
    int index = 0;
    int attempts = 0;            // launched so far
    int failures = 0;            // attempts that ended without finishing
    bool pending = false;        // waiting for an offer
    TimePoint pendingSince;
    bool finished = false;
    bool speculated = false;
    std::set<std::string> failedOn;  // agents
    std::string lastTask;            // the latest attempt and its agent
    std::string lastAgent;
    std::map<std::string, Attempt> running;  // by task id
  };
  struct StageState {
    const Stage* spec = nullptr;
    Resources need;  // each task's (spec->resources, parsed once)
    bool ready = false;
    bool finished = false;
    int failures = 0;
    std::vector<Slot> slots;
    std::vector<Duration> durations;  // of finished tasks
    // Kept as slots change (recount), so that nothing walks every task of a large stage on
    // each offer or update: slots pending, running (not finished) and finished.
    int pendingCount = 0;
    int runningCount = 0;
    int finishedCount = 0;
    std::deque<int> queue;  // pending slots, oldest first (may hold some no longer pending)
  };
  struct SlotCounts {
    bool pending = false;
    bool running = false;
    bool finished = false;
  };
  static SlotCounts countsOf(const Slot& slot);
  static void recount(StageState& stage, const SlotCounts& before, const Slot& slot);
  void makePending(StageState& stage, Slot& slot, TimePoint since);
  void rebuildCounts(StageState& stage);

  void readyStages(TimePoint now);
  TaskInfo makeTask(const StageState& stage, Slot& slot, const Offer& offer, bool speculative);
  bool matches(const Input& input, const Offer& offer) const;
  void fail(const std::string& why);

  Job job_;
  RunnerOptions options_;
  TimePoint started_;
  std::vector<StageState> stages_;
  std::map<std::string, std::pair<size_t, int>> byTask_;  // task id -> (stage, slot)
  bool done_ = false;
  std::string failure_;
  TimePoint lastStragglerScan_;
};

}  // namespace agora::batch
