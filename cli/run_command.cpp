// agora run: a one-off framework on the SDK (what mesos-execute is to Mesos). It launches a
// command as N tasks, prints each state change, shows the tasks' output, and exits 0 only if
// every task finished.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/state_lookup.hpp"
#include "agora/scheduler.hpp"
#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "cli/profile.hpp"
#include "common/detector.hpp"
#include "common/http.hpp"
#include "common/ids.hpp"
#include "common/resources.hpp"

namespace agora::cli {

namespace {

using nlohmann::json;

std::atomic<bool> interrupted{false};

bool terminal(TaskState s) {
  return s == TASK_FINISHED || s == TASK_FAILED || s == TASK_KILLED || s == TASK_ERROR ||
         s == TASK_LOST || s == TASK_DROPPED || s == TASK_GONE || s == TASK_UNKNOWN;
}

std::string shortState(TaskState s) {
  std::string name = TaskState_Name(s);
  return name.rfind("TASK_", 0) == 0 ? name.substr(5) : name;
}

struct TaskRecord {
  std::string id;
  std::string agentId;
  std::string agentAddress;
  std::string hostname;
  TaskState state = TASK_STAGING;
  std::string message;
  std::string directory;
  int64_t offsets[2] = {0, 0};  // stdout, stderr
};

class RunScheduler final : public Scheduler {
 public:
  RunScheduler(std::string prefix, std::string name, std::string command, Resources resources,
               std::string role, int count, bool follow)
      : prefix_(std::move(prefix)), name_(std::move(name)), command_(std::move(command)),
        resources_(std::move(resources)), role_(std::move(role)), count_(count),
        follow_(follow) {}

  // Runs the tasks in this image (its entrypoint, when there is no command).
  void setImage(std::string image) { image_ = std::move(image); }

  void subscribed(SchedulerDriver* driver, const std::string& frameworkId,
                  const MasterInfo& master) override {
    say("Subscribed to master " + master.id() + " as framework " + frameworkId);
  }

  void offers(SchedulerDriver* driver, const std::vector<Offer>& offers) override {
    for (const Offer& offer : offers) {
      Resources available(offer.resources());
      std::vector<TaskInfo> tasks;
      std::lock_guard<std::mutex> lock(mutex_);
      while (next_ < count_ && available.contains(resources_)) {
        TaskInfo task;
        std::string id = prefix_ + "-" + std::to_string(next_++);
        task.set_task_id(id);
        task.set_name(name_);
        task.set_agent_id(offer.agent_id());
        resources_.copyTo(task.mutable_resources());
        if (!command_.empty()) {
          task.mutable_command()->set_value(command_);
        }
        if (!image_.empty()) {
          task.mutable_container()->set_image(image_);
        }
        available -= resources_;
        tasks.push_back(task);
        TaskRecord& record = tasks_[id];
        record.id = id;
        record.agentId = offer.agent_id();
        record.agentAddress = offer.agent_address();
        record.hostname = offer.hostname();
      }
      Filters filters;
      filters.set_refuse_seconds(next_ < count_ ? 1 : 3600);
      if (tasks.empty()) {
        driver->decline(offer.id(), filters);
      } else {
        driver->launch(offer.id(), tasks, filters);
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (next_ >= count_ && !suppressed_) {
      suppressed_ = true;
      driver->suppress();
    }
  }

  void update(SchedulerDriver* driver, const TaskStatus& status) override {
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = tasks_.find(status.task_id());
    if (it == tasks_.end() || terminal(it->second.state)) {
      return;
    }
    TaskRecord& task = it->second;
    task.state = status.state();
    task.message = status.message();
    std::string line = task.id + "  " + shortState(status.state());
    if (status.state() == TASK_STARTING || status.state() == TASK_RUNNING) {
      line += "  on " + task.hostname;
    }
    if (!status.message().empty()) {
      line += "  " + status.message();
    }
    if (terminal(status.state())) {
      ++ended_;
      finished_ += status.state() == TASK_FINISHED ? 1 : 0;
      if (follow_) {
        // Printed once the task's last output has been shown (takeEndings()).
        endings_.push_back(line);
        changed_.notify_all();
        return;
      }
    }
    lock.unlock();
    say(line);
    changed_.notify_all();
  }

  void failure(SchedulerDriver* driver, const std::string& agentId, const std::string& executorId,
               std::optional<int> status) override {
    if (executorId.empty()) {
      say("Agent " + agentId + " was lost");
    }
  }

  void error(SchedulerDriver* driver, const std::string& message) override {
    say("Error: " + message);
    std::lock_guard<std::mutex> lock(mutex_);
    failed_ = true;
    changed_.notify_all();
  }

  // Waits until every task ended, the driver failed, or `timeout` passed. True when done.
  bool waitDone(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, timeout, [this] { return ended_ == count_ || failed_; });
    return ended_ == count_ || failed_;
  }

  bool allFinished() {
    std::lock_guard<std::mutex> lock(mutex_);
    return !failed_ && finished_ == count_;
  }

  std::vector<TaskRecord> snapshot() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<TaskRecord> out;
    for (int i = 0; i < count_; ++i) {
      auto it = tasks_.find(prefix_ + "-" + std::to_string(i));
      if (it != tasks_.end()) {
        out.push_back(it->second);
      }
    }
    return out;
  }

