// agora batch: pipelines of stages, each a set of parallel tasks (frameworks/batch).
//
// `agora batch run JOB.yaml` runs a job in the foreground: it subscribes a framework for it,
// prints each stage's start, retries and end, and exits 0 once every stage has finished (1 when
// the job fails, 2 for a bad job file).
//
// `agora batch submit JOB.yaml` runs the same in the background, as a driver process that keeps
// the job's record in the profile (batch/<job id>/: job.yaml, state.json, driver.log). The
// record is written before every launch, and the framework has a failover timeout, so a driver
// that dies is started again with `agora batch resume ID`: it subscribes as the same framework,
// reconciles the attempts it had launched, and goes on without redoing what finished.
// `status`, `logs` and `cancel` read the record and act on it.

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/state_lookup.hpp"
#include "agora/scheduler.hpp"
#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "cli/profile.hpp"
#include "cli/table.hpp"
#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/http.hpp"
#include "common/process.hpp"
#include "frameworks/batch/batch_scheduler.hpp"
#include "frameworks/batch/job.hpp"

namespace agora::cli {

namespace {

using json = nlohmann::json;

volatile std::sig_atomic_t interrupted = 0;  // SIGTERM, SIGINT: cancel the job
volatile std::sig_atomic_t detached = 0;     // SIGUSR1: leave it to a later driver

// Where the profile's submitted jobs are kept, one directory each.
std::string jobsDir(const std::string& profile) { return profileDir(profile) + "/batch"; }

json readState(const std::string& dir) {
  json state = json::parse(readFile(dir + "/state.json").value_or("{}"), nullptr, false);
  return state.is_object() ? state : json::object();
}

bool terminalJobState(const std::string& state) {
  return state == "finished" || state == "failed" || state == "cancelled";
}

// Whether the job's driver process still runs (its pid, not a later process given the pid).
bool driverAlive(const json& state) {
  pid_t pid = state.value("pid", 0);
  uint64_t started = pid > 0 ? processStartTicks(pid) : 0;
  return started != 0 && started == state.value("pid_start", uint64_t{0});
}

// Waits (up to `timeout`) for the driver of the job in `dir` to end; whether it did.
bool driverGone(const std::string& dir, Duration timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (driverAlive(readState(dir))) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return true;
}

// The flags the job's first driver was given (DriverFlags::args), for the next one.
std::vector<std::string> driverArgs(const json& state) {
  std::vector<std::string> args;
  for (const json& a : state.value("driver_args", json::array())) {
    if (a.is_string()) args.push_back(a.get<std::string>());
  }
  return args;
}

// The job's state as a user should read it: a driver that is gone cannot be running.
std::string shownState(const json& state) {
  std::string s = state.value("state", "submitted");
  if (!terminalJobState(s) && !driverAlive(state)) return "stopped";
  return s;
}

// The job's runner as its record left it (JobRunner::restore), for its stages' progress and
// each task's latest attempt; null while the record holds no runner (its driver has not
// subscribed yet) or one that does not fit the job file.
std::unique_ptr<batch::JobRunner> recordedRunner(const std::string& dir, const json& state) {
  if (!state.contains("runner")) return nullptr;
  auto job = batch::loadJob(dir + "/job.yaml");
  if (!job) return nullptr;
  auto now = std::chrono::steady_clock::now();
  auto runner = std::make_unique<batch::JobRunner>(std::move(*job), batch::RunnerOptions{}, now);
  if (!runner->restore(state["runner"], now)) return nullptr;
  return runner;
}

std::vector<batch::StageProgress> recordedProgress(const std::string& dir, const json& state) {
  auto runner = recordedRunner(dir, state);
  return runner ? runner->progress() : std::vector<batch::StageProgress>{};
}

// The flags a driver is started with, given to submit and kept for resume and cancel.
struct DriverFlags {
  std::string master;
  std::string zk;
  std::string profile = "default";
  std::string credentials;
  Duration localityWait = seconds(3);
  Duration failoverTimeout = hours(1);
  std::string output;

