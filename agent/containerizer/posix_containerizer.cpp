#include "agent/containerizer/posix_containerizer.hpp"

#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <glog/logging.h>

#include "common/fs.hpp"
#include "common/process.hpp"
#include "isolators/cgroups_isolator.hpp"
#include "isolators/namespaces_isolator.hpp"

namespace agora::agent {

PosixContainerizer::PosixContainerizer(EventLoop& loop, std::optional<CgroupsIsolation> isolation)
    : loop_(loop) {
  if (isolation && isolation->anyCgroups()) {
    isolators::CgroupsOptions options;
    options.layout = isolation->layout;
    options.root = isolation->root;
    options.cpu = isolation->cpu;
    options.cpuHardLimit = isolation->cpuHardLimit;
    options.memory = isolation->memory;
    options.pids = isolation->pids;
    options.maxPids = isolation->maxPids;
    options.devices = isolation->devices;
    options.executorMemoryOverhead = kExecutorMemoryOverhead;
    options.nestedForTasks = isolation->cpu || isolation->memory;
    isolators_.push_back(std::make_unique<isolators::CgroupsIsolator>(options));
  }
  if (isolation && !isolation->namespaces.empty()) {
    isolators_.push_back(std::make_unique<isolators::NamespacesIsolator>(isolation->namespaces));
  }
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    PLOG(WARNING) << "Could not become a child subreaper; orphans of containers go to init";
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  signalFd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  PCHECK(signalFd_ >= 0) << "signalfd";
  loop_.watchFd(signalFd_, [this] {
    signalfd_siginfo info;
    while (::read(signalFd_, &info, sizeof(info)) > 0) {
    }
    reap();
  });
  // A safety net in case SIGCHLD is not blocked in some thread and the signal goes elsewhere.
  armReapTimer();
}

void PosixContainerizer::armReapTimer() {
  reapTimer_ = loop_.after(seconds(1), [this] {
    reap();
    armReapTimer();
  });
}

PosixContainerizer::~PosixContainerizer() {
  loop_.cancel(reapTimer_);
  loop_.unwatchFd(signalFd_);
  ::close(signalFd_);
  for (const auto& [pid, fd] : recovered_) {
    if (fd >= 0) {
      loop_.unwatchFd(fd);
      ::close(fd);
    }
  }
}

Status PosixContainerizer::launch(const ContainerConfig& config) {
  Status made = makeDirectories(config.directory);
  if (!made) {
    return made;
  }
  SpawnOptions spawn;
  if (config.shell) {
    spawn.argv = {"/bin/sh", "-c", config.argv.empty() ? "" : config.argv[0]};
  } else {
    spawn.argv = config.argv;
  }
  spawn.env = config.env;
  spawn.cwd = config.directory;
  spawn.stdoutPath = config.directory + "/stdout";
  spawn.stderrPath = config.directory + "/stderr";
  spawn.newSession = true;
  if (!config.user.empty() && config.executorInfo.type() == ExecutorInfo::CUSTOM) {
    // A framework's own executor runs as the framework's user (the built-in ones switch for
    // each task).
    auto id = [&](const char* name) {
      auto it = config.env.find(name);
      return it == config.env.end() ? std::string() : it->second;
    };
    std::vector<std::string> asUser = {"/usr/bin/setpriv", "--reuid=" + id("AGORA_TASK_UID"),
                                       "--regid=" + id("AGORA_TASK_GID"), "--init-groups",
                                       "--"};
    asUser.insert(asUser.end(), spawn.argv.begin(), spawn.argv.end());
    spawn.argv = std::move(asUser);
  }
  if (!config.confine.empty() && config.executorInfo.type() == ExecutorInfo::CUSTOM) {
    std::vector<std::string> confined = config.confine;
    confined.insert(confined.end(), spawn.argv.begin(), spawn.argv.end());
    spawn.argv = std::move(confined);
  }
  // Each isolator prepares the container and wraps what starts it, the first outermost.
  isolators::ContainerSpec spec{config.containerId, config.executorId, config.directory,
                                config.resources, {config.workDir}};
  if (!config.shell && !config.argv.empty() && config.argv[0].find('/') != std::string::npos) {
    spec.keep.push_back(config.argv[0].substr(0, config.argv[0].rfind('/')));
  }
  if (!config.imageStore.empty()) {
    spec.keep.push_back(config.imageStore);
  }
  std::vector<std::vector<std::string>> launches;
  for (auto& isolator : isolators_) {
    isolators::Launch wrap;
    Status prepared = isolator->prepare(spec, &wrap);
    if (!prepared) {
      cleanup(config.containerId);
      return prepared;
    }
    for (auto& [name, value] : wrap.env) {
      spawn.env[name] = value;
    }
    launches.push_back(std::move(wrap.wrapper));
  }
  for (auto it = launches.rbegin(); it != launches.rend(); ++it) {
    it->insert(it->end(), spawn.argv.begin(), spawn.argv.end());
    spawn.argv = std::move(*it);
  }
  auto pid = spawnProcess(spawn);
  if (!pid) {
    cleanup(config.containerId);
    return Error(pid.error());
  }
  pids_[config.containerId] = *pid;
  containers_[*pid] = config.containerId;
  for (auto& isolator : isolators_) {
    if (Status isolated = isolator->isolate(config.containerId, *pid); !isolated) {
      LOG(WARNING) << "Container " << config.containerId << ": " << isolator->name() << ": "
                   << isolated.error();
    }
  }
  VLOG(1) << "Started container " << config.containerId << " as pid " << *pid;
  return ok();
}

void PosixContainerizer::destroy(const std::string& containerId) {
  auto it = pids_.find(containerId);
  if (it == pids_.end()) {
    return;
  }
  int n = signalSession(it->second, SIGKILL);
  VLOG(1) << "Destroying container " << containerId << ": killed " << n << " processes";
  // Also what left the session.
  for (auto& isolator : isolators_) {
    isolator->kill(containerId);
  }
}

void PosixContainerizer::cleanup(const std::string& containerId) {
  for (auto& isolator : isolators_) {
    if (Status gone = isolator->cleanup(containerId); !gone) {
      LOG(WARNING) << "Container " << containerId << ": " << isolator->name() << ": "
                   << gone.error();
    }
  }
}

Status PosixContainerizer::update(const std::string& containerId, const Resources& resources,
                                  const std::vector<std::string>& devices) {
  for (auto& isolator : isolators_) {
    if (Status updated = isolator->update(containerId, resources, devices); !updated) {
      return updated;
    }
  }
  return ok();
}

std::optional<Limitation> PosixContainerizer::limitation(const std::string& containerId) {
  for (const auto& isolator : isolators_) {
    if (auto limit = isolator->limitation(containerId)) {
      return limit;
    }
  }
  return std::nullopt;
}

Result<cgroups::Stats> PosixContainerizer::usage(const std::string& containerId) const {
  for (const auto& isolator : isolators_) {
    if (auto stats = isolator->usage(containerId)) {
      return *stats;
    }
  }
  return Error("no isolated container " + containerId);
}

void PosixContainerizer::destroyAll() {
  for (const auto& [id, pid] : pids_) {
    signalSession(pid, SIGKILL);
    for (auto& isolator : isolators_) {
      isolator->kill(id);
    }
  }
}

void PosixContainerizer::reap() {
  while (true) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      break;
    }
    if (containers_.count(pid) > 0) {
      exited(pid, status);
    }
    // Otherwise an orphan of some container, inherited as subreaper.
  }
  // Taken-back containers without a pidfd: polled.
  std::vector<pid_t> gone;
  for (const auto& [pid, fd] : recovered_) {
    if (fd < 0 && !processAlive(pid)) {
      gone.push_back(pid);
    }
  }
  for (pid_t pid : gone) {
    exited(pid, kUnknownWaitStatus);
  }
}

