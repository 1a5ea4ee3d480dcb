#pragma once

// Linux control groups, v1 and v2, for the containerizer's isolators. The layout (which
// version, where each controller is mounted, and this process's own cgroup in each) is read
// once from /proc/self/mountinfo and /proc/self/cgroup; containers are made below the agent's
// own cgroup (or --cgroups_root), so the agent works in a delegated or nested cgroup as well as
// on a bare host. Everything takes a filesystem root, so that tests can use a fake tree.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/time.hpp"

namespace agora::cgroups {

// The controllers the isolators use.
inline const std::vector<std::string> kControllers = {"cpu", "cpuacct", "memory", "pids",
                                                      "freezer", "devices"};

struct Layout {
  // v2 when the unified hierarchy has the controllers we need; v1 otherwise.
  bool v2 = false;
  std::string v2Mount;                           // the cgroup2 mount ("" if none)
  std::string v2Path;                            // this process's cgroup in it
  std::map<std::string, std::string> v1Mounts;  // controller -> mount point
  std::map<std::string, std::string> v1Paths;   // controller -> this process's cgroup
};

// Parses the text of /proc/self/mountinfo and /proc/self/cgroup. `v2Controllers` is the
// content of <v2 mount>/cgroup.controllers ("" when unknown).
Result<Layout> parseLayout(const std::string& mountinfo, const std::string& selfCgroup,
                           const std::string& v2Controllers);

// Reads the layout of this machine (under `proc`, normally "/proc").
Result<Layout> detectLayout(const std::string& proc = "/proc");

struct Stats {
  double userSeconds = 0;
  double systemSeconds = 0;
  uint64_t throttledPeriods = 0;
  double throttledSeconds = 0;
  double cpusLimit = 0;  // the hard CFS quota in cpus; 0: none
  uint64_t memoryBytes = 0;  // in use (rss + cache on v1, memory.current on v2)
  uint64_t rssBytes = 0;
  uint64_t cacheBytes = 0;
  uint64_t memoryLimitBytes = 0;  // 0: none
  uint64_t processes = 0;
  uint64_t oomKills = 0;
};

// The cgroup(s) of one container: one directory per controller on v1, one on v2.
class Container {
 public:
  // `root`: the directory containers are made in, relative to each hierarchy's mount (for
  // example the agent's own cgroup + "/agora"). Nothing is created until create().
  Container(Layout layout, std::string root, std::string name);

  Status create();
  Status addProcess(pid_t pid);
  // cpus: shares (or weight) in proportion; with `hardLimit`, a CFS quota of exactly cpus.
  Status setCpus(double cpus, bool hardLimit);
  Status setMemoryLimit(uint64_t bytes);
  Status setPidsLimit(uint64_t max);
  // Denies every device but `allowed` ("c 1:3 rwm" lines): v1's devices.deny and
  // devices.allow, or on v2 a device BPF program that replaces the one before.
  Status setDevices(const std::vector<std::string>& allowed);
  // One more device allowed, or one taken away again (v1; on v2, setDevices with them all).
  Status allowDevice(const std::string& rule);
  Status denyDevice(const std::string& rule);
  Result<Stats> stats() const;
  std::vector<pid_t> processes() const;
  // Kills every process in the container (cgroup.kill on v2; freeze, SIGKILL, thaw on v1)
  // and waits up to `timeout` for them to be gone.
  Status killAll(Duration timeout);
  // Kills what is left, then removes the directories.
  Status destroy(Duration timeout);
  // Removes the directories if nothing is in them (no processes, no children); true if gone.
  bool removeIfEmpty();

  // The directory of `controller` (v1) or the container's directory (v2).
  std::string path(const std::string& controller) const;
  // Its directory in every hierarchy it uses: one on v2, one per mounted controller on v1.
  std::vector<std::string> directories() const;

 private:
  Status write(const std::string& controller, const std::string& file,
               const std::string& value) const;
  Result<std::string> read(const std::string& controller, const std::string& file) const;

  Layout layout_;
  std::string root_;
  std::string name_;
};

// On v2 a cgroup with processes cannot hand controllers to children ("no internal
// processes"), so before making containers below its own cgroup the agent moves itself into a
// leaf of it (`<own>/agora-agent`). No-op on v1, at the hierarchy's root, or with an absolute
// containers root.
Status leaveOwnCgroupForALeaf(const Layout& layout, const std::string& containersRoot,
                              pid_t self);

// Enables the controllers we use for the children of every cgroup between the v2 mount and
// `path` (v2 needs cgroup.subtree_control set on each ancestor). No-op on v1.
Status enableV2Controllers(const Layout& layout, const std::string& path);

// The devices every container may use: null, zero, full, random, urandom, tty, ptmx, ptys.
extern const std::vector<std::string> kStandardDevices;

// "key value" lines (cpu.stat, memory.stat, memory.events) into a map.
std::map<std::string, uint64_t> parseKeyValues(const std::string& text);

}  // namespace agora::cgroups
