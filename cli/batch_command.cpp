// agora batch: pipelines of stages, each a set of parallel tasks (frameworks/batch). This first
// form runs a job in the foreground: `agora batch run JOB.yaml` subscribes a framework for it,
// prints each stage's start, retries and end, and exits 0 once every stage has finished (1 when
// the job fails, 2 for a bad job file).

#include <csignal>
#include <iostream>
#include <unistd.h>

#include "agora/scheduler.hpp"
#include "cli/commands.hpp"
#include "cli/daemon.hpp"
#include "cli/profile.hpp"
#include "common/flags.hpp"
#include "frameworks/batch/batch_scheduler.hpp"
#include "frameworks/batch/job.hpp"

namespace agora::cli {

namespace {

volatile std::sig_atomic_t interrupted = 0;

int batchRun(int argc, const char* const* argv) {
  std::string master;
  std::string zk;
  std::string profile = "default";
  std::string credentials;
  Duration localityWait = seconds(3);
  std::string output;
  Flags flags("agora batch run JOB.yaml [flags]",
              "Runs a batch job (docs/batch.md): its stages in dependency order, each stage's\n"
              "tasks in parallel on the cluster, failed tasks again on other agents, and\n"
              "speculative copies of stragglers. Exits 0 once every stage has finished.");
  flags.add(&master, "master", "The master's HTTP address (default: the profile's master).");
  flags.add(&zk, "zk", "Follow the leader elected in ZooKeeper, e.g. zk://host:2181/agora.");
  flags.add(&profile, "profile", "The local cluster to use when --master is not given.");
  flags.add(&credentials, "credentials",
            "CURVE credentials for the master (default: $AGORA_CREDENTIALS, else the profile's\n"
            "operator credentials when --master is not given).");
  flags.add(&localityWait, "locality_wait",
            "How long a task whose input names where its data lives waits for an offer from\n"
            "there before it takes any.");
  flags.add(&output, "output",
            "The job's output directory ($AGORA_BATCH_OUTPUT), instead of the file's.");
  std::vector<std::string> positional;
  int rc = parseFlags(flags, argc, argv, &positional);
  if (rc >= 0) return rc;
  if (positional.size() != 1) {
    std::cerr << "agora batch run: give one job file (see --help)\n";
    return 2;
  }
  auto job = batch::loadJob(positional[0]);
  if (!job) {
    std::cerr << "agora batch run: " << job.error() << "\n";
    return 2;
  }
  if (!output.empty()) {
    if (output.front() != '/') {
      std::cerr << "agora batch run: --output must be an absolute path\n";
      return 2;
    }
    job->output = output;
  }
  auto address = resolveMaster(master, zk, profile);
  if (!address) {
    std::cerr << "agora batch run: " << address.error() << "\n";
    return 1;
  }
  FrameworkInfo framework;
  framework.set_name("batch:" + job->name);
  framework.set_user(job->user.empty() ? "root" : job->user);
  framework.set_hostname(localHostname());
  framework.add_roles(job->role);
  framework.add_capabilities(FrameworkInfo::TASK_KILLING_STATE);
  framework.add_capabilities(FrameworkInfo::MULTI_ROLE);
  int tasks = 0;
  for (const batch::Stage& s : job->stages) tasks += s.tasks;
  std::cout << "Job " << job->name << ": " << job->stages.size() << " stages, " << tasks
            << " tasks" << std::endl;

  batch::RunnerOptions options;
  options.localityWait = localityWait;
  batch::BatchScheduler scheduler(*job, options);
  SchedulerDriverOptions driverOptions;
  driverOptions.masterTimeout = std::chrono::seconds(30);
  driverOptions.credentials =
      resolveCredentials(credentials, master.empty() && zk.empty(), profile);
  SchedulerDriver driver(&scheduler, framework, *address, driverOptions);
  std::signal(SIGINT, [](int) { interrupted = 1; });
  std::signal(SIGTERM, [](int) { interrupted = 1; });
  driver.start();
  bool over = false;
  while (!over && !interrupted && driver.status() == DriverStatus::kRunning) {
    over = scheduler.waitOver(milliseconds(200));
    scheduler.tick(&driver);
    for (const std::string& line : scheduler.takeEvents()) std::cout << line << std::endl;
  }
  for (const std::string& line : scheduler.takeEvents()) std::cout << line << std::endl;
  bool succeeded = scheduler.succeeded();
  if (interrupted) {
    std::cout << "Interrupted: the job's tasks are killed" << std::endl;
  } else if (succeeded) {
    std::cout << "Job " << job->name << " finished" << std::endl;
  } else {
    std::cerr << "agora batch run: " << scheduler.failure() << "\n";
  }
  driver.stop();
  driver.join();
  return succeeded ? 0 : 1;
}

}  // namespace

int batchCommand(int argc, const char* const* argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << "Usage: agora batch run JOB.yaml [flags]   (agora batch run --help)\n"
                 "Batch jobs: pipelines of stages of parallel tasks (docs/batch.md).\n";
    return argc < 2 ? 2 : 0;
  }
  std::string verb = argv[1];
  if (verb == "run") return batchRun(argc - 1, argv + 1);
  std::cerr << "agora batch: unknown command '" << verb << "' (agora batch run JOB.yaml)\n";
  return 2;
}

}  // namespace agora::cli
