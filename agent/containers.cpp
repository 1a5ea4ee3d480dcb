// What the agent does for its containers beyond starting and stopping them: persistent
// volumes, the user tasks run as, the limits and GPUs the containerizer is given, and disk
// checks.

#include <pwd.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>

#include <glog/logging.h>

#include "agent/agent.hpp"
#include "common/fs.hpp"
#include "isolators/images/store.hpp"

namespace agora::agent {

namespace {

// Only ids the master would have accepted make a path: nothing escapes the volumes directory.
bool safeSegment(const std::string& s) {
  if (s.empty() || s == "." || s == "..") {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

std::optional<std::string> volumeDirectory(const std::string& workDir, const Resource& volume) {
  std::string role = reservationRole(volume);
  for (size_t start = 0; start <= role.size();) {
    size_t slash = role.find('/', start);
    if (!safeSegment(role.substr(start, slash == std::string::npos ? std::string::npos
                                                                   : slash - start))) {
      return std::nullopt;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (!safeSegment(volume.disk().persistence_id())) {
    return std::nullopt;
  }
  return workDir + "/volumes/roles/" + role + "/" + volume.disk().persistence_id();
}

}  // namespace

Status Agent::prepareUser(const std::string& user, ContainerConfig* config) {
  if (!options_.switchUser || user.empty()) {
    return ok();
  }
  auto cached = users_.find(user);
  if (cached == users_.end() || loop_.now() - cached->second.lookedUp > seconds(5)) {
    struct passwd entry;
    struct passwd* found = nullptr;
    std::vector<char> buffer(16384);
    if (::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
        found == nullptr) {
      users_.erase(user);
      return Error("user '" + user + "' does not exist on this agent");
    }
    if (users_.size() > 1000) {
      users_.clear();
    }
    cached = users_.insert_or_assign(user, UserEntry{found->pw_uid, found->pw_gid, found->pw_dir,
                                                     loop_.now()})
                 .first;
  }
  const UserEntry& found = cached->second;
  if (::geteuid() != 0) {
    if (found.uid != ::geteuid()) {
      return Error("cannot run tasks as '" + user + "': the agent does not run as root (run it "
                   "as root, or with --switch_user=false)");
    }
    return ok();  // already that user
  }
  if (found.uid == 0) {
    return ok();
  }
  // The sandbox is the user's; the built-in executors start the tasks as the user, and a
  // framework's own executor is itself run as the user.
  if (Status made = makeDirectories(config->directory); !made) {
    return made;
  }
  if (::chown(config->directory.c_str(), found.uid, found.gid) != 0) {
    return Error("cannot give the sandbox to user '" + user + "': " + std::strerror(errno));
  }
  config->env["AGORA_TASK_USER"] = user;
  config->env["AGORA_TASK_UID"] = std::to_string(found.uid);
  config->env["AGORA_TASK_GID"] = std::to_string(found.gid);
  config->env["HOME"] = found.home;
  config->user = user;
  return ok();
}

std::optional<Limitation> Agent::limitationOf(Executor& executor) {
  if (executor.limitation) {
    return executor.limitation;
  }
  return containerizer_.limitation(executor.containerId);
}

void Agent::checkDisk() {
  for (auto& [fid, framework] : frameworks_) {
    for (auto& [eid, executor] : framework.executors) {
      executor.diskUsed = diskUsage(executor.directory);
      if (!options_.enforceDiskLimit || executor.limitation ||
          executor.phase == Executor::Phase::kTerminating) {
        continue;
      }
      Resources given(executor.info.resources());
      for (const auto& [id, task] : executor.tasks) {
        if (!terminal(task.state())) {
          given += Resources(task.resources());
        }
      }
      double limitMiB = 0;
      for (const Resource& r : given.items()) {
        if (r.name() == "disk" && !isPersistentVolume(r)) {
          limitMiB += r.scalar();
        }
      }
      uint64_t limit = static_cast<uint64_t>(limitMiB * 1024 * 1024);
      if (limit == 0 || executor.diskUsed <= limit) {
        continue;
      }
      Limitation l;
      l.reason = TaskStatus::REASON_CONTAINER_LIMITATION_DISK;
      l.message = "the sandbox uses " + std::to_string(executor.diskUsed >> 20) +
                  " MiB of disk, more than the " + std::to_string(limit >> 20) + " MiB given";
      LOG(WARNING) << "Executor " << eid << " of framework " << fid << ": " << l.message
                   << "; destroying its container";
      executor.limitation = l;
      executor.phase = Executor::Phase::kTerminating;
      containerizer_.destroy(executor.containerId);
    }
  }
  diskTimer_ = loop_.after(options_.diskWatchInterval, [this] { checkDisk(); });
}

std::optional<ResourceStatistics> Agent::statisticsOf(const Executor& executor) const {
  auto usage = containerizer_.usage(executor.containerId);
  if (!usage) {
    return std::nullopt;
  }
  ResourceStatistics s;
  s.set_timestamp(loop_.wallTime());
  s.set_cpus_user_time_secs(usage->userSeconds);
  s.set_cpus_system_time_secs(usage->systemSeconds);
  s.set_cpus_limit(usage->cpusLimit);
  s.set_cpus_nr_throttled(usage->throttledPeriods);
  s.set_cpus_throttled_time_secs(usage->throttledSeconds);
  s.set_mem_total_bytes(usage->memoryBytes);
  s.set_mem_rss_bytes(usage->rssBytes);
  s.set_mem_cache_bytes(usage->cacheBytes);
  s.set_mem_limit_bytes(usage->memoryLimitBytes);
  s.set_processes(usage->processes);
  s.set_disk_used_bytes(executor.diskUsed);
  return s;
}

void Agent::reportUsage() {
  usageTimer_ = loop_.after(options_.usageInterval, [this] { reportUsage(); });
  if (state_ != State::kRegistered) {
    return;
  }
  AgentCall call;
  auto* usage = call.mutable_usage();
  for (const auto& [fid, framework] : frameworks_) {
    for (const auto& [eid, executor] : framework.executors) {
      auto stats = statisticsOf(executor);
      if (!stats) {
        continue;
      }
      auto* c = usage->add_containers();
      c->set_framework_id(fid);
      c->set_executor_id(eid);
      for (const auto& [tid, task] : executor.tasks) {
        if (!terminal(task.state())) {
          c->add_task_ids(tid);
        }
      }
      *c->mutable_statistics() = *stats;
    }
  }
  if (usage->containers_size() > 0) {
    sendToMaster(std::move(call));
  }
}

void Agent::collectGarbage() {
  gcTimer_ = loop_.after(std::min<Duration>(minutes(1), std::max<Duration>(options_.gcDelay / 10,
                                                                          milliseconds(100))),
                         [this] { collectGarbage(); });
  // The fuller the disk, the sooner.
  double used = 0;
  struct statvfs fsStats;
  if (::statvfs(options_.workDir.c_str(), &fsStats) == 0 && fsStats.f_blocks > 0) {
    used = 1.0 - static_cast<double>(fsStats.f_bavail) / static_cast<double>(fsStats.f_blocks);
  }
  double keep = std::max(0.0, 1.0 - used - options_.gcDiskHeadroom);
  auto delay = std::chrono::duration_cast<std::filesystem::file_time_type::duration>(
      std::chrono::duration<double>(toSeconds(options_.gcDelay) * keep));
  auto cutoff = std::filesystem::file_time_type::clock::now() - delay;
  std::set<std::string> live;
  for (const auto& [fid, framework] : frameworks_) {
    for (const auto& [eid, executor] : framework.executors) {
      live.insert(executor.directory);
    }
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string root = options_.workDir + "/frameworks";
  int removed = 0;
  for (const auto& framework : fs::directory_iterator(root, ec)) {
    for (const auto& executor : fs::directory_iterator(framework.path() / "executors", ec)) {
      for (const auto& run : fs::directory_iterator(executor.path() / "runs", ec)) {
        std::string dir = run.path().string();
        if (live.count(dir) > 0) {
          continue;
        }
        auto newest = fs::last_write_time(run.path(), ec);
        for (const char* name : {"stdout", "stderr"}) {
          auto t = fs::last_write_time(run.path() / name, ec);
          if (!ec && t > newest) newest = t;
        }
        ec.clear();
        if (newest < cutoff && removeAll(dir)) {
          ++removed;
        }
      }
      fs::remove(executor.path() / "runs", ec);  // only when empty
      fs::remove(executor.path(), ec);
    }
    fs::remove(framework.path() / "executors", ec);
    fs::remove(framework.path(), ec);
  }
  if (removed > 0) {
    LOG(INFO) << "Removed " << removed << " old sandboxes";
  }
  if (!options_.imageStore.empty() && pathExists(options_.imageStore)) {
    images::Store(options_.imageStore).collectGarbage();
  }
}

void Agent::updateContainer(const Executor& executor) {
  Resources resources(executor.info.resources());
  for (const auto& [id, task] : executor.tasks) {
    if (!terminal(task.state())) {
      resources += Resources(task.resources());
    }
  }
  std::vector<std::string> devices;
  for (const auto& [taskId, positions] : executor.gpus) {
    for (size_t p : positions) {
      devices.push_back(options_.gpus[p].rule());
    }
  }
  if (!devices.empty()) {
    devices.insert(devices.end(), options_.gpuControlRules.begin(),
                   options_.gpuControlRules.end());
  }
  if (Status updated = containerizer_.update(executor.containerId, resources, devices);
      !updated) {
    LOG(WARNING) << "Could not set the limits of executor " << executor.id << ": "
                 << updated.error();
  }
}

Status Agent::prepareImage(TaskInfo& task) const {
  if (task.container().image().empty()) {
    return ok();
  }
  const std::string& name = task.container().image();
  if (options_.imageStore.empty()) {
    return Error("task wants image '" + name + "', but this agent has no image store "
                 "(--image_store)");
  }
  images::Store store(options_.imageStore);
  auto image = store.find(name);
  if (!image) {
    return Error(image.error());
  }
  ContainerInfo* container = task.mutable_container();
  container->clear_rootfs_layers();
  for (const std::string& layer : image->layers) {
    container->add_rootfs_layers(store.layerPath(layer));
  }
  if (container->working_dir().empty()) {
    container->set_working_dir(image->config.workingDir.empty() ? "/" : image->config.workingDir);
  }
  if (container->user().empty()) {
    container->set_user(image->config.user);
  }
  // Its persistent volumes, mounted where they ask: a relative container_path is in the
  // sandbox (/mnt/agora/sandbox), an absolute one anywhere in the image.
  container->clear_mounts();
  for (const Resource& r : task.resources()) {
    if (!isPersistentVolume(r)) {
      continue;
    }
    auto dir = volumeDirectory(options_.workDir, r);
    const std::string& path = r.disk().container_path();
    if (!dir || path.empty() || path.find("..") != std::string::npos) {
      return Error("volume " + r.disk().persistence_id() + " has no usable container_path");
    }
    if (Status made = makeDirectories(*dir); !made) {
      return made;
    }
    ContainerInfo::Mount* mount = container->add_mounts();
    mount->set_source(*dir);
    mount->set_target(path.front() == '/' ? path : std::string("/mnt/agora/sandbox/") + path);
  }
  // What runs: as Kubernetes reads command and args against Entrypoint and Cmd.
  CommandInfo* command = task.mutable_command();
  bool shell = !command->has_shell() || command->shell();
  if (command->value().empty()) {
    std::vector<std::string> argv = image->config.entrypoint;
    if (command->arguments_size() > 0) {
      argv.insert(argv.end(), command->arguments().begin(), command->arguments().end());
    } else {
      argv.insert(argv.end(), image->config.cmd.begin(), image->config.cmd.end());
    }
    if (argv.empty()) {
      return Error("image '" + name + "' has no Entrypoint or Cmd, and the task no command");
    }
    command->set_shell(false);
    command->set_value(argv[0]);
    command->clear_arguments();
    for (const std::string& a : argv) {
      command->add_arguments(a);
    }
  } else if (!shell && command->arguments_size() == 0) {
    command->add_arguments(command->value());
  }
  // The image's environment first; the task's own wins.
  google::protobuf::RepeatedPtrField<EnvironmentVariable> env;
  for (const std::string& var : image->config.env) {
    size_t eq = var.find('=');
    bool overridden = false;
    for (const auto& own : command->environment()) {
      overridden |= own.name() == var.substr(0, eq);
    }
    if (eq != std::string::npos && !overridden) {
      EnvironmentVariable* e = env.Add();
      e->set_name(var.substr(0, eq));
      e->set_value(var.substr(eq + 1));
    }
  }
  env.MergeFrom(command->environment());
  *command->mutable_environment() = std::move(env);
  return ok();
}

Status Agent::enoughGpus(const google::protobuf::RepeatedPtrField<Resource>& resources) const {
  double wanted = Resources(resources).scalar("gpus");
  if (wanted <= 0 || options_.gpus.empty()) {
    return ok();  // an agent that offers gpus without knowing them (simulated) hands none out
  }
  size_t free = options_.gpus.size();
  for (bool used : gpuUsed_) {
    free -= used ? 1 : 0;
  }
  if (wanted != std::floor(wanted)) {
    return Error("GPUs are given whole: a task cannot ask for " + std::to_string(wanted));
  }
  if (static_cast<size_t>(wanted) > free) {
    return Error("the agent has " + std::to_string(free) + " free GPUs, not " +
                 std::to_string(static_cast<size_t>(wanted)));
  }
  return ok();
}

bool Agent::assignGpus(Executor& executor, TaskInfo& task) {
  double wanted = Resources(task.resources()).scalar("gpus");
  if (wanted <= 0 || options_.gpus.empty()) {
    return true;
  }
  gpuUsed_.resize(options_.gpus.size(), false);
  std::vector<size_t> mine;
  for (size_t p = 0; p < gpuUsed_.size() && mine.size() < static_cast<size_t>(wanted); ++p) {
    if (!gpuUsed_[p]) {
      mine.push_back(p);
    }
  }
  if (mine.size() < static_cast<size_t>(std::ceil(wanted))) {
    return false;
  }
  std::string visible;
  std::string indexes;
  for (size_t p : mine) {
    gpuUsed_[p] = true;
    const gpu::Gpu& g = options_.gpus[p];
    visible += (visible.empty() ? "" : ",") + (g.uuid.empty() ? std::to_string(g.index) : g.uuid);
    indexes += (indexes.empty() ? "" : ",") + std::to_string(g.index);
  }
  executor.gpus[task.task_id()] = mine;
  auto set = [&](const std::string& name, const std::string& value) {
    auto* env = task.mutable_command()->mutable_environment();
    for (auto& var : *env) {
      if (var.name() == name) {
        var.set_value(value);
        return;
      }
    }
    auto* var = env->Add();
    var->set_name(name);
    var->set_value(value);
  };
  if (!task.container().image().empty()) {
    // In an image, its GPUs' device files (and the driver's) are put in its /dev.
    auto mount = [&](const std::string& device) {
      ContainerInfo::Mount* m = task.mutable_container()->add_mounts();
      m->set_source(device);
      m->set_target("/dev/" + device.substr(device.rfind('/') + 1));
    };
    for (size_t p : mine) {
      mount(options_.gpus[p].device);
    }
    for (const std::string& device : options_.gpuControlDevices) {
      mount(device);
    }
  }
  set("NVIDIA_VISIBLE_DEVICES", visible);
  set("CUDA_VISIBLE_DEVICES", visible);
  set("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
  set("AGORA_GPUS", indexes);
  return true;
}

void Agent::releaseGpus(Executor& executor, bool all) {
  bool released = false;
  for (auto it = executor.gpus.begin(); it != executor.gpus.end();) {
    auto task = executor.tasks.find(it->first);
    if (!all && task != executor.tasks.end() && !terminal(task->second.state())) {
      ++it;
      continue;
    }
    for (size_t p : it->second) {
      if (p < gpuUsed_.size()) {
        gpuUsed_[p] = false;
      }
    }
    it = executor.gpus.erase(it);
    released = true;
  }
  if (released && !all) {
    updateContainer(executor);
  }
}

void Agent::updateResources(const AgentEvent::UpdateResources& update) {
  for (const Resource& gone : update.destroyed_volumes()) {
    auto dir = volumeDirectory(options_.workDir, gone);
    if (dir && pathExists(*dir)) {
      LOG(INFO) << "Destroying volume " << gone.disk().persistence_id() << " at " << *dir;
      if (Status removed = removeAll(*dir); !removed) {
        LOG(WARNING) << "Could not remove " << *dir << ": " << removed.error();
      }
    }
  }
  checkpointed_ = Resources(update.checkpointed());
  for (const Resource& r : update.checkpointed()) {
    if (!isPersistentVolume(r)) {
      continue;
    }
    auto dir = volumeDirectory(options_.workDir, r);
    if (!dir) {
      LOG(WARNING) << "Ignoring a volume with an unusable role or id: " << r.ShortDebugString();
      continue;
    }
    if (!pathExists(*dir)) {
      if (Status made = makeDirectories(*dir); !made) {
        LOG(WARNING) << "Could not create volume directory " << *dir << ": " << made.error();
      } else {
        LOG(INFO) << "Created volume " << r.disk().persistence_id() << " at " << *dir;
      }
    }
  }
}

void Agent::linkVolumes(const Executor& executor, const TaskInfo& task) {
  if (!task.container().image().empty()) {
    return;  // mounted into its image instead (prepareImage)
  }
  for (const Resource& r : task.resources()) {
    if (!isPersistentVolume(r)) {
      continue;
    }
    auto dir = volumeDirectory(options_.workDir, r);
    const std::string& path = r.disk().container_path();
    if (!dir || path.empty() || path.front() == '/' || path.find("..") != std::string::npos) {
      LOG(WARNING) << "Not linking volume " << r.disk().persistence_id() << " into "
                   << executor.directory << ": unusable id, role or container_path";
      continue;
    }
    std::string link = executor.directory + "/" + path;
    Status made = makeDirectories(*dir);
    if (made) {
      made = makeDirectories(link.substr(0, link.rfind('/')));
    }
    if (made && !pathExists(link) && ::symlink(dir->c_str(), link.c_str()) != 0) {
      made = Error(std::string("symlink: ") + std::strerror(errno));
    }
    if (!made) {
      LOG(WARNING) << "Could not link volume " << r.disk().persistence_id() << " at " << link
                   << ": " << made.error();
    }
  }
}

}  // namespace agora::agent
