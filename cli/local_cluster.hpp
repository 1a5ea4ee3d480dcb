#pragma once

// Starting and stopping the processes of a local cluster (agora up / stop / status).

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/profile.hpp"
#include "common/result.hpp"

namespace agora::cli {

using Clock = std::chrono::steady_clock;

// The last lines of a log, indented, to show why a daemon did not come up.
std::string logTail(const std::string& path, size_t lines);

// Is `pid` still the daemon we started (its command line names `role`), and not a stranger that
// reused its pid?
bool isOurDaemon(int pid, const std::string& role);

// Starts a daemon in a session of its own (it outlives the CLI), output to `log`.
Result<pid_t> startDaemon(const std::vector<std::string>& args, const std::string& log);

// Waits for a daemon's info file (it writes one when it serves); an error with its log's tail
// when it exits or the deadline passes first.
Result<nlohmann::json> waitForInfoFile(const std::string& path, pid_t pid, const std::string& log,
                                       Clock::time_point deadline);

// SIGTERM, then SIGKILL after `patience`.
void stopDaemon(const DaemonRecord& d, Clock::duration patience);

// Agents first (they stop their tasks), then masters, then ZooKeeper.
void stopProfile(const Profile& profile);
bool anyRunning(const Profile& profile);

// Starts a ZooKeeper server from Debian's `zookeeper` package in `dir` on a free loopback port,
// and waits until it answers. Returns the daemon record; `port` is set.
Result<DaemonRecord> startZooKeeper(const std::string& dir, int* port, Clock::time_point deadline);

}  // namespace agora::cli