  // The terminal state lines held back while following output.
  std::vector<std::string> takeEndings() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    out.swap(endings_);
    return out;
  }

  void remember(const TaskRecord& record) {
    std::lock_guard<std::mutex> lock(mutex_);
    TaskRecord& mine = tasks_[record.id];
    mine.directory = record.directory;
    mine.offsets[0] = record.offsets[0];
    mine.offsets[1] = record.offsets[1];
  }

  static void say(const std::string& line) {
    static std::mutex out;
    std::lock_guard<std::mutex> lock(out);
    std::cout << line << std::endl;
  }

 private:
  std::string prefix_;
  std::string name_;
  std::string command_;
  std::string image_;
  Resources resources_;
  std::string role_;
  int count_;
  bool follow_;

  std::mutex mutex_;
  std::vector<std::string> endings_;
  std::condition_variable changed_;
  std::map<std::string, TaskRecord> tasks_;
  int next_ = 0;
  int ended_ = 0;
  int finished_ = 0;
  bool suppressed_ = false;
  bool failed_ = false;
};

// Finds the sandbox of `task` from its agent's /state, through the leading master at `master`.
std::string findSandbox(const std::string& master, const TaskRecord& task) {
  auto response =
      httpGet(master, "/agent/state?agent_id=" + urlEncode(task.agentId), seconds(5));
  if (!response || response->status != 200) {
    return "";
  }
  json state = json::parse(response->body, nullptr, false);
  return agent::findTaskSandbox(state, task.id).directory;
}

// Reads what is new in the task's stdout (which = 0) or stderr (1), through the master.
std::string readNew(const std::string& master, TaskRecord& task, int which) {
  std::string out;
  agent::readSandboxFile(master, task.directory + (which == 0 ? "/stdout" : "/stderr"),
                         &task.offsets[which], &out, task.agentId);
  return out;
}

void printOutput(const std::string& data, const std::string& prefix, std::ostream& stream,
                 std::string* partial) {
  std::string text = *partial + data;
  partial->clear();
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof() && !text.empty() && text.back() != '\n') {
      *partial = line;  // keep half a line until the rest arrives
      break;
    }
    stream << prefix << line << "\n";
  }
  stream.flush();
}

}  // namespace

