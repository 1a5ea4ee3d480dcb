#include "isolators/cgroups.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <set>
#include <sstream>
#include <thread>

#include "common/fs.hpp"
#include "isolators/device_bpf.hpp"

namespace agora::cgroups {

namespace {

std::vector<std::string> splitOn(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) {
    out.push_back(part);
  }
  return out;
}

// `path` with the mount's own root removed ("/" + rest), for cgroups seen through a mount of
// a sub-tree (containers that mount their own cgroup at the hierarchy's root).
std::string relativeTo(const std::string& path, const std::string& mountRoot) {
  if (mountRoot == "/" || mountRoot.empty()) {
    return path;
  }
  if (path.rfind(mountRoot, 0) == 0) {
    std::string rest = path.substr(mountRoot.size());
    return rest.empty() ? "/" : rest;
  }
  return path;
}

std::string join(const std::string& a, const std::string& b) {
  if (b.empty() || b == "/") {
    return a;
  }
  if (!a.empty() && a.back() == '/') {
    return a + (b.front() == '/' ? b.substr(1) : b);
  }
  return a + (b.front() == '/' ? b : "/" + b);
}

Status writeTo(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);  // as `echo v > file`
  if (fd < 0) {
    return Error("cannot open " + path + ": " + std::strerror(errno));
  }
  ssize_t n = ::write(fd, value.data(), value.size());
  int saved = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return Error("cannot write '" + value + "' to " + path + ": " + std::strerror(saved));
  }
  return ok();
}

uint64_t number(const std::string& text) {
  try {
    return std::stoull(text);
  } catch (...) {
    return 0;
  }
}

}  // namespace

std::map<std::string, uint64_t> parseKeyValues(const std::string& text) {
  std::map<std::string, uint64_t> out;
  std::istringstream in(text);
  std::string key;
  std::string value;
  while (in >> key >> value) {
    out[key] = number(value);
  }
  return out;
}

Result<Layout> parseLayout(const std::string& mountinfo, const std::string& selfCgroup,
                           const std::string& v2Controllers) {
  Layout layout;
  std::map<std::string, std::string> v1Roots;  // controller -> the mount's root
  std::string v2Root = "/";
  std::istringstream lines(mountinfo);
  std::string line;
  while (std::getline(lines, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) {
      continue;
    }
    std::vector<std::string> before = splitOn(line.substr(0, dash), ' ');
    std::vector<std::string> after = splitOn(line.substr(dash + 3), ' ');
    if (before.size() < 5 || after.size() < 3) {
      continue;
    }
    const std::string& root = before[3];
    const std::string& mountPoint = before[4];
    const std::string& type = after[0];
    if (type == "cgroup2") {
      if (layout.v2Mount.empty()) {
        layout.v2Mount = mountPoint;
        v2Root = root;
      }
    } else if (type == "cgroup") {
      for (const std::string& option : splitOn(after[2], ',')) {
        if (std::find(kControllers.begin(), kControllers.end(), option) != kControllers.end() &&
            layout.v1Mounts.count(option) == 0) {
          layout.v1Mounts[option] = mountPoint;
          v1Roots[option] = root;
        }
      }
    }
  }
  std::istringstream entries(selfCgroup);
  while (std::getline(entries, line)) {
    std::vector<std::string> parts = splitOn(line, ':');
    if (parts.size() < 3) {
      continue;
    }
    std::string path = line.substr(parts[0].size() + parts[1].size() + 2);
    if (parts[0] == "0" && parts[1].empty()) {
      layout.v2Path = relativeTo(path, v2Root);
      continue;
    }
    for (const std::string& controller : splitOn(parts[1], ',')) {
      if (layout.v1Mounts.count(controller) > 0) {
        layout.v1Paths[controller] = relativeTo(path, v1Roots[controller]);
      }
    }
  }
  std::vector<std::string> available = splitOn(v2Controllers, ' ');
  auto hasV2 = [&](const std::string& c) {
    return std::find(available.begin(), available.end(), c) != available.end();
  };
  layout.v2 = !layout.v2Mount.empty() && hasV2("cpu") && hasV2("memory") && hasV2("pids");
  if (!layout.v2) {
    for (const char* needed : {"cpu", "cpuacct", "memory", "pids", "freezer"}) {
      if (layout.v1Mounts.count(needed) == 0) {
        return Error(std::string("no cgroup controller '") + needed +
                     "' is mounted (v1), and the v2 hierarchy does not offer cpu, memory and "
                     "pids");
      }
    }
  }
  return layout;
}