  void add(Flags& flags) {
    flags.add(&master, "master", "The master's HTTP address (default: the profile's master).");
    flags.add(&zk, "zk", "Follow the leader elected in ZooKeeper, e.g. zk://host:2181/agora.");
    flags.add(&profile, "profile", "The local cluster to use when --master is not given.");
    flags.add(&credentials, "credentials",
              "CURVE credentials for the master (default: $AGORA_CREDENTIALS, else the\n"
              "profile's operator credentials when --master is not given).");
    flags.add(&localityWait, "locality_wait",
              "How long a task whose input names where its data lives waits for an offer from\n"
              "there before it takes any.");
    flags.add(&output, "output",
              "The job's output directory ($AGORA_BATCH_OUTPUT), instead of the file's.");
  }
  // What a later driver of the same job is given.
  std::vector<std::string> args() const {
    auto ms = [](Duration t) {
      return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t).count()) +
             "ms";
    };
    std::vector<std::string> out = {"--profile=" + profile, "--locality_wait=" + ms(localityWait),
                                    "--failover_timeout=" + ms(failoverTimeout)};
    if (!master.empty()) out.push_back("--master=" + master);
    if (!zk.empty()) out.push_back("--zk=" + zk);
    if (!credentials.empty()) out.push_back("--credentials=" + credentials);
    if (!output.empty()) out.push_back("--output=" + output);
    return out;
  }
};

// The job's record, written whole (and atomically) on each change.
class JobRecord {
 public:
  explicit JobRecord(std::string dir) : dir_(std::move(dir)), state_(readState(dir_)) {}

  json get() {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_;
  }
  // Sets these fields (an object), in one write.
  void set(const json& fields) {
    std::lock_guard<std::mutex> lock(mutex_);
    state_.update(fields);
    save();
  }
  void recordRunner(const json& runner, const std::string& frameworkId) {
    std::lock_guard<std::mutex> lock(mutex_);
    state_["runner"] = runner;
    if (!frameworkId.empty()) state_["framework_id"] = frameworkId;
    save();
  }

 private:
  void save() {
    if (Status saved = writeFileAtomic(dir_ + "/state.json", state_.dump()); !saved) {
      std::cerr << "agora batch: cannot keep the job's record: " << saved.error() << std::endl;
    }
  }

  std::string dir_;
  std::mutex mutex_;
  json state_;
};

