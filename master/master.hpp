#pragma once

// The master: admits agents and frameworks, turns the allocator's decisions into offers, runs
// accepted operations on agents, and relays status updates and their acknowledgements. It is a
// state machine on one loop: messages come in through receive(), go out through a Transport,
// and time comes from the Loop, so tests drive it with a fake transport and a manual clock.

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json_fwd.hpp>

#include "agora/protocol.pb.h"
#include "agora/scheduler.hpp"  // isTerminalState
#include "common/acls.hpp"
#include "common/loop.hpp"
#include "common/resources.hpp"
#include "common/transport.hpp"
#include "master/allocator/allocator.hpp"
#include "master/metrics.hpp"
#include "master/registry/registry.hpp"

namespace agora::master {

struct MasterOptions {
  MasterInfo info;  // id (random when empty), hostname, ip, ports, endpoint
  Duration allocationInterval = seconds(1);
  Duration agentPingTimeout = seconds(15);
  int maxAgentPingTimeouts = 5;
  // Schedulers send a heartbeat this often; one silent for `maxFrameworkHeartbeatMisses`
  // intervals is disconnected (and removed after its failover_timeout).
  Duration frameworkHeartbeatInterval = seconds(5);
  int maxFrameworkHeartbeatMisses = 3;
  Duration offerTimeout = Duration::zero();  // zero: offers never time out
  Duration defaultRefuse = seconds(5);
  size_t maxCompletedTasksPerFramework = 1000;
  size_t maxCompletedFrameworks = 50;
  // After a failover: agents in the registry that do not re-register within this time are
  // marked unreachable.
  Duration agentReregisterTimeout = minutes(10);
  // When this master learned it leads (wall clock seconds); 0: when it starts serving.
  double electedTime = 0;
  // CURVE is on: each message carries its sender's principal as its key proves
  // (Envelope.authenticated_principal), and a framework's claimed principal must match it.
  // Off: a framework's principal is what it claims, and agents are anonymous ("").
  bool authenticated = false;
  // Who may do what; the default allows everything.
  Acls acls;
  // When the registry can no longer be written (another master took over, or the store failed)
  // the master must stop acting; default: LOG(FATAL).
  std::function<void(const std::string& why)> onFatal;
};

class Master {
 public:
  // `registry` must have been recovered (its state is given to start()) and outlive the master.
  Master(MasterOptions options, Loop& loop, Transport& transport,
         std::unique_ptr<Allocator> allocator, Registry& registry);
  ~Master();
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  // Takes over what the registry holds (agents expected to re-register, frameworks expected to
  // resubscribe) and starts the periodic work: allocation, agent pings, framework liveness.
  void start(const RegistryState& recovered);

  // Every message from a peer, with the routing id it came from. Never trusts the content.
  void receive(const std::string& from, Envelope&& envelope);

  const MasterInfo& info() const { return options_.info; }
  // Decides with `acls` from now on (the operator reloaded them: SIGHUP).
  void setAcls(Acls acls) { options_.acls = std::move(acls); }
  // The HTTP address ("ip:port") of a registered agent; "" for an id it does not know.
  std::string agentHttpAddress(const std::string& agentId) const;
  nlohmann::json state() const;
  // Prometheus text exposition.
  std::string metricsText() const;
  Metrics& metrics() { return metrics_; }

  // Runs an allocation now (tests and benchmarks; normally timers and events do).
  void allocateNow();

