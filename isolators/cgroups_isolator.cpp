#include "isolators/cgroups_isolator.hpp"

#include <unistd.h>

#include <algorithm>

#include <glog/logging.h>

namespace agora::isolators {

CgroupsIsolator::CgroupsIsolator(CgroupsOptions options) : options_(std::move(options)) {
  // On v2 a cgroup with processes cannot hand controllers to children: the agent moves into a
  // leaf of its own first.
  Status moved = cgroups::leaveOwnCgroupForALeaf(options_.layout, options_.root, ::getpid());
  if (!moved) {
    LOG(WARNING) << "Could not move the agent into a leaf of its cgroup; containers may not "
                    "get their controllers: "
                 << moved.error();
  }
}

CgroupsIsolator::~CgroupsIsolator() {
  // The agent's own directory for containers, if no other agent shares it (and no container
  // was left running for the next agent).
  cgroups::Container root(options_.layout, "", options_.root);
  (void)root.removeIfEmpty();
}

Status CgroupsIsolator::applyLimits(cgroups::Container& container, const Resources& resources) {
  double cpus = resources.scalar("cpus");
  double mem = resources.scalar("mem");
  if (options_.cpu && cpus > 0) {
    if (Status s = container.setCpus(cpus, options_.cpuHardLimit); !s) {
      return s;
    }
  }
  if (options_.memory && mem > 0) {
    return container.setMemoryLimit(static_cast<uint64_t>(mem * 1024 * 1024) +
                                    options_.executorMemoryOverhead);
  }
  return ok();
}

Status CgroupsIsolator::prepare(const ContainerSpec& spec, Launch* launch) {
  auto container =
      std::make_unique<cgroups::Container>(options_.layout, options_.root, spec.containerId);
  Status isolated = container->create();
  if (isolated) {
    isolated = applyLimits(*container, spec.resources);
  }
  if (isolated && options_.pids && options_.maxPids > 0) {
    isolated = container->setPidsLimit(options_.maxPids);
  }
  if (isolated && options_.devices) {
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
  launch->env["AGORA_CGROUPS"] = dirs;
  if (options_.nestedForTasks) {
    launch->env["AGORA_TASK_CGROUPS"] = options_.cpuHardLimit ? "cfs" : "1";
  }
  launch->wrapper = {"/bin/sh", "-c",
                     "for d in $AGORA_CGROUPS; do echo $$ > \"$d/cgroup.procs\" || exit 125; "
                     "done; unset AGORA_CGROUPS; exec \"$@\"",
                     "agora-container"};
  containers_[spec.containerId] = std::move(container);
  return ok();
}

Status CgroupsIsolator::update(const std::string& containerId, const Resources& resources,
                               const std::vector<std::string>& devices) {
  auto c = containers_.find(containerId);
  if (c == containers_.end()) {
    return ok();
  }
  if (Status limited = applyLimits(*c->second, resources); !limited) {
    return limited;
  }
  if (!options_.devices) {
    return ok();
  }
  std::set<std::string> wanted(devices.begin(), devices.end());
  std::set<std::string>& allowed = devices_[containerId];
  if (options_.layout.v2) {
    // A new program with every rule replaces the old one in one step.
    if (wanted == allowed) {
      return ok();
    }
    std::vector<std::string> rules = cgroups::kStandardDevices;
    rules.insert(rules.end(), wanted.begin(), wanted.end());
    if (Status set = c->second->setDevices(rules); !set) {
      return set;
    }
    allowed = std::move(wanted);
    return ok();
  }
  // On v1 only the difference: a rule is never taken away from a device still allowed, even
  // for an instant.
  for (const std::string& rule : wanted) {
    if (allowed.count(rule) == 0) {
      if (Status s = c->second->allowDevice(rule); !s) {
        return s;
      }
    }
  }
  for (const std::string& rule : allowed) {
    bool standard = std::find(cgroups::kStandardDevices.begin(), cgroups::kStandardDevices.end(),
                              rule) != cgroups::kStandardDevices.end();
    if (wanted.count(rule) == 0 && !standard) {
      if (Status s = c->second->denyDevice(rule); !s) {
        return s;
      }
    }
  }
  allowed = std::move(wanted);
  return ok();
}

std::optional<cgroups::Stats> CgroupsIsolator::usage(const std::string& containerId) const {
  auto c = containers_.find(containerId);
  if (c == containers_.end()) {
    return std::nullopt;
  }
  auto stats = c->second->stats();
  if (!stats) {
    return std::nullopt;
  }
  return *stats;
}

std::optional<Limitation> CgroupsIsolator::limitation(const std::string& containerId) const {
  auto stats = usage(containerId);
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

void CgroupsIsolator::kill(const std::string& containerId) {
  auto c = containers_.find(containerId);
  if (c == containers_.end()) {
    return;
  }
  // The cgroup holds everything the container started, whatever session it is in.
  if (Status killed = c->second->killAll(seconds(5)); !killed) {
    LOG(WARNING) << killed.error();
  }
}

Status CgroupsIsolator::cleanup(const std::string& containerId) {
  devices_.erase(containerId);
  auto c = containers_.find(containerId);
  if (c == containers_.end()) {
    return ok();
  }
  Status gone = c->second->destroy(seconds(5));
  containers_.erase(c);
  return gone;
}

Status CgroupsIsolator::recover(const std::string& containerId) {
  containers_[containerId] =
      std::make_unique<cgroups::Container>(options_.layout, options_.root, containerId);
  return ok();
}

}  // namespace agora::isolators