int batchRun(int argc, const char* const* argv) {
  DriverFlags d;
  std::string stateDir;
  bool cancel = false;
  Flags flags("agora batch run JOB.yaml [flags]",
              "Runs a batch job (docs/batch.md): its stages in dependency order, each stage's\n"
              "tasks in parallel on the cluster, failed tasks again on other agents, and\n"
              "speculative copies of stragglers. Exits 0 once every stage has finished.");
  d.add(flags);
  flags.add(&stateDir, "state_dir",
            "Keep the job's record here (agora batch submit's job directory), and take back\n"
            "the record a previous run left: the same framework, and no finished task again.");
  flags.add(&d.failoverTimeout, "failover_timeout",
            "With --state_dir: how long the master keeps the job's tasks running after this\n"
            "process ends without finishing the job, waiting for it to come back.");
  flags.add(&cancel, "cancel",
            "With --state_dir: subscribe as the job's framework and tear it down (its tasks\n"
            "are killed), then record the job cancelled.");
  std::vector<std::string> positional;
  int rc = parseFlags(flags, argc, argv, &positional);
  if (rc >= 0) return rc;
  if (positional.empty() && !stateDir.empty()) positional.push_back(stateDir + "/job.yaml");
  if (positional.size() != 1) {
    std::cerr << "agora batch run: give one job file (see --help)\n";
    return 2;
  }
  auto job = batch::loadJob(positional[0]);
  if (!job) {
    std::cerr << "agora batch run: " << job.error() << "\n";
    return 2;
  }
  if (!d.output.empty()) {
    if (d.output.front() != '/') {
      std::cerr << "agora batch run: --output must be an absolute path\n";
      return 2;
    }
    job->output = d.output;
  }
  auto address = resolveMaster(d.master, d.zk, d.profile);
  if (!address) {
    std::cerr << "agora batch run: " << address.error() << "\n";
    return 1;
  }
  std::unique_ptr<JobRecord> record;
  json before;
  if (!stateDir.empty()) {
    record = std::make_unique<JobRecord>(stateDir);
    before = record->get();
    if (terminalJobState(before.value("state", ""))) {
      std::cerr << "agora batch run: the job in " << stateDir << " is "
                << before.value("state", "") << " already\n";
      return 1;
    }
    record->set({{"pid", ::getpid()},
                 {"pid_start", processStartTicks(::getpid())},
                 {"state", cancel ? "cancelling" : "running"}});
  }
  FrameworkInfo framework;
  framework.set_name("batch:" + job->name);
  framework.set_user(job->user.empty() ? "root" : job->user);
  framework.set_hostname(localHostname());
  framework.add_roles(job->role);
  framework.add_capabilities(FrameworkInfo::TASK_KILLING_STATE);
  framework.add_capabilities(FrameworkInfo::MULTI_ROLE);
  if (record) {
    framework.set_failover_timeout(
        std::chrono::duration<double>(d.failoverTimeout).count());
    framework.set_id(before.value("framework_id", ""));
  }
  int tasks = 0;
  for (const batch::Stage& s : job->stages) tasks += s.tasks;
  std::cout << "Job " << job->name << ": " << job->stages.size() << " stages, " << tasks
            << " tasks" << std::endl;

  batch::RunnerOptions options;
  options.localityWait = d.localityWait;
  batch::BatchScheduler scheduler(*job, options);
  if (before.contains("runner")) {
    if (Status restored = scheduler.restore(before["runner"]); !restored) {
      std::cerr << "agora batch run: " << restored.error() << "\n";
      return 1;
    }
    std::cout << "Resuming: the record of an earlier run is taken back" << std::endl;
  }
  if (record) {
    scheduler.setRecorder([&record](const json& runner, const std::string& frameworkId) {
      record->recordRunner(runner, frameworkId);
    });
  }
  SchedulerDriverOptions driverOptions;
  driverOptions.masterTimeout = std::chrono::seconds(30);
  driverOptions.credentials =
      resolveCredentials(d.credentials, d.master.empty() && d.zk.empty(), d.profile);
  SchedulerDriver driver(&scheduler, framework, *address, driverOptions);
  std::signal(SIGINT, [](int) { interrupted = 1; });
  std::signal(SIGTERM, [](int) { interrupted = 1; });
  std::signal(SIGUSR1, [](int) { detached = 1; });
  driver.start();
  if (cancel) {
    // Subscribed as the job's framework, it can be torn down.
    auto until = std::chrono::steady_clock::now() + seconds(30);
    while (driver.frameworkId().empty() && driver.status() == DriverStatus::kRunning &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(100));
    }
    bool reached = !driver.frameworkId().empty();
    driver.stop();
    driver.join();
    record->set({{"state", "cancelled"}});
    std::cout << "Job " << job->name << " cancelled"
              << (reached ? "" : " (its framework was not reached: the master may keep its "
                                 "tasks until its failover timeout)")
              << std::endl;
    return 0;
  }
  bool over = false;
  while (!over && !interrupted && !detached && driver.status() == DriverStatus::kRunning) {
    over = scheduler.waitOver(milliseconds(200));
    scheduler.tick(&driver);
    for (const std::string& line : scheduler.takeEvents()) std::cout << line << std::endl;
  }
  for (const std::string& line : scheduler.takeEvents()) std::cout << line << std::endl;
  if (detached && !over) {
    // The cluster stops (agora stop): the framework fails over, and `agora batch resume`
    // takes the job up again.
    std::cout << "Detached: the job waits for agora batch resume" << std::endl;
    driver.stop(true);
    driver.join();
    return 1;
  }
  bool succeeded = scheduler.succeeded();
  std::string ended = succeeded ? "finished" : interrupted ? "cancelled" : "failed";
  if (interrupted) {
    std::cout << "Interrupted: the job's tasks are killed" << std::endl;
  } else if (succeeded) {
    std::cout << "Job " << job->name << " finished" << std::endl;
  } else {
    std::cerr << "agora batch run: " << scheduler.failure() << "\n";
  }
  // Done with, whichever way: the master tears the framework down and kills what is left.
  driver.stop();
  driver.join();
  if (record) {
    json fields = {{"state", ended}};
    if (ended == "failed") fields["failure"] = scheduler.failure();
    record->set(fields);
  }
  return succeeded ? 0 : 1;
}

