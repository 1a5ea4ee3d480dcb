// Failover under load: two agents (fake containerizer: the tasks are simulated, the masters,
// agents and ZooKeeper are real processes), a framework keeping 300 tasks running while it
// launches and finishes short tasks continuously, and the leading master killed (SIGKILL) five
// times in a row. Afterwards every task's state agrees between the framework and the agent that
// ran it, the master knows every task that runs, and no terminal update was lost.

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agora/scheduler.hpp"
#include "common/http.hpp"
#include "common/resources.hpp"
#include "tests/support/ha_cluster.hpp"
#include "tests/support/process_cluster.hpp"
#include "tests/support/test_scheduler.hpp"

namespace agora::testing {
namespace {

using nlohmann::json;

bool terminal(TaskState s) {
  return s == TASK_FINISHED || s == TASK_FAILED || s == TASK_KILLED || s == TASK_ERROR ||
         s == TASK_LOST || s == TASK_DROPPED || s == TASK_GONE;
}

class LoadScheduler final : public Scheduler {
 public:
  static constexpr int kLongTasks = 300;
  static constexpr int kShortTasks = 400;
  static constexpr int kShortInFlight = 30;

  void offers(SchedulerDriver* driver, const std::vector<Offer>& offers) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Resources need = *Resources::parse("cpus:0.1;mem:16");
    for (const Offer& offer : offers) {
      Resources available(offer.resources());
      std::vector<TaskInfo> tasks;
      while (available.contains(need)) {
        bool isLong = longLaunched_ < kLongTasks;
        bool isShort = !isLong && churn_ && shortLaunched_ < kShortTasks &&
                       shortInFlight() < kShortInFlight;
        if (!isLong && !isShort) {
          break;
        }
        TaskInfo task;
        std::string id = isLong ? "long-" + std::to_string(longLaunched_++)
                                : "short-" + std::to_string(shortLaunched_++);
        task.set_task_id(id);
        task.set_agent_id(offer.agent_id());
        task.mutable_command()->set_value("simulated");
        need.copyTo(task.mutable_resources());
        if (!isLong) {
          Label* l = task.add_labels();
          l->set_key("fake.duration");
          l->set_value(std::to_string(0.3 + (shortLaunched_ % 5) * 0.3));
        }
        available -= need;
        records_[id] = Record{TASK_STAGING, std::chrono::steady_clock::now(), false};
        tasks.push_back(task);
      }
      Filters filters;
      filters.set_refuse_seconds(0.2);
      if (tasks.empty()) {
        driver->decline(offer.id(), filters);
      } else {
        driver->launch(offer.id(), tasks, filters);
      }
    }
  }

  void update(SchedulerDriver*, const TaskStatus& status) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = records_.find(status.task_id());
    if (it == records_.end()) {
      return;
    }
    Record& r = it->second;
    r.heard = true;
    // A task that ended stays ended (later updates are resends or reconciliation).
    if (!terminal(r.state) || status.state() == r.state) {
      r.state = status.state();
    } else if (terminal(status.state()) && status.state() != r.state) {
      // Two different terminal states: remember the one the agent reported last.
      r.state = status.state();
    }
    changed_.notify_all();
  }

  // Tasks launched a while ago that nobody has heard of: their launch may have died with a
  // master. Returns them for reconciliation.
  std::vector<TaskStatus> silent(Duration age) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<TaskStatus> out;
    auto now = std::chrono::steady_clock::now();
    for (const auto& [id, r] : records_) {
      if (!r.heard && now - r.launched > age) {
        TaskStatus s;
        s.set_task_id(id);
        out.push_back(s);
      }
    }
    return out;
  }

  void stopChurn() {
    std::lock_guard<std::mutex> lock(mutex_);
    churn_ = false;
  }

  std::map<std::string, TaskState> states() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::map<std::string, TaskState> out;
    for (const auto& [id, r] : records_) {
      out[id] = r.state;
    }
    return out;
  }

  int shortLaunched() {
    std::lock_guard<std::mutex> lock(mutex_);
    return shortLaunched_;
  }

 private:
  struct Record {
    TaskState state;
    std::chrono::steady_clock::time_point launched;
    bool heard;
  };

  int shortInFlight() const {
    int n = 0;
    for (const auto& [id, r] : records_) {
      n += id.rfind("short-", 0) == 0 && !terminal(r.state) ? 1 : 0;
    }
    return n;
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Record> records_;
  int longLaunched_ = 0;
  int shortLaunched_ = 0;
  bool churn_ = true;
};

