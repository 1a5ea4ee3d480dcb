// Container launch on one agent: Agora's containerizer with cgroups (cpu, mem, pids) and pid,
// mount, uts and ipc namespaces, against `runc run` (Debian's runc) on a minimal busybox bundle,
// side by side in the same run. Needs root, runc and busybox.
//
//   agora-bench-containers [--count=500] [--long_running=100]
//
// Launch latency: from asking for the container to its command (`true`) having run and exited,
// one container at a time; containers/s over the whole sequence. Then --long_running
// containers that stay up, started back to back.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "agent/containerizer/posix_containerizer.hpp"
#include "common/event_loop.hpp"
#include "common/flags.hpp"
#include "common/fs.hpp"
#include "common/ids.hpp"
#include "common/logging.hpp"
#include "common/process.hpp"

namespace agora::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Summary {
  double p50 = 0;
  double p99 = 0;
  double perSecond = 0;
};

Summary summarize(std::vector<double> ms, double totalSeconds) {
  std::sort(ms.begin(), ms.end());
  Summary s;
  s.p50 = ms[ms.size() / 2];
  s.p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  s.perSecond = static_cast<double>(ms.size()) / totalSeconds;
  return s;
}

Result<std::string> makeBundle(const std::string& dir) {
  std::string rootfs = dir + "/rootfs";
  if (Status made = makeDirectories(rootfs + "/bin"); !made) {
    return Error(made.error());
  }
  for (const char* d : {"proc", "dev", "sys", "tmp"}) {
    (void)makeDirectories(rootfs + "/" + d);
  }
  SpawnOptions copy;
  copy.argv = {"/bin/cp", "/usr/bin/busybox", rootfs + "/bin/busybox"};
  auto pid = spawnProcess(copy);
  int status = 0;
  if (!pid || ::waitpid(*pid, &status, 0) != *pid || status != 0) {
    return Error("cannot copy /usr/bin/busybox into the bundle (apt-get install busybox-static)");
  }
  if (::symlink("busybox", (rootfs + "/bin/true").c_str()) != 0 ||
      ::symlink("busybox", (rootfs + "/bin/sh").c_str()) != 0) {
    return Error("cannot make the bundle's links");
  }
  SpawnOptions spec;
  spec.argv = {"/usr/sbin/runc", "spec"};
  spec.cwd = dir;
  pid = spawnProcess(spec);
  if (!pid || ::waitpid(*pid, &status, 0) != *pid || status != 0) {
    return Error("runc spec failed (apt-get install runc)");
  }
  auto text = readFile(dir + "/config.json");
  if (!text) {
    return Error(text.error());
  }
  nlohmann::json config = nlohmann::json::parse(*text);
  config["process"]["terminal"] = false;
  config["process"]["args"] = {"/bin/true"};
  config["root"]["readonly"] = true;
  if (Status written = writeFileAtomic(dir + "/config.json", config.dump(2)); !written) {
    return Error(written.error());
  }
  return dir;
}