// Starts a driver for the job in `dir` in the background, its output in driver.log, and waits
// until it has subscribed (or ended). Prints why not and returns false.
bool startDriver(const std::string& dir, const std::vector<std::string>& args,
                 const std::string& verb) {
  SpawnOptions spawn;
  spawn.argv = {selfExecutable(), "batch", "run", dir + "/job.yaml", "--state_dir=" + dir};
  spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
  spawn.env = currentEnvironment();
  spawn.stdoutPath = dir + "/driver.log";
  spawn.stderrPath = dir + "/driver.log";
  spawn.newSession = true;
  // What an earlier driver wrote is not this one's word.
  size_t logStart = readFile(dir + "/driver.log").value_or("").size();
  auto pid = spawnProcess(spawn);
  if (!pid) {
    std::cerr << "agora batch " << verb << ": " << pid.error() << "\n";
    return false;
  }
  auto until = std::chrono::steady_clock::now() + seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (::waitpid(*pid, &status, WNOHANG) == *pid) {
      json state = readState(dir);
      if (terminalJobState(state.value("state", ""))) return true;  // a quick job
      std::cerr << "agora batch " << verb << ": the job's driver "
                << describeWaitStatus(status) << ":\n"
                << readFile(dir + "/driver.log").value_or("");
      return false;
    }
    std::string log = readFile(dir + "/driver.log").value_or("");
    if (log.find("Subscribed as framework", std::min(logStart, log.size())) != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  std::cerr << "agora batch " << verb << ": the job's driver has not subscribed after 30 s; "
            << "it goes on trying (" << dir << "/driver.log)\n";
  return true;
}

int batchSubmit(int argc, const char* const* argv) {
  DriverFlags d;
  Flags flags("agora batch submit JOB.yaml [flags]",
              "Runs a batch job in the background and prints its id. Its record is kept in\n"
              "the profile: see it with `agora batch status ID`, its tasks' output with\n"
              "`agora batch logs ID`; stop it with `agora batch cancel ID`.");
  d.add(flags);
  flags.add(&d.failoverTimeout, "failover_timeout",
            "How long the master keeps the job's tasks running when its driver dies, waiting\n"
            "for `agora batch resume`.");
  std::vector<std::string> positional;
  int rc = parseFlags(flags, argc, argv, &positional);
  if (rc >= 0) return rc;
  if (positional.size() != 1) {
    std::cerr << "agora batch submit: give one job file (see --help)\n";
    return 2;
  }
  auto job = batch::loadJob(positional[0]);
  if (!job) {
    std::cerr << "agora batch submit: " << job.error() << "\n";
    return 2;
  }
  if (!d.output.empty() && d.output.front() != '/') {
    std::cerr << "agora batch submit: --output must be an absolute path\n";
    return 2;
  }
  // The next free id of this job's name: wordcount-1, wordcount-2, ...
  std::string root = jobsDir(d.profile);
  if (Status made = makeDirectories(root); !made) {
    std::cerr << "agora batch submit: " << made.error() << "\n";
    return 1;
  }
  std::string id;
  for (int n = 1;; ++n) {
    id = job->name + "-" + std::to_string(n);
    if (::mkdir((root + "/" + id).c_str(), 0755) == 0) break;
    if (errno != EEXIST) {
      std::cerr << "agora batch submit: cannot make " << root << "/" << id << ": "
                << std::strerror(errno) << "\n";
      return 1;
    }
  }
  std::string dir = root + "/" + id;
  if (Status copied = writeFileAtomic(dir + "/job.yaml", readFile(positional[0]).value_or(""));
      !copied) {
    std::cerr << "agora batch submit: " << copied.error() << "\n";
    return 1;
  }
  json state = {{"id", id},
                {"name", job->name},
                {"state", "submitted"},
                {"submitted", static_cast<int64_t>(::time(nullptr))},
                {"driver_args", d.args()}};
  (void)writeFileAtomic(dir + "/state.json", state.dump());
  if (!startDriver(dir, d.args(), "submit")) return 1;
  std::cout << id << std::endl;
  std::cerr << "Submitted. Follow it with: agora batch status " << id << "\n";
  return 0;
}

// The job directory for `id` in the profile; prints why not and returns "".
std::string jobDir(const std::string& profile, const std::string& id, const std::string& verb) {
  std::string dir = jobsDir(profile) + "/" + id;
  if (id.empty() || id.find('/') != std::string::npos || !pathExists(dir + "/state.json")) {
    std::cerr << "agora batch " << verb << ": no job '" << id << "' in profile " << profile
              << " (agora batch status lists them)\n";
    return "";
  }
  return dir;
}

// Parses the flags of a verb that takes one job id (`profile` is bound to --profile), and
// finds the job: -1 then, with its id and directory; else the exit code, having said why.
int parseJobArgs(Flags& flags, int argc, const char* const* argv, const std::string& verb,
                 const std::string& profile, std::string* id, std::string* dir) {
  std::vector<std::string> positional;
  int rc = parseFlags(flags, argc, argv, &positional);
  if (rc >= 0) return rc;
  if (positional.size() != 1) {
    std::cerr << "agora batch " << verb << ": give one job id (agora batch status lists them)\n";
    return 2;
  }
  *id = positional[0];
  *dir = jobDir(profile, *id, verb);
  return dir->empty() ? 1 : -1;
}

int batchStatus(int argc, const char* const* argv) {
  std::string profile = "default";
  Flags flags("agora batch status [ID]",
              "Without an id: each job submitted in the profile, its state and progress. With\n"
              "one: the job's stages. A job whose driver is gone shows `stopped`: resume it\n"
              "with `agora batch resume ID`.");
  flags.add(&profile, "profile", "The profile the jobs were submitted in.");
  std::vector<std::string> positional;
  int rc = parseFlags(flags, argc, argv, &positional);
  if (rc >= 0) return rc;
  if (positional.empty()) {
    std::vector<std::string> ids;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(jobsDir(profile), ec)) {
      ids.push_back(entry.path().filename().string());
    }
    std::sort(ids.begin(), ids.end());
    Table table({"ID", "STATE", "TASKS", "STAGE", "FRAMEWORK"});
    for (const std::string& id : ids) {
      json state = readState(jobsDir(profile) + "/" + id);
      if (state.empty()) continue;
      int tasks = 0, finished = 0;
      std::string current;
      for (const batch::StageProgress& c : recordedProgress(jobsDir(profile) + "/" + id, state)) {
        tasks += c.tasks;
        finished += c.finished;
        if (c.ready && c.finished < c.tasks) current += (current.empty() ? "" : ",") + c.name;
      }
      table.add({id, shownState(state),
                 std::to_string(finished) + "/" + std::to_string(tasks),
                 current.empty() ? "-" : current, state.value("framework_id", "-")});
    }
    table.print(std::cout);
    return 0;
  }
  std::string dir = jobDir(profile, positional[0], "status");
  if (dir.empty()) return 1;
  json state = readState(dir);
  std::string shown = shownState(state);
  std::cout << "Job:        " << state.value("id", positional[0]) << "\n"
            << "State:      " << shown << "\n";
  if (!state.value("failure", "").empty()) {
    std::cout << "Failure:    " << state.value("failure", "") << "\n";
  }
  if (shown == "stopped") {
    std::cout << "            its driver is not running: agora batch resume " << positional[0]
              << "\n";
  }
  std::cout << "Framework:  " << state.value("framework_id", "-") << "\n"
            << "Record:     " << dir << "\n\n";
  Table table({"STAGE", "TASKS", "FINISHED", "RUNNING", "FAILURES", "STATE"});
  for (const batch::StageProgress& c : recordedProgress(dir, state)) {
    std::string stage = c.finished == c.tasks ? "finished" : c.ready ? "running" : "waiting";
    table.add({c.name, std::to_string(c.tasks), std::to_string(c.finished),
               std::to_string(c.running), std::to_string(c.failures), stage});
  }
  table.print(std::cout);
  return 0;
}

