#pragma once

// The agent: registers this machine's resources with the master, runs the tasks it is sent
// under executors in containers, and delivers every status update reliably. A state machine on
// one loop, like the master: the master link, the executor link, the containerizer and the
// master detector are all injected, so a test or a simulation can run many agents in one
// process with fakes.

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>

#include <nlohmann/json_fwd.hpp>

#include "agent/checkpoint.pb.h"
#include "agent/containerizer/containerizer.hpp"
#include "agent/status_update_manager.hpp"
#include "isolators/gpu.hpp"
#include "agora/protocol.pb.h"
#include "common/detector.hpp"
#include "common/loop.hpp"
#include "common/resources.hpp"
#include "common/transport.hpp"

namespace agora::agent {

struct AgentOptions {
  std::string workDir;
  AgentInfo info;                 // hostname, address, resources, attributes
  std::string executorEndpoint;   // where executors connect (ipc://<work_dir>/executors.sock)
  std::string executorBinary;     // the `agora` binary, run as `agora executor`
  // CURVE on the executors' socket (the agent's --credentials): the socket's public key, which
  // each executor pins, and how a key of an executor's own is admitted, named by its container
  // id, and forgotten when it ends. Empty: executors connect without keys.
  std::string executorCurveKey;
  std::function<void(const std::string& publicKey, const std::string& containerId)>
      admitExecutorKey;
  std::function<void(const std::string& publicKey)> forgetExecutorKey;
  // A registration not answered within this (jittered, doubling) time is sent again. Not too
  // short: after a failover the new leader has thousands of agents to take back, and early
  // resends only add to its work.
  Duration registrationBackoffMin = seconds(2);
  Duration registrationBackoffMax = seconds(30);
  // When another master starts to lead, agents wait up to this long (at random) before they
  // connect and introduce themselves, so that thousands of TCP handshakes do not arrive in the
  // same instant. An agent already connected to the new leader (a standby connection) goes at
  // once: it has no handshake to spread.
  Duration leaderChangeJitter = milliseconds(500);
  // No ping from the master for this long: look for the master again and re-register. Zero:
  // what the master says when it admits the agent (its ping interval x (missed pings + 1)).
  Duration masterPingTimeout = Duration::zero();
  Duration executorRegistrationTimeout = minutes(1);
  Duration executorShutdownGracePeriod = seconds(5);
  Duration executorHeartbeatInterval = seconds(5);
  // Executors that lose their agent for this long kill their tasks and exit.
  Duration recoveryTimeout = minutes(15);
  StatusUpdateManager::Options statusUpdates;
  // Checkpoint what a restarted agent needs to take back its executors and to resend the
  // status updates not yet acknowledged (under <work_dir>/meta). Off for simulated agents.
  bool checkpoint = false;
  // After a restart, an executor taken back that has not reconnected within this is destroyed.
  Duration executorReregistrationTimeout = seconds(5);
  size_t maxCompletedExecutors = 1000;
  // Run tasks as their framework's user (FrameworkInfo.user). Needs the agent to run as root
  // unless that user is the agent's own.
  bool switchUser = true;
  // How often sandboxes are measured; with enforceDiskLimit a container whose sandbox outgrows
  // its tasks' disk is destroyed (REASON_CONTAINER_LIMITATION_DISK).
  Duration diskWatchInterval = seconds(15);
  // Sandboxes of executors that have ended are removed this long after (sooner as the disk
  // fills: the delay shrinks by the fraction of the disk in use, plus the headroom).
  Duration gcDelay = hours(24 * 7);
  double gcDiskHeadroom = 0.1;
  // How often the usage of isolated containers goes to the master (0: never).
  Duration usageInterval = seconds(10);
  bool enforceDiskLimit = false;
  // The machine's GPUs (gpu/nvidia isolation): tasks are given specific ones, which their
  // container may open (with the driver's control devices) and NVIDIA_VISIBLE_DEVICES names.
  std::vector<gpu::Gpu> gpus;
  std::vector<std::string> gpuControlRules;
  std::vector<std::string> gpuControlDevices;  // their device files, for tasks in images
  // Where images for tasks that name one are (isolators/images/store.hpp); empty: none.
  std::string imageStore;
};

class Agent {
 public:
  // Points the master link at a newly detected master's endpoint.
  using Connect = std::function<Status(const std::string& endpoint)>;

  Agent(AgentOptions options, Loop& loop, Transport& master, Connect connect,
        MasterDetector& detector, Transport& executors, Containerizer& containerizer);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Takes back what an earlier run of the agent on this work directory left: its id, its
  // executors still running (those that died meanwhile have their tasks failed), and its
  // unacknowledged status updates. Call before start(). An error when the checkpoint cannot
  // be read: the agent must not start as if nothing ran before.
  Status recover();
  // Looks for the master and registers.
  void start();
  // Stops every executor (asking first, killing after the grace period), then calls done.
  void shutdown(std::function<void()> done);