int run(int argc, const char* const* argv) {
  int count = 500;
  int longRunning = 100;
  Flags flags("agora-bench-containers [flags]", "Container launch latency (see docs/PERF.md).");
  flags.add(&count, "count", "Containers running `true`, one after another.");
  flags.add(&longRunning, "long_running", "Containers that stay up, started back to back.");
  auto parsed = flags.parse(argc, argv);
  if (flags.helpRequested()) {
    std::cout << flags.help();
    return 0;
  }
  if (!parsed || count < 1 || longRunning < 0) {
    std::cerr << (parsed ? "bad --count or --long_running" : parsed.error()) << "\n";
    return 2;
  }
  if (::geteuid() != 0) {
    std::cerr << "agora-bench-containers needs root (cgroups and namespaces)\n";
    return 1;
  }
  FLAGS_minloglevel = 2;
  initLogging(argv[0], "", 0);
  blockSignalsToFd({SIGCHLD});

  char dirTemplate[] = "/var/tmp/agora-bench-containers-XXXXXX";
  if (::mkdtemp(dirTemplate) == nullptr) {
    std::cerr << "cannot create a directory under /var/tmp\n";
    return 1;
  }
  std::string dir = dirTemplate;
  auto layout = cgroups::detectLayout();
  if (!layout) {
    std::cerr << layout.error() << "\n";
    return 1;
  }

  // Agora: the agent's containerizer with the isolation `agora up` uses by default.
  EventLoop loop;
  agent::CgroupsIsolation isolation;
  isolation.layout = *layout;
  isolation.root = "agora-bench-" + std::to_string(::getpid());
  isolation.maxPids = 64;
  isolation.devices = true;
  isolation.namespaces = {"pid", "mount", "uts", "ipc"};
  agent::PosixContainerizer containerizer(loop, isolation);
  int exited = 0;
  containerizer.setExitCallback([&](const std::string&, int) {
    ++exited;
    loop.stop();
  });
  auto launch = [&](const std::string& id, std::vector<std::string> argv) -> Status {
    agent::ContainerConfig config;
    config.containerId = id;
    config.executorId = id;
    config.argv = std::move(argv);
    config.directory = dir + "/sandboxes/" + id;
    config.workDir = dir;
    config.env = {{"PATH", "/usr/bin:/bin"}, {"AGORA_SANDBOX", config.directory}};
    config.resources = *Resources::parse("cpus:0.1;mem:32");
    return containerizer.launch(config);
  };
  std::vector<double> agoraMs;
  auto agoraStart = Clock::now();
  for (int i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    Status launched = launch("true-" + std::to_string(i), {"/bin/true"});
    if (!launched) {
      std::cerr << launched.error() << "\n";
      return 1;
    }
    loop.run();  // until its exit is reaped
    agoraMs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  double agoraSeconds = std::chrono::duration<double>(Clock::now() - agoraStart).count();
  auto longStart = Clock::now();
  for (int i = 0; i < longRunning; ++i) {
    (void)launch("long-" + std::to_string(i), {"/usr/bin/tail", "-f", "/dev/null"});
  }
  double longSeconds = std::chrono::duration<double>(Clock::now() - longStart).count();
  containerizer.destroyAll();
  while (exited < count + longRunning) {
    loop.run();  // until each has been reaped
  }

  // runc: the same count, one after another, on a busybox bundle.
  auto bundle = makeBundle(dir + "/bundle");
  if (!bundle) {
    std::cerr << bundle.error() << "\n";
    (void)removeAll(dir);
    return 1;
  }
  std::vector<double> runcMs;
  auto runcStart = Clock::now();
  for (int i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    SpawnOptions spawn;
    spawn.argv = {"/usr/sbin/runc", "run", "--bundle", *bundle,
                  "agora-bench-" + std::to_string(::getpid()) + "-" + std::to_string(i)};
    spawn.stdoutPath = dir + "/runc.out";
    spawn.stderrPath = dir + "/runc.out";
    auto pid = spawnProcess(spawn);
    int status = 0;
    if (!pid || ::waitpid(*pid, &status, 0) != *pid || status != 0) {
      std::cerr << "runc run failed; see " << dir << "/runc.out\n";
      return 1;
    }
    runcMs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  double runcSeconds = std::chrono::duration<double>(Clock::now() - runcStart).count();

  Summary a = summarize(agoraMs, agoraSeconds);
  Summary r = summarize(runcMs, runcSeconds);
  std::printf(
      "containers=%d (cgroups cpu/mem/pids/devices, pid/mount/uts/ipc namespaces, private /tmp): agora p50 %.2f ms, "
      "p99 %.2f ms, %.0f containers/s; runc run p50 %.2f ms, p99 %.2f ms, %.0f containers/s; "
      "agora/runc p50 %.2fx; %d long-running agora containers started in %.3f s (%.0f/s)\n",
      count, a.p50, a.p99, a.perSecond, r.p50, r.p99, r.perSecond, a.p50 / r.p50, longRunning,
      longSeconds, longRunning / std::max(longSeconds, 1e-9));
  cgroups::Container root(isolation.layout, "", isolation.root);
  (void)root.removeIfEmpty();
  (void)removeAll(dir);
  return 0;
}

}  // namespace
}  // namespace agora::bench

int main(int argc, char** argv) { return agora::bench::run(argc, argv); }
