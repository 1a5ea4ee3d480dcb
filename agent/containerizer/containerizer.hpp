#pragma once

// How an agent starts and stops the container an executor runs in. This version runs
// the executor as a plain child process in its own session (posix_containerizer); the Linux
// containerizer (cgroups, namespaces) and a fake for simulated agents sit behind the same
// interface.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "isolators/cgroups.hpp"
#include "isolators/isolator.hpp"
#include "agora/agora.pb.h"
#include "common/resources.hpp"
#include "common/result.hpp"

namespace agora::agent {

struct ContainerConfig {
  std::string containerId;
  std::string frameworkId;
  std::string executorId;
  ExecutorInfo executorInfo;
  // What to run: the built-in executor ("agora executor") unless executorInfo is CUSTOM.
  std::vector<std::string> argv;
  bool shell = false;            // argv[0] is a shell command line
  std::string directory;         // the sandbox (the containerizer creates it)
  std::string workDir;           // the agent's (a private /tmp keeps it where it is)
  std::string imageStore;        // and the image store
  std::map<std::string, std::string> env;
  Resources resources;
  std::string user;              // run a custom executor as this user ("" : the agent's)
  // A custom executor runs under this command ("agora executor confine --"), which confines it
  // as the built-in executors' tasks are (isolators/confine.hpp) before it becomes its user.
  std::vector<std::string> confine;
};

// A resource limit a container ran into (the memory limit's OOM kill): tasks that end in such
// a container end with this reason.
using Limitation = isolators::Limitation;

// A container's first process, as the agent's checkpoint records it.
struct ContainerProcess {
  pid_t pid = 0;
  uint64_t startTicks = 0;  // processStartTicks(pid): tells a reused pid from the original
};

class Containerizer {
 public:
  // Called on the agent's loop when a container's executor has exited (wait(2) status).
  using ExitCallback = std::function<void(const std::string& containerId, int status)>;

  virtual ~Containerizer() = default;

  virtual void setExitCallback(ExitCallback callback) = 0;
  virtual Status launch(const ContainerConfig& config) = 0;
  // Kills every process of the container now. The exit callback follows.
  virtual void destroy(const std::string& containerId) = 0;
  // What the container may use now: its executor's resources and its live tasks', and the
  // devices beyond the standard ones it may open (devices cgroup rules: "c 195:0 rwm").
  virtual Status update(const std::string& containerId, const Resources& resources,
                        const std::vector<std::string>& devices = {}) {
    return ok();
  }
  // What the container uses now (isolating containerizers only).
  virtual Result<cgroups::Stats> usage(const std::string& containerId) const {
    return Error("containers are not isolated: no usage");
  }
  // A limit the container has run into so far, if any (isolating containerizers only).
  virtual std::optional<Limitation> limitation(const std::string& containerId) {
    return std::nullopt;
  }
  // The container's first process, for the agent's checkpoint; nullopt for containers that do
  // not outlive the agent (simulated ones).
  virtual std::optional<ContainerProcess> process(const std::string& containerId) const {
    return std::nullopt;
  }
  // Takes back a container that an earlier run of the agent started. False when its process
  // has gone (whatever is left of the container is destroyed; no exit callback follows). Once
  // taken back, the container is destroyed, updated and watched like one launched here; its
  // exit status is kUnknownWaitStatus (it is not this process's child).
  virtual bool recover(const std::string& containerId, const ContainerProcess& process) {
    return false;
  }
};

}  // namespace agora::agent
