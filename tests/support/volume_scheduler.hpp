#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agora/scheduler.hpp"
#include "common/resources.hpp"

namespace agora::testing {

// A framework in role "db" reserves resources, makes a persistent volume, writes into it from
// one task, and reads it back from a second task after the first has ended (the reader in
// `readerImage` when one is given, reading with `readerCommand`).
class VolumeScheduler final : public Scheduler {
 public:
  explicit VolumeScheduler(std::string readerImage = "",
                           std::string readerCommand = "test \"$(cat data/file)\" = kept")
      : readerImage_(std::move(readerImage)), readerCommand_(std::move(readerCommand)) {}

  static Resource reserved(const std::string& name, double value) {
    Resource r = Resources::scalar(name, value);
    auto* reservation = r.add_reservations();
    reservation->set_type(Resource::ReservationInfo::DYNAMIC);
    reservation->set_role("db");
    return r;
  }
  static Resource volume() {
    Resource r = reserved("disk", 64);
    r.mutable_disk()->set_persistence_id("vol1");
    r.mutable_disk()->set_container_path("data");
    return r;
  }
  static TaskInfo task(const std::string& id, const std::string& agentId,
                       const std::string& command) {
    TaskInfo t;
    t.set_task_id(id);
    t.set_agent_id(agentId);
    t.mutable_command()->set_value(command);
    *t.add_resources() = reserved("cpus", 0.1);
    *t.add_resources() = reserved("mem", 32);
    *t.add_resources() = volume();
    return t;
  }

  void offers(SchedulerDriver* driver, const std::vector<Offer>& offers) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Filters filters;
    filters.set_refuse_seconds(1);
    for (const Offer& offer : offers) {
      Resources held(offer.resources());
      if (agentId_.empty()) {
        agentId_ = offer.agent_id();
        Operation reserve;
        reserve.set_type(Operation::RESERVE);
        for (const Resource& r : {reserved("cpus", 0.1), reserved("mem", 32),
                                  reserved("disk", 64)}) {
          *reserve.mutable_reserve()->add_resources() = r;
        }
        Operation create;
        create.set_type(Operation::CREATE);
        *create.mutable_create()->add_volumes() = volume();
        Operation launch;
        launch.set_type(Operation::LAUNCH);
        *launch.mutable_launch()->add_task_infos() =
            task("writer", agentId_, "echo kept > data/file");
        driver->accept({offer.id()}, {reserve, create, launch}, filters);
      } else if (writerDone_ && !readerLaunched_ && offer.agent_id() == agentId_ &&
                 held.contains(Resources(std::vector<Resource>{volume()}))) {
        readerLaunched_ = true;
        TaskInfo reader = task("reader", agentId_, readerCommand_);
        if (!readerImage_.empty()) {
          reader.mutable_container()->set_image(readerImage_);
        }
        driver->launch(offer.id(), {reader}, filters);
      } else {
        driver->decline(offer.id(), filters);
      }
    }
  }

  void update(SchedulerDriver* driver, const TaskStatus& status) override {
    std::lock_guard<std::mutex> lock(mutex_);
    states_[status.task_id()] = status.state();
    if (status.task_id() == "writer" && status.state() == TASK_FINISHED) {
      writerDone_ = true;
    }
    changed_.notify_all();
  }

  void error(SchedulerDriver*, const std::string& message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    errors_.push_back(message);
  }

  TaskState waitForEnd(const std::string& id) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(30), [&] {
      return states_.count(id) > 0 && isTerminalState(states_[id]);
    });
    return states_.count(id) > 0 ? states_[id] : TASK_STAGING;
  }
  static bool isTerminalState(TaskState s) {
    return s == TASK_FINISHED || s == TASK_FAILED || s == TASK_KILLED || s == TASK_LOST ||
           s == TASK_ERROR || s == TASK_DROPPED || s == TASK_GONE;
  }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_;
  }

 private:
  std::string readerImage_;
  std::string readerCommand_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string agentId_;
  bool writerDone_ = false;
  bool readerLaunched_ = false;
  std::map<std::string, TaskState> states_;
  std::vector<std::string> errors_;
};

}  // namespace agora::testing
