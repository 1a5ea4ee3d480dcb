// End to end: a real master and two real agents, frameworks on the SDK, real task processes.

#include <signal.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "isolators/cgroups.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/process.hpp"
#include "tests/support/cgroups_root.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/test_scheduler.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

// A task that runs until it is killed.
constexpr const char* kSleepForever = "exec sleep 1000";  // ok: the task's own command

// The sandbox of an executor, from its agent's /state ("" while unknown).
std::string sandboxOf(const std::string& agent, const std::string& executorId) {
  auto r = httpGet(agent, "/state");
  if (!r) {
    return "";
  }
  json s = json::parse(r->body, nullptr, false);
  for (const char* list : {"frameworks", "completed_executors"}) {
    for (const json& entry : s.value(list, json::array())) {
      for (const json& e : entry.contains("executors") ? entry["executors"] : json::array({entry})) {
        if (e.value("id", "") == executorId) {
          return e.value("directory", "");
        }
      }
    }
  }
  return "";
}

// Waits until the file `name` in the executor's sandbox has content; returns it.
std::string waitForSandboxFile(const std::string& agent, const std::string& executorId,
                               const std::string& name) {
  std::string content;
  waitUntil(
      [&] {
        std::string sandbox = sandboxOf(agent, executorId);
        auto text = sandbox.empty() ? Result<std::string>(Error("")) : readFile(sandbox + "/" + name);
        content = text ? *text : "";
        return !content.empty() && content.back() == '\n';
      },
      seconds(20));
  return content;
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.start().ok()) << "see " << cluster_.dir(); }

  ProcessCluster cluster_;
};

TEST_F(ClusterTest, ExampleFrameworkRuns200ShortTasksToFinished) {
  CommandResult result = runCommand({AGORA_EXAMPLE_COPIES, "--master=" + cluster_.masterHttp(),
                                     "--count=200", "--command=echo copy $AGORA_TASK_ID"},
                                    seconds(150));
  EXPECT_EQ(result.exitCode, 0) << result.output;
  EXPECT_NE(result.output.find("200 of 200 tasks finished"), std::string::npos) << result.output;

  auto state = cluster_.masterState();
  ASSERT_TRUE(state.ok());
  json frameworks = (*state)["completed_frameworks"];
  ASSERT_EQ(frameworks.size(), 1u);
  int finished = 0;
  for (const json& task : frameworks[0]["completed_tasks"]) {
    finished += task["state"] == "TASK_FINISHED" ? 1 : 0;
  }
  EXPECT_EQ(finished, 200);
  // Both agents took part, and everything was given back.
  for (const json& agent : (*state)["agents"]) {
    EXPECT_EQ(agent["used_resources"]["cpus"], 0.0);
  }
}

TEST_F(ClusterTest, TaskExitingThreeFailsWithTheCodeInItsMessage) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  scheduler.launch(TestScheduler::commandTask("exits-3", "exit 3"));
  driver.start();
  TaskStatus end = scheduler.waitForEnd("exits-3");
  EXPECT_EQ(end.state(), TASK_FAILED);
  EXPECT_NE(end.message().find("status 3"), std::string::npos) << end.message();
  EXPECT_EQ(scheduler.states("exits-3"),
            (std::vector<TaskState>{TASK_STARTING, TASK_RUNNING, TASK_FAILED}));
  driver.stop();
  driver.join();
}

TEST_F(ClusterTest, KilledTaskEndsKilledAndItsProcessIsGone) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  // The task writes its pid into its sandbox, then sleeps.
  const char* command = "echo $$ > pid; exec sleep 1000";  // ok: the task's own command
  scheduler.launch(TestScheduler::commandTask("sleeper", command));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("sleeper", TASK_RUNNING));

  std::string pidText = waitForSandboxFile(scheduler.agentAddress("sleeper"), "sleeper", "pid");
  ASSERT_FALSE(pidText.empty());
  pid_t pid = std::stoi(pidText);
  EXPECT_TRUE(processAlive(pid));

  driver.kill("sleeper");
  TaskStatus end = scheduler.waitForEnd("sleeper");
  EXPECT_EQ(end.state(), TASK_KILLED);
  EXPECT_TRUE(waitUntil([pid] { return !processAlive(pid); }, seconds(10)));
  driver.stop();
  driver.join();
}