int batchLogs(int argc, const char* const* argv) {
  std::string profile = "default";
  std::string master;
  std::string zk;
  std::string stage;
  int task = -1;
  bool stderrToo = false;
  Flags flags("agora batch logs ID [--stage=NAME] [--task=N]",
              "Prints the output of the latest attempt of each task of the job (or of one\n"
              "stage, or one task), read from its sandbox through the leading master.");
  flags.add(&profile, "profile", "The profile the job was submitted in.");
  flags.add(&master, "master", "The master's HTTP address (default: the profile's master).");
  flags.add(&zk, "zk", "Follow the leader elected in ZooKeeper.");
  flags.add(&stage, "stage", "Only this stage's tasks.");
  flags.add(&task, "task", "Only the task with this index (0-based) in its stage.");
  flags.add(&stderrToo, "stderr", "Print each task's stderr after its stdout.");
  std::string id;
  std::string dir;
  if (int rc = parseJobArgs(flags, argc, argv, "logs", profile, &id, &dir); rc >= 0) {
    return rc;
  }
  json state = readState(dir);
  json cluster;
  std::string leading;
  if (int failed = leaderState("batch logs", master, zk, profile, &cluster, &leading);
      failed >= 0) {
    return failed;
  }
  std::map<std::string, json> agentStates;  // by agent id, read once
  auto runner = recordedRunner(dir, state);
  if (!stage.empty()) {
    bool known = false;
    for (const batch::StageProgress& c : runner ? runner->progress()
                                                : std::vector<batch::StageProgress>{}) {
      known = known || c.name == stage;
    }
    if (!known) {
      std::cerr << "agora batch logs: job " << id << " has no stage '" << stage
                << "'" << (runner ? "" : " in its record yet") << "\n";
      return 1;
    }
  }
  for (const batch::JobRunner::TaskRef& ref :
       runner ? runner->latestAttempts() : std::vector<batch::JobRunner::TaskRef>{}) {
    if ((!stage.empty() && ref.stage != stage) || (task >= 0 && ref.index != task)) continue;
    const std::string& taskId = ref.taskId;
    const std::string& agentId = ref.agentId;
    std::cout << "==> " << ref.stage << "/" << ref.index;
    if (taskId.empty()) {
      std::cout << ": not launched yet <==\n";
      continue;
    }
    std::cout << " (" << taskId << ") <==\n";
    if (agentStates.count(agentId) == 0) {
      auto response =
          httpGet(leading, "/agent/state?agent_id=" + urlEncode(agentId), seconds(5));
      agentStates[agentId] = response && response->status == 200
                                 ? json::parse(response->body, nullptr, false)
                                 : json();
    }
    std::string sandbox = agent::findTaskSandbox(agentStates[agentId], taskId).directory;
    if (sandbox.empty()) {
      std::cout << "(its agent " << agentId << " no longer has its sandbox)\n";
      continue;
    }
    for (const char* file : {"stdout", "stderr"}) {
      if (std::string(file) == "stderr" && !stderrToo) break;
      int64_t offset = 0;
      std::string out;
      agent::readSandboxFile(leading, sandbox + "/" + file, &offset, &out, agentId);
      if (std::string(file) == "stderr") std::cout << "--- stderr:\n";
      std::cout << out;
      if (!out.empty() && out.back() != '\n') std::cout << "\n";
    }
  }
  return 0;
}