  // Operator settings for roles (roles.cpp): stored in the registry, then applied; `done` is
  // called on the master's loop with the outcome (a clear error for bad input).
  void setWeight(const std::string& role, double weight, std::function<void(Status)> done);
  void setQuota(const std::string& role, const RoleQuota& quota,
                std::function<void(Status)> done);
  void removeQuota(const std::string& role, std::function<void(Status)> done);
  // POST /reserve and /unreserve: an operator's dynamic reservation of free resources on an
  // agent (offers on the agent are rescinded first), stored before it takes effect.
  void operatorReserve(const std::string& agentId, const Resources& resources, bool reserve,
                       std::function<void(Status)> done);
  // Maintenance (maintenance.cpp), by machine hostname; stored before it takes effect.
  // Scheduled machines stay in use until their window, with inverse offers to the frameworks
  // running there; at the window's start their tasks are killed and they are offered nothing
  // until the window ends. Draining takes a machine out now: no more offers, and once its
  // tasks are gone (killed with `kill`) it is down until brought up.
  void scheduleMaintenance(const std::vector<std::string>& hostnames, double start,
                           double duration, std::function<void(Status)> done);
  void drainMachine(const std::string& hostname, bool kill, Duration grace,
                    std::function<void(Status)> done);
  void upMachine(const std::string& hostname, std::function<void(Status)> done);
  nlohmann::json maintenanceStatus() const;
  // GET /dashboard/history: the cluster's use over the last hour, a sample every 5 seconds
  // (cpus, mem, gpus and disk used and in total, running tasks, agents), for the dashboard's
  // charts (dashboard.cpp).
  nlohmann::json history() const;

  // Whether the ACLs let `principal` do `action` on `object` (for `who`, in the log); a
  // refusal is logged and counted.
  bool authorized(AclAction action, const std::string& principal, const std::string& object,
                  const std::string& who) const;

  // GET /roles: every role with its weight, quota, what it is allocated and reserved, and for
  // each of its frameworks whether the last allocation offered it something, and why not.
  nlohmann::json roles() const;

 private:
  struct OfferEntry {
    Offer offer;
    Resources resources;
    TimerId timeout = 0;
  };

  struct AgentEntry {
    AgentInfo info;
    std::string connection;  // routing id
    std::string principal;   // as its key proved (authenticated), else ""
    Resources total;         // as offered: what it reports, with `checkpointed` carved out
    Resources checkpointed;  // dynamic reservations and persistent volumes, as stored
    Resources planned;       // `checkpointed` with the operations being stored applied
    Resources used;          // by tasks
    Resources offered;
    std::unordered_map<std::string, std::unordered_set<std::string>> tasks;  // by framework
    std::unordered_set<std::string> offers;
    int missedPings = 0;
    bool pongPending = false;
    bool removing = false;  // marked unreachable in the registry; removed once that is stored
    double registeredTime = 0;
    double reregisteredTime = 0;
    // What each task's container uses, as the agent last said, by "framework/task".
    std::unordered_map<std::string, ResourceStatistics> usage;
  };

  struct FrameworkEntry {
    FrameworkInfo info;      // info.principal: as its key proved (authenticated), or claimed
    std::string connection;  // routing id; empty while disconnected
    bool active = false;
    TimePoint lastSeen;
    std::unordered_map<std::string, Task> tasks;  // by task id
    std::deque<Task> completedTasks;
    std::unordered_set<std::string> offers;
    TimerId failoverTimer = 0;
    double registeredTime = 0;
    double unregisteredTime = 0;
    bool partitionAware = false;
    bool killingState = false;
  };

  struct UnreachableAgent {
    AgentInfo info;
    double since = 0;
    std::string reason;
  };

  struct Machine {
    registry::MaintenanceRecord record;
    std::map<std::string, std::string> inverseOffers;  // framework id -> inverse offer id
    std::map<std::string, bool> responses;             // framework id -> will vacate
    std::set<std::string> killed;                      // task ids already told to die
    bool down = false;
  };
  void evaluateMaintenance();
  void respondInverseOffers(FrameworkEntry& framework,
                            const SchedulerCall::RespondInverseOffers& respond);
  std::vector<AgentEntry*> agentsOn(const std::string& hostname);
  size_t liveTasks(const AgentEntry& agent) const;  // not known to be terminal

  // The role's stored settings, or the defaults.
  registry::RoleRecord roleRecord(const std::string& role) const;
  // Stores a role's settings, then gives them to the allocator.
  void storeRole(registry::RoleRecord record, std::function<void(Status)> done);
  void applyRole(const registry::RoleRecord& record);

  // Runs `work` every `interval`, keeping the current timer id in *timer.
  void every(Duration interval, TimerId* timer, void (Master::*work)());