void PosixContainerizer::exited(pid_t pid, int status) {
  auto it = containers_.find(pid);
  if (it == containers_.end()) {
    return;
  }
  std::string containerId = it->second;
  containers_.erase(it);
  pids_.erase(containerId);
  auto watched = recovered_.find(pid);
  if (watched != recovered_.end()) {
    if (watched->second >= 0) {
      loop_.unwatchFd(watched->second);
      ::close(watched->second);
    }
    recovered_.erase(watched);
  }
  // Whatever the executor left behind in its session (and its cgroups) goes with it.
  signalSession(pid, SIGKILL);
  if (onExit_) {
    onExit_(containerId, status);
  }
  cleanup(containerId);
}

std::optional<ContainerProcess> PosixContainerizer::process(const std::string& containerId) const {
  auto it = pids_.find(containerId);
  if (it == pids_.end()) {
    return std::nullopt;
  }
  return ContainerProcess{it->second, processStartTicks(it->second)};
}

bool PosixContainerizer::recover(const std::string& containerId,
                                 const ContainerProcess& process) {
  for (auto& isolator : isolators_) {
    if (Status taken = isolator->recover(containerId); !taken) {
      LOG(WARNING) << "Container " << containerId << ": " << isolator->name() << ": "
                   << taken.error();
    }
  }
  bool alive = process.pid > 1 && process.startTicks != 0 &&
               processStartTicks(process.pid) == process.startTicks;
  if (!alive) {
    // What the executor started in its session is orphaned now; unless the pid names a new,
    // unrelated process (which could lead a session of the same id), that goes. Then whatever
    // else is left of the container.
    if (process.pid > 1 && !processAlive(process.pid)) {
      signalSession(process.pid, SIGKILL);
    }
    for (auto& isolator : isolators_) {
      isolator->kill(containerId);
    }
    cleanup(containerId);
    return false;
  }
  pids_[containerId] = process.pid;
  containers_[process.pid] = containerId;
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, process.pid, 0));
  recovered_[process.pid] = fd;
  if (fd >= 0) {
    // Readable once the process has ended.
    loop_.watchFd(fd, [this, pid = process.pid] { exited(pid, kUnknownWaitStatus); });
  } else {
    PLOG(WARNING) << "No pidfd for pid " << process.pid << "; polling it instead";
  }
  VLOG(1) << "Took back container " << containerId << " (pid " << process.pid << ")";
  return true;
}

}  // namespace agora::agent