int batchCancel(int argc, const char* const* argv) {
  std::string profile = "default";
  Flags flags("agora batch cancel ID",
              "Stops a job: its running tasks are killed and its framework torn down.");
  flags.add(&profile, "profile", "The profile the job was submitted in.");
  std::string id;
  std::string dir;
  if (int rc = parseJobArgs(flags, argc, argv, "cancel", profile, &id, &dir); rc >= 0) {
    return rc;
  }
  json state = readState(dir);
  if (terminalJobState(state.value("state", ""))) {
    std::cout << "Job " << id << " is " << state.value("state", "") << " already\n";
    return 0;
  }
  if (driverAlive(state)) {
    ::kill(state.value("pid", 0), SIGTERM);
    bool gone = driverGone(dir, seconds(60));
    state = readState(dir);
    if (!gone) {
      std::cerr << "agora batch cancel: the job's driver (pid " << state.value("pid", 0)
                << ") has not ended after 60 s\n";
      return 1;
    }
    std::cout << "Job " << id << " " << state.value("state", "cancelled") << "\n";
    return 0;
  }
  // No driver: one subscribes as the job's framework to tear it down.
  std::vector<std::string> args = {"run", "--state_dir=" + dir, "--cancel"};
  for (std::string& a : driverArgs(state)) args.push_back(std::move(a));
  std::vector<const char*> argv2;
  for (const std::string& a : args) argv2.push_back(a.c_str());
  return batchRun(static_cast<int>(argv2.size()), argv2.data());
}