TEST_F(ClusterTest, TaskIgnoringSigtermIsKilledAfterItsGracePeriod) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  // The shell ignores SIGTERM, and so does what it execs; it says when it does.
  const char* stubborn = "trap '' TERM; echo yes > ignoring; exec sleep 1000";  // ok: task
  TaskInfo task = TestScheduler::commandTask("stubborn", stubborn);
  task.set_kill_grace_period_seconds(0.5);
  scheduler.launch(task);
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("stubborn", TASK_RUNNING));
  ASSERT_EQ(waitForSandboxFile(scheduler.agentAddress("stubborn"), "stubborn", "ignoring"),
            "yes\n");
  driver.kill("stubborn");
  TaskStatus end = scheduler.waitForEnd("stubborn");
  EXPECT_EQ(end.state(), TASK_KILLED);
  EXPECT_NE(end.message().find("signal 9"), std::string::npos) << end.message();
  driver.stop();
  driver.join();
}

TEST_F(ClusterTest, TaskOutputIsReadableFromTheAgentButNothingOutsideTheWorkDir) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  scheduler.launch(TestScheduler::commandTask("hello", "echo hello out; echo hello err >&2"));
  driver.start();
  ASSERT_EQ(scheduler.waitForEnd("hello").state(), TASK_FINISHED);
  std::string agent = scheduler.agentAddress("hello");
  std::string directory;
  ASSERT_TRUE(waitUntil(
      [&] {
        directory = sandboxOf(agent, "hello");
        return !directory.empty();
      },
      seconds(20)));
  auto out = httpGet(agent, "/files/read?path=" + urlEncode(directory + "/stdout"));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(json::parse(out->body)["data"], "hello out\n");
  auto err = httpGet(agent, "/files/read?path=" + urlEncode(directory + "/stderr"));
  EXPECT_EQ(json::parse(err->body)["data"], "hello err\n");
  auto size = httpGet(agent, "/files/read?offset=-1&path=" + urlEncode(directory + "/stdout"));
  EXPECT_EQ(json::parse(size->body)["offset"], 10);

  EXPECT_EQ(httpGet(agent, "/files/read?path=/etc/passwd")->status, 403);
  EXPECT_EQ(httpGet(agent, "/files/read?path=" + urlEncode(directory + "/../../../../../../../../../../../../etc/passwd"))
                ->status,
            403);
  EXPECT_EQ(httpGet(agent, "/files/read?path=" + urlEncode(directory + "/nope"))->status, 404);
  EXPECT_EQ(httpGet(agent, "/files/read?offset=x&path=" + urlEncode(directory + "/stdout"))->status,
            400);
  driver.stop();
  driver.join();
}

TEST_F(ClusterTest, ReconciliationReportsTheLatestStates) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  scheduler.launch(TestScheduler::commandTask("long", kSleepForever));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("long", TASK_RUNNING));
  size_t before = scheduler.states("long").size();
  driver.reconcile();
  ASSERT_TRUE(scheduler.waitForUpdates("long", before, seconds(10)));
  EXPECT_EQ(scheduler.states("long").back(), TASK_RUNNING);
  driver.stop();
  driver.join();
  // Tearing the framework down kills its task.
  EXPECT_TRUE(cluster_.waitForState([](const json& s) {
    for (const json& a : s["agents"]) {
      if (a["used_resources"]["cpus"] != 0.0) {
        return false;
      }
    }
    return s["frameworks"].empty();
  }));
}