  void receiveFromMaster(const std::string& from, Envelope&& envelope);
  // The connection to the master came up (again) or dropped. A master restarted on the same
  // endpoint shows as a drop and a reconnect: the agent introduces itself again at once.
  void masterConnectionChanged(bool connected);
  // Tells whether the master link already holds a connection to `endpoint` (a standby master).
  void setAlreadyConnected(std::function<bool(const std::string& endpoint)> check) {
    alreadyConnected_ = std::move(check);
  }
  void receiveFromExecutor(const std::string& from, Envelope&& envelope);

  const std::string& id() const { return agentId_; }
  bool registered() const { return state_ == State::kRegistered; }
  nlohmann::json state() const;
  // GET /containers: each running container with its executor and, when isolated, its usage
  // (cpu seconds, throttling, memory, processes), as the kube autoscaler reads it.
  nlohmann::json containers() const;
  std::string metricsText() const;
  // The first process of the container running `taskId` (a remote command joins the task
  // below it) and the task's sandbox; an error when the task is not running here.
  struct TaskContainer {
    pid_t pid = 0;
    std::string sandbox;
  };
  Result<TaskContainer> taskContainer(const std::string& taskId) const;

 private:
  enum class State { kDetecting, kRegistering, kRegistered, kShuttingDown };

  struct Executor {
    std::string id;
    std::string frameworkId;
    std::string containerId;
    std::string directory;
    ExecutorInfo info;
    enum class Phase { kLaunching, kRunning, kTerminating } phase = Phase::kLaunching;
    std::vector<TaskInfo> queuedTasks;               // waiting for the executor to subscribe
    std::vector<TaskGroupInfo> queuedGroups;
    std::map<std::string, Task> tasks;               // its tasks, until acknowledged terminal
    std::deque<std::pair<std::string, TaskState>> completedTasks;
    TimerId registrationTimer = 0;
    TimerId shutdownTimer = 0;
    bool killedOnRequest = false;                    // shutting down because of a kill
    double startTime = 0;
    uint64_t diskUsed = 0;                           // the sandbox, at the last check
    std::optional<Limitation> limitation;            // why the agent destroyed it, if it did
    std::map<std::string, std::vector<size_t>> gpus;  // by task: positions in options.gpus
    bool subscribedOnce = false;
    bool reconnecting = false;                       // taken back after a restart, not yet heard
    std::vector<ExecutorEvent> held;                 // for it once it has reconnected
    std::string curveKey;                            // its public key, with executor CURVE
  };

  struct Framework {
    FrameworkInfo info;
    bool removed = false;  // the master removed it: its executors are being shut down
    std::map<std::string, Executor> executors;       // by executor id
  };

  struct CompletedExecutor {
    std::string id;
    std::string frameworkId;
    std::string containerId;
    std::string directory;
    std::vector<std::pair<std::string, TaskState>> tasks;
    std::string exit;
  };

  // Master side (agent.cpp).
  void detect();
  void registerWithMaster();
  void onRegistered(const AgentEvent::Registered& registered);
  void checkMasterLiveness();
  Duration jittered(Duration backoff);
  void lostMaster(const std::string& why);
  void leaderChanged(const MasterInfo& leader);
  void sendToMaster(AgentCall call);
  // An agent call already in its envelope (given this agent's id here).
  void sendToMaster(Envelope& envelope);
  bool forwardStatusUpdate(const std::string& frameworkId, const TaskStatus& status,
                           TaskState latest);

  // Checkpoint and recovery (recovery.cpp).
  std::string metaDir() const { return options_.workDir + "/meta"; }
  void checkpointAgent();
  void checkpointExecutor(const Executor& executor);
  void recoverExecutor(const checkpoint::ExecutorRecord& record, bool rebooted);
  // Asks the executors taken back to reconnect, until they have or `deadline` passes.
  void reconnectExecutors(TimePoint deadline);

