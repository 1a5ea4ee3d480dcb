#pragma once

// The scheduler side of the Agora SDK. A framework implements Scheduler and hands it to a
// SchedulerDriver, which finds the master, subscribes, keeps the subscription alive across
// master restarts, and calls the Scheduler back on the driver's own thread. Every driver
// method is safe to call from any thread, including from inside a callback.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agora/agora.pb.h"

namespace agora {

// Where a driver is: not started, running (looking for the master, or subscribed), aborted
// (an unrecoverable error, or abort()), or stopped (stop()).
enum class DriverStatus { kNotStarted, kRunning, kAborted, kStopped };

// Whether a task in `state` is over: FINISHED, FAILED, KILLED, ERROR, LOST, DROPPED or GONE.
inline bool isTerminalState(TaskState state) {
  switch (state) {
    case TASK_FINISHED:
    case TASK_FAILED:
    case TASK_KILLED:
    case TASK_ERROR:
    case TASK_LOST:
    case TASK_DROPPED:
    case TASK_GONE:
      return true;
    default:
      return false;
  }
}

class SchedulerDriver;

// A framework's scheduler: the callbacks its SchedulerDriver makes, one at a time, on the
// driver's thread.
class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // The master accepted the subscription (again, after a master change or a reconnect).
  virtual void subscribed(SchedulerDriver* driver, const std::string& frameworkId,
                          const MasterInfo& master) {}
  // The master went quiet; the driver is looking for it and will subscribe again.
  virtual void disconnected(SchedulerDriver* driver) {}
  // Resources to use: launch tasks into an offer (SchedulerDriver::launch or accept) or decline
  // it. An offer held is counted as the framework's until it is used, declined or rescinded.
  virtual void offers(SchedulerDriver* driver, const std::vector<Offer>& offers) = 0;
  // An offer is no longer valid (its agent left, or it timed out).
  virtual void rescind(SchedulerDriver* driver, const std::string& offerId) {}
  // Maintenance: the master asks the framework to move its tasks off these agents before
  // their unavailability starts. Answer with SchedulerDriver::respondInverseOffers (optional:
  // at the window's start the tasks are killed either way).
  virtual void inverseOffers(SchedulerDriver* driver,
                             const std::vector<InverseOffer>& inverseOffers) {}
  // A task's new state. Updates are reliable and in order per task; each is acknowledged when
  // this returns, unless SchedulerDriverOptions::implicitAcknowledgements is off.
  virtual void update(SchedulerDriver* driver, const TaskStatus& status) = 0;
  // Data an executor sent (ExecutorDriver::message).
  virtual void message(SchedulerDriver* driver, const std::string& agentId,
                       const std::string& executorId, const std::string& data) {}
  // An executor exited (executorId set) or a whole agent was lost (executorId empty).
  virtual void failure(SchedulerDriver* driver, const std::string& agentId,
                       const std::string& executorId, std::optional<int> status) {}
  // An unrecoverable error: the driver has aborted.
  virtual void error(SchedulerDriver* driver, const std::string& message) {}
};

struct SchedulerDriverOptions {
  // Acknowledge each status update once update() returns. Turn off to call acknowledge()
  // yourself, for example after persisting the update.
  bool implicitAcknowledgements = true;
  // How long to wait before giving up on finding the master when it is unreachable; zero means
  // keep trying forever.
  std::chrono::milliseconds masterTimeout{0};
  // A CURVE credentials file (docs/SECURITY.md): the framework's principal, its key pair and
  // the master's public key. Empty: $AGORA_CREDENTIALS when set, else none (for a master
  // without CURVE). The framework's principal is the one its key is listed under.
  std::string credentials;
};

class SchedulerDriver {
 public:
  // `master` is the master's HTTP address, "host:port" (for example 127.0.0.1:5050), or
  // "zk://host1:2181,host2:2181/agora" to follow the leader of an HA cluster.
  SchedulerDriver(Scheduler* scheduler, FrameworkInfo framework, std::string master,
                  SchedulerDriverOptions options = {});
  ~SchedulerDriver();
  SchedulerDriver(const SchedulerDriver&) = delete;
  SchedulerDriver& operator=(const SchedulerDriver&) = delete;

  // Starts the driver's thread: it finds the master and subscribes. Returns kRunning.
  DriverStatus start();
  // Stops the driver. Without failover the master tears the framework down (its tasks are
  // killed); with failover it keeps them for FrameworkInfo.failover_timeout.
  DriverStatus stop(bool failover = false);
  // Stops the driver without telling the master: a scheduler that fails over does this.
  DriverStatus abort();
  // Blocks until the driver stops or aborts.
  DriverStatus join();
  // start() and join().
  DriverStatus run();
  DriverStatus status() const;

  // Carries out operations (launch, launch a group, reserve, unreserve, create and destroy
  // volumes) on offers of one agent, used together. What they leave of the offers goes back,
  // and `filters` keeps it from this framework for refuse_seconds (default 5).
  void accept(const std::vector<std::string>& offerIds, const std::vector<Operation>& operations,
              const Filters& filters = Filters());
  // Launches tasks into one offer: accept() with one LAUNCH operation.
  void launch(const std::string& offerId, const std::vector<TaskInfo>& tasks,
              const Filters& filters = Filters());
  // Gives an offer back; `filters` keeps its resources (or less) on that agent from this
  // framework for refuse_seconds. More resources freed there are offered again sooner.
  void decline(const std::string& offerId, const Filters& filters = Filters());
  // Tells the master whether the framework will vacate those agents in time.
  void respondInverseOffers(const std::vector<std::string>& inverseOfferIds, bool accept);
  // Kills a task (SIGTERM, then SIGKILL after its kill grace period); a TASK_KILLED update
  // follows.
  void kill(const std::string& taskId, const std::string& agentId = "");
  // Asks for offers again in these roles (all of the framework's when empty), and drops every
  // filter its declines set.
  void revive(const std::vector<std::string>& roles = {});
  // No offers in these roles (all when empty) until revive(): for a framework with nothing to
  // launch, so that others get the resources at once.
  void suppress(const std::vector<std::string>& roles = {});
  // Acknowledges an update (with implicit acknowledgements off): the agent stops resending it.
  void acknowledge(const TaskStatus& status);
  // Asks the master for the latest state of these tasks (task_id, and agent_id when known),
  // each answered by an update; empty: of every task the master knows of this framework.
  // A task the master does not know comes back TASK_LOST (TASK_UNKNOWN when partition aware).
  void reconcile(const std::vector<TaskStatus>& statuses = {});
  // Sends data to an executor of this framework (Executor::message).
  void message(const std::string& agentId, const std::string& executorId,
               const std::string& data);

  // The id the master gave the framework ("" until subscribed).
  std::string frameworkId() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agora