TEST_F(ClusterTest, CustomExecutorRunsSeveralTasksOfItsFramework) {
  // The custom executor here is `agora executor` itself, named as a framework's own executor:
  // the agent starts it once and hands it both tasks.
  ExecutorInfo executor;
  executor.set_type(ExecutorInfo::CUSTOM);
  executor.set_executor_id("shared");
  executor.mutable_command()->set_value(std::string(AGORA_BINARY) + " executor");
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  for (const char* id : {"first", "second"}) {
    TaskInfo task = TestScheduler::commandTask(id, "echo $AGORA_TASK_ID >> tasks");
    *task.mutable_executor() = executor;
    scheduler.launch(task);
  }
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("first").state(), TASK_FINISHED);
  EXPECT_EQ(scheduler.waitForEnd("second").state(), TASK_FINISHED);
  json state = json::parse(httpGet(scheduler.agentAddress("first"), "/state")->body);
  int executors = 0;
  for (const json& f : state["frameworks"]) {
    for (const json& e : f["executors"]) {
      executors += e["id"] == "shared" ? 1 : 0;
    }
  }
  for (const json& e : state["completed_executors"]) {
    executors += e["id"] == "shared" ? 1 : 0;
  }
  EXPECT_EQ(executors, 1);
  driver.stop();
  driver.join();
}

TEST_F(ClusterTest, TaskGroupRunsTogetherAndOneFailureTakesItDown) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_.masterHttp());
  ExecutorInfo executor;
  executor.set_executor_id("pod");
  const char* failsSoon = "sleep 0.5; exit 2";  // ok: the task's own command
  scheduler.launchGroup(executor, {TestScheduler::commandTask("web", kSleepForever),
                                   TestScheduler::commandTask("sidecar", failsSoon)});
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("sidecar").state(), TASK_FAILED);
  EXPECT_EQ(scheduler.waitForEnd("web").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

// A framework in role "db" reserves resources, makes a persistent volume, writes into it from
// one task, and reads it back from a second task after the first has ended.
class VolumeScheduler final : public Scheduler {
 public:
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
        driver->launch(offer.id(), {task("reader", agentId_, "test \"$(cat data/file)\" = kept")},
                       filters);
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
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string agentId_;
  bool writerDone_ = false;
  bool readerLaunched_ = false;
  std::map<std::string, TaskState> states_;
  std::vector<std::string> errors_;
};

TEST_F(ClusterTest, AVolumesDataOutlivesItsTaskAndComesBackToItsRole) {
  VolumeScheduler scheduler;
  FrameworkInfo info = testFramework("volumes");
  info.add_roles("db");
  SchedulerDriver driver(&scheduler, info, cluster_.masterHttp());
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("writer"), TASK_FINISHED);
  EXPECT_EQ(scheduler.waitForEnd("reader"), TASK_FINISHED);
  EXPECT_TRUE(scheduler.errors().empty());
  driver.stop();
  driver.join();
}

// Agents that isolate containers with cgroups (root only).
class ClusterIsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "cgroups isolation needs root";
    }
    root_ = "agora-it-" + std::to_string(::getpid());
    ProcessClusterOptions options;
    options.agents = 1;
    auto layout = cgroups::detectLayout();
    ASSERT_TRUE(layout) << layout.error();
    devices_ = !layout->v2;
    options.agentFlags = {std::string("--isolation=cgroups/cpu,cgroups/mem,cgroups/pids,") +
                              (devices_ ? "cgroups/devices," : "") +
                              "namespaces/pid,namespaces/mount,namespaces/uts,namespaces/ipc,"
                              "namespaces/net",
                          "--cgroups_root=" + root_, "--max_pids_per_container=64",
                          "--cgroups_enable_cfs", "--usage_interval=200ms"};
    cluster_ = std::make_unique<ProcessCluster>(options);
    ASSERT_TRUE(cluster_->start().ok()) << "see " << cluster_->dir();
  }
  void TearDown() override {
    if (cluster_ != nullptr) {
      cluster_->stop();
    }
    // Every container's cgroups went with it; the agents' root for them goes here.
    removeCgroupsRoot(root_);
  }
  std::string root_;
  bool devices_ = false;
  std::unique_ptr<ProcessCluster> cluster_;
};

