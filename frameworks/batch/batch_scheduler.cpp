#include "frameworks/batch/batch_scheduler.hpp"

#include <chrono>

namespace agora::batch {

BatchScheduler::BatchScheduler(Job job, RunnerOptions options)
    : runner_(std::move(job), options, std::chrono::steady_clock::now()) {
  last_ = runner_.progress();
}

void BatchScheduler::setRecorder(Recorder recorder) {
  std::lock_guard<std::mutex> lock(mutex_);
  recorder_ = std::move(recorder);
}

Status BatchScheduler::restore(const nlohmann::json& runner) {
  std::lock_guard<std::mutex> lock(mutex_);
  Status restored = runner_.restore(runner, std::chrono::steady_clock::now());
  last_ = runner_.progress();
  return restored;
}

void BatchScheduler::record() {
  dirty_ = false;
  if (recorder_) recorder_(runner_.snapshot(std::chrono::steady_clock::now()), frameworkId_);
}

void BatchScheduler::subscribed(SchedulerDriver* driver, const std::string& frameworkId,
                                const MasterInfo&) {
  std::lock_guard<std::mutex> lock(mutex_);
  events_.push_back("Subscribed as framework " + frameworkId);
  frameworkId_ = frameworkId;
  record();
  // Attempts launched before (by an earlier run of this framework, or before a master
  // failover): the master says how each is now.
  std::vector<TaskStatus> known;
  for (const auto& [taskId, agentId] : runner_.activeAttempts()) {
    TaskStatus status;
    status.set_task_id(taskId);
    status.set_agent_id(agentId);
    known.push_back(std::move(status));
  }
  if (!known.empty()) driver->reconcile(known);
  // After a master change: offers are wanted again if anything is pending.
  suppressed_ = false;
  steer(driver);
}

void BatchScheduler::offers(SchedulerDriver* driver, const std::vector<Offer>& offers) {
  std::lock_guard<std::mutex> lock(mutex_);
  Decision decision = runner_.offers(offers, std::chrono::steady_clock::now());
  if (!decision.launch.empty()) record();  // before the attempts exist
  Filters launched;
  launched.set_refuse_seconds(1);
  for (auto& [offerId, tasks] : decision.launch) {
    driver->launch(offerId, tasks, launched);
  }
  Filters declined;
  // Nothing pending: keep the agent's resources for others a good while.
  declined.set_refuse_seconds(runner_.wantsOffers() ? 1 : 30);
  for (const std::string& offerId : decision.decline) {
    driver->decline(offerId, declined);
  }
  steer(driver);
  changed_.notify_all();
}

void BatchScheduler::update(SchedulerDriver* driver, const TaskStatus& status) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!runner_.knows(status.task_id())) {
    // Launched by a run of this framework that ended before it recorded the launch.
    if (!isTerminalState(status.state())) driver->kill(status.task_id(), status.agent_id());
    return;
  }
  bool wasFailed = runner_.failed();
  for (const std::string& taskId : runner_.update(status, std::chrono::steady_clock::now())) {
    driver->kill(taskId);
  }
  std::vector<StageProgress> now = runner_.progress();
  for (size_t i = 0; i < now.size() && i < last_.size(); ++i) {
    if (now[i].ready && !last_[i].ready) {
      events_.push_back("Stage " + now[i].name + ": " + std::to_string(now[i].tasks) +
                        " tasks");
    }
    if (now[i].failures > last_[i].failures) {
      events_.push_back("Stage " + now[i].name + ": task " + status.task_id() + " " +
                        TaskState_Name(status.state()) +
                        (status.message().empty() ? "" : " (" + status.message() + ")") +
                        "; retrying");
    }
    if (now[i].finished == now[i].tasks && last_[i].finished < last_[i].tasks) {
      events_.push_back("Stage " + now[i].name + ": finished");
    }
  }
  last_ = std::move(now);
  if (runner_.failed() && !wasFailed) failed(driver);
  // Kept at the next tick (or launch): a task's end lost with a crash is learnt again by
  // reconciliation, while writing the whole record on every update would not keep up with
  // short tasks.
  if (isTerminalState(status.state())) dirty_ = true;
  steer(driver);
  changed_.notify_all();
}

void BatchScheduler::tick(SchedulerDriver* driver) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (dirty_) record();
  bool wasFailed = runner_.failed();
  runner_.tick(std::chrono::steady_clock::now());
  if (runner_.failed() && !wasFailed) {
    failed(driver);
    record();
    changed_.notify_all();
  }
  steer(driver);
}

void BatchScheduler::failed(SchedulerDriver* driver) {
  events_.push_back("Job failed: " + runner_.failure());
  for (const auto& [taskId, agentId] : runner_.activeAttempts()) driver->kill(taskId, agentId);
}

void BatchScheduler::error(SchedulerDriver*, const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  driverError_ = message;
  changed_.notify_all();
}

void BatchScheduler::steer(SchedulerDriver* driver) {
  bool wants = runner_.wantsOffers();
  if (wants && suppressed_) {
    driver->revive();
    suppressed_ = false;
  } else if (!wants && !suppressed_) {
    driver->suppress();
    suppressed_ = true;
  }
}

bool BatchScheduler::waitOver(Duration timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [this] {
    return runner_.done() || runner_.failed() || !driverError_.empty();
  });
}

bool BatchScheduler::succeeded() {
  std::lock_guard<std::mutex> lock(mutex_);
  return runner_.done() && !runner_.failed();
}

std::string BatchScheduler::failure() {
  std::lock_guard<std::mutex> lock(mutex_);
  return !driverError_.empty() ? driverError_ : runner_.failure();
}


std::vector<std::string> BatchScheduler::takeEvents() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  out.swap(events_);
  return out;
}

}  // namespace agora::batch