  // Executors and tasks (executors.cpp).
  void runTask(const FrameworkInfo& framework, const TaskInfo& task);
  // Persistent volumes: kept under <work_dir>/volumes/roles/<role>/<id>, and linked into the
  // sandbox of each task that uses one, at its container_path.
  void updateResources(const AgentEvent::UpdateResources& update);
  // Checks the framework's user and prepares the container to run as it (switch_user).
  Status prepareUser(const std::string& user, ContainerConfig* config);
  // Measures each sandbox; with enforce_disk_limit, destroys containers past their disk.
  void checkDisk();
  // What the container uses now (isolated containers only).
  std::optional<ResourceStatistics> statisticsOf(const Executor& executor) const;
  // Sends the master what each isolated container uses.
  void reportUsage();
  // Removes old sandboxes of ended executors, and the image store's garbage.
  void collectGarbage();
  // The limit an executor's container ran into: the agent's (disk) or the containerizer's.
  std::optional<Limitation> limitationOf(Executor& executor);
  // Gives the containerizer the executor's resources plus its live tasks', and its GPUs.
  void updateContainer(const Executor& executor);
  // Gives the task the GPUs it asks for (and says which in its environment); false if the
  // agent has not that many free.
  bool assignGpus(Executor& executor, TaskInfo& task);
  // For a task that names an image: finds it in the store, and fills in its layers and the
  // command, environment, working directory and user the image gives it.
  Status prepareImage(TaskInfo& task) const;
  // Whether the agent has the GPUs `resources` ask for free (an error that says so if not).
  Status enoughGpus(const google::protobuf::RepeatedPtrField<Resource>& resources) const;
  // Takes back the GPUs of the executor's tasks that have ended (all of them with `all`).
  void releaseGpus(Executor& executor, bool all);
  void linkVolumes(const Executor& executor, const TaskInfo& task);
  void runTaskGroup(const FrameworkInfo& framework, const ExecutorInfo& executor,
                    const TaskGroupInfo& group);
  Executor* getOrLaunchExecutor(const FrameworkInfo& framework, const ExecutorInfo& info);
  void killTask(const AgentEvent::KillTask& kill);
  void shutdownFramework(const std::string& frameworkId);
  void shutdownExecutor(Executor& executor);
  void executorSubscribed(const std::string& from, Executor& executor,
                          const ExecutorCall::Subscribe& subscribe);
  void executorUpdate(Executor& executor, const TaskStatus& status);
  void executorExited(const std::string& containerId, int status);
  void failQueuedTasks(Executor& executor, TaskState state, TaskStatus::Reason reason,
                       const std::string& message);
  // Sends to the executor; held back while it is reconnecting (a message to an executor not
  // connected yet would be lost), and sent once it has.
  void sendToExecutor(Executor& executor, const ExecutorEvent& event);
  void heartbeatExecutors();
  // Records and forwards an update that the agent itself generates.
  void agentUpdate(const std::string& frameworkId, const std::string& executorId,
                   const std::string& taskId, TaskState state, TaskStatus::Reason reason,
                   const std::string& message);
  Executor* findExecutor(const std::string& frameworkId, const std::string& executorId);
  Executor* findExecutorOfTask(const std::string& frameworkId, const std::string& taskId);
  void forgetAcknowledgedTask(Executor& executor, const std::string& taskId);

  AgentOptions options_;
  Loop& loop_;
  Transport& master_;
  Connect connect_;
  Resources checkpointed_;  // dynamic reservations and volumes, as the master last said
  std::function<bool(const std::string&)> alreadyConnected_;
  MasterDetector& detector_;
  Transport& executors_;
  Containerizer& containerizer_;
  StatusUpdateManager statusUpdates_;

  State state_ = State::kDetecting;
  std::string agentId_;
  MasterInfo masterInfo_;
  TimePoint lastPing_;
  Duration pingTimeout_ = seconds(90);
  bool connectionDropped_ = false;
  Duration backoff_;
  TimerId registrationTimer_ = 0;
  TimerId livenessTimer_ = 0;
  TimerId heartbeatTimer_ = 0;
  TimerId diskTimer_ = 0;
  TimerId usageTimer_ = 0;
  TimerId gcTimer_ = 0;
  uint64_t detectGeneration_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
  double startTime_ = 0;

  std::map<std::string, Framework> frameworks_;
  std::vector<bool> gpuUsed_;  // by position in options_.gpus
  std::unordered_map<std::string, std::pair<std::string, std::string>> byContainer_;
  std::deque<CompletedExecutor> completedExecutors_;
  std::function<void()> shutdownDone_;
  // The password database's answers for task users, kept a few seconds: a burst of launches
  // reads /etc/passwd once, and a user added or removed is seen soon after.
  struct UserEntry {
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::string home;
    TimePoint lookedUp;
  };
  std::unordered_map<std::string, UserEntry> users_;

  struct Counters {
    uint64_t tasksLaunched = 0;
    uint64_t executorsLaunched = 0;
    uint64_t executorsExited = 0;
    uint64_t statusUpdates = 0;
    uint64_t invalidMessages = 0;
    uint64_t registrations = 0;
  } counters_;
};

}  // namespace agora::agent