TEST_F(ClusterIsolationTest, OnlyTheStandardDevicesAreUsable) {
  if (!devices_) {
    GTEST_SKIP() << "device isolation is for cgroups v1";
  }
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask(
      "devices", "echo zero=$(head -c 3 /dev/zero | wc -c); "
                 "mknod ./mem c 1 1 2>/dev/null && echo mknod=yes || echo mknod=no"));
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("devices").state(), TASK_FINISHED);
  EXPECT_EQ(waitForSandboxFile(scheduler.agentAddress("devices"), "devices", "stdout"),
            "zero=3\nmknod=no\n");
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, ATaskPastItsMemoryFailsWithTheMemoryReasonInItsOwnCgroup) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask("where", "cat /proc/self/cgroup"));
  scheduler.launch(TestScheduler::commandTask(
      "hog", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}", "cpus:1;mem:32"));
  driver.start();
  TaskStatus where = scheduler.waitForEnd("where");
  EXPECT_EQ(where.state(), TASK_FINISHED) << where.message();
  std::string cgroup = waitForSandboxFile(scheduler.agentAddress("where"), "where", "stdout");
  EXPECT_NE(cgroup.find(root_ + "/"), std::string::npos) << cgroup;
  TaskStatus hog = scheduler.waitForEnd("hog", seconds(60));
  EXPECT_EQ(hog.state(), TASK_FAILED);
  EXPECT_EQ(hog.reason(), TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY) << hog.message();
  EXPECT_NE(hog.message().find("memory limit"), std::string::npos) << hog.message();
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, AContainerSeesOnlyItsOwnProcessesAndHostname) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  // Its processes: the executor, the task's shell and ls; the host has many more.
  scheduler.launch(TestScheduler::commandTask(
      "inside", "echo procs=$(ls /proc | grep -c '^[0-9]') host=$(hostname) end"));
  driver.start();
  TaskStatus inside = scheduler.waitForEnd("inside");
  EXPECT_EQ(inside.state(), TASK_FINISHED) << inside.message();
  std::string out = waitForSandboxFile(scheduler.agentAddress("inside"), "inside", "stdout");
  int procs = std::atoi(out.substr(out.find("procs=") + 6).c_str());
  EXPECT_GT(procs, 0) << out;
  EXPECT_LT(procs, 10) << out;
  EXPECT_NE(out.find("host=inside end"), std::string::npos) << out;
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, EachContainerHasAPrivateTmpInItsSandbox) {
  // Something in the host's /tmp that no container may see.
  std::string marker = "/tmp/agora-host-only-" + std::to_string(::getpid());
  std::string mine = "agora-container-only-" + std::to_string(::getpid());
  ASSERT_TRUE(writeFileAtomic(marker, "host\n").ok());
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask(
      "tmp", "test ! -e " + marker + " && echo mine > /tmp/" + mine +
                 " && echo TMPDIR=$TMPDIR && ls -ld /tmp | cut -c1-10"));
  driver.start();
  TaskStatus end = scheduler.waitForEnd("tmp");
  ::unlink(marker.c_str());
  EXPECT_EQ(end.state(), TASK_FINISHED) << end.message();
  std::string out = waitForSandboxFile(scheduler.agentAddress("tmp"), "tmp", "stdout");
  EXPECT_EQ(out, "TMPDIR=/tmp\ndrwxrwxrwt\n");
  // The container's /tmp is its sandbox's tmp/, and nothing of it reached the host's /tmp.
  EXPECT_EQ(readFile(sandboxOf(scheduler.agentAddress("tmp"), "tmp") + "/tmp/" + mine)
                .value_or(""),
            "mine\n");
  EXPECT_FALSE(pathExists("/tmp/" + mine));
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, AContainerHasANetworkOfItsOwnWithALoopback) {
  // A server on the host's loopback, which the container's own loopback does not reach.
  int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(server, 4), 0);
  socklen_t length = sizeof(addr);
  ::getsockname(server, reinterpret_cast<sockaddr*>(&addr), &length);
  std::string port = std::to_string(ntohs(addr.sin_port));

  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask(
      "netns", "echo links=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ,); "
               "busybox nc -w 2 127.0.0.1 " + port + " </dev/null && echo host=reached || "
               "echo host=unreachable"));
  driver.start();
  TaskStatus end = scheduler.waitForEnd("netns");
  ::close(server);
  EXPECT_EQ(end.state(), TASK_FINISHED) << end.message();
  EXPECT_EQ(waitForSandboxFile(scheduler.agentAddress("netns"), "netns", "stdout"),
            "links=lo,\nhost=unreachable\n");
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, UsageOfARunningContainerIsOnTheAgentsContainersEndpoint) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask("idle", "exec tail -f /dev/null", "cpus:0.5;mem:64"));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("idle", TASK_RUNNING));
  json container;
  ASSERT_TRUE(waitUntil([&] {
    auto r = httpGet(scheduler.agentAddress("idle"), "/containers");
    if (!r || r->status != 200) return false;
    for (const json& c : json::parse(r->body)) {
      if (c.value("executor_id", "") == "idle" && c.contains("statistics") &&
          c["statistics"].value("processes", 0) >= 2) {
        container = c;
        return true;
      }
    }
    return false;
  }, seconds(20))) << container.dump();
  EXPECT_EQ(container["statistics"]["mem_limit_bytes"].get<uint64_t>(), (64u + 32u) << 20);
  EXPECT_GT(container["statistics"]["mem_total_bytes"].get<uint64_t>(), 0u);
  // The master shows it with the task, as the agent last reported it.
  json task;
  EXPECT_TRUE(cluster_->waitForState([&](const json& state) {
    for (const json& f : state["frameworks"]) {
      for (const json& t : f["tasks"]) {
        if (t.value("id", "") == "idle" && t.contains("statistics")) {
          task = t;
          return true;
        }
      }
    }
    return false;
  }));
  EXPECT_EQ(task["statistics"].value("mem_limit_bytes", uint64_t{0}), (64u + 32u) << 20)
      << task.dump();
  EXPECT_GE(task["statistics"].value("processes", uint64_t{0}), 2u) << task.dump();
  driver.kill("idle");
  EXPECT_EQ(scheduler.waitForEnd("idle").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, BusyTasksAreHeldToTheirCpusByTheCfsQuota) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  const char* twoLoops = "while :; do :; done & while :; do :; done";  // ok: busy on purpose
  const char* oneLoop = "while :; do :; done";
  scheduler.launch(TestScheduler::commandTask("big", twoLoops, "cpus:1.5;mem:64"));
  scheduler.launch(TestScheduler::commandTask("small", oneLoop, "cpus:0.5;mem:64"));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("big", TASK_RUNNING));
  ASSERT_TRUE(scheduler.waitForState("small", TASK_RUNNING));
  std::string agent = scheduler.agentAddress("big");
  struct Cpu {
    double seconds = 0;
    uint64_t throttled = 0;
    double limit = 0;
  };
  auto cpu = [&](const std::string& executor) {
    Cpu out;
    auto r = httpGet(agent, "/containers");
    if (r && r->status == 200) {
      for (const json& c : json::parse(r->body)) {
        if (c.value("executor_id", "") == executor && c.contains("statistics")) {
          const json& st = c["statistics"];
          out.seconds = st.value("cpus_user_time_secs", 0.0) + st.value("cpus_system_time_secs", 0.0);
          out.throttled = st.value("cpus_nr_throttled", uint64_t{0});
          out.limit = st.value("cpus_limit", 0.0);
        }
      }
    }
    return out;
  };
  // The quota the kernel enforces is the task's cpus.
  auto started = std::chrono::steady_clock::now();
  Cpu big0 = cpu("big");
  Cpu small0 = cpu("small");
  EXPECT_NEAR(big0.limit, 1.5, 0.01);
  EXPECT_NEAR(small0.limit, 0.5, 0.01);
  // Usage over about two seconds, from the cgroups' own accounting. Other tests may share
  // the two cores, so only the ceilings are certain; below them the tasks get what is left.
  waitUntil([] { return false; }, seconds(2));
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  Cpu big1 = cpu("big");
  Cpu small1 = cpu("small");
  double bigRate = (big1.seconds - big0.seconds) / elapsed;
  double smallRate = (small1.seconds - small0.seconds) / elapsed;
  EXPECT_LE(bigRate, 1.5 * 1.1) << bigRate;
  EXPECT_LE(smallRate, 0.5 * 1.1) << smallRate;
  EXPECT_GT(smallRate, 0.0) << smallRate;
  if (smallRate > 0.45) {
    // It ran up to its quota, so the kernel held it back.
    EXPECT_GT(small1.throttled, small0.throttled);
  }
  driver.kill("big");
  driver.kill("small");
  EXPECT_EQ(scheduler.waitForEnd("big").state(), TASK_KILLED);
  EXPECT_EQ(scheduler.waitForEnd("small").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, TasksRunAsTheirFrameworksUser) {
  TestScheduler scheduler;
  FrameworkInfo info = testFramework();
  info.set_user("nobody");
  SchedulerDriver driver(&scheduler, info, cluster_->masterHttp());
  scheduler.launch(TestScheduler::commandTask("who", "echo user=$(id -un) && touch mine"));
  driver.start();
  TaskStatus who = scheduler.waitForEnd("who");
  EXPECT_EQ(who.state(), TASK_FINISHED) << who.message();
  EXPECT_EQ(waitForSandboxFile(scheduler.agentAddress("who"), "who", "stdout"), "user=nobody\n");
  driver.stop();
  driver.join();

  TestScheduler strangers;
  info.set_user("no-such-user-here");
  SchedulerDriver other(&strangers, info, cluster_->masterHttp());
  strangers.launch(TestScheduler::commandTask("ghost", "true"));
  other.start();
  TaskStatus ghost = strangers.waitForEnd("ghost");
  EXPECT_EQ(ghost.state(), TASK_FAILED);
  EXPECT_NE(ghost.message().find("user 'no-such-user-here' does not exist"), std::string::npos)
      << ghost.message();
  other.stop();
  other.join();
}