Result<Layout> detectLayout(const std::string& proc) {
  auto mountinfo = readFile(proc + "/self/mountinfo");
  auto self = readFile(proc + "/self/cgroup");
  if (!mountinfo || !self) {
    return Error("cannot read " + proc + "/self/mountinfo or " + proc + "/self/cgroup");
  }
  // Where cgroup2 is mounted decides where its controllers list is.
  auto first = parseLayout(*mountinfo, *self, "");
  std::string controllers;
  std::string v2Mount;
  std::istringstream lines(*mountinfo);
  std::string line;
  while (std::getline(lines, line)) {
    size_t dash = line.find(" - ");
    if (dash != std::string::npos && line.compare(dash + 3, 8, "cgroup2 ") == 0) {
      std::vector<std::string> before = splitOn(line.substr(0, dash), ' ');
      if (before.size() >= 5) {
        v2Mount = before[4];
        break;
      }
    }
  }
  if (!v2Mount.empty()) {
    auto text = readFile(v2Mount + "/cgroup.controllers");
    controllers = text ? *text : "";
    while (!controllers.empty() && (controllers.back() == '\n' || controllers.back() == ' ')) {
      controllers.pop_back();
    }
  }
  return parseLayout(*mountinfo, *self, controllers);
}

Status leaveOwnCgroupForALeaf(const Layout& layout, const std::string& containersRoot,
                              pid_t self) {
  if (!layout.v2 || layout.v2Path.empty() || layout.v2Path == "/" ||
      (!containersRoot.empty() && containersRoot.front() == '/')) {
    return ok();
  }
  std::string leaf = join(join(layout.v2Mount, layout.v2Path), "agora-agent");
  if (Status made = makeDirectories(leaf); !made) {
    return made;
  }
  return writeTo(leaf + "/cgroup.procs", std::to_string(self));
}

Status enableV2Controllers(const Layout& layout, const std::string& path) {
  if (!layout.v2) {
    return ok();
  }
  // Each cgroup from the mount down to `path` itself passes the controllers to its children.
  std::string current = layout.v2Mount;
  std::vector<std::string> parts = splitOn(path, '/');
  for (size_t i = 0; i <= parts.size(); ++i) {
    if (i > 0) {
      if (parts[i - 1].empty()) {
        continue;
      }
      current += "/" + parts[i - 1];
    }
    for (const char* c : {"+cpu", "+memory", "+pids"}) {
      if (Status s = writeTo(current + "/cgroup.subtree_control", c); !s) {
        return s;
      }
    }
  }
  return ok();
}

// ------------------------------------------------------------------------------------------

Container::Container(Layout layout, std::string root, std::string name)
    : layout_(std::move(layout)), root_(std::move(root)), name_(std::move(name)) {}

std::string Container::path(const std::string& controller) const {
  std::string mount;
  std::string own;
  if (layout_.v2) {
    mount = layout_.v2Mount;
    own = layout_.v2Path;
  } else {
    auto m = layout_.v1Mounts.find(controller);
    mount = m == layout_.v1Mounts.end() ? "" : m->second;
    auto p = layout_.v1Paths.find(controller);
    own = p == layout_.v1Paths.end() ? "/" : p->second;
  }
  // A root starting with '/' is from the hierarchy's top; otherwise below our own cgroup.
  std::string base = !root_.empty() && root_.front() == '/' ? join(mount, root_)
                                                             : join(join(mount, own), root_);
  return join(base, name_);
}

std::vector<std::string> Container::directories() const {
  if (layout_.v2) {
    return {path("")};
  }
  std::vector<std::string> out;
  for (const std::string& controller : kControllers) {
    if (layout_.v1Mounts.count(controller) == 0) {
      continue;
    }
    std::string dir = path(controller);
    if (std::find(out.begin(), out.end(), dir) == out.end()) {
      out.push_back(dir);  // co-mounted controllers (cpu,cpuacct) share one
    }
  }
  return out;
}

Status Container::write(const std::string& controller, const std::string& file,
                        const std::string& value) const {
  return writeTo(path(controller) + "/" + file, value);
}

Result<std::string> Container::read(const std::string& controller,
                                    const std::string& file) const {
  return readFile(path(controller) + "/" + file);
}

Status Container::create() {
  if (layout_.v2) {
    std::string dir = path("");
    std::string parent = dir.substr(0, dir.rfind('/'));
    if (Status made = makeDirectories(parent); !made) {
      return made;
    }
    if (Status enabled = enableV2Controllers(layout_, parent.substr(layout_.v2Mount.size()));
        !enabled) {
      return enabled;
    }
    return makeDirectories(dir);
  }
  for (const std::string& dir : directories()) {
    if (Status made = makeDirectories(dir); !made) {
      return made;
    }
  }
  return ok();
}