  // Scheduler calls (scheduler_calls.cpp).
  void handleSchedulerCall(const std::string& from, const std::string& principal,
                           const SchedulerCall& call);
  void subscribe(const std::string& from, const std::string& principal,
                 const SchedulerCall::Subscribe& subscribe);
  void completeSubscription(const std::string& from, FrameworkInfo info,
                            const SchedulerCall::Subscribe& subscribe);
  void accept(FrameworkEntry& framework, const SchedulerCall::Accept& accept);
  void decline(FrameworkEntry& framework, const SchedulerCall::Decline& decline);
  void kill(FrameworkEntry& framework, const SchedulerCall::Kill& kill);
  void acknowledge(FrameworkEntry& framework, const SchedulerCall::Acknowledge& ack);
  void reconcile(FrameworkEntry& framework, const SchedulerCall::Reconcile& reconcile);
  void frameworkMessage(FrameworkEntry& framework, const SchedulerCall::Message& message);

  // Frameworks (frameworks.cpp).
  FrameworkEntry& addFramework(const std::string& id, const FrameworkInfo& info,
                               const std::string& connection);
  // Disconnects the framework; it is removed after `failover` (its failover_timeout by default).
  void disconnectFramework(FrameworkEntry& framework, const std::string& why,
                           std::optional<Duration> failover = std::nullopt);
  void removeFramework(const std::string& frameworkId, const std::string& why);
  void checkFrameworkLiveness();
  void sendToFramework(const FrameworkEntry& framework, const SchedulerEvent& event);
  void sendSchedulerError(const std::string& to, ErrorCode code, const std::string& message);
  FrameworkEntry* findFramework(const std::string& id);

  // Agents (agents.cpp).
  // Takes what it keeps out of `call` (re-registered tasks), rather than copying it.
  void handleAgentCall(const std::string& from, const std::string& principal, AgentCall& call);
  void registerAgent(const std::string& from, const std::string& principal,
                     const AgentCall::Register& reg);
  void reregisterAgent(const std::string& from, const std::string& principal,
                       const std::string& agentId, AgentCall::Reregister& reg);
  void admitReregisteredAgent(const std::string& from, const std::string& agentId,
                              AgentCall::Reregister& reg, bool wasUnreachable);
  void markUnreachable(const std::string& agentId, const std::string& why);
  void expireRecoveredAgents();
  // After an agent left recoveredAgents_: notes when the last one did.
  void noteAgentRecovered();
  void dropTasksTheAgentLacks(AgentEntry& agent, const AgentCall::Reregister& reg);
  void statusUpdate(AgentEntry& agent, const AgentCall::StatusUpdate& update);
  void executorExited(AgentEntry& agent, const AgentCall::ExecutorExited& exited);
  void pingAgents();
  void removeAgent(const std::string& agentId, const std::string& why);
  void sendToAgent(const AgentEntry& agent, const AgentEvent& event);
  AgentEvent registered(const std::string& agentId) const;
  void sendAgentError(const std::string& to, ErrorCode code, const std::string& message);
  AgentEntry* findAgent(const std::string& id);

  // Registry (master.cpp): stores `op`, then runs `then`; a failure is fatal.
  void persist(registry::Operation op, std::function<void()> then);
  void fatal(const std::string& why);
  // How long a framework known from before a failover keeps its tasks at least, so that a live
  // scheduler (which notices the new leader at once) can resubscribe.
  Duration recoveryGrace() const;