int runCommand(int argc, const char* const* argv) {
  std::string master;
  std::string zk;
  std::string profile = "default";
  std::string command;
  std::string resourcesText = "cpus:0.1;mem:32";
  int count = 1;
  std::string role = "*";
  std::string name;
  bool follow = false;
  std::string image;
  Flags flags("agora run --command=CMD | --image=NAME [flags]",
              "Runs CMD (under /bin/sh -c) as --count tasks, prints each task's state changes\n"
              "and its output (as it comes with --follow, otherwise at the end), and exits 0\n"
              "only if every task FINISHED. Ctrl-C kills the tasks.");
  flags.add(&command, "command", "The shell command each task runs.");
  flags.add(&image, "image",
            "Run the tasks in this image from the agents' image store (agora image import);\n"
            "without --command, the image's entrypoint runs.");
  flags.add(&resourcesText, "resources", "Resources of each task, e.g. 'cpus:0.5;mem:128'.");
  flags.add(&count, "count", "How many tasks to run.");
  flags.add(&role, "role", "The role to run under.");
  flags.add(&name, "name", "Name of the tasks and the framework (default: agora-run).");
  flags.add(&follow, "follow", "Stream the tasks' stdout and stderr while they run.");
  flags.add(&master, "master", "The master's HTTP address (default: the profile's master).");
  flags.add(&zk, "zk", "Follow the leader elected in ZooKeeper, e.g. zk://host:2181/agora.");
  flags.add(&profile, "profile", "The local cluster to use when --master is not given.");
  std::string credentials;
  flags.add(&credentials, "credentials",
            "CURVE credentials for the master (default: $AGORA_CREDENTIALS, else the profile's\n"
            "operator credentials when --master is not given).");
  int rc = parseFlags(flags, argc, argv);
  if (rc >= 0) {
    return rc;
  }
  if (command.empty() && image.empty()) {
    std::cerr << "agora run: --command (or --image) is required\n";
    return 2;
  }
  if (count < 1 || count > 1000000) {
    std::cerr << "agora run: --count must be between 1 and 1000000\n";
    return 2;
  }
  auto resources = Resources::parse(resourcesText);
  if (!resources) {
    std::cerr << "agora run: --resources: " << resources.error() << "\n";
    return 2;
  }
  if (resources->scalar("cpus") <= 0 && resources->scalar("mem") <= 0) {
    std::cerr << "agora run: --resources must ask for some cpus or mem\n";
    return 2;
  }
  if (Status s = validateRole(role); !s) {
    std::cerr << "agora run: --role: " << s.error() << "\n";
    return 2;
  }
  auto address = resolveMaster(master, zk, profile);
  if (!address) {
    std::cerr << "agora run: " << address.error() << "\n";
    return 1;
  }
  if (name.empty()) {
    name = "agora-run";
  }

  FrameworkInfo framework;
  framework.set_name(name);
  const char* user = std::getenv("USER");
  framework.set_user(user != nullptr ? user : "root");
  framework.set_hostname(localHostname());
  framework.add_roles(role);
  framework.add_capabilities(FrameworkInfo::TASK_KILLING_STATE);

  RunScheduler scheduler("run-" + shortId(), name, command, *resources, role, count, follow);
  scheduler.setImage(image);
  SchedulerDriverOptions options;
  options.masterTimeout = std::chrono::seconds(30);
  options.credentials = resolveCredentials(credentials, master.empty() && zk.empty(), profile);
  SchedulerDriver driver(&scheduler, framework, *address, options);

  std::signal(SIGINT, [](int) { interrupted = true; });
  std::signal(SIGTERM, [](int) { interrupted = true; });
  std::signal(SIGPIPE, SIG_IGN);
  driver.start();

  std::map<std::string, std::string> partial[2];
  // Tasks' output comes through the leading master, found when there is output to read.
  std::string leader;
  auto pump = [&](bool everything) {
    std::vector<TaskRecord> tasks = scheduler.snapshot();
    for (TaskRecord& task : tasks) {
      bool started = task.state != TASK_STAGING;
      if (!started || task.agentId.empty()) {
        continue;
      }
      if (leader.empty()) {
        auto found = findLeader(*address, seconds(5));
        if (!found) {
          continue;
        }
        leader = found->ip() + ":" + std::to_string(found->http_port());
      }
      if (task.directory.empty()) {
        task.directory = findSandbox(leader, task);
        if (task.directory.empty()) {
          leader.clear();  // it may lead no more: found again next time
          continue;
        }
      }
      for (int which = 0; which < 2; ++which) {
        std::string data = readNew(leader, task, which);
        std::string prefix = count > 1 ? task.id + " | " : "";
        if (!data.empty()) {
          printOutput(data, prefix, which == 0 ? std::cout : std::cerr, &partial[which][task.id]);
        }
        if (everything && !partial[which][task.id].empty()) {
          (which == 0 ? std::cout : std::cerr) << prefix << partial[which][task.id] << "\n";
          partial[which][task.id].clear();
        }
      }
      scheduler.remember(task);
    }
  };

  auto showEndings = [&] {
    for (const std::string& line : scheduler.takeEndings()) {
      RunScheduler::say(line);
    }
  };
  bool done = false;
  // Each task's two files are read through the master, whose HTTP API gives a client 200
  // requests a second: many tasks are read less often.
  const auto every = std::max<Duration>(std::chrono::milliseconds(200),
                                        std::chrono::milliseconds(20) * count);
  auto lastPump = std::chrono::steady_clock::now();
  while (!done) {
    done = scheduler.waitDone(std::chrono::milliseconds(200));
    if (interrupted) {
      RunScheduler::say("Interrupted: killing the tasks");
      break;
    }
    if (follow) {
      // Endings taken before the output is read: their output is complete by then.
      std::vector<std::string> endings = scheduler.takeEndings();
      if (!endings.empty() || std::chrono::steady_clock::now() - lastPump >= every) {
        lastPump = std::chrono::steady_clock::now();
        pump(false);
      }
      for (const std::string& line : endings) {
        RunScheduler::say(line);
      }
    }
    if (driver.status() != DriverStatus::kRunning) {
      break;
    }
  }
  pump(true);
  showEndings();
  driver.stop();
  driver.join();
  bool success = !interrupted && scheduler.allFinished();
  return success ? 0 : 1;
}

}  // namespace agora::cli
