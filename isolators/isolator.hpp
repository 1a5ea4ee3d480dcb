#pragma once

// An isolator confines a container in one respect: its cgroups, its namespaces. The
// containerizer runs a container through each of the isolators the agent was started with
// (--isolation), in order:
//
//   prepare   before the container's first process starts: make what it needs, and say how the
//             process gets inside (a wrapper command, environment)
//   isolate   once the process runs
//   update    whenever what the container may use changes (its tasks come and go)
//   usage     what it uses now
//   limitation a limit it has run into (the memory limit's OOM kill)
//   kill      kill every process it holds
//   cleanup   once its processes are gone
//   recover   take back a container an earlier run of the agent started
//
// Wrappers nest: the first isolator's is outermost, so with cgroups before namespaces a
// process enters its cgroups before it unshares anything, and everything it starts is counted.

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agora/agora.pb.h"
#include "common/resources.hpp"
#include "common/result.hpp"
#include "isolators/cgroups.hpp"

namespace agora::isolators {

struct ContainerSpec {
  std::string containerId;
  std::string executorId;
  std::string sandbox;
  Resources resources;  // what the container may use at first
  // Host paths the container needs wherever they are (the agent's work directory, the
  // directory of the program it runs, the image store): a private /tmp keeps them visible.
  std::vector<std::string> keep;
};

// How the container's first process is started: `wrapper` runs before the command (its last
// argument is followed by the command's argv), with `env` added.
struct Launch {
  std::vector<std::string> wrapper;
  std::map<std::string, std::string> env;
};

// A resource limit a container ran into: tasks that end in it end with this reason.
struct Limitation {
  TaskStatus::Reason reason = TaskStatus::REASON_CONTAINER_LIMITATION;
  std::string message;
};

class Isolator {
 public:
  virtual ~Isolator() = default;
  virtual std::string name() const = 0;

  virtual Status prepare(const ContainerSpec& spec, Launch* launch) = 0;
  virtual Status isolate(const std::string& containerId, pid_t pid) { return ok(); }
  virtual Status update(const std::string& containerId, const Resources& resources,
                        const std::vector<std::string>& devices) {
    return ok();
  }
  virtual std::optional<cgroups::Stats> usage(const std::string& containerId) const {
    return std::nullopt;
  }
  virtual std::optional<Limitation> limitation(const std::string& containerId) const {
    return std::nullopt;
  }
  virtual void kill(const std::string& containerId) {}
  virtual Status cleanup(const std::string& containerId) { return ok(); }
  virtual Status recover(const std::string& containerId) { return ok(); }
};

}  // namespace agora::isolators