  // Offers and tasks (offers.cpp, tasks.cpp).
  // Allocates soon: the given agent's resources (it changed), or everything.
  void requestAllocation(const std::string& agentId = "");
  void allocate();
  void removeOffer(const std::string& offerId, bool rescind);
  void rescindOffersOn(AgentEntry& agent);
  void rescindOffersOf(FrameworkEntry& framework);
  Status validateTask(const FrameworkEntry& framework, const AgentEntry& agent,
                      const TaskInfo& task, const Resources& available) const;
  void addTask(FrameworkEntry& framework, AgentEntry& agent, const TaskInfo& task,
               const std::string& role);
  void updateTaskState(AgentEntry* agent, Task& task, const TaskStatus& status);
  void completeTask(FrameworkEntry& framework, const std::string& taskId);
  // A status from the master itself (no uuid, nothing to acknowledge).
  TaskStatus masterStatus(const std::string& taskId, const std::string& agentId, TaskState state,
                          TaskStatus::Reason reason, const std::string& message) const;
  TaskState lostState(const FrameworkEntry& framework) const;
  // What RESERVE, UNRESERVE, CREATE and DESTROY in an accept do: for each operation (by its
  // index in the accept), what it turns into what; and the agent's checkpointed resources after.
  struct CheckpointPlan {
    std::map<int, std::pair<Resources, Resources>> changes;  // op index -> (from, to)
    Resources checkpointed;
    Resources destroyedVolumes;
  };
  Result<CheckpointPlan> planCheckpoint(const FrameworkEntry& framework, const AgentEntry& agent,
                                        const std::string& role, Resources offered,
                                        const SchedulerCall::Accept& accept) const;
  // The operations of an accept, in order, on `offered` (what the accepted offers held).
  void applyAccept(FrameworkEntry& framework, AgentEntry& agent, const std::string& role,
                   Resources offered, const SchedulerCall::Accept& accept,
                   const CheckpointPlan* plan);
  // Tells the agent its dynamic reservations and volumes.
  void sendCheckpointed(AgentEntry& agent, const Resources& destroyedVolumes = Resources());
  // The agent's total as offered: what it reports with its checkpointed resources applied.
  void setAgentTotal(AgentEntry& agent, const Resources& reported);
  void dropLaunches(FrameworkEntry& framework, const SchedulerCall::Accept& accept,
                    const std::string& why);

  nlohmann::json taskJson(const Task& task) const;

  MasterOptions options_;
  Loop& loop_;
  Transport& transport_;
  std::unique_ptr<Allocator> allocator_;
  Registry& registry_;
  Metrics metrics_;

  std::map<std::string, AgentEntry> agents_;
  std::unordered_map<std::string, std::string> agentByConnection_;
  std::map<std::string, UnreachableAgent> unreachableAgents_;
  // Admitted in the registry and not re-registered since this master took over.
  std::map<std::string, registry::AgentRecord> recoveredAgents_;
  std::unordered_map<std::string, std::string> pendingRegistrations_;  // connection -> agent id
  std::unordered_set<std::string> pendingAdmissions_;                  // agent ids
  std::unordered_set<std::string> pendingSubscriptions_;               // connections
  std::map<std::string, FrameworkEntry> frameworks_;
  std::map<std::string, registry::RoleRecord> roleRecords_;  // operator settings, as stored
  std::map<std::string, Resources> checkpointed_;  // by agent id, as stored
  std::map<std::string, Machine> maintenance_;     // by hostname
  TimerId maintenanceTimer_ = 0;
  TimerId historyTimer_ = 0;
  struct UsageSample {
    double time = 0;
    Resources used;
    Resources total;
    size_t tasks = 0;
    size_t agents = 0;
  };
  std::deque<UsageSample> history_;
  void sampleUsage();
  std::unordered_map<std::string, std::string> frameworkByConnection_;
  std::deque<std::pair<std::string, FrameworkEntry>> completedFrameworks_;
  std::unordered_set<std::string> removedFrameworkIds_;
  std::unordered_map<std::string, OfferEntry> offers_;

  uint64_t nextFrameworkNumber_ = 0;
  uint64_t nextAgentNumber_ = 0;
  uint64_t nextOfferNumber_ = 0;
  bool allocationPending_ = false;
  bool allocateAll_ = false;                  // the pending allocation looks at every agent
  std::set<std::string> allocationAgents_;    // otherwise at these
  TimerId allocationTimer_ = 0;
  TimerId pingTimer_ = 0;
  TimerId livenessTimer_ = 0;
  TimerId reregisterTimer_ = 0;
  double startTime_ = 0;
  double servingTime_ = 0;          // start() ran: the registry was recovered
  double agentsRecoveredTime_ = 0;  // every agent in the registry came back or was given up on
  // Agents (and their tasks) back since the election, logged in a summary rather than one by one.
  int64_t agentsBack_ = 0;
  int64_t tasksBack_ = 0;
  mutable std::map<TaskState, size_t> taskCounts_;  // cache for /metrics
  mutable TimePoint taskCountsAt_;
};


}  // namespace agora::master