TEST_F(ClusterIsolationTest, ATaskGroupIsAPodOfContainersWithTheirOwnSandboxesAndCgroups) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  ExecutorInfo pod;
  pod.set_executor_id("pod");
  // The client writes a file in the shared scratch directory and sends its content over
  // loopback; the server compares what it got with the file it sees. Each says which memory
  // cgroup it is in.
  const char* whereAmI = "grep memory /proc/self/cgroup | cut -d: -f3; ";
  scheduler.launchGroup(
      pod, {TestScheduler::commandTask(
                "server", std::string(whereAmI) +
                              "busybox nc -l -p 31555 > got && "
                              "test \"$(cat got)\" = \"$(cat $AGORA_SHARED_DIR/shared.txt)\"",
                "cpus:0.1;mem:48"),
            TestScheduler::commandTask(
                "client", std::string(whereAmI) +
                              "echo hello > $AGORA_SHARED_DIR/shared.txt; "
                              "until busybox nc 127.0.0.1 31555 < $AGORA_SHARED_DIR/shared.txt; "
                              "do :; done",
                "cpus:0.1;mem:32")});
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("server").state(), TASK_FINISHED);
  EXPECT_EQ(scheduler.waitForEnd("client").state(), TASK_FINISHED);
  std::string sandbox = sandboxOf(scheduler.agentAddress("server"), "pod");
  ASSERT_FALSE(sandbox.empty());
  // Each in a sandbox of its own, with its own output; the scratch directory between them.
  EXPECT_EQ(readFile(sandbox + "/tasks/server/got").value_or(""), "hello\n");
  EXPECT_EQ(readFile(sandbox + "/shared/shared.txt").value_or(""), "hello\n");
  std::string server = readFile(sandbox + "/tasks/server/stdout").value_or("");
  std::string client = readFile(sandbox + "/tasks/client/stdout").value_or("");
  EXPECT_NE(server.find(root_ + "/"), std::string::npos) << server;
  EXPECT_NE(server.find("/containers/server\n"), std::string::npos) << server;
  EXPECT_NE(client.find("/containers/client\n"), std::string::npos) << client;
  driver.stop();
  driver.join();
}

