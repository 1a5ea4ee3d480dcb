#pragma once

#include <sys/types.h>

#include <csignal>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace agora {

struct SpawnOptions {
  std::vector<std::string> argv;            // argv[0] is the program path
  std::map<std::string, std::string> env;   // the child's whole environment
  std::string cwd;                          // empty: inherit
  std::string stdinPath = "/dev/null";
  std::string stdoutPath;                   // empty: inherit; opened for appending
  std::string stderrPath;                   // empty: inherit; opened for appending
  bool newSession = false;                  // setsid(): its own session and process group
  bool newProcessGroup = false;             // setpgid(0, 0)
  std::vector<std::pair<int, int>> passFds; // (ours, the child's): descriptors it inherits
};

// Starts a process with posix_spawn (safe from a multi-threaded daemon: nothing but the spawn
// itself runs between fork and exec), with the default signal mask and dispositions.
Result<pid_t> spawnProcess(const SpawnOptions& options);

// The current environment as a map.
std::map<std::string, std::string> currentEnvironment();

// A process as /proc/PID/stat shows it.
struct ProcessInfo {
  pid_t pid = 0;
  pid_t parent = 0;
  pid_t session = 0;
  char state = '?';  // 'Z' for a zombie
};
// Every process (read from /proc).
std::vector<ProcessInfo> listProcesses();
// Every live process whose session id is `sid` (read from /proc).
std::vector<pid_t> processesInSession(pid_t sid);

// Sends `signal` to every process of a session; returns how many were signalled.
int signalSession(pid_t sid, int signal);

bool processAlive(pid_t pid);
// The real user and group ids a process runs as (from /proc/PID/status); root's when unknown.
std::pair<uid_t, gid_t> processUser(pid_t pid);

// When a process started, in clock ticks since boot (field 22 of /proc/PID/stat); 0 if it does
// not exist or is a zombie. With the pid it names one process for good: a pid taken again by a
// later process has another start time.
uint64_t processStartTicks(pid_t pid);

// The wait status of a process that was not our child, so could not be waited for.
constexpr int kUnknownWaitStatus = -1;

// The absolute path of the running executable.
std::string selfExecutable();

// Blocks `signals` in the calling thread (and every thread it starts afterwards) and returns a
// signalfd that reads them; call before any thread starts.
int blockSignalsToFd(const std::vector<int>& signals);

// Describes a wait(2) status: "exited with status 3", "killed by signal 9 (Killed)"; and
// kUnknownWaitStatus.
std::string describeWaitStatus(int status);

}  // namespace agora
