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

namespace agora::agent {

PosixContainerizer::PosixContainerizer(EventLoop& loop, std::optional<CgroupsIsolation> isolation)
    : loop_(loop), isolation_(std::move(isolation)) {
  if (isolation_ && isolation_->anyCgroups()) {
    Status moved = cgroups::leaveOwnCgroupForALeaf(isolation_->layout, isolation_->root,
                                                   ::getpid());
    if (!moved) {
      LOG(WARNING) << "Could not move the agent into a leaf of its cgroup; containers may not "
                      "get their controllers: "
                   << moved.error();
    }
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
  if (isolation_ && isolation_->anyCgroups()) {
    // The agent's own directory for containers, if no other agent shares it.
    cgroups::Container root(isolation_->layout, "", isolation_->root);
    (void)root.removeIfEmpty();
  }
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
  if (isolation_ && !isolation_->namespaces.empty()) {
    // Namespaces first (inside the cgroups, which the outer wrapper below enters).
    const auto& ns = isolation_->namespaces;
    std::vector<std::string> unshare = {"/usr/bin/unshare", "--fork", "--kill-child"};
    if (ns.count("pid") > 0) {
      unshare.push_back("--pid");
      unshare.push_back("--mount-proc");
    }
    if (ns.count("mount") > 0 || ns.count("pid") > 0) {
      unshare.push_back("--mount");
      unshare.push_back("--propagation=private");
    }
    if (ns.count("net") > 0) unshare.push_back("--net");
    if (ns.count("uts") > 0) unshare.push_back("--uts");
    if (ns.count("ipc") > 0) unshare.push_back("--ipc");
    std::string setup;
    if (ns.count("mount") > 0) {
      // A private /tmp: the sandbox's tmp/ mounted over it. Were the agent's work directory
      // under /tmp it would vanish with it (the sandbox, the executors' socket), so it is
      // mounted into the new /tmp at the same place first.
      spawn.env["AGORA_CONTAINER_TMP"] = config.directory + "/tmp";
      spawn.env["AGORA_CONTAINER_WORK_DIR"] = config.workDir;
      setup +=
          "t=\"$AGORA_CONTAINER_TMP\"; w=\"$AGORA_CONTAINER_WORK_DIR\"; "
          "mkdir -p \"$t\" && chmod 1777 \"$t\" || exit 125; "
          "case \"$w/\" in /tmp/?*) mkdir -p \"$t/${w#/tmp/}\" && "
          "mount --bind \"$w\" \"$t/${w#/tmp/}\" || exit 125;; esac; "
          "mount --rbind \"$t\" /tmp || exit 125; "
          "export TMPDIR=/tmp; unset AGORA_CONTAINER_TMP AGORA_CONTAINER_WORK_DIR; ";
    }
    if (ns.count("net") > 0) {
      // Its own network stack: a loopback of its own and no other interface.
      setup += "ip link set lo up || exit 125; ";
    }
    if (ns.count("uts") > 0) {
      spawn.env["AGORA_CONTAINER_HOSTNAME"] = config.executorId;
      setup += "hostname \"$AGORA_CONTAINER_HOSTNAME\" || exit 125; ";
    }
    unshare.insert(unshare.end(),
                   {"--", "/bin/sh", "-c",
                    setup + "unset AGORA_CONTAINER_HOSTNAME; exec \"$@\"", "agora-ns"});
    unshare.insert(unshare.end(), spawn.argv.begin(), spawn.argv.end());
    spawn.argv = std::move(unshare);
  }
  if (isolation_ && isolation_->anyCgroups()) {
    auto container = std::make_unique<cgroups::Container>(isolation_->layout, isolation_->root,
                                                          config.containerId);
    Status isolated = container->create();
    if (isolated) {
      isolated = applyLimits(*container, config.resources);
    }
    if (isolated && isolation_->pids && isolation_->maxPids > 0) {
      isolated = container->setPidsLimit(isolation_->maxPids);
    }
    if (isolated && isolation_->devices) {
      isolated = container->setDevices(cgroups::kStandardDevices);
    }
    if (!isolated) {
      (void)container->destroy(seconds(5));
      return Error("cannot isolate the container: " + isolated.error());
    }
    // The wrapper puts itself (and so everything it execs and starts) into the cgroups first.
    std::string dirs;
    for (const std::string& dir : container->directories()) {
      dirs += (dirs.empty() ? "" : " ") + dir;
    }
    spawn.env["AGORA_CGROUPS"] = dirs;
    std::vector<std::string> wrapped = {
        "/bin/sh", "-c",
        "for d in $AGORA_CGROUPS; do echo $$ > \"$d/cgroup.procs\" || exit 125; done; "
        "unset AGORA_CGROUPS; exec \"$@\"",
        "agora-container"};
    wrapped.insert(wrapped.end(), spawn.argv.begin(), spawn.argv.end());
    spawn.argv = std::move(wrapped);
    cgroups_[config.containerId] = std::move(container);
  }
  auto pid = spawnProcess(spawn);
  if (!pid) {
    auto c = cgroups_.find(config.containerId);
    if (c != cgroups_.end()) {
      (void)c->second->destroy(seconds(5));
      cgroups_.erase(c);
    }
    return Error(pid.error());
  }
  pids_[config.containerId] = *pid;
  containers_[*pid] = config.containerId;
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
  auto c = cgroups_.find(containerId);
  if (c != cgroups_.end()) {
    // Also what left the session: the cgroup holds everything the container started.
    if (Status killed = c->second->killAll(seconds(5)); !killed) {
      LOG(WARNING) << killed.error();
    }
  }
}

Status PosixContainerizer::applyLimits(cgroups::Container& container, const Resources& resources) {
  double cpus = resources.scalar("cpus");
  double mem = resources.scalar("mem");
  if (isolation_->cpu && cpus > 0) {
    if (Status s = container.setCpus(cpus, isolation_->cpuHardLimit); !s) {
      return s;
    }
  }
  if (isolation_->memory && mem > 0) {
    return container.setMemoryLimit(static_cast<uint64_t>(mem * 1024 * 1024) +
                                    kExecutorMemoryOverhead);
  }
  return ok();
}

Status PosixContainerizer::update(const std::string& containerId, const Resources& resources,
                                  const std::vector<std::string>& devices) {
  auto c = cgroups_.find(containerId);
  if (c == cgroups_.end()) {
    return ok();
  }
  if (Status limited = applyLimits(*c->second, resources); !limited) {
    return limited;
  }
  if (!isolation_->devices) {
    return ok();
  }
  // Only the difference: a rule is never taken away from a device still allowed, even for an
  // instant.
  std::set<std::string> wanted(devices.begin(), devices.end());
  std::set<std::string>& allowed = devices_[containerId];
  for (const std::string& rule : wanted) {
    if (allowed.count(rule) == 0) {
      if (Status s = c->second->allowDevice(rule); !s) {
        return s;
      }
    }
  }
  for (const std::string& rule : allowed) {
    if (wanted.count(rule) == 0 &&
        std::find(cgroups::kStandardDevices.begin(), cgroups::kStandardDevices.end(), rule) ==
            cgroups::kStandardDevices.end()) {
      if (Status s = c->second->denyDevice(rule); !s) {
        return s;
      }
    }
  }
  allowed = std::move(wanted);
  return ok();
}

std::optional<Limitation> PosixContainerizer::limitation(const std::string& containerId) {
  auto c = cgroups_.find(containerId);
  if (c == cgroups_.end()) {
    return std::nullopt;
  }
  auto stats = c->second->stats();
  if (!stats || stats->oomKills == 0) {
    return std::nullopt;
  }
  Limitation l;
  l.reason = TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY;
  l.message = "the container exceeded its memory limit of " +
              std::to_string(stats->memoryLimitBytes / (1024 * 1024)) +
              " MiB and was killed by the kernel's OOM killer";
  return l;
}

Result<cgroups::Stats> PosixContainerizer::usage(const std::string& containerId) const {
  auto c = cgroups_.find(containerId);
  if (c == cgroups_.end()) {
    return Error("no isolated container " + containerId);
  }
  return c->second->stats();
}

void PosixContainerizer::destroyAll() {
  for (const auto& [id, pid] : pids_) {
    signalSession(pid, SIGKILL);
  }
  for (auto& [id, container] : cgroups_) {
    (void)container->killAll(seconds(5));
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
  devices_.erase(containerId);
  auto c = cgroups_.find(containerId);
  if (c != cgroups_.end()) {
    if (Status gone = c->second->destroy(seconds(5)); !gone) {
      LOG(WARNING) << "Container " << containerId << ": " << gone.error();
    }
    cgroups_.erase(c);
  }
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
  std::unique_ptr<cgroups::Container> container;
  if (isolation_ && isolation_->anyCgroups()) {
    container = std::make_unique<cgroups::Container>(isolation_->layout, isolation_->root,
                                                     containerId);
  }
  bool alive = process.pid > 1 && process.startTicks != 0 &&
               processStartTicks(process.pid) == process.startTicks;
  if (!alive) {
    // What the executor started in its session is orphaned now; unless the pid names a new,
    // unrelated process (which could lead a session of the same id), that goes.
    if (process.pid > 1 && !processAlive(process.pid)) {
      signalSession(process.pid, SIGKILL);
    }
    if (container) {
      // What the executor left behind (if it was isolated) goes now.
      if (Status gone = container->destroy(seconds(5)); !gone) {
        LOG(WARNING) << "Container " << containerId << ": " << gone.error();
      }
    }
    return false;
  }
  pids_[containerId] = process.pid;
  containers_[process.pid] = containerId;
  if (container) {
    cgroups_[containerId] = std::move(container);
  }
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