TEST_F(ClusterIsolationTest, ATaskInAGroupIsHeldToItsOwnMemoryAndRestartedOnFailure) {
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster_->masterHttp());
  ExecutorInfo pod;
  pod.set_executor_id("pod");
  // 200 MB would fit in the group (544 MiB) but not in the hog's own 32 MiB.
  TaskInfo hog = TestScheduler::commandTask(
      "hog", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}", "cpus:0.5;mem:32");
  hog.mutable_restart_policy()->set_mode(RestartPolicy::ON_FAILURE);
  hog.mutable_restart_policy()->set_backoff_seconds(0.1);
  hog.mutable_restart_policy()->set_max_restarts(1);
  scheduler.launchGroup(pod, {hog, TestScheduler::commandTask("steady", "exec tail -f /dev/null",
                                                              "cpus:0.1;mem:512")});
  driver.start();
  TaskStatus end = scheduler.waitForEnd("hog", seconds(60));
  EXPECT_EQ(end.state(), TASK_FAILED) << end.message();
  EXPECT_EQ(end.reason(), TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY) << end.message();
  EXPECT_EQ(end.restart_count(), 1u);
  // It was restarted once, and said so, before it failed for good.
  EXPECT_TRUE(scheduler.waitForStatus("hog", [](const TaskStatus& s) {
    return s.state() == TASK_RUNNING && s.restart_count() == 1 &&
           s.message().find("restarting") != std::string::npos &&
           s.reason() == TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY;
  }, seconds(0)));
  // The other container ran on untouched until the group went down with the hog.
  EXPECT_EQ(scheduler.waitForEnd("steady").state(), TASK_KILLED);
  for (TaskState s : scheduler.states("steady")) {
    EXPECT_TRUE(s == TASK_STARTING || s == TASK_RUNNING || s == TASK_KILLED)
        << TaskState_Name(s);
  }
  driver.stop();
  driver.join();
}