Status Container::addProcess(pid_t pid) {
  for (const std::string& dir : directories()) {
    if (Status s = writeTo(dir + "/cgroup.procs", std::to_string(pid)); !s) {
      return s;
    }
  }
  return ok();
}

Status Container::setCpus(double cpus, bool hardLimit) {
  // Shares as Mesos gives them: 1024 per cpu, at least 2 (the kernel's minimum).
  uint64_t shares = std::max<uint64_t>(2, static_cast<uint64_t>(std::llround(cpus * 1024)));
  const uint64_t period = 100000;  // us
  uint64_t quota = std::max<uint64_t>(1000, static_cast<uint64_t>(std::llround(cpus * period)));
  if (layout_.v2) {
    // The kernel's own mapping of shares [2, 262144] onto weight [1, 10000].
    uint64_t weight = 1 + ((std::min<uint64_t>(shares, 262144) - 2) * 9999) / 262142;
    if (Status s = write("", "cpu.weight", std::to_string(weight)); !s) {
      return s;
    }
    return write("", "cpu.max", hardLimit ? std::to_string(quota) + " " + std::to_string(period)
                                          : "max " + std::to_string(period));
  }
  if (Status s = write("cpu", "cpu.shares", std::to_string(shares)); !s) {
    return s;
  }
  if (Status s = write("cpu", "cpu.cfs_period_us", std::to_string(period)); !s) {
    return s;
  }
  return write("cpu", "cpu.cfs_quota_us", hardLimit ? std::to_string(quota) : "-1");
}

Status Container::setMemoryLimit(uint64_t bytes) {
  return layout_.v2 ? write("", "memory.max", std::to_string(bytes))
                    : write("memory", "memory.limit_in_bytes", std::to_string(bytes));
}

const std::vector<std::string> kStandardDevices = {
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
    "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"};

Status Container::setDevices(const std::vector<std::string>& allowed) {
  if (layout_.v2) {
    return attachDeviceProgram(path(""), allowed);
  }
  if (Status denied = write("devices", "devices.deny", "a"); !denied) {
    return denied;
  }
  for (const std::string& rule : allowed) {
    if (Status s = write("devices", "devices.allow", rule); !s) {
      return s;
    }
  }
  return ok();
}

Status Container::allowDevice(const std::string& rule) {
  if (layout_.v2) {
    return Error("on cgroups v2 a container's devices change all at once (setDevices)");
  }
  return write("devices", "devices.allow", rule);
}

Status Container::denyDevice(const std::string& rule) {
  if (layout_.v2) {
    return Error("on cgroups v2 a container's devices change all at once (setDevices)");
  }
  return write("devices", "devices.deny", rule);
}

Status Container::setPidsLimit(uint64_t max) {
  return write(layout_.v2 ? "" : "pids", "pids.max", std::to_string(max));
}

std::vector<pid_t> Container::processes() const {
  std::vector<pid_t> out;
  auto text = read(layout_.v2 ? "" : "freezer", "cgroup.procs");
  if (!text) {
    return out;
  }
  std::istringstream in(*text);
  long pid;
  while (in >> pid) {
    out.push_back(static_cast<pid_t>(pid));
  }
  return out;
}