int batchResume(int argc, const char* const* argv) {
  std::string profile = "default";
  Flags flags("agora batch resume ID",
              "Starts the driver of a job whose driver is gone (`stopped` in agora batch\n"
              "status). It subscribes as the same framework: tasks that finished are not run\n"
              "again, and those still running are followed where they run.");
  flags.add(&profile, "profile", "The profile the job was submitted in.");
  std::string id;
  std::string dir;
  if (int rc = parseJobArgs(flags, argc, argv, "resume", profile, &id, &dir); rc >= 0) {
    return rc;
  }
  json state = readState(dir);
  if (terminalJobState(state.value("state", ""))) {
    std::cerr << "agora batch resume: job " << id << " is "
              << state.value("state", "") << "\n";
    return 1;
  }
  if (driverAlive(state)) {
    std::cerr << "agora batch resume: job " << id << " has its driver running (pid "
              << state.value("pid", 0) << ")\n";
    return 1;
  }
  if (!startDriver(dir, driverArgs(state), "resume")) return 1;
  std::cout << "Job " << id << " resumed\n";
  return 0;
}

}  // namespace

void detachBatchDrivers(const std::string& profile) {
  std::vector<std::pair<pid_t, std::string>> live;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(jobsDir(profile), ec)) {
    json state = readState(entry.path().string());
    if (driverAlive(state)) {
      ::kill(state.value("pid", 0), SIGUSR1);
      live.emplace_back(state.value("pid", 0), entry.path().string());
    }
  }
  auto until = std::chrono::steady_clock::now() + seconds(5);
  for (const auto& [pid, dir] : live) {
    auto left = std::max<Duration>(Duration::zero(), until - std::chrono::steady_clock::now());
    if (!driverGone(dir, left)) ::kill(pid, SIGKILL);
  }
}

int batchCommand(int argc, const char* const* argv) {
  static const char* kUsage =
      "Usage: agora batch VERB ...   (agora batch VERB --help)\n"
      "Batch jobs: pipelines of stages of parallel tasks (docs/batch.md).\n"
      "  run JOB.yaml      run a job in the foreground\n"
      "  submit JOB.yaml   run a job in the background; prints its id\n"
      "  status [ID]       the profile's jobs, or one job's stages\n"
      "  logs ID           the output of the job's tasks\n"
      "  cancel ID         kill the job's tasks and end it\n"
      "  resume ID         start the driver of a job whose driver is gone\n";
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string verb = argv[1];
  if (verb == "run") return batchRun(argc - 1, argv + 1);
  if (verb == "submit") return batchSubmit(argc - 1, argv + 1);
  if (verb == "status") return batchStatus(argc - 1, argv + 1);
  if (verb == "logs") return batchLogs(argc - 1, argv + 1);
  if (verb == "cancel") return batchCancel(argc - 1, argv + 1);
  if (verb == "resume") return batchResume(argc - 1, argv + 1);
  std::cerr << "agora batch: unknown command '" << verb << "'\n" << kUsage;
  return 2;
}

}  // namespace agora::cli