TEST(ClusterDiskTest, SandboxesOfEndedExecutorsAreCollectedAfterTheGcDelay) {
  ProcessClusterOptions options;
  options.agents = 1;
  options.agentFlags = {"--gc_delay=300ms"};
  ProcessCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << "see " << cluster.dir();
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster.masterHttp());
  scheduler.launch(TestScheduler::commandTask("brief", "echo done"));
  scheduler.launch(TestScheduler::commandTask("lasting", "exec tail -f /dev/null"));
  driver.start();
  EXPECT_EQ(scheduler.waitForEnd("brief").state(), TASK_FINISHED);
  ASSERT_TRUE(scheduler.waitForState("lasting", TASK_RUNNING));
  std::string executors = cluster.agentWorkDir(0) + "/frameworks/" + scheduler.frameworkId() +
                          "/executors/";
  // The ended one's sandbox goes; the running one's stays.
  EXPECT_TRUE(waitUntil([&] { return !pathExists(executors + "brief"); }, seconds(20)));
  EXPECT_TRUE(pathExists(executors + "lasting"));
  driver.kill("lasting");
  EXPECT_EQ(scheduler.waitForEnd("lasting").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

TEST(ClusterDiskTest, ASandboxPastItsDiskIsDestroyedWithTheDiskReason) {
  ProcessClusterOptions options;
  options.agents = 1;
  options.agentFlags = {"--enforce_disk_limit", "--disk_watch_interval=100ms"};
  ProcessCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << "see " << cluster.dir();
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster.masterHttp());
  scheduler.launch(TestScheduler::commandTask(
      "filler", "head -c 5000000 /dev/urandom > junk && exec tail -f /dev/null",
      "cpus:0.1;mem:32;disk:1"));
  scheduler.launch(TestScheduler::commandTask("modest", "echo small > note", "cpus:0.1;mem:32;disk:1"));
  driver.start();
  TaskStatus filler = scheduler.waitForEnd("filler");
  EXPECT_EQ(filler.state(), TASK_FAILED);
  EXPECT_EQ(filler.reason(), TaskStatus::REASON_CONTAINER_LIMITATION_DISK) << filler.message();
  EXPECT_NE(filler.message().find("more than the 1 MiB given"), std::string::npos)
      << filler.message();
  EXPECT_EQ(scheduler.waitForEnd("modest").state(), TASK_FINISHED);
  driver.stop();
  driver.join();
}

