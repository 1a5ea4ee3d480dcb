#pragma once

// A batch job's framework on the SDK: a Scheduler that hands offers and updates to a JobRunner
// and carries out what it decides, suppressing offers while it has nothing to launch.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "agora/scheduler.hpp"
#include "frameworks/batch/job_runner.hpp"

namespace agora::batch {

class BatchScheduler : public Scheduler {
 public:
  BatchScheduler(Job job, RunnerOptions options = {});

  // What the job's record is kept with, across restarts of this framework: called with the
  // runner's snapshot (JobRunner::snapshot) and the framework's id before any task is
  // launched, so that no attempt runs unrecorded, and at the next tick after tasks ended.
  using Recorder = std::function<void(const nlohmann::json& runner, const std::string& frameworkId)>;
  void setRecorder(Recorder recorder);
  // Takes back a previous run's record, before the driver starts.
  Status restore(const nlohmann::json& runner);

  void subscribed(SchedulerDriver* driver, const std::string& frameworkId,
                  const MasterInfo& master) override;
  void offers(SchedulerDriver* driver, const std::vector<Offer>& offers) override;
  void update(SchedulerDriver* driver, const TaskStatus& status) override;
  void error(SchedulerDriver* driver, const std::string& message) override;

  // The job's clock without offers (it suppresses them while it waits): its deadline, and
  // stragglers, whose speculative copies need offers again. Call now and then.
  void tick(SchedulerDriver* driver);
  // Blocks until the job has finished or failed, or `timeout` passed; true when it is over.
  bool waitOver(Duration timeout);
  bool succeeded();
  std::string failure();
  // One line per event worth telling (a stage started or finished, a retry, a straggler):
  // what has happened since the last call.
  std::vector<std::string> takeEvents();

 private:
  void steer(SchedulerDriver* driver);  // suppress or revive as the runner wants offers
  void record();
  // Once the runner has failed: says so and kills what may still run.
  void failed(SchedulerDriver* driver);

  std::mutex mutex_;
  std::condition_variable changed_;
  JobRunner runner_;
  bool suppressed_ = false;
  std::string driverError_;
  std::vector<std::string> events_;
  std::vector<StageProgress> last_;
  Recorder recorder_;
  bool dirty_ = false;  // the record lags the runner
  std::string frameworkId_;
};

}  // namespace agora::batch