// Every task an agent knows, with the state it reports.
std::map<std::string, TaskState> agentTasks(const std::vector<std::string>& agents) {
  std::map<std::string, TaskState> out;
  for (const std::string& address : agents) {
    auto r = httpGet(address, "/state", seconds(5));
    if (!r) {
      continue;
    }
    json s = json::parse(r->body);
    auto add = [&](const json& list) {
      for (const json& t : list) {
        TaskState state;
        if (TaskState_Parse(t.value("state", ""), &state)) {
          out[t.value("id", "")] = state;
        }
      }
    };
    for (const json& f : s["frameworks"]) {
      for (const json& e : f["executors"]) {
        add(e["tasks"]);
        add(e["completed_tasks"]);
      }
    }
    for (const json& e : s["completed_executors"]) {
      add(e["tasks"]);
    }
  }
  return out;
}

TEST(HaLoadTest, FiveLeaderKillsUnderLoadLoseNothing) {
  HaClusterOptions options;
  options.agents = 2;
  options.agentResources = "cpus:64;mem:65536";
  options.agentFlags = {"--containerizer=fake", "--status_update_retry_interval=1secs"};
  HaCluster cluster(options);
  ASSERT_TRUE(cluster.start().ok()) << cluster.dir();
  std::vector<std::string> agents;
  auto initial = cluster.leaderState();
  ASSERT_TRUE(initial.ok());
  for (const json& a : (*initial)["agents"]) {
    agents.push_back(a.value("address", ""));
  }
  ASSERT_EQ(agents.size(), 2u) << initial->dump() << " leaders: " << cluster.countLeaders();

  LoadScheduler scheduler;
  FrameworkInfo framework = testFramework("load");
  framework.set_failover_timeout(300);
  SchedulerDriver driver(&scheduler, framework, cluster.zkUrl());
  driver.start();

  // Launches whose fate is unknown get reconciled now and then.
  std::atomic<bool> done{false};
  std::thread reconciler([&] {
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));  // ok: periodic work
      auto silent = scheduler.silent(seconds(3));
      if (!silent.empty()) {
        driver.reconcile(silent);
      }
    }
  });

  ASSERT_TRUE(waitUntil([&] { return scheduler.shortLaunched() > 20; }, seconds(30)));
  for (int kill = 0; kill < 5; ++kill) {
    int leader = cluster.leader();
    ASSERT_GE(leader, 0) << "no leader before kill " << kill;
    std::string oldId = cluster.leaderState()->value("id", "");
    pid_t process = cluster.masterProcess(leader);
    ASSERT_GT(process, 0);
    ::kill(process, SIGKILL);
    // A new leader, with both agents back.
    ASSERT_TRUE(cluster.waitForLeaderState(
        [&](const json& s) { return s.value("id", "") != oldId && s["agents"].size() == 2; },
        seconds(30)))
        << "after kill " << kill << "; see " << cluster.dir();
  }
  scheduler.stopChurn();

  // Settle: every short task ends, every long one runs, and the agents agree.
  bool settled = waitUntil(
      [&] {
        auto mine = scheduler.states();
        auto theirs = agentTasks(agents);
        for (const auto& [id, state] : mine) {
          auto it = theirs.find(id);
          if (it == theirs.end()) {
            if (!terminal(state)) {
              return false;  // not heard of by any agent: must end up lost or dropped
            }
            continue;
          }
          if (it->second != state) {
            return false;
          }
        }
        return true;
      },
      seconds(90));
  done = true;
  reconciler.join();

  auto mine = scheduler.states();
  auto theirs = agentTasks(agents);
  int disagreements = 0;
  for (const auto& [id, state] : mine) {
    auto it = theirs.find(id);
    if (it == theirs.end()) {
      if (!terminal(state)) {
        ++disagreements;
        ADD_FAILURE() << id << " is " << TaskState_Name(state) << " to the framework and unknown "
                      << "to the agents";
      }
    } else if (it->second != state) {
      ++disagreements;
      ADD_FAILURE() << id << " is " << TaskState_Name(state) << " to the framework and "
                    << TaskState_Name(it->second) << " at its agent";
    }
  }
  EXPECT_TRUE(settled);
  EXPECT_EQ(disagreements, 0);
  // Everything that runs is known to the master.
  auto state = cluster.leaderState();
  ASSERT_TRUE(state.ok());
  std::set<std::string> known;
  for (const json& f : (*state)["frameworks"]) {
    for (const json& t : f["tasks"]) {
      known.insert(t.value("id", ""));
    }
  }
  int running = 0;
  for (const auto& [id, s] : theirs) {
    if (!terminal(s)) {
      ++running;
      EXPECT_EQ(known.count(id), 1u) << id << " runs but the master does not know it";
    }
  }
  EXPECT_GT(running, 250);  // the long tasks (some launches die with a master)
  driver.stop();
  driver.join();
}

}  // namespace
}  // namespace agora::testing