TEST(ClusterFaultTest, AgentThatStopsAnsweringIsRemovedAndComesBack) {
  ProcessClusterOptions options;
  options.masterFlags = {"--agent_ping_timeout=200ms", "--max_agent_ping_timeouts=3"};
  options.agentFlags = {"--master_ping_timeout=1secs"};
  options.agents = 1;
  ProcessCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok());
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster.masterHttp());
  scheduler.launch(TestScheduler::commandTask("victim", kSleepForever));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("victim", TASK_RUNNING));

  ::kill(cluster.agentPid(0), SIGSTOP);
  TaskStatus end = scheduler.waitForEnd("victim", seconds(20));
  ::kill(cluster.agentPid(0), SIGCONT);
  EXPECT_EQ(end.state(), TASK_LOST);
  EXPECT_EQ(end.reason(), TaskStatus::REASON_AGENT_REMOVED);

  // Awake again, the agent re-registers; the lost task does not come back to life.
  EXPECT_TRUE(cluster.waitForState([](const json& s) {
    return s["agents"].size() == 1 && s["agents"][0]["used_resources"]["cpus"] == 0.0;
  }));
  driver.stop();
  driver.join();
}

TEST(ClusterFaultTest, MasterRestartLosesNoRunningTask) {
  ProcessClusterOptions options;
  options.agents = 1;
  options.masterFlags = {"--agent_ping_timeout=200ms", "--framework_heartbeat_interval=300ms"};
  ProcessCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok());
  TestScheduler scheduler;
  SchedulerDriver driver(&scheduler, testFramework(), cluster.masterHttp());
  scheduler.launch(TestScheduler::commandTask("survivor", kSleepForever));
  driver.start();
  ASSERT_TRUE(scheduler.waitForState("survivor", TASK_RUNNING));
  std::string frameworkId = scheduler.frameworkId();

  ASSERT_TRUE(cluster.restartMaster().ok());
  // The agent re-registers with its task, the scheduler subscribes again under its id.
  EXPECT_TRUE(cluster.waitForState([&](const json& s) {
    if (s["agents"].size() != 1 || s["frameworks"].size() != 1) {
      return false;
    }
    const json& f = s["frameworks"][0];
    return f["id"] == frameworkId && f["connected"] == true && f["tasks"].size() == 1 &&
           f["tasks"][0]["state"] == "TASK_RUNNING";
  }));
  EXPECT_GE(scheduler.subscriptions(), 2);

  // The new master can still reach the task.
  driver.kill("survivor");
  EXPECT_EQ(scheduler.waitForEnd("survivor").state(), TASK_KILLED);
  driver.stop();
  driver.join();
}

}  // namespace
}  // namespace agora::testing