Result<Stats> Container::stats() const {
  Stats stats;
  auto field = [](const std::map<std::string, uint64_t>& m, const char* key) -> uint64_t {
    auto it = m.find(key);
    return it == m.end() ? 0 : it->second;
  };
  if (layout_.v2) {
    auto cpu = read("", "cpu.stat");
    auto memory = read("", "memory.current");
    if (!cpu || !memory) {
      return Error("cannot read the stats of container " + name_);
    }
    auto c = parseKeyValues(*cpu);
    stats.userSeconds = static_cast<double>(field(c, "user_usec")) / 1e6;
    stats.systemSeconds = static_cast<double>(field(c, "system_usec")) / 1e6;
    stats.throttledPeriods = field(c, "nr_throttled");
    stats.throttledSeconds = static_cast<double>(field(c, "throttled_usec")) / 1e6;
    std::istringstream cpuMax(read("", "cpu.max").value_or("max"));
    std::string quota;
    double period = 0;
    if (cpuMax >> quota >> period && quota != "max" && period > 0) {
      stats.cpusLimit = static_cast<double>(number(quota)) / period;
    }
    stats.memoryBytes = number(*memory);
    auto m = parseKeyValues(read("", "memory.stat").value_or(""));
    stats.rssBytes = field(m, "anon");
    stats.cacheBytes = field(m, "file");
    std::string max = read("", "memory.max").value_or("max");
    stats.memoryLimitBytes = max.rfind("max", 0) == 0 ? 0 : number(max);
    stats.processes = number(read("", "pids.current").value_or("0"));
    stats.oomKills = field(parseKeyValues(read("", "memory.events").value_or("")), "oom_kill");
    return stats;
  }
  auto cpuacct = read("cpuacct", "cpuacct.stat");
  auto memory = read("memory", "memory.usage_in_bytes");
  if (!cpuacct || !memory) {
    return Error("cannot read the stats of container " + name_);
  }
  double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  auto a = parseKeyValues(*cpuacct);
  stats.userSeconds = static_cast<double>(field(a, "user")) / tick;
  stats.systemSeconds = static_cast<double>(field(a, "system")) / tick;
  auto c = parseKeyValues(read("cpu", "cpu.stat").value_or(""));
  stats.throttledPeriods = field(c, "nr_throttled");
  stats.throttledSeconds = static_cast<double>(field(c, "throttled_time")) / 1e9;
  std::string quota = read("cpu", "cpu.cfs_quota_us").value_or("-1");
  double period = static_cast<double>(number(read("cpu", "cpu.cfs_period_us").value_or("0")));
  if (!quota.empty() && quota[0] != '-' && period > 0) {
    stats.cpusLimit = static_cast<double>(number(quota)) / period;
  }
  stats.memoryBytes = number(*memory);
  auto m = parseKeyValues(read("memory", "memory.stat").value_or(""));
  stats.rssBytes = field(m, "rss");
  stats.cacheBytes = field(m, "cache");
  uint64_t limit = number(read("memory", "memory.limit_in_bytes").value_or("0"));
  stats.memoryLimitBytes = limit >= (uint64_t{1} << 62) ? 0 : limit;  // "unlimited" is huge
  stats.processes = number(read("pids", "pids.current").value_or("0"));
  stats.oomKills = field(parseKeyValues(read("memory", "memory.oom_control").value_or("")),
                         "oom_kill");
  return stats;
}

Status Container::killAll(Duration timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (layout_.v2) {
    if (pathExists(path("") + "/cgroup.kill")) {
      if (Status s = write("", "cgroup.kill", "1"); !s) {
        return s;
      }
    } else {
      (void)write("", "cgroup.freeze", "1");
      for (pid_t pid : processes()) {
        ::kill(pid, SIGKILL);
      }
      (void)write("", "cgroup.freeze", "0");
    }
  } else {
    // Frozen, nothing can fork while we kill; thawed, the kills are delivered.
    if (Status s = write("freezer", "freezer.state", "FROZEN"); !s) {
      return s;
    }
    while (read("freezer", "freezer.state").value_or("").rfind("FROZEN", 0) != 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (pid_t pid : processes()) {
      ::kill(pid, SIGKILL);
    }
    (void)write("freezer", "freezer.state", "THAWED");
  }
  while (!processes().empty()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error("processes of container " + name_ + " are still alive after the kill");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return ok();
}

bool Container::removeIfEmpty() {
  bool gone = true;
  for (const std::string& dir : directories()) {
    if (pathExists(dir) && ::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      gone = false;  // in use (EBUSY): another agent's containers, or processes
    }
  }
  return gone;
}

Status Container::destroy(Duration timeout) {
  std::vector<std::string> dirs = directories();
  if (std::none_of(dirs.begin(), dirs.end(), [](const std::string& d) { return pathExists(d); })) {
    return ok();
  }
  // Cgroups made below this one (an executor's for each of its tasks) go first.
  std::set<std::string> children;
  for (const std::string& dir : dirs) {
    if (DIR* d = ::opendir(dir.c_str())) {
      while (dirent* entry = ::readdir(d)) {
        std::string name = entry->d_name;
        if (entry->d_type == DT_DIR && name != "." && name != "..") {
          children.insert(name);
        }
      }
      ::closedir(d);
    }
  }
  std::string below = root_.empty() ? name_ : join(root_, name_);
  for (const std::string& child : children) {
    if (Status gone = Container(layout_, below, child).destroy(timeout); !gone) {
      return gone;
    }
  }
  if (Status killed = killAll(timeout); !killed) {
    return killed;
  }
  for (const std::string& dir : dirs) {
    if (pathExists(dir) && ::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      return Error("cannot remove " + dir + ": " + std::strerror(errno));
    }
  }
  return ok();
}

}  // namespace agora::cgroups
