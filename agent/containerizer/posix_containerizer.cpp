#include "agent/containerizer/posix_containerizer.hpp"

#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glog/logging.h>

#include "common/fs.hpp"
#include "common/process.hpp"

namespace agora::agent {

PosixContainerizer::PosixContainerizer(EventLoop& loop) : loop_(loop) {
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
  auto pid = spawnProcess(spawn);
  if (!pid) {
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
}

void PosixContainerizer::destroyAll() {
  for (const auto& [id, pid] : pids_) {
    signalSession(pid, SIGKILL);
  }
}

void PosixContainerizer::reap() {
  while (true) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      return;
    }
    auto it = containers_.find(pid);
    if (it == containers_.end()) {
      continue;  // an orphan of some container, inherited as subreaper
    }
    std::string containerId = it->second;
    containers_.erase(it);
    pids_.erase(containerId);
    // Whatever the executor left behind in its session goes with it.
    signalSession(pid, SIGKILL);
    if (onExit_) {
      onExit_(containerId, status);
    }
  }
}

}  // namespace agora::agent
